// The summary of a sequence model (a Softmax output of [batch, time, classes]) says on how many kept calibration rows
// the quantized model decodes what the float model decodes (engine/quant/sequence-check); other models say nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import type { Feeds } from "../../../engine/data/feeds";
import { calibrate, convert, prepare, release } from "../../../engine/quant/index";
import { checkSequences, softmaxOutputs } from "../../../engine/quant/sequence-check";
import { makeModel, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;
const [STEPS, FEATURES, CLASSES] = [6, 8, 5];

/** x [N, 6, 8] → MatMul → (Reshape through [N·6, 5] and back, as an upgraded opset-11 Softmax is) → Softmax → y. */
function recogniser(weights: Float32Array, options: { rank?: 2 | 3; softmax?: boolean; declared?: boolean } = {}): Model {
  const { rank = 3, softmax = true, declared = true } = options;
  const xDims = rank === 3 ? ["N", STEPS, FEATURES] : ["N", FEATURES];
  const yDims = rank === 3 ? ["N", STEPS, CLASSES] : ["N", CLASSES];
  const nodes = [makeNode("MatMul", ["x", "W"], [softmax ? "logits" : "y"], { name: "fc" })];
  if (softmax) nodes.push(makeNode("Softmax", ["logits"], ["p"], { name: "softmax", attributes: [attr.int("axis", -1)] }), makeNode("Identity", ["p"], ["y"], { name: "out" }));
  return Model.fromProto(makeModel(nodes, [valueInfo("x", F, xDims)], [valueInfo("y", F, declared ? yDims : undefined)], [makeTensor("W", F, [FEATURES, CLASSES], weights)]));
}

function rows(n: number, seed: number, rank: 2 | 3 = 3): Feeds[] {
  const dims = rank === 3 ? [8, STEPS, FEATURES] : [8, FEATURES];
  const per = dims.reduce((a, b) => a * b, 1);
  return Array.from({ length: n / 8 }, (_, b) => ({ x: { type: "float32", dims, data: randomFloats(per, seed + b, -2, 2) } as Feeds[string] }));
}

const W = randomFloats(FEATURES * CLASSES, 11, -1, 1);

test("softmaxOutputs: outputs a Softmax makes through data movement, of rank 3 or unknown; not a classifier's or a MatMul's", () => {
  assert.deepEqual(softmaxOutputs(recogniser(W)), ["y"]);
  assert.deepEqual(softmaxOutputs(recogniser(W, { declared: false })), ["y"]);
  assert.deepEqual(softmaxOutputs(recogniser(W, { rank: 2 })), []);
  assert.deepEqual(softmaxOutputs(recogniser(W, { softmax: false })), []);
});

test("checkSequences decodes every row: the same model reads every row alike, another weight reads some differently", async () => {
  const data = rows(16, 1);
  const same = await checkSequences(recogniser(W), recogniser(W), data);
  assert.deepEqual(same, { outputs: ["y"], rows: 16, same: 16 });
  const flipped = await checkSequences(recogniser(W), recogniser(W.map((v) => -v)), data);
  assert.equal(flipped!.rows, 16);
  assert.ok(flipped!.same < 8, `${flipped!.same} of 16 rows alike with the weights negated`);
  assert.equal(await checkSequences(recogniser(W, { rank: 2 }), recogniser(W, { rank: 2 }), rows(16, 1, 2)), undefined);
  // A classifier whose output declares no shape is run in float only: no conversion is asked for.
  const unknown = recogniser(W, { rank: 2, declared: false });
  assert.deepEqual(softmaxOutputs(unknown), ["y"]);
  assert.equal(await checkSequences(unknown, () => Promise.reject(new Error("converted for nothing")), rows(16, 1, 2)), undefined);
});

test("the default static conversion of a sequence model reports its readings on the kept calibration rows, in the summary and a note", async () => {
  const prepared = await prepare(recogniser(W));
  try {
    await calibrate(prepared, rows(32, 5));
    const { summary } = await convert(prepared);
    assert.equal(summary.sequences?.rows, 16, "the 16 rows weightType auto keeps");
    assert.deepEqual(summary.sequences?.outputs, ["y"]);
    assert.ok(summary.sequences!.same >= 0 && summary.sequences!.same <= 16);
    const note = summary.warnings.find((w) => w.startsWith("sequence outputs (y): "));
    assert.ok(note?.includes(`${summary.sequences!.same} of 16 calibration rows decode as the float model's`), summary.warnings.join("\n"));
    assert.match(note!, /--wide-activations 0\.2 or --target-sqnr 22/);
    // Another configuration (the search's, or a user's change) is another conversion: the measurement is not its.
    const other = await convert({ ...prepared, config: { ...prepared.config, exclude: ["fc"] } });
    assert.equal(other.summary.sequences, undefined);
    assert.ok(!other.summary.warnings.some((w) => w.startsWith("sequence outputs")));
  } finally {
    await release(prepared);
  }
});

test("a classifier's summary has no sequence readings", async () => {
  const prepared = await prepare(recogniser(W, { rank: 2 }));
  try {
    await calibrate(prepared, rows(32, 5, 2));
    const { summary } = await convert(prepared);
    assert.equal(summary.sequences, undefined);
    assert.ok(!summary.warnings.some((w) => w.startsWith("sequence outputs")));
  } finally {
    await release(prepared);
  }
});
