// AgentHost's page: chat with served models and agents, and inspect each reply token by token.
// Model output is untrusted: every piece of it enters the DOM through textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const STORE = "agenthost.chat";
const KEY = "agenthost.key";
const state = { strategies: [], chat: load(), selected: -1, abort: null };

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE));
    if (saved && Array.isArray(saved.messages)) return saved;
  } catch { /* a broken entry starts a new chat */ }
  return { messages: [], settings: {} };
}
function save() { localStorage.setItem(STORE, JSON.stringify(state.chat)); }

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const key = sessionStorage.getItem(KEY);
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function api(path, body, signal) {
  const response = await fetch(path, body === undefined ? { headers: headers(false) }
    : { method: "POST", headers: headers(true), body: JSON.stringify(body), signal });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error.message; } catch { /* not JSON */ }
    if (response.status === 401) message += " Enter the server's API key above.";
    throw new Error(message);
  }
  return response;
}

// ---- Markdown, built as DOM nodes: paragraphs, headings, lists, fenced code, inline code, bold, italics.
function renderMarkdown(container, text) {
  container.replaceChildren();
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*```(.*)$/);
    if (fence) {
      const code = [];
      for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) code.push(lines[i]);
      i++;
      const pre = el("pre");
      const inner = el("code", null, code.join("\n"));
      if (fence[1].trim()) inner.dataset.lang = fence[1].trim();
      pre.append(inner);
      container.append(pre);
      continue;
    }
    const heading = line.match(/^(#{1,4})\s+(.*)$/);
    if (heading) {
      const h = el("h" + Math.min(6, heading[1].length + 2));
      inline(h, heading[2]);
      container.append(h);
      i++;
      continue;
    }
    if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = el(ordered ? "ol" : "ul");
      while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
        const item = el("li");
        inline(item, lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, ""));
        list.append(item);
        i++;
      }
      container.append(list);
      continue;
    }
    if (!line.trim()) { i++; continue; }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() && !/^\s*(```|#{1,4}\s|([-*+]|\d+[.)])\s)/.test(lines[i])) paragraph.push(lines[i++]);
    const p = el("p");
    inline(p, paragraph.join("\n"));
    container.append(p);
  }
}

function inline(parent, text) {
  const pattern = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*)/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    const token = match[0];
    if (token.startsWith("`")) parent.append(el("code", null, token.slice(1, -1)));
    else if (token.startsWith("**")) parent.append(el("strong", null, token.slice(2, -2)));
    else parent.append(el("em", null, token.slice(1, -1)));
    last = match.index + token.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

// ---- Settings
async function init() {
  $("apikey").value = sessionStorage.getItem(KEY) || "";
  $("apikey").addEventListener("change", () => {
    const key = $("apikey").value.trim();
    if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
    loadLists();
  });
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $("stop").addEventListener("click", () => state.abort?.abort());
  $("new-chat").addEventListener("click", () => {
    state.abort?.abort();
    state.chat.messages = [];
    state.selected = -1;
    save();
    renderMessages();
    renderInspector();
    $("input").focus();
  });
  $("target").addEventListener("change", () => { remember(); showTargetSettings(); });
  $("strategy").addEventListener("change", () => { remember(); renderStrategyOptions(); });
  for (const id of ["system", "max-tokens"]) $(id).addEventListener("change", remember);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") hideTip(); });
  renderMessages();
  renderInspector();
  await loadLists();
}

async function loadLists() {
  try {
    const [models, agents, strategies] = await Promise.all(["/v1/models", "/v1/agents", "/v1/strategies"].map(async (p) => (await (await api(p)).json()).data));
    state.strategies = strategies;
    const target = $("target");
    target.replaceChildren();
    const modelGroup = el("optgroup");
    modelGroup.label = "Models";
    for (const m of models) modelGroup.append(option("model:" + m.id, m.id));
    target.append(modelGroup);
    if (agents.length) {
      const agentGroup = el("optgroup");
      agentGroup.label = "Agents";
      for (const a of agents) agentGroup.append(option("agent:" + a.id, a.id + " (agent)"));
      target.append(agentGroup);
    }
    const strategy = $("strategy");
    strategy.replaceChildren(...strategies.map((s) => option(s.id, s.id)));
    const settings = state.chat.settings;
    if (settings.target && [...target.options].some((o) => o.value === settings.target)) target.value = settings.target;
    if (settings.strategy && strategies.some((s) => s.id === settings.strategy)) strategy.value = settings.strategy;
    if (settings.system !== undefined) $("system").value = settings.system;
    if (settings.maxTokens) $("max-tokens").value = settings.maxTokens;
    renderStrategyOptions();
    showTargetSettings();
    status("");
  } catch (e) {
    status(e.message);
  }
}

