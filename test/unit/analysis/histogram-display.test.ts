import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { Model } from "../../../engine/onnx";
import { calibrate, prepare, release, type CalibrationMethod } from "../../../engine/quant";
import { readNpyFolder } from "../../../engine/data/readers";
import { takeBatches } from "../../../engine/analysis/analyze";
import { histogramDisplays } from "../../../kernel/histogram-display";

const FIX = path.join(__dirname, "..", "..", "fixtures");

/** The fixture CNN calibrated with `method` on 16 batches of the fixture images. */
async function calibrated(method: CalibrationMethod) {
  const model = await Model.load(path.join(FIX, "models", "cnn.onnx"));
  const prepared = await prepare(model, { calibration: { method } });
  await calibrate(prepared, await takeBatches(readNpyFolder(path.join(FIX, "data", "calib", "npy"), model), 16));
  await release(prepared);
  return prepared;
}

test("calibration histograms for the view: bins merged, counts kept, float and clipping ranges marked", async () => {
  const prepared = await calibrated("entropy");
  const list = histogramDisplays(prepared, 128);
  assert.equal(list.length, prepared.histograms.size);
  assert.ok(list.length > 0);
  for (const h of list) {
    const src = prepared.histograms.get(h.tensor)!;
    assert.ok(h.counts.length <= 128);
    assert.equal(h.edges.length, h.counts.length + 1);
    assert.equal(h.counts.reduce((a, b) => a + b, 0), src.counts.reduce((a, b) => a + b, 0), `${h.tensor}: merging keeps every count`);
    assert.equal(h.edges[0], Number(src.edges[0]));
    assert.equal(h.edges.at(-1), Number(src.edges[src.edges.length - 1]));
    assert.deepEqual(h.floatRange, [src.min, src.max]);
    const r = prepared.ranges.get(h.tensor)!;
    assert.deepEqual(h.clipRange, [r.min, r.max]);
    assert.equal(h.method, "entropy");
  }
});

test("with calibration method auto, each histogram says which method auto chose for it", async () => {
  const prepared = await calibrated("auto");
  const list = histogramDisplays(prepared, 128);
  assert.ok(list.length > 0);
  for (const h of list) {
    const c = prepared.choices.get(h.tensor)!;
    assert.ok(c, `${h.tensor}: a choice`);
    assert.ok(h.method!.startsWith(`auto → ${c.method}`), `${h.tensor}: ${h.method}`);
    assert.match(c.why, /at the outputs \(worst-output SQNR on the first \d+ calibration row\(s\): mse [\d.]+ dB, minmax [\d.]+ dB \(per row: mean [+−][\d.]+ dB, lower bound [+−][\d.]+ dB; pooled [+−][\d.]+ dB, lower bound [+−][\d.]+ dB\)/);
    assert.ok(!h.method!.includes("worst-output"), "the view's label stays short");
  }
});
