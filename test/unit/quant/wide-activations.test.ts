// calibration.wideActivations: calibrate() measures which activations' 8-bit grid costs the outputs most and
// convert() gives those 16 bits (a user's own override of a tensor wins), written as a Clip to their 16-bit range
// (calibration.wideForm "clip", the default) or as 16-bit Q/DQ ("qdq"). Unset (the default) it measures only
// whether the outputs with every activation at 8 bits read below 6 dB, and widens only then; 0 turns that off.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { openData } from "../../../engine/data/readers";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { calibrate, convert, prepare, release, type QConfig } from "../../../engine/quant/index";
import { sqnr } from "../../../engine/quant/math";
import { createSession } from "../../../engine/runtime/session";
import { makeNode } from "../../../engine/onnx/proto";
import { makeTensor, tensorToFloat32 } from "../../../engine/onnx/tensor";
import { WIDE_AUTO_BELOW_DB, emptySummary, resolveConfig } from "../../../engine/quant/types";
import { clipSixteenBitPairs } from "../../../engine/quant/wide-clip";
import { makeModel, quantizeTiny, randomFloats, valueInfo } from "./build";

const FIX = path.join(__dirname, "..", "..", "fixtures");
const CNN = path.join(FIX, "models", "cnn.onnx");
const DATA = path.join(FIX, "data", "calib", "npy");

async function quantize(config: QConfig) {
  const model = await Model.load(CNN);
  const prepared = await prepare(model, { ...config, calibration: { method: "minmax", ...config.calibration } });
  try {
    await calibrate(prepared, openData(DATA, model.proto, { batchSize: 4 }));
  } finally {
    await release(prepared);
  }
  return convert(prepared);
}

/** Activations read through a 16-bit DequantizeLinear (its output keeps the float tensor's name). */
function sixteenBit(model: Model): string[] {
  const g = model.graph;
  const wide = new Set(g.initializer.filter((t) => t.dataType === DataType.UINT16).map((t) => t.name));
  return g.node.filter((n) => n.opType === "DequantizeLinear" && wide.has(n.input[2]!)).map((n) => n.output[0]!);
}

/** Activations written as a Clip to their 16-bit range (the Clip takes over the float tensor's name). */
function clipped(model: Model): string[] {
  return model.graph.node.filter((n) => n.opType === "Clip" && n.name.endsWith("_Clip")).map((n) => n.output[0]!);
}

async function outputs(model: Model): Promise<Float32Array> {
  const x = new Float32Array(8 * 28 * 28).map((_, i) => Math.abs(Math.sin(i * 0.37)));
  const s = await createSession(model);
  try {
    return Object.values(await s.run({ input: { type: "float32" as const, dims: [8, 1, 28, 28], data: x } }))[0]!.data as Float32Array;
  } finally {
    await s.dispose();
  }
}

async function outputSqnr(model: Model): Promise<number> {
  const x = new Float32Array(8 * 28 * 28).map((_, i) => Math.abs(Math.sin(i * 0.37)));
  const feeds = { input: { type: "float32" as const, dims: [8, 1, 28, 28], data: x } };
  const run = async (m: Model) => {
    const s = await createSession(m);
    try {
      return Object.values(await s.run(feeds))[0]!.data as Float32Array;
    } finally {
      await s.dispose();
    }
  };
  return sqnr(await run(await Model.load(CNN)), await run(model));
}

test("wideActivations unset (the default) widens nothing where 8 bits read above 6 dB, and says nothing", async () => {
  const { model, summary } = await quantize({});
  assert.equal(summary.wideActivations, undefined);
  assert.deepEqual(sixteenBit(model), []);
});

