// calibration.yardstick "ctc": method auto's choice among whole assignments by the CTC loss of what the float model
// reads (argmax per step, repeats collapsed, blank 0 removed) under each candidate's outputs; "sqnr" stays the default.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ctcAgreement, ctcCollapse, ctcNll } from "../../../engine/calibrate/activation-precision";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { calibrate, convert, prepare, release, type QConfig } from "../../../engine/quant/index";
import { resolveConfig } from "../../../engine/quant/types";
import type { OutputTensor } from "../../../engine/runtime/tensors";
import { makeModel, randomFloats, valueInfo } from "./build";

/** Scores [1, steps, classes] whose argmax per step is `path`. */
function scores(path: number[], classes = 3): Record<string, OutputTensor> {
  const data = new Float32Array(path.length * classes);
  path.forEach((c, s) => (data[s * classes + c] = 1));
  return { y: { type: "float32", dims: [1, path.length, classes], data } as OutputTensor };
}

test("ctcCollapse collapses repeats, then removes the blank", () => {
  assert.deepEqual(ctcCollapse([1, 1, 0, 1, 2, 2, 0], 0), [1, 1, 2]);
  assert.deepEqual(ctcCollapse([0, 0, 0], 0), []);
});

test("ctcAgreement counts rows decoded alike, not steps alike", () => {
  const ref = [scores([1, 1, 0, 2]), scores([2, 0, 0, 1])];
  // Row 1: another path to the same text ([1, 2]); row 2: one step differs and the text becomes [2, 2, 1].
  const got = [scores([1, 0, 2, 2]), scores([2, 0, 2, 1])];
  const a = ctcAgreement(ref, got);
  assert.deepEqual([a.same, a.rows], [1, 2]);
  // Row 1 emits [1, 2] with certainty (loss 0); row 2 emits [2, 1] only through a step of probability 0 (taken as
  // 1e-12; a few alignments have one such step).
  assert.ok(Math.abs(ctcAgreement([ref[0]!], [got[0]!]).nll) < 1e-9);
  const row2 = 2 * a.nll;
  assert.ok(row2 > -Math.log(1e-12) - Math.log(8) && row2 < -Math.log(1e-12), String(row2));
  // Outputs that are not [batch, time, classes] are not counted.
  const flat = { y: { type: "float32", dims: [1, 3], data: new Float32Array(3) } as OutputTensor };
  assert.deepEqual(ctcAgreement([flat], [flat]), { same: 0, rows: 0, nll: 0 });
});

test("ctcNll sums every alignment: the forward recursion against enumerating paths by hand", () => {
  // Two steps, classes {blank 0, a 1, b 2}; the same distribution at each step.
  const p = [0.5, 0.3, 0.2];
  const steps = [Float64Array.from(p, Math.log), Float64Array.from(p, Math.log)];
  // "a": paths a-, -a, aa.
  const a = p[1]! * p[0]! + p[0]! * p[1]! + p[1]! * p[1]!;
  assert.ok(Math.abs(ctcNll(steps, [1], 0) - -Math.log(a)) < 1e-12);
  // "ab": only a b. "aa": impossible in two steps (a blank must separate the repeat).
  assert.ok(Math.abs(ctcNll(steps, [1, 2], 0) - -Math.log(p[1]! * p[2]!)) < 1e-12);
  assert.equal(ctcNll(steps, [1, 1], 0), Infinity);
  // "": only blanks.
  assert.ok(Math.abs(ctcNll(steps, [], 0) - -Math.log(p[0]! * p[0]!)) < 1e-12);
});

test("ctcAgreement reads logits as their log-softmax, probabilities as they are", () => {
  const logits = new Float32Array([2, 0, -1, 0, 3, 1]);
  const probs = new Float32Array(6);
  for (const o of [0, 3]) {
    const z = Math.exp(logits[o]!) + Math.exp(logits[o + 1]!) + Math.exp(logits[o + 2]!);
    for (let k = 0; k < 3; k++) probs[o + k] = Math.exp(logits[o + k]!) / z;
  }
  const t = (data: Float32Array) => ({ y: { type: "float32", dims: [1, 2, 3], data } as OutputTensor });
  const ref = [scores([0, 1])];
  assert.ok(Math.abs(ctcAgreement(ref, [t(logits)]).nll - ctcAgreement(ref, [t(probs)]).nll) < 1e-5);
});

test("calibration.yardstick accepts sqnr (the default) and ctc only", () => {
  assert.equal(resolveConfig({}).calibration.yardstick, "sqnr");
  assert.throws(() => resolveConfig({ calibration: { yardstick: "bleu" as "ctc" } }), /calibration\.yardstick: "bleu" is not "sqnr" or "ctc"/);
  // ctc is how auto chooses: it makes auto the default method, and refuses another one.
  assert.equal(resolveConfig({ calibration: { yardstick: "ctc" } }).calibration.method, "auto");
  assert.throws(() => resolveConfig({ calibration: { yardstick: "ctc", method: "mse" } }), /yardstick "ctc" is how method "auto" chooses, but the method is "mse"/);
});

/** x [n, 8, 6] → MatMul → Relu → MatMul → Softmax → y [n, 8, 5]: a CTC head's shape. */
function ctcHead(): Model {
  const w1 = makeTensor("w1", DataType.FLOAT, [6, 12], randomFloats(72, 1));
  const w2 = makeTensor("w2", DataType.FLOAT, [12, 5], randomFloats(60, 2, -2, 2));
  const proto = makeModel(
    [
      makeNode("MatMul", ["x", "w1"], ["h"], { name: "mm1" }),
      makeNode("Relu", ["h"], ["r"], { name: "relu" }),
      makeNode("MatMul", ["r", "w2"], ["logits"], { name: "mm2" }),
      makeNode("Softmax", ["logits"], ["y"], { name: "softmax", attributes: [attr.int("axis", -1)] }),
    ],
    [valueInfo("x", DataType.FLOAT, ["n", 8, 6])],
    [valueInfo("y", DataType.FLOAT, ["n", 8, 5])],
    [w1, w2],
  );
  return Model.fromProto(proto);
}

async function choose(config: QConfig) {
  const prepared = await prepare(ctcHead(), { ...config, calibration: { method: "auto", ...config.calibration } });
  const rows = Array.from({ length: 24 }, (_, i) => ({ x: { type: "float32" as const, dims: [1, 8, 6], data: randomFloats(48, 100 + i, -3, 3) } }));
  try {
    await calibrate(prepared, rows);
  } finally {
    await release(prepared);
  }
  return (await convert(prepared)).summary;
}

test("yardstick ctc: auto's choice at the outputs by the CTC loss of the float model's reading (on up to 64 rows), the summary says so", async () => {
  const summary = await choose({ calibration: { yardstick: "ctc" } });
  const whys = Object.values(summary.calibrationChoices ?? {}).map((c) => c.why);
  assert.ok(whys.length > 0);
  // 24 calibration rows: all of them measured (under the 64 asked).
  for (const why of whys) assert.match(why, /the float model's decoded rows' CTC loss \(nats per row\) on the first 24 calibration row\(s\): mse CTC loss \d+\.\d{3}, \d+\/24 rows decoded alike, /);
  const plain = await choose({});
  for (const c of Object.values(plain.calibrationChoices ?? {})) assert.doesNotMatch(c.why, /decoded|CTC/);
  assert.ok(Object.values(plain.calibrationChoices ?? {}).every((c) => /on the first 16 calibration row\(s\)/.test(c.why)));
});
