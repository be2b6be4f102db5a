// Reference tokenization for the family test models: reads {"family": "...", "texts": ["..."]} on stdin and
// prints one JSON array of token ids per text (special tokens parsed, the tokenizer's own BOS/EOS rules applied),
// as transformers' tokenizers do, through @lenml/tokenizers (a port of transformers.js's tokenizers).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { TokenizerLoader } from "@lenml/tokenizers";

const require = createRequire(import.meta.url);
const families = JSON.parse(readFileSync(new URL("./families.json", import.meta.url), "utf8"));
const request = JSON.parse(readFileSync(0, "utf8"));
const family = families[request.family];
if (!family) throw new Error(`unknown family '${request.family}'`);

const dir = require.resolve(`${family.package}/models/tokenizer.json`).replace(/tokenizer\.json$/, "");
const tokenizerJSON = JSON.parse(readFileSync(dir + "tokenizer.json", "utf8"));
const tokenizerConfig = JSON.parse(readFileSync(dir + "tokenizer_config.json", "utf8"));
for (const [content, id] of Object.entries(family.extraSpecialTokens ?? {})) {
  tokenizerJSON.added_tokens = tokenizerJSON.added_tokens.filter((t) => t.id !== id); // a renamed token
  tokenizerJSON.added_tokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
}

const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const ids = request.texts.map((text) => Array.from(tokenizer.encode(text, { add_special_tokens: true })));
process.stdout.write(JSON.stringify(ids));