test("wideActivations gives the measured activations 16 bits in the written model, at most the share asked, and the outputs come closer", async () => {
  const plain = await quantize({});
  const { model, summary } = await quantize({ calibration: { wideActivations: 0.3, wideForm: "qdq" } });
  const chosen = summary.wideActivations!.tensors;
  assert.ok(chosen.length > 0, summary.wideActivations!.why);
  assert.match(summary.wideActivations!.why, /of \d+ activations at 16 bits/);
  const total = Number(/of (\d+) activations/.exec(summary.wideActivations!.why)![1]);
  assert.ok(chosen.length <= Math.floor(0.3 * total), `${chosen.length} of ${total}`);
  // A Relu/Clip the rewrite folds into the Q after it hands its output's name to the tensor it read.
  const clampOf = new Map((await Model.load(CNN)).graph.node.filter((n) => n.opType === "Relu").map((n) => [n.input[0]!, n.output[0]!]));
  const written = new Set(sixteenBit(model));
  for (const t of chosen) assert.ok(written.has(t) || written.has(clampOf.get(t) ?? t), `${t} is quantized to uint16 (written: ${[...written].join(", ")})`);
  assert.deepEqual(clipped(model), [], "--wide-form qdq writes no Clip");
  assert.ok((await outputSqnr(model)) > (await outputSqnr(plain.model)), "16 bits where the measurement says cut the output error");
});

