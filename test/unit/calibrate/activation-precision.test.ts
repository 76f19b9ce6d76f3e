// The switch model and the choice of activations to widen, on a tiny chain built in code and run in
// onnxruntime-node: a switch that is off leaves the float model's output exactly; one that is on fake-quantizes that
// tensor as QuantizeLinear/DequantizeLinear would; the chooser finds the one tensor whose range ruins the output and
// widens nothing when no tensor stands out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildSwitchModel, chooseWideActivations, comparedOutputs } from "../../../engine/calibrate/activation-precision";
import { quantGrid, type Range } from "../../../engine/calibrate/thresholds";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeGraph, makeModel, makeNode, makeValueInfo, valueInfoTensor } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { createSession } from "../../../engine/runtime/session";

const LENGTH = 20;

/** x [n,8] → Neg → t0 → Neg → t1 … → t19 → Neg → y. */
function chain(): Model {
  const nodes = [];
  for (let i = 0; i <= LENGTH; i++) nodes.push(makeNode("Neg", [i === 0 ? "x" : `t${i - 1}`], [i === LENGTH ? "y" : `t${i}`], { name: `neg${i}` }));
  const graph = makeGraph("chain", nodes, [makeValueInfo("x", DataType.FLOAT, ["n", 8])], [makeValueInfo("y", DataType.FLOAT, ["n", 8])]);
  return Model.fromProto(makeModel(graph, { opsets: { "": 13 } }));
}

const x = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i * 1.7) * 0.9);
const rows = { x: { data: x, dims: [4, 8] } };
const ranges = (wide?: string) => new Map<string, Range>(Array.from({ length: LENGTH }, (_, i) => [`t${i}`, `t${i}` === wide ? { min: -500, max: 500 } : { min: -1, max: 1 }]));

test("switches off: the float output exactly; one on: that tensor fake-quantized on its grid", async () => {
  const sw = buildSwitchModel(chain(), ranges(), { bits: 8, symmetric: false });
  assert.equal(sw.tensors.length, LENGTH);
  const s = await createSession(sw.model);
  try {
    const run = async (on: Float32Array) => (await s.run({ ...rows, [sw.switches]: { data: on, dims: [LENGTH] } })).y!.data as Float32Array;
    assert.deepEqual([...(await run(new Float32Array(LENGTH)))], [...x].map((v) => -v));
    const on = new Float32Array(LENGTH);
    on[sw.tensors.indexOf("t4")] = 1;
    const g = quantGrid(-1, 1, 8, false)!;
    // t4 = -x (five Negs), then sixteen more Negs: y = fq(t4) = fq(-x).
    const fq = (v: number) => (Math.max(g.qmin, Math.min(g.qmax, Math.round(v / g.scale) + g.zp)) - g.zp) * g.scale;
    const got = await run(on);
    [...x].forEach((v, i) => assert.ok(Math.abs(got[i]! - fq(-v)) < 1e-6, `element ${i}: ${got[i]} vs ${fq(-v)}`));
    assert.ok([...got].some((v, i) => v !== -x[i]!), "the switched tensor is quantized");
  } finally {
    await s.dispose();
  }
});

test("the one activation whose range ruins the output is the one widened", async () => {
  const steps: [number, number][] = [];
  const w = await chooseWideActivations(chain(), ranges("t7"), [rows], { bits: 8, symmetric: false, onStep: (done, total) => steps.push([done, total]) });
  assert.deepEqual(w.tensors, ["t7"]);
  // Progress: a step per measurement, its bound 2 until the first two runs say to measure further, then 2 + 2 per group.
  assert.deepEqual(steps.slice(0, 3), [[0, 2], [1, 2], [2, 2]]);
  assert.equal(steps.length, w.runs + 1);
  assert.ok(steps.slice(3).every(([done, total]) => done <= total && total === steps.at(-1)![1]), JSON.stringify(steps));
  assert.ok(w.after * 100 < w.before, w.why);
  assert.ok(w.runs < 2 * LENGTH, `group testing, not a run per tensor and more: ${w.runs}`);
});

test("no activation stands out: nothing is widened, and the summary says why", async () => {
  const w = await chooseWideActivations(chain(), ranges(), [rows], { bits: 8, symmetric: false });
  assert.deepEqual(w.tensors, []);
  assert.match(w.why, /not worth 16 bits/);
});

