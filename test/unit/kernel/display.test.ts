// The display API's bundles (pure): tables as our type + HTML + aligned text, rich forms, images, progress
// throttling, and nothing sent when no kernel is listening.
import { test } from "node:test";
import assert from "node:assert/strict";
import { display, Mime, setSink, tableBundle, toBundle, type DisplaySink } from "../../../kernel/display";
import type { MimeBundle } from "../../../kernel/protocol";

function recorder() {
  const shown: { bundle: MimeBundle; id?: string }[] = [];
  const updates: { id: string; bundle: MimeBundle }[] = [];
  const progress: string[] = [];
  const sink: DisplaySink = {
    display: (bundle, id) => shown.push({ bundle, id }),
    update: (id, bundle) => updates.push({ id, bundle }),
    progress: (_id, label, done, total, finished) => progress.push(`${label} ${done}/${total}${finished ? " done" : ""}`),
    model: () => undefined,
    histograms: () => undefined,
    quant: () => undefined,
  };
  setSink(sink);
  return { shown, updates, progress };
}

test("tables: union of keys in first-seen order, HTML escaped, aligned text", () => {
  const b = tableBundle([{ layer: "<conv1>", sqnr: 31.25 }, { layer: "fc", drop: 0.1 }], "per layer");
  assert.deepEqual(b[Mime.table], { columns: ["layer", "sqnr", "drop"], rows: [["<conv1>", 31.25, null], ["fc", null, 0.1]], title: "per layer" });
  assert.match(String(b[Mime.html]), /<caption>per layer<\/caption>.*<td>&lt;conv1&gt;<\/td><td>31.25<\/td><td><\/td>/);
  assert.equal(b[Mime.plain], "per layer\nlayer    sqnr   drop\n<conv1>  31.25\nfc              0.1");
});

test("rich forms: Symbol.for('ptq.display') first, then toMimeBundle, else inspected text", () => {
  assert.deepEqual(toBundle({ [Symbol.for("ptq.display")]: () => ({ "text/html": "<b>x</b>" }), toMimeBundle: () => ({}) }), { "text/html": "<b>x</b>" });
  assert.deepEqual(toBundle({ toMimeBundle: () => ({ "text/markdown": "*y*" }) }), { "text/markdown": "*y*" });
  assert.deepEqual(toBundle({ a: [1, 2] }), { "text/plain": "{ a: [ 1, 2 ] }" });
  assert.deepEqual(toBundle("s"), { "text/plain": "'s'" });
});

test("display methods send standard MIME types; handles update in place", () => {
  const r = recorder();
  const h = display.markdown("# hi");
  display.image(new Uint8Array([137, 80, 78, 71]));
  display.plotly({ data: [{ y: [1] }] });
  display.json({ k: 1 });
  h.update({ toMimeBundle: () => ({ "text/markdown": "# bye" }) });
  assert.deepEqual(r.shown.map((s) => Object.keys(s.bundle)[0]), ["text/markdown", "image/png", Mime.plotly, "application/json"]);
  assert.equal(r.shown[1]!.bundle["image/png"], "iVBORw==");
  assert.deepEqual(r.updates, [{ id: h.id, bundle: { "text/markdown": "# bye" } }]);
  assert.deepEqual(toBundle(h), {}, "a handle as a cell's last value shows nothing");
  setSink(undefined);
});

test("progress: first and last reports always sent, a tight loop throttled", () => {
  const r = recorder();
  const p = display.progress("calibrate", 1000);
  for (let i = 1; i <= 1000; i++) p.onProgress(i);
  p.finish();
  assert.equal(r.progress[0], "calibrate 0/1000");
  assert.ok(r.progress.includes("calibrate 1000/1000"));
  assert.equal(r.progress.at(-1), "calibrate 1000/1000 done");
  assert.ok(r.progress.length < 20, `${r.progress.length} updates for 1000 reports`);
  setSink(undefined);
  assert.doesNotThrow(() => display.text("nobody listening"));
});

test("a Model value shows as its summary (inputs, outputs, op counts), not a protobuf dump", async () => {
  const { Model } = await import("../../../engine/onnx/model");
  const path = await import("node:path");
  const m = Model.loadSync(path.join(__dirname, "..", "..", "fixtures", "models", "cnn.onnx"));
  const text = toBundle(m)[Mime.plain] as string;
  assert.match(text, /^Model: .*cnn\.onnx\nIR version \d+; opsets /);
  assert.match(text, /\nInputs:\n  input: float \[batch, 1, 28, 28\]\n/);
  assert.match(text, /\n  Conv +\d+\n/);
  assert.doesNotMatch(text, /rawData|\$typeName/);
});
