// sdk_check.mjs — drives the official OpenAI and Anthropic SDKs against
// headroomd (HEADROOM_URL) and prints what they saw as one JSON object.
// Run by t/sdk_test.py, which starts the daemon and the mock upstream.
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const base = process.env.HEADROOM_URL;
const out = {};
const openai = new OpenAI({ baseURL: base + "/v1", apiKey: "sk-test", maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: base, apiKey: "sk-ant-test", maxRetries: 0 });
const msgs = [{ role: "user", content: "Hello" }];

async function attempt(name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { thrown: e.constructor.name, status: e.status ?? null, type: e.error?.type ?? e.error?.error?.type ?? null,
                  message: String(e.message).slice(0, 300) };
  }
}

await attempt("openai_json", async () => {
  const r = await openai.chat.completions.create({ model: "gpt-4o", messages: msgs });
  return { text: r.choices[0].message.content, usage: r.usage };
});
await attempt("openai_stream", async () => {
  const s = await openai.chat.completions.create({ model: "gpt-4o", messages: msgs, stream: true,
                                                   stream_options: { include_usage: true } });
  let text = "", usage = null, chunks = 0;
  for await (const c of s) {
    chunks++;
    if (c.choices?.[0]?.delta?.content) text += c.choices[0].delta.content;
    if (c.usage) usage = c.usage;
  }
  return { text, usage, chunks };
});
await attempt("openai_responses_json", async () => {
  const r = await openai.responses.create({ model: "gpt-4o", input: [{ role: "user", content: "Hello" }] });
  return { id: r.id, object: r.object, status: r.status, text: r.output_text, usage: r.usage,
           output_types: r.output.map((o) => o.type) };
});
await attempt("openai_responses_stream", async () => {
  const s = await openai.responses.create({ model: "gpt-4o", input: "Hello", stream: true });
  const types = [];
  let text = "", usage = null, status = null, seqOk = true;
  for await (const ev of s) {
    if (ev.sequence_number !== types.length) seqOk = false;
    types.push(ev.type);
    if (ev.type === "response.output_text.delta") text += ev.delta;
    if (ev.type === "response.completed") { usage = ev.response.usage; status = ev.response.status; }
  }
  return { types, text, usage, status, seqOk };
});
await attempt("anthropic_json", async () => {
  const r = await anthropic.messages.create({ model: "claude-sonnet-4-5", max_tokens: 64, messages: msgs });
  return { text: r.content[0].text, usage: r.usage };
});
await attempt("anthropic_stream", async () => {
  const s = anthropic.messages.stream({ model: "claude-sonnet-4-5", max_tokens: 64, messages: msgs });
  let events = 0;
  s.on("streamEvent", () => events++);
  const m = await s.finalMessage();
  return { text: m.content[0].text, usage: m.usage, events };
});
await attempt("openai_429", () =>
  openai.chat.completions.create({ model: "gpt-4o", messages: msgs }, { headers: { "x-mock-status": "429" } }));
await attempt("anthropic_529", () =>
  anthropic.messages.create({ model: "claude-sonnet-4-5", max_tokens: 8, messages: msgs },
                            { headers: { "x-mock-status": "529" } }));
await attempt("anthropic_stream_error", async () => {
  const s = anthropic.messages.stream({ model: "claude-sonnet-4-5", max_tokens: 64, messages: msgs },
                                      { headers: { "x-mock-reset": "mid-body", "x-mock-chunk-delay-ms": "20" } });
  return { text: (await s.finalMessage()).content[0].text };
});
// headroomd's own refusals (max_body_size 4k in sdk_test.py) parse as API errors too.
const big = [{ role: "user", content: "x".repeat(8000) }];
await attempt("openai_413", () => openai.chat.completions.create({ model: "gpt-4o", messages: big }));
await attempt("anthropic_413", () =>
  anthropic.messages.create({ model: "claude-sonnet-4-5", max_tokens: 8, messages: big }));
console.log(JSON.stringify(out));