function option(value, text) {
  const o = el("option", null, text);
  o.value = value;
  return o;
}

function currentStrategy() { return state.strategies.find((s) => s.id === $("strategy").value); }

function renderStrategyOptions() {
  const s = currentStrategy();
  const box = $("strategy-options");
  box.replaceChildren();
  $("strategy-help").textContent = s ? s.summary : "";
  if (!s) return;
  const fields = [];
  if (s.sampling !== "never") fields.push(["temperature", "Temperature (0 to 2)"], ["top_p", "Top-p"], ["top_k", "Top-k"], ["min_p", "Min-p"], ["seed", "Seed"]);
  for (const o of s.options) fields.push([o.key, o.help]);
  const values = state.chat.settings.options?.[s.id] || {};
  for (const [key, help] of fields) {
    const id = "opt-" + key;
    const label = el("label", null, key);
    label.htmlFor = id;
    const input = el("input");
    input.id = id;
    input.dataset.key = key;
    input.placeholder = "default";
    input.title = help;
    input.value = values[key] ?? "";
    input.addEventListener("change", remember);
    box.append(label, input, el("p", "help", help));
  }
}

function showTargetSettings() { $("model-settings").hidden = $("target").value.startsWith("agent:"); }

function remember() {
  const settings = state.chat.settings;
  settings.target = $("target").value;
  settings.strategy = $("strategy").value;
  settings.system = $("system").value;
  settings.maxTokens = $("max-tokens").value;
  const options = {};
  for (const input of $("strategy-options").querySelectorAll("input")) if (input.value.trim()) options[input.dataset.key] = input.value.trim();
  (settings.options ??= {})[settings.strategy] = options;
  save();
}

function strategyFields() {
  const fields = {};
  for (const input of $("strategy-options").querySelectorAll("input")) {
    const value = input.value.trim();
    if (!value) continue;
    const number = Number(value);
    fields[input.dataset.key] = value !== "" && !Number.isNaN(number) ? number : value;
  }
  return fields;
}

function status(text) { $("status").textContent = text; }

// ---- Chat
function history() {
  return state.chat.messages.filter((m) => !m.error && (m.role === "user" || m.content)).map((m) => ({ role: m.role, content: m.content }));
}

async function send() {
  const text = $("input").value;
  if (!text.trim() || state.abort) return;
  remember();
  $("input").value = "";
  state.chat.messages.push({ role: "user", content: text });
  const target = $("target").value;
  const reply = { role: "assistant", content: "", target, tokens: [], events: [], steps: [] };
  state.chat.messages.push(reply);
  state.selected = state.chat.messages.length - 1;
  save();
  renderMessages();
  renderInspector();
  state.abort = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  status("Generating…");
  const started = performance.now();
  try {
    if (target.startsWith("agent:")) await runAgent(reply, target.slice(6));
    else await streamChat(reply, target.slice(6));
    status("Done in " + ((performance.now() - started) / 1000).toFixed(1) + " s.");
  } catch (e) {
    if (e.name === "AbortError") { reply.stopped = true; status("Stopped."); }
    else { reply.error = e.message; status(e.message); }
  } finally {
    state.abort = null;
    $("send").disabled = false;
    $("stop").disabled = true;
    save();
    updateMessage(state.chat.messages.length - 1);
    renderInspector();
  }
}

async function streamChat(reply, model) {
  const strategy = currentStrategy();
  reply.strategy = strategy?.id;
  const messages = history();
  const system = $("system").value.trim();
  if (system) messages.unshift({ role: "system", content: system });
  const body = {
    model, messages, stream: true, stream_options: { include_usage: true },
    max_tokens: Number($("max-tokens").value) || 64, decoding_strategy: strategy?.id, decoding_trace: true,
    ...strategyFields(),
  };
  if (strategy?.logprobs) { body.logprobs = true; body.top_logprobs = 5; }
  const response = await api("/v1/chat/completions", body, state.abort.signal);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const index = state.chat.messages.length - 1;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") continue;
        apply(reply, JSON.parse(data));
      }
    }
    updateMessage(index);
    if (state.selected === index) renderInspector();
  }
}

function apply(reply, chunk) {
  if (chunk.error) throw new Error(chunk.error.message);
  const choice = chunk.choices?.[0];
  if (choice?.delta?.content) reply.content += choice.delta.content;
  for (const call of choice?.delta?.tool_calls || []) reply.steps.push({ depth: 0, kind: "call", function: call.function.name, text: call.function.arguments });
  for (const t of choice?.logprobs?.content || []) reply.tokens.push({ t: t.token, lp: t.logprob, h: t.entropy, top: t.top_logprobs.map((a) => [a.token, a.logprob]) });
  if (chunk.decoding_trace) reply.events.push(...chunk.decoding_trace);
  if (choice?.finish_reason) reply.finish = choice.finish_reason;
  if (chunk.usage) reply.usage = chunk.usage;
  if (chunk.decoding) reply.decoding = chunk.decoding;
}

