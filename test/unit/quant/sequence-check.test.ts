// The summary of a sequence model (a Softmax output of [batch, time, classes]) says on how many kept calibration rows
// the quantized model decodes what the float model decodes (engine/quant/sequence-check); other models say nothing.
// A sequence model gets 16-bit activations by default (calibration.wideActivations unset), a classifier does not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import type { Feeds } from "../../../engine/data/feeds";
import { calibrate, convert, prepare, release } from "../../../engine/quant/index";
import { checkSequences, softmaxOutputs } from "../../../engine/quant/sequence-check";
import { outputsOn } from "../../../engine/calibrate/activation-precision";
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

test("checkSequences reads the float outputs the caller gives instead of running the float model again, where they hold every softmax output", async () => {
  const data = rows(16, 1);
  const negated = recogniser(W.map((v) => -v));
  // Given the negated model's own outputs as the float ones, every row reads alike: they were used, not recomputed.
  const theirs = await outputsOn(negated, data);
  assert.deepEqual(await checkSequences(recogniser(W), negated, data, undefined, theirs), { outputs: ["y"], rows: 16, same: 16 });
  // Outputs without the softmax output (a judged subset), or for other rows, are not enough: the float model runs.
  const plain = await checkSequences(recogniser(W), negated, data);
  assert.ok(plain!.same < 8);
  assert.deepEqual(await checkSequences(recogniser(W), negated, data, undefined, theirs.map(() => ({}))), plain);
  assert.deepEqual(await checkSequences(recogniser(W), negated, data, undefined, theirs.slice(1)), plain);
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
    // The default widened this one-layer recogniser's only activation, its graph input (counted since the summary
    // looks for a graph input's pair by the input's name), so the note says so; the 8-bit note is checked below.
    assert.deepEqual(summary.wideActivations?.tensors, ["x"]);
    assert.match(note!, /gets 16-bit activations where they matter most by default/);
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

/**
 * x [N, 6, 8] → MatMul → h0 → four MatMul+Relu layers → MatMul → Softmax → y. h0 carries one channel far larger than
 * the others, which the next layer ignores: 8 bits over h0's range leave the channels that matter a few steps, so
 * h0 at 16 bits is worth it (the measurement's pick) while the outputs still read well above 6 dB at 8 bits.
 */
function deepRecogniser(rank: 2 | 3 = 3): Model {
  const big = 30;
  const w0 = randomFloats(FEATURES * FEATURES, 19, -0.6, 0.6);
  for (let r = 0; r < FEATURES; r++) w0[r * FEATURES] = big;
  const w1 = randomFloats(FEATURES * FEATURES, 20, -0.6, 0.6);
  w1.fill(0, 0, FEATURES); // row 0: channel 0 of h0 is read by nothing
  const nodes = [makeNode("MatMul", ["x", "W0"], ["h0"], { name: "fc0" })];
  const weights = [makeTensor("W0", F, [FEATURES, FEATURES], w0), makeTensor("W1", F, [FEATURES, FEATURES], w1)];
  let prev = "h0";
  for (let i = 1; i <= 4; i++) {
    nodes.push(makeNode("MatMul", [prev, `W${i}`], [`h${i}`], { name: `fc${i}` }), makeNode("Relu", [`h${i}`], [`r${i}`], { name: `relu${i}` }));
    if (i > 1) weights.push(makeTensor(`W${i}`, F, [FEATURES, FEATURES], randomFloats(FEATURES * FEATURES, 20 + i, -0.6, 0.6)));
    prev = `r${i}`;
  }
  nodes.push(makeNode("MatMul", [prev, "W"], ["logits"], { name: "fc" }), makeNode("Softmax", ["logits"], ["y"], { name: "softmax", attributes: [attr.int("axis", -1)] }));
  weights.push(makeTensor("W", F, [FEATURES, CLASSES], W));
  const dims = rank === 3 ? [["N", STEPS, FEATURES], ["N", STEPS, CLASSES]] : [["N", FEATURES], ["N", CLASSES]];
  return Model.fromProto(makeModel(nodes, [valueInfo("x", F, dims[0]!)], [valueInfo("y", F, dims[1]!)], weights));
}

test("a sequence model gets 16-bit activations by default, whatever its SQNR; --wide-activations 0 keeps 8 bits; a classifier is not widened", async () => {
  const run = async (model: Model, data: Feeds[], wideActivations?: number) => {
    const prepared = await prepare(model, wideActivations === undefined ? {} : { calibration: { wideActivations } });
    try {
      await calibrate(prepared, data);
      return (await convert(prepared)).summary;
    } finally {
      await release(prepared);
    }
  };
  const auto = await run(deepRecogniser(), rows(32, 5));
  assert.ok(auto.wideActivations && auto.wideActivations.tensors.length > 0, JSON.stringify(auto.wideActivations));
  assert.match(auto.wideActivations.why, /^automatic \(sequence outputs y; --wide-activations 0 to keep 8 bits and INT8's speed\): 1 of 6 activations at 16 bits: output SQNR with every activation at 8 bits ([\d.]+) dB/);
  assert.deepEqual(auto.wideActivations.tensors, ["h0"], "the tensor whose range the ignored channel sets");
  assert.ok(Number(/at 8 bits ([\d.]+) dB/.exec(auto.wideActivations.why)![1]) > 6, "above the SQNR window: widened as a sequence model only");
  const note = auto.warnings.find((w) => w.startsWith("sequence outputs (y): "));
  assert.match(note ?? "", /gets 16-bit activations where they matter most by default .*--wide-activations 0 keeps every activation at 8 bits/);
  // The same choice as asking for the share: one measurement, two ways to reach it.
  const asked = await run(deepRecogniser(), rows(32, 5), 0.2);
  assert.deepEqual(asked.wideActivations?.tensors, auto.wideActivations.tensors);
  // Asked for, the note does not tell the user to ask for what they asked.
  const askedNote = asked.warnings.find((w) => w.startsWith("sequence outputs (y): ")) ?? "";
  assert.match(askedNote, /at 16 bits as asked/);
  assert.doesNotMatch(askedNote, /--wide-activations 0\.2/);
  const eight = await run(deepRecogniser(), rows(32, 5), 0);
  assert.equal(eight.wideActivations, undefined);
  assert.match(eight.warnings.find((w) => w.startsWith("sequence outputs (y): ")) ?? "", /--wide-activations 0\.2 or --target-sqnr 22/);
  const classifier = await run(deepRecogniser(2), rows(32, 5, 2));
  assert.equal(classifier.wideActivations, undefined, "a classifier reads above the SQNR window: nothing widened");
});
