// ws_check.mjs — the official OpenAI SDK's Responses WebSocket mode
// (ResponsesWS, which needs the `ws` package) against headroomd
// (HEADROOM_URL): two response.create on one connection, the second with a
// large function_call_output; prints what the SDK saw as one JSON object.
// Run by t/sdk_ws_test.py, which starts the daemon and the mock upstream.
import OpenAI from "openai";
import { ResponsesWS } from "openai/resources/responses/ws";

const client = new OpenAI({ baseURL: process.env.HEADROOM_URL + "/v1", apiKey: "sk-test", maxRetries: 0 });
const rows = JSON.parse(process.env.ROWS);
const out = { responses: [], errors: [], url: null };

const ws = new ResponsesWS(client);
out.url = String(ws.url);
const done = [];
let pending = null;
ws.on("event", (ev) => {
  if (ev.type === "response.completed" || ev.type === "response.failed" || ev.type === "response.incomplete") {
    const r = ev.response;
    out.responses.push({ type: ev.type, status: r.status, text: r.output?.[0]?.content?.[0]?.text ?? null, usage: r.usage });
    if (pending) pending();
  }
});
ws.on("error", (e) => { out.errors.push(String(e.message)); if (pending) pending(); });
function turn(body) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no response within 20 s")), 20000);
    pending = () => { clearTimeout(t); resolve(); };
    ws.send({ type: "response.create", ...body });
  });
}
try {
  await turn({ model: "gpt-4o", store: false, input: "Hello" });
  await turn({ model: "gpt-4o", store: false, input: [
    { role: "user", content: "Which requests failed?" },
    { type: "function_call", call_id: "call_1", name: "logs", arguments: "{}" },
    { type: "function_call_output", call_id: "call_1", output: JSON.stringify(rows) }] });
} catch (e) {
  out.errors.push(String(e.message));
}
ws.close({ code: 1000, reason: "done" });
console.log(JSON.stringify(out));
process.exit(0);