test("a final Softmax is compared on its logits as the Softmax reads them: the logits' own 8-bit rounding counts", async () => {
  // chain() with y read by a Softmax whose output p is the model's output; y's range ruins its 8 bits.
  const proto = chain().proto;
  proto.graph!.node.push(makeNode("Softmax", ["y"], ["p"], { name: "softmax" }));
  proto.graph!.output = [makeValueInfo("p", DataType.FLOAT, ["n", 8])];
  const model = Model.fromProto(proto);
  const judged = comparedOutputs(model);
  assert.deepEqual(judged.compared.map((v) => v.name), ["y"]);
  assert.equal(judged.logits, 1);
  const wideY = new Map([...ranges(), ["y", { min: -500, max: 500 }]]);
  const w = await chooseWideActivations(model, wideY, [rows], { bits: 8, symmetric: false, judged });
  assert.deepEqual(w.tensors, ["y"], w.why);
  assert.match(w.why, /^1 of 21 activations at 16 bits: output SQNR \(the Softmax output on its logits\) with every activation at 8 bits/);
});

test("comparedOutputs: a classifier's Softmax output on its logits, a sequence's ([batch, time, classes]) as it is, only the judged ones", async () => {
  // x [n, 8] → MatMul → c [n, 8] → Softmax → pc; x3 [n, 4, 8] → MatMul → s [n, 4, 8] → Softmax → ps; x → Neg → z.
  const w = makeTensor("W", DataType.FLOAT, [8, 8], Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)));
  const graph = makeGraph(
    "heads",
    [
      makeNode("MatMul", ["x", "W"], ["c"], { name: "cls" }),
      makeNode("Softmax", ["c"], ["pc"], { name: "softmax_c" }),
      makeNode("MatMul", ["x3", "W"], ["s"], { name: "seq" }),
      makeNode("Softmax", ["s"], ["ps"], { name: "softmax_s" }),
      makeNode("Neg", ["x"], ["z"], { name: "neg" }),
    ],
    [makeValueInfo("x", DataType.FLOAT, ["n", 8]), makeValueInfo("x3", DataType.FLOAT, ["n", 4, 8])],
    [makeValueInfo("pc", DataType.FLOAT, ["n", 8]), makeValueInfo("ps", DataType.FLOAT, ["n", 4, 8]), makeValueInfo("z", DataType.FLOAT, ["n", 8])],
    { initializers: [w] },
  );
  const model = Model.fromProto(makeModel(graph, { opsets: { "": 13 } }));
  const every = comparedOutputs(model);
  assert.deepEqual(every.compared.map((v) => v.name), ["c", "ps", "z"]);
  assert.equal(every.logits, 1);
  assert.equal(valueInfoTensor(every.compared[0]!)?.elemType, DataType.FLOAT, "declared with its inferred type");
  const judged = comparedOutputs(model, ["z", "ps"]);
  assert.deepEqual(judged.compared.map((v) => v.name), ["ps", "z"], "in output order");
  assert.equal(judged.logits, 0);
  assert.equal(every.unmasked, 0);
});

test("comparedOutputs: an output a comparison masks (a detector's peak mask) on the values behind the mask", () => {
  // x [1, 1, 8, 8] → Sigmoid → s; scores = s · Cast(Equal(s, MaxPool(s))): s kept at its local maxima.
  const graph = makeGraph(
    "peaks",
    [
      makeNode("Sigmoid", ["x"], ["s"], { name: "sigmoid" }),
      makeNode("MaxPool", ["s"], ["m"], { name: "pool", attributes: [attr.ints("kernel_shape", [3, 3]), attr.ints("pads", [1, 1, 1, 1])] }),
      makeNode("Equal", ["s", "m"], ["eq"], { name: "equal" }),
      makeNode("Cast", ["eq"], ["keep"], { name: "cast", attributes: [attr.int("to", DataType.FLOAT)] }),
      makeNode("Mul", ["s", "keep"], ["scores"], { name: "mask" }),
    ],
    [makeValueInfo("x", DataType.FLOAT, [1, 1, 8, 8])],
    [makeValueInfo("scores", DataType.FLOAT, [1, 1, 8, 8])],
  );
  const judged = comparedOutputs(Model.fromProto(makeModel(graph, { opsets: { "": 13 } })));
  assert.deepEqual(judged.compared.map((v) => v.name), ["s"]);
  assert.deepEqual([judged.logits, judged.unmasked], [0, 1]);
});
