// Renders every template in templates/ with every conversation in corpus.json through the reference
// renderer (@huggingface/jinja, the renderer transformers.js uses, with trim_blocks/lstrip_blocks as
// transformers sets them) and writes goldens.json. Run: npm ci && node render-golden.mjs
import { Template } from "@huggingface/jinja";
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const corpus = JSON.parse(readFileSync(join(here, "corpus.json"), "utf8"));
const families = JSON.parse(readFileSync(join(here, "templates.json"), "utf8"));
const now = new Date(corpus.date);

// strftime_now is the reference's own global (local time): pin the clock and the zone so the goldens are stable.
process.env.TZ = "UTC";
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [now.getTime()]));
  }
  static now() {
    return now.getTime();
  }
};

const goldens = {};
for (const file of readdirSync(join(here, "templates")).filter((f) => f.endsWith(".jinja")).sort()) {
  const name = file.slice(0, -".jinja".length);
  const family = families[name];
  if (!family) throw new Error(`templates.json has no entry for ${name}`);
  goldens[name] = {};
  let template;
  try {
    template = new Template(readFileSync(join(here, "templates", file), "utf8"));
  } catch (e) {
    // The reference cannot parse it: every conversation records the parse error.
    for (const c of corpus.cases) goldens[name][c.name] = { error: String(e.message ?? e), parse: true };
    continue;
  }
  for (const c of corpus.cases) {
    const context = {
      messages: c.messages,
      add_generation_prompt: c.add_generation_prompt,
    };
    if (c.tools) context.tools = corpus.tools;
    if (family.bos_token !== null) context.bos_token = family.bos_token;
    if (family.eos_token !== null) context.eos_token = family.eos_token;
    try {
      goldens[name][c.name] = { text: template.render(context) };
    } catch (e) {
      goldens[name][c.name] = { error: String(e.message ?? e) };
    }
  }
}
writeFileSync(join(here, "goldens.json"), JSON.stringify(goldens, null, 1) + "\n");
console.log(`wrote goldens.json: ${Object.keys(goldens).length} templates x ${corpus.cases.length} conversations`);