async function runAgent(reply, agent) {
  const response = await api("/v1/agents/run", { agent, messages: history() }, state.abort.signal);
  const result = await response.json();
  reply.steps = result.trace;
  reply.content = result.answer;
}

function renderMessages() {
  const list = $("messages");
  list.replaceChildren();
  state.chat.messages.forEach((_, i) => list.append(el("li")));
  state.chat.messages.forEach((_, i) => updateMessage(i));
}

function updateMessage(i) {
  const m = state.chat.messages[i];
  const item = $("messages").children[i];
  if (!m || !item) return;
  item.className = "msg " + m.role + (m.error ? " error" : "");
  item.replaceChildren();
  item.append(el("span", "who", m.role === "user" ? "You" : (m.target || "").replace(/^\w+:/, "") + (m.strategy ? " · " + m.strategy : "")));
  if (m.steps?.length) {
    const steps = el("ol", "steps");
    for (const s of m.steps) {
      const step = el("li", "step " + s.kind + (s.failed ? " failed" : ""));
      step.style.marginLeft = (s.depth || 0) * 1.2 + "rem";
      step.append(el("span", "kind", (s.kind === "call" ? "→ " : "← ") + (s.agent ? s.agent + ": " : "") + s.function), document.createTextNode(" " + s.text));
      steps.append(step);
    }
    item.append(steps);
  }
  const content = el("div", "content");
  if (m.role === "user") content.textContent = m.content;
  else renderMarkdown(content, m.content);
  item.append(content);
  if (m.error) item.append(el("p", "help", "Error: " + m.error));
  if (m.stopped) item.append(el("p", "help", "Stopped."));
  if (m.role === "assistant") {
    item.tabIndex = 0;
    item.setAttribute("aria-current", String(i === state.selected));
    item.setAttribute("aria-label", "Reply " + i + "; Enter inspects it");
    const pick = () => { state.selected = i; renderMessages(); renderInspector(); };
    item.addEventListener("click", pick);
    item.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
  }
}

// ---- Inspector
function entropyColour(h) {
  // 0 nats: transparent; 3+ nats: strong warm colour.
  const a = Math.min(1, (h ?? 0) / 3);
  return `rgb(230 120 40 / ${(a * 0.55).toFixed(2)})`;
}

