// Calibration on the fixture CNN (test/fixtures/scripts/make_cnn.py) and its variants, with the real fixture
// calibration images: the same network exported at opsets 9/11/13, with weights in Constant nodes, and in float16
// must give the same logits range; the ranges of every activation must agree with the ones computed from the
// plain model's own outputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { Calibrator } from "../../../engine/calibrate/index";
import { Model } from "../../../engine/onnx/model";
import { readNpz } from "../../../engine/data/readers";
import { createSession } from "../../../engine/runtime/session";

const fixtures = path.join(__dirname, "..", "..", "fixtures");
const models = path.join(fixtures, "models");
const npz = path.join(fixtures, "data", "calib", "calib.npz");
const missing = !(existsSync(path.join(models, "cnn.onnx")) && existsSync(npz)) && "fixture models/data not generated";

async function logitsRange(file: string, method: "minmax" | "percentile") {
  const model = await Model.load(path.join(models, file));
  const cal = new Calibrator(model, ["logits"], { method, percentile: 99.9 });
  try {
    await cal.collect(readNpz(npz, model, { batchSize: 64 }));
    return cal.ranges().get("logits")!;
  } finally {
    await cal.dispose();
  }
}

test("logits range is the same for every export of the fixture CNN", { skip: missing }, async () => {
  const base = await logitsRange("cnn.onnx", "minmax");
  // The range of the logits as onnxruntime computes them on the unmodified model.
  const session = await createSession(await Model.load(path.join(models, "cnn.onnx")));
  let lo = Infinity;
  let hi = -Infinity;
  for (const feeds of readNpz(npz, [{ name: "input", elemType: 1, shape: ["batch", 1, 28, 28] }], { batchSize: 64 })) {
    const out = await session.run({ input: { data: feeds["input"]!.data as Float32Array, dims: feeds["input"]!.dims } });
    for (const v of out["logits"]!.data as Float32Array) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  }
  await session.dispose();
  assert.ok(Math.abs(base.min - lo) < 1e-4 && Math.abs(base.max - hi) < 1e-4, `${JSON.stringify(base)} vs ${lo}..${hi}`);
  for (const f of ["cnn.opset9.onnx", "cnn.opset11.onnx", "cnn.constants.onnx"]) {
    const r = await logitsRange(f, "minmax");
    assert.ok(Math.abs(r.min - base.min) < 1e-3 && Math.abs(r.max - base.max) < 1e-3, `${f}: ${JSON.stringify(r)} vs ${JSON.stringify(base)}`);
  }
  const half = await logitsRange("cnn.fp16.onnx", "minmax");
  assert.ok(Math.abs(half.max - base.max) < 0.05 * Math.abs(base.max), `fp16: ${JSON.stringify(half)} vs ${JSON.stringify(base)}`);
  const p = await logitsRange("cnn.onnx", "percentile");
  assert.ok(p.max <= base.max && p.min >= base.min && p.max > 0, `percentile ${JSON.stringify(p)} inside ${JSON.stringify(base)}`);
});

test("every activation of the CNN (initializer and Constant-node weights alike) gets a range", { skip: missing }, async () => {
  for (const f of ["cnn.onnx", "cnn.constants.onnx", "cnn.fp16.onnx"]) {
    const model = await Model.load(path.join(models, f));
    const tensors = model.graph.node.filter((n) => n.opType !== "Constant").flatMap((n) => n.output);
    const cal = new Calibrator(model, tensors, { method: "entropy", numBins: 512 });
    await cal.collect(readNpz(npz, model, { batchSize: 128 }));
    const r = cal.ranges();
    assert.equal(r.size, tensors.length, f);
    for (const [t, { min, max }] of r) assert.ok(Number.isFinite(min) && Number.isFinite(max) && min <= max, `${f} ${t}`);
    // Relu outputs are non-negative; the entropy range keeps them so.
    const relu = model.graph.node.find((n) => n.opType === "Relu")!.output[0]!;
    assert.equal(r.get(relu)!.min, 0, `${f} ${relu}`);
    await cal.dispose();
  }
});
