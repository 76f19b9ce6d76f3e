// The protocol over a pair of in-process streams (as vscode-jsonrpc's own tests do): both ends typed by
// kernel/protocol.ts, notifications arriving in order before the response that settles a cell.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import { Complete, Display, Execute, Interrupt, ModelState, Shutdown, Stream } from "../../../kernel/protocol";

function pair() {
  const up = new PassThrough();
  const down = new PassThrough();
  const client = createMessageConnection(new StreamMessageReader(down), new StreamMessageWriter(up));
  const server = createMessageConnection(new StreamMessageReader(up), new StreamMessageWriter(down));
  return { client, server };
}

test("execute: stream and display notifications arrive in order before the result", async () => {
  const { client, server } = pair();
  server.onRequest(Execute.type, async (p) => {
    await server.sendNotification(Stream.type, { cellId: p.cellId, name: "stdout", text: "a\n" });
    await server.sendNotification(Display.type, { cellId: p.cellId, bundle: { "text/plain": "2" } });
    await server.sendNotification(Stream.type, { cellId: p.cellId, name: "stderr", text: "b\n" });
    return { status: "ok", durationMs: 1 };
  });
  const seen: string[] = [];
  client.onNotification(Stream.type, (p) => seen.push(`${p.cellId}:${p.name}:${p.text}`));
  client.onNotification(Display.type, (p) => seen.push(`${p.cellId}:display:${String(p.bundle["text/plain"])}`));
  server.listen();
  client.listen();
  const r = await client.sendRequest(Execute.type, { cellId: "c1", code: "1+1", executionCount: 1 });
  assert.equal(r.status, "ok");
  assert.deepEqual(seen, ["c1:stdout:a\n", "c1:display:2", "c1:stderr:b\n"]);
  client.dispose();
  server.dispose();
});

test("interrupt reaches the server while an execute is pending; shutdown and complete round-trip", async () => {
  const { client, server } = pair();
  let release!: () => void;
  server.onRequest(Execute.type, () => new Promise<Execute.Result>((resolve) => {
    release = () => resolve({ status: "interrupted", durationMs: 0 });
  }));
  server.onRequest(Interrupt.type, () => release());
  server.onRequest(Complete.type, (p) => ({ start: p.offset, end: p.offset, items: ["loadModel"] }));
  let shut = false;
  server.onRequest(Shutdown.type, () => { shut = true; });
  const models: string[] = [];
  client.onNotification(ModelState.type, (m) => models.push(m.source));
  server.listen();
  client.listen();
  const pending = client.sendRequest(Execute.type, { cellId: "c2", code: "await never", executionCount: 2 });
  const c = await client.sendRequest(Complete.type, { code: "load", offset: 4 });
  assert.deepEqual(c.items, ["loadModel"]);
  await server.sendNotification(ModelState.type, { source: "m.onnx", inputs: [], outputs: [], nodes: [] });
  await client.sendRequest(Interrupt.type);
  assert.equal((await pending).status, "interrupted");
  await client.sendRequest(Shutdown.type);
  assert.equal(shut, true);
  assert.deepEqual(models, ["m.onnx"]);
  client.dispose();
  server.dispose();
});