function renderInspector() {
  hideTip();
  const m = state.chat.messages[state.selected];
  const summary = $("summary"), tokens = $("tokens"), events = $("events");
  summary.replaceChildren();
  tokens.replaceChildren();
  events.replaceChildren();
  if (!m || m.role !== "assistant") return;
  if (m.target?.startsWith("agent:")) summary.append(el("dt", null, "agent"), el("dd", null, "its calls and results are the steps in the reply"));
  const stats = m.decoding?.stats || {};
  const row = (k, v) => { if (v !== undefined && v !== null && v !== "") summary.append(el("dt", null, k), el("dd", null, String(v))); };
  row("strategy", m.decoding?.strategy || m.strategy);
  row("tokens", m.usage?.completion_tokens);
  if (stats.tokens_per_second !== undefined) row("tokens/s", stats.tokens_per_second.toFixed(1));
  if (stats.forwards) row("MAT", (stats.tree_emitted_tokens / stats.forwards).toFixed(2));
  if (stats.drafted_tokens !== undefined) row("drafts accepted", stats.accepted_drafts + " of " + stats.drafted_tokens);
  if (stats.branching_steps !== undefined) row("branching steps", stats.branching_steps);
  row("decode calls", stats.decode_calls);
  if (m.usage) row("cache hits", (m.usage.prompt_tokens_details?.cached_tokens ?? 0) + " of " + m.usage.prompt_tokens + " prompt tokens");
  row("finish", m.finish);

  const grammarFrom = m.events.find((e) => e.type === "grammar")?.position ?? Infinity;
  const tools = new Set(m.events.filter((e) => e.type === "tool_token").map((e) => e.position));
  if (m.tokens.length) {
    m.tokens.forEach((tok, i) => {
      const span = token(tok.t, i);
      span.style.backgroundColor = entropyColour(tok.h);
      if (i >= grammarFrom) span.classList.add("gram");
      if (tools.has(i)) span.classList.add("tool");
      span.dataset.info = JSON.stringify({ lp: tok.lp, h: tok.h, top: tok.top, t: tok.t });
      tokens.append(span);
    });
  } else {
    // Speculative strategies: the tokens come from their steps, accepted drafts marked; the text before the first
    // step is what the prefill chose.
    const drafts = m.events.filter((e) => e.type === "draft");
    const stepped = drafts.map((e) => e.emitted.join("")).join("");
    if (drafts.length && m.content.endsWith(stepped) && m.content.length > stepped.length) {
      const first = token(m.content.slice(0, m.content.length - stepped.length), 0);
      first.classList.add("bonus");
      first.dataset.info = JSON.stringify({ t: first.textContent, prefill: true });
      tokens.append(first);
    }
    for (const e of drafts) {
      e.emitted.forEach((t, k) => {
        const span = token(t, e.position + k);
        span.classList.add(k < e.accepted.length ? "acc" : "bonus");
        span.dataset.info = JSON.stringify({ t, accepted: k < e.accepted.length, rejected: k === 0 ? e.rejected : [] });
        tokens.append(span);
      });
    }
  }

  const plain = m.events.filter((e) => e.type === "draft" && !e.accepted.length && !e.rejected.length).length;
  if (plain) events.append(el("li", "plain-steps", plain + " steps without a draft (one token each)"));
  for (const e of m.events) {
    if (e.type === "draft" && !e.accepted.length && !e.rejected.length) continue;
    const item = el("li");
    if (e.type === "draft") {
      item.append(document.createTextNode(`@${e.position} draft: ${e.accepted.length} accepted`));
      if (e.accepted.length) item.append(document.createTextNode(" "), el("span", "trial chosen", e.accepted.join("")));
      if (e.rejected.length) item.append(document.createTextNode(", rejected "), el("span", "trial rejected", e.rejected.join("·")));
    } else if (e.type === "branch") {
      item.append(document.createTextNode(`@${e.position} branch: entropy ${e.entropy.toFixed(2)}, ${e.trials.length} trials, chose #${e.winner + 1} (kept ${e.kept})`));
      const trials = el("ol");
      e.trials.forEach((t, k) => trials.append(el("li", "trial" + (k === e.winner ? " chosen" : ""), t.tokens.join("") + "  (ppl " + t.perplexity.toFixed(2) + ")")));
      item.append(trials);
    } else if (e.type === "tool_token") {
      item.append(document.createTextNode(`@${e.position} tool token fired: ${e.tool}(${e.arguments}) → ${e.error ? "backed off: " + e.error : e.result}`));
    } else if (e.type === "grammar") {
      item.append(document.createTextNode(`@${e.position} grammar constrains the rest (underlined)`));
    }
    events.append(item);
  }
}

function token(text, index) {
  const span = el("span", "tok", text);
  span.tabIndex = 0;
  span.dataset.index = index;
  span.setAttribute("aria-describedby", "tip");
  span.addEventListener("mouseenter", () => showTip(span));
  span.addEventListener("focus", () => showTip(span));
  span.addEventListener("mouseleave", hideTip);
  span.addEventListener("blur", hideTip);
  return span;
}

function showTip(span) {
  const info = JSON.parse(span.dataset.info);
  const tip = $("tip");
  tip.replaceChildren();
  tip.append(el("div", null, "token " + span.dataset.index + ": " + JSON.stringify(info.t)));
  if (info.lp !== undefined) {
    tip.append(el("div", null, `p ${(Math.exp(info.lp) * 100).toFixed(1)}% · logprob ${info.lp.toFixed(3)} · entropy ${(info.h ?? 0).toFixed(2)} nats`));
    const table = el("table");
    for (const [t, lp] of info.top) {
      const tr = el("tr", t === info.t ? "chosen alt" : "alt");
      tr.append(el("td", null, JSON.stringify(t)), el("td", null, (Math.exp(lp) * 100).toFixed(1) + "%"));
      table.append(tr);
    }
    tip.append(table);
  }
  if (info.prefill) tip.append(el("div", null, "chosen from the prompt's logits (before the first step)"));
  if (info.accepted !== undefined) tip.append(el("div", null, info.accepted ? "accepted draft token" : "verifier's own token (not drafted or draft rejected)"));
  if (info.rejected?.length) tip.append(el("div", "rejected", "rejected drafts: " + info.rejected.map((t) => JSON.stringify(t)).join(" ")));
  const box = span.getBoundingClientRect();
  tip.hidden = false;
  tip.style.left = Math.max(4, Math.min(window.scrollX + box.left, window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 4)) + "px";
  tip.style.top = window.scrollY + box.bottom + 4 + "px";
}

function hideTip() { $("tip").hidden = true; }

init();