test("wideForm clip (the default) writes each widened activation as a Clip to its 16-bit range (a Gemm input keeps its pair), Q/DQ in ai.onnx, the outputs of the Q/DQ file within a 16-bit step", async () => {
  const qdq = await quantize({ calibration: { wideActivations: 0.3, wideForm: "qdq" } });
  const clip = await quantize({ calibration: { wideActivations: 0.3 } });
  assert.deepEqual(clip.summary.wideActivations!.tensors, qdq.summary.wideActivations!.tensors, "the same choice");
  // The head's Flatten output feeds its Gemm, which onnxruntime would fuse with its int8 weight into MatMulNBits
  // (rounding that input to 8 bits at run time): it keeps its 16-bit pair; every other pair is a Clip.
  const head = "/head/head.0/Flatten_output_0";
  assert.deepEqual(sixteenBit(clip.model), sixteenBit(qdq.model).includes(head) ? [head] : []);
  assert.deepEqual(clipped(clip.model).sort(), sixteenBit(qdq.model).filter((t) => t !== head).sort(), "a Clip where the Q/DQ file has a 16-bit pair");
  assert.match(clip.summary.wideActivations!.why, /written as a Clip to each one's 16-bit range.*--wide-form qdq/);
  const domains = new Set(clip.model.graph.node.filter((n) => n.opType.endsWith("QuantizeLinear")).map((n) => n.domain || "ai.onnx"));
  assert.deepEqual([...domains], ["ai.onnx"]);
  assert.match(clip.summary.wideActivations!.why, /1 that a MatMul or Gemm reads keep 16-bit Q\/DQ/);
  // Each Clip clamps as the pair saturates: a folded Relu's lower bound 0 included.
  for (const n of clip.model.graph.node.filter((x) => x.opType === "Clip" && x.name.endsWith("_Clip"))) {
    const [lo, hi] = [n.input[1]!, n.input[2]!].map((i) => tensorToFloat32(clip.model.graph.initializer.find((t) => t.name === i)!)[0]!);
    assert.ok(lo! <= 0 && hi! > 0, `${n.name}: [${lo}, ${hi}]`);
  }
  const [a, b] = [await outputs(qdq.model), await outputs(clip.model)];
  const peak = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const diff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
  assert.ok(diff < 2e-3 * peak, `max |Δ| ${diff} against a peak of ${peak}`);
  await assert.rejects(quantize({ calibration: { wideActivations: 0.3, wideForm: "int16" as "qdq" } }), /wideForm: "int16" is not clip or qdq/);
});

test("a user's override of a chosen tensor wins, and a share outside [0, 1] is refused", async () => {
  const first = await quantize({ calibration: { wideActivations: 0.3 } });
  const t = first.summary.wideActivations!.tensors[0]!;
  const { model } = await quantize({ calibration: { wideActivations: 0.3 }, overrides: { [t]: { type: "uint8" } } });
  assert.ok(!sixteenBit(model).includes(t), `${t} keeps the user's uint8`);
  await assert.rejects(quantize({ calibration: { wideActivations: 1.5 } }), /wideActivations: 1.5 is not a share between 0 and 1/);
});

/**
 * x[N, 16] ⊙ mask → u → MatMul W → y, where the mask stretches feature 0 by `k` and W reads nothing from it: u's
 * 8-bit grid is set by feature 0, which the outputs ignore, and the other features fall on a step of 2k/255.
 */
function stretched(k: number) {
  const mask = new Float32Array(16).fill(1);
  mask[0] = k;
  const w = randomFloats(16 * 8, 5);
  for (let c = 0; c < 8; c++) w[c] = 0;
  return makeModel(
    [makeNode("Mul", ["x", "mask"], ["u"], { name: "stretch" }), makeNode("MatMul", ["u", "W"], ["y"], { name: "mm" })],
    [valueInfo("x", DataType.FLOAT, ["N", 16])],
    [valueInfo("y", DataType.FLOAT, ["N", 8])],
    [makeTensor("mask", DataType.FLOAT, [16], mask), makeTensor("W", DataType.FLOAT, [16, 8], w)],
  );
}

test("unset, wideActivations widens where the outputs with 8-bit activations read below 6 dB, and 0 turns that off", async () => {
  // mse's ranges, so that the 8-bit reading is the stretch's alone (calibration auto's ranges read it 2 dB better).
  const mse = { calibration: { method: "mse" } } as const;
  const auto = await quantizeTiny(stretched(200), { x: [16, 16] }, mse);
  const wide = auto.summary.wideActivations;
  assert.ok(wide && wide.tensors.includes("u"), JSON.stringify(wide));
  assert.match(wide!.why, new RegExp(`^automatic \\(8-bit outputs below ${WIDE_AUTO_BELOW_DB} dB; --wide-activations 0 to keep 8 bits\\): \\d+ of \\d+ activations at 16 bits: output SQNR with every activation at 8 bits [\\d.]+ dB`));
  assert.match(wide!.why, /no 16-bit kernels on CPU.*ptq bench/);
  const off = await quantizeTiny(stretched(200), { x: [16, 16] }, { calibration: { method: "mse", wideActivations: 0 } });
  assert.equal(off.summary.wideActivations, undefined);
  assert.ok(auto.sqnr > off.sqnr + 10, `widened ${auto.sqnr.toFixed(1)} dB against 8-bit ${off.sqnr.toFixed(1)} dB`);
  // u feeds a MatMul: as a Clip's float output, onnxruntime would fuse it with mm's int8 weight into MatMulNBits and
  // round it to 8 bits at run time, so it keeps its 16-bit pair even with wideForm clip (the default).
  assert.deepEqual(sixteenBit(auto.qdq), ["u"]);
  assert.match(wide!.why, /no 16-bit kernels on CPU.*ptq bench/);
  // A mild stretch reads above the trigger: nothing measured further, nothing said.
  const mild = await quantizeTiny(stretched(2), { x: [16, 16] }, mse);
  assert.equal(mild.summary.wideActivations, undefined);
});

test("the trigger reaches 10 dB: a model whose 8-bit outputs read between 6 and 10 dB is widened (blazeface-back reads 8.7), one at 12 dB is not", async () => {
  const mse = { calibration: { method: "mse" } } as const;
  const between = await quantizeTiny(stretched(100), { x: [16, 16] }, mse);
  const read = Number(/every activation at 8 bits ([\d.]+) dB/.exec(between.summary.wideActivations?.why ?? "")?.[1]);
  assert.ok(read > 6 && read < 10, `reads ${read} dB: ${between.summary.wideActivations?.why}`);
  assert.ok(between.summary.wideActivations!.tensors.includes("u"));
  const above = await quantizeTiny(stretched(60), { x: [16, 16] }, mse);
  assert.equal(above.summary.wideActivations, undefined, "12 dB at 8 bits: nothing widened, nothing said");
});

test("a 16-bit override on a tensor only float nodes read leaves the file's Q/DQ in the standard domain", async () => {
  // As oww-melspectrogram's widened input of its protected MatMul: no Q/DQ is written for it.
  const twoMatMuls = makeModel(
    [makeNode("MatMul", ["x", "W0"], ["u"], { name: "mm0" }), makeNode("MatMul", ["u", "W"], ["y"], { name: "mm" })],
    [valueInfo("x", DataType.FLOAT, ["N", 16])],
    [valueInfo("y", DataType.FLOAT, ["N", 8])],
    [makeTensor("W0", DataType.FLOAT, [16, 16], randomFloats(256, 6)), makeTensor("W", DataType.FLOAT, [16, 8], randomFloats(128, 7))],
  );
  const r = await quantizeTiny(twoMatMuls, { x: [16, 16] }, { overrides: { u: { type: "uint16" } }, exclude: ["mm"], calibration: { wideActivations: 0 } });
  assert.ok(r.summary.quantized.some((n) => n.name === "mm0"), "mm0 is quantized");
  const domains = new Set(r.qdq.graph.node.filter((n) => n.opType.endsWith("QuantizeLinear")).map((n) => n.domain || "ai.onnx"));
  assert.deepEqual([...domains], ["ai.onnx"]);
  assert.ok(!r.summary.warnings.some((w) => /com\.microsoft/.test(w)), r.summary.warnings.join("\n"));
});

test("clipSixteenBitPairs: a 16-bit pair becomes a Clip to its range, one a MatMul reads stays, and with no 16-bit pair left the Q/DQ move back to ai.onnx", async () => {
  // x → Q16/DQ16 (com.microsoft) → Relu → Q8/DQ8 (com.microsoft) → y, opset 17: the file the rewrite writes for one
  // widened activation.
  const ms = "com.microsoft";
  const inits = [
    makeTensor("s16", DataType.FLOAT, [], [0.001]), makeTensor("z16", DataType.UINT16, [], [30000]),
    makeTensor("s8", DataType.FLOAT, [], [0.02]), makeTensor("z8", DataType.UINT8, [], [0]),
    // Read by no top-level node (as a main-graph weight only an If body reads): not the pair's, so it stays.
    makeTensor("outer", DataType.FLOAT, [2], [1, 2]),
  ];
  const proto = makeModel(
    [
      makeNode("QuantizeLinear", ["x", "s16", "z16"], ["xq"], { name: "q16", domain: ms }),
      makeNode("DequantizeLinear", ["xq", "s16", "z16"], ["u"], { name: "dq16", domain: ms }),
      makeNode("Relu", ["u"], ["v"], { name: "relu" }),
      makeNode("QuantizeLinear", ["v", "s8", "z8"], ["vq"], { name: "q8", domain: ms }),
      makeNode("DequantizeLinear", ["vq", "s8", "z8"], ["y"], { name: "dq8", domain: ms }),
    ],
    [valueInfo("x", DataType.FLOAT, ["N", 4])],
    [valueInfo("y", DataType.FLOAT, ["N", 4])],
    inits,
  );
  proto.opsetImport.push({ ...proto.opsetImport[0]!, domain: ms, version: 1n });
  const before = Model.fromProto(proto);
  const after = Model.fromProto(before.clone().proto);
  const r = clipSixteenBitPairs(after, emptySummary(resolveConfig(), "static", 17));
  assert.deepEqual(r, { clipped: ["u"], kept: [], standard: true });
  const clip = after.graph.node.find((n) => n.opType === "Clip")!;
  const [lo, hi] = [clip.input[1]!, clip.input[2]!].map((i) => tensorToFloat32(after.graph.initializer.find((t) => t.name === i)!)[0]!);
  assert.ok(Math.abs(lo! - -30) < 1e-4 && Math.abs(hi! - 35.535) < 1e-4, `[${lo}, ${hi}]: codes 0 and 65535 around zero point 30000`);
  assert.deepEqual(after.graph.node.map((n) => `${n.opType}:${n.domain}`), ["Clip:", "Relu:", "QuantizeLinear:", "DequantizeLinear:"]);
  assert.ok(!after.proto.opsetImport.some((o) => o.domain === ms));
  assert.deepEqual(after.graph.initializer.map((t) => t.name).filter((n) => !n.includes("clip")).sort(), ["outer", "s8", "z8"], "the pair's scale and zero point gone, nothing else");
  const x = Float32Array.from({ length: 16 }, (_, i) => (i - 5) * 3.7);
  const run = async (m: Model) => {
    const s = await createSession(m);
    try {
      return (await s.run({ x: { data: x, dims: [4, 4] } })).y!.data as Float32Array;
    } finally {
      await s.dispose();
    }
  };
  const [a, b] = [await run(before), await run(after)];
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 0.02 + 1e-6, `[${i}] ${a[i]} vs ${b[i]}`);
  // The same pair read by a MatMul stays.
  const mm = Model.fromProto(before.clone().proto);
  mm.graph.node[2] = makeNode("MatMul", ["u", "W"], ["v"], { name: "mm" });
  mm.graph.initializer.push(makeTensor("W", DataType.FLOAT, [4, 4], randomFloats(16, 3)));
  assert.deepEqual(clipSixteenBitPairs(mm, emptySummary(resolveConfig(), "static", 17)), { clipped: [], kept: ["u"], standard: false });
  // A pair nothing reads (its tensor went to a node kept float, which reads the float original) is dropped, not
  // written as a Clip with no reader.
  const dead = Model.fromProto(before.clone().proto);
  dead.graph.node[2] = makeNode("Relu", ["x"], ["v"], { name: "relu" });
  const d = clipSixteenBitPairs(dead, emptySummary(resolveConfig(), "static", 17));
  assert.deepEqual(d.clipped, []);
  assert.deepEqual(dead.graph.node.map((n) => n.opType), ["Relu", "QuantizeLinear", "DequantizeLinear"], "the unread pair is gone");
  assert.deepEqual(dead.graph.initializer.map((t) => t.name).sort(), ["outer", "s8", "z8"]);
  assert.deepEqual(await run(dead), await run(before), "the same outputs");
});

