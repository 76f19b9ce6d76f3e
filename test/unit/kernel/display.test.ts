// The display API's bundles (pure): tables as our type + HTML + aligned text, rich forms, images, progress
// throttling, and nothing sent when no kernel is listening.
import { test } from "node:test";
import assert from "node:assert/strict";
import { progressText } from "../../../client/notebook/outputs";
import { display, Mime, setSink, tableBundle, toBundle, type DisplaySink } from "../../../kernel/display";
import type { MimeBundle } from "../../../kernel/protocol";

function recorder() {
  const shown: { bundle: MimeBundle; id?: string }[] = [];
  const updates: { id: string; bundle: MimeBundle }[] = [];
  const progress: string[] = [];
  const ids: string[] = [];
  const sink: DisplaySink = {
    display: (bundle, id) => shown.push({ bundle, id }),
    update: (id, bundle) => updates.push({ id, bundle }),
    progress: (p) => {
      ids.push(p.progressId);
      progress.push(`${p.label} ${p.done}/${p.total}${p.unit ? ` ${p.unit}` : ""}${p.etaSeconds !== undefined ? " eta" : ""}${p.finished ? " done" : ""}`);
    },
    model: () => undefined,
    histograms: () => undefined,
    quant: () => undefined,
  };
  setSink(sink);
  return { shown, updates, progress, ids };
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

test("phases: one progress output per phase with its unit and ETA, finished when the next begins and by finish()", () => {
  const r = recorder();
  const p = display.phases();
  p.onProgress(1, 4);
  p.onProgress(4, 4);
  const phase = { phase: "measuring protected layers", unit: "nodes" };
  p.onProgress(0, 2, phase);
  p.onProgress(1, 2, { ...phase, etaSeconds: 3 });
  p.onProgress(2, 2, { ...phase, etaSeconds: 0 });
  p.finish();
  p.finish();
  assert.deepEqual(r.progress, [
    "calibrating 1/4 batches",
    "calibrating 4/4 batches",
    "calibrating 4/4 batches done",
    "measuring protected layers 0/2 nodes",
    // 1/2 came within 50 ms of the last update: throttled; the phase's last step is always sent.
    "measuring protected layers 2/2 nodes eta",
    "measuring protected layers 2/2 nodes eta done",
  ]);
  assert.equal(new Set(r.ids.slice(0, 3)).size, 1, "the batches: one output, updated in place");
  assert.equal(new Set(r.ids.slice(3)).size, 1, "the phase: one output");
  assert.notEqual(r.ids[0], r.ids[3], "a new phase, a new output");
  setSink(undefined);
});

test("a progress output's text: bar, counts and unit, the ETA while it runs, none once finished", () => {
  const label = "protection: measuring each layer alone";
  assert.equal(progressText({ label, done: 3, total: 12, unit: "layers", etaSeconds: 75, finished: false }), `${label} [████████░░░░░░░░░░░░░░░░░░░░░░] 3/12 layers, ETA 1 min 15 s`);
  assert.equal(progressText({ label, done: 12, total: 12, unit: "layers", etaSeconds: 0, finished: true }), `${label} [██████████████████████████████] 12/12 layers done`);
  assert.equal(progressText({ label: "GPTQ calibration", done: 7, unit: "batches", finished: false }), "GPTQ calibration: 7 batches …");
  assert.equal(progressText({ label, done: 12, total: 12, unit: "layers", etaSeconds: 0, finished: false }), `${label} [${"█".repeat(30)}] 12/12 layers`, "no ETA once nothing is left");
  assert.equal(progressText({ label: "steps", done: 2, total: 3, finished: false }), "steps [████████████████████░░░░░░░░░░] 2/3");
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