test("a widened graph input is written as a Clip and listed as widened, not as read only by float nodes", async () => {
  // x [1, 4, 8, 8] → Conv (8×4×3×3) → Relu → y.
  const proto = makeModel(
    [makeNode("Conv", ["x", "w", "b"], ["c"], { name: "conv" }), makeNode("Relu", ["c"], ["y"], { name: "relu" })],
    [valueInfo("x", DataType.FLOAT, [1, 4, 8, 8])],
    [valueInfo("y", DataType.FLOAT, [1, 8, 6, 6])],
    [makeTensor("w", DataType.FLOAT, [8, 4, 3, 3], randomFloats(288, 7)), makeTensor("b", DataType.FLOAT, [8], randomFloats(8, 8))],
  );
  const prepared = await prepare(Model.fromProto(proto), { calibration: { wideActivations: 0 } }, { optimize: false });
  await calibrate(prepared, [1, 2, 3].map((s) => ({ x: { type: "float32" as const, dims: [1, 4, 8, 8], data: randomFloats(256, s) } })));
  await release(prepared);
  // What calibration's measurement would have chosen: the graph input.
  prepared.wide = { tensors: ["x"], why: "widened by the test" };
  const { model, summary } = await convert(prepared);
  assert.deepEqual(summary.wideActivations?.tensors, ["x"]);
  assert.doesNotMatch(summary.wideActivations!.why, /read only by float nodes/);
  assert.match(summary.wideActivations!.why, /written as a Clip/);
  const clip = model.graph.node.find((n) => n.opType === "Clip" && n.input[0] === "x");
  assert.ok(clip, model.graph.node.map((n) => n.opType).join(", "));
  assert.deepEqual(sixteenBit(model), [], "no 16-bit pair left");
});
