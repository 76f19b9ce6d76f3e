// Low-bit weights inside If/Loop bodies (silero-vad keeps every weight there, read from main-graph initializers):
// FP4 and INT4 rewrite a body's MatMul/Gemm/Conv in that body, both store LSTM W/R int8, the float originals go,
// names stay unique across the model, every branch still runs close to float, and protection's ladder reaches them.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ModelProto } from "onnx-buf";
import * as ort from "onnxruntime-node";
import type { Feeds } from "../../../engine/data/feeds";
import { lowBitModel, lowBitModelCalibrated } from "../../../engine/lowbit/index";
import { DataType } from "../../../engine/onnx/dtype";
import { forEachGraph } from "../../../engine/onnx/graph";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { makeModel, randomFloats, runModel, valueInfo } from "../quant/build";
import { allOps, assertNamesUnique, body, loopConvFeeds, loopConvModel, loopFeeds, loopModel, opsByGraph, worstSqnr } from "../quant/subgraph-check";

const F = DataType.FLOAT;

/**
 * If(cond): then = MatMul(x, W[256, 64]) → nested If(cond2) whose then-branch has MatMul(·, W_inner[64, 128]), a
 * weight of its own; else = Gemm(x, W_else[256, 64], bias). W and W_else are main-graph initializers.
 */
function ifModel(): ModelProto {
  const nestedThen = body("then2", [makeNode("MatMul", ["t1", "W_inner"], ["t2"], { name: "inner_mm" })], [valueInfo("t2", F, [4, 128])], [makeTensor("W_inner", F, [64, 128], randomFloats(64 * 128, 3))]);
  const nestedElse = body("else2", [makeNode("Concat", ["t1", "t1"], ["t3"], { name: "inner_concat", attributes: [attr.int("axis", 1)] })], [valueInfo("t3", F, [4, 128])]);
  const thenBranch = body(
    "then",
    [
      makeNode("MatMul", ["x", "W"], ["t1"], { name: "then_mm" }),
      makeNode("If", ["cond2"], ["then_out"], { name: "if2", attributes: [attr.graph("then_branch", nestedThen), attr.graph("else_branch", nestedElse)] }),
    ],
    [valueInfo("then_out", F, [4, 128])],
  );
  const elseBranch = body(
    "else",
    [
      makeNode("Gemm", ["x", "W_else", "bias"], ["g"], { name: "else_gemm" }),
      makeNode("Concat", ["g", "g"], ["else_out"], { name: "else_concat", attributes: [attr.int("axis", 1)] }),
    ],
    [valueInfo("else_out", F, [4, 128])],
    [makeTensor("bias", F, [64], randomFloats(64, 4))],
  );
  return makeModel(
    [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", thenBranch), attr.graph("else_branch", elseBranch)] })],
    [valueInfo("x", F, [4, 256]), valueInfo("cond", DataType.BOOL, []), valueInfo("cond2", DataType.BOOL, [])],
    [valueInfo("y", F, [4, 128])],
    [makeTensor("W", F, [256, 64], randomFloats(256 * 64, 1)), makeTensor("W_else", F, [256, 64], randomFloats(256 * 64, 2))],
  );
}

const CONDS = [
  [true, true],
  [true, false],
  [false, false],
] as const;

const ifFeeds = (seed: number, c1: boolean, c2: boolean) => ({
  x: new ort.Tensor("float32", randomFloats(4 * 256, seed), [4, 256]),
  cond: new ort.Tensor("bool", [c1], []),
  cond2: new ort.Tensor("bool", [c2], []),
});

function initializerNames(m: ModelProto): Map<string, string[]> {
  const out = new Map<string, string[]>();
  forEachGraph(m.graph!, (g) => out.set(g.name, g.initializer.map((t) => t.name)));
  return out;
}

for (const options of [{ mode: "fp4" } as const, { mode: "int4" } as const, { mode: "int4", format: "qdq" } as const]) {
  test(`${JSON.stringify(options)}: weights inside If branches (nested too) are rewritten in their bodies; every branch runs close to float`, async () => {
    const proto = ifModel();
    const { model: q, report } = lowBitModel(Model.fromProto(proto), options);
    assert.deepEqual(report.layers.map((l) => l.node).sort(), ["else_gemm", "inner_mm", "then_mm"]);
    assert.ok(report.notes.some((n) => n.includes("3 of the 3 weights quantized sit inside If/Loop/Scan bodies")), report.notes.join("; "));
    assertNamesUnique(q.proto);
    const inits = initializerNames(q.proto);
    const all = [...inits.values()].flat();
    for (const w of ["W", "W_else", "W_inner"]) assert.ok(!all.includes(w), `the float ${w} is gone: ${all.join(", ")}`);
    // The low-bit forms live in the body that reads them; the main graph keeps nothing.
    assert.deepEqual(inits.get("g"), []);
    assert.ok(inits.get("then2")!.some((n) => n.startsWith("W_inner")), `then2: ${inits.get("then2")!.join(", ")}`);
    assert.ok(inits.get("else")!.some((n) => n.startsWith("W_else")), `else: ${inits.get("else")!.join(", ")}`);
    const byGraph = opsByGraph(q.proto);
    const lowBitOp = options.mode === "fp4" ? "Gather" : "format" in options ? "DequantizeLinear" : "MatMulNBits";
    for (const g of ["then", "then2", "else"]) assert.ok(byGraph[g]![lowBitOp], `${g} runs its own ${lowBitOp}: ${JSON.stringify(byGraph[g])}`);
    for (const [c1, c2] of CONDS) {
      const db = await worstSqnr(proto, q.proto, ifFeeds(7, c1, c2));
      assert.ok(db > 12 && db < 60, `cond ${c1}/${c2}: output SQNR ${db.toFixed(1)} dB`);
    }
  });
}

test("int4 GPTQ inside If bodies: each body's weights get GPTQ codes from the activations the batches that ran it give; a branch no batch took is rounded to nearest, and the report says so", async () => {
  const gptq = { mode: "int4", algorithm: "gptq", protect: false } as const;
  const data: Feeds[] = [ifFeeds(11, true, true), ifFeeds(12, false, false), ifFeeds(13, true, true)];
  const [fitted, nearest] = [await lowBitModelCalibrated(Model.fromProto(ifModel()), gptq, data), await lowBitModelCalibrated(Model.fromProto(ifModel()), { ...gptq, algorithm: "rtn" }, data)];
  const { model: q, report } = fitted;
  assert.equal(allOps(q.proto).MatMulNBits, 3);
  assert.ok(!report.notes.some((n) => n.includes("rounded to nearest")), report.notes.join("; "));
  // Every layer was GPTQ'd on its own Hessian: closer to the float layer's outputs there than round-to-nearest.
  for (const l of report.layers) assert.ok(l.rtnOutputSqnrDb !== undefined && l.outputSqnrDb! > l.rtnOutputSqnrDb, `${l.node}: GPTQ ${l.outputSqnrDb} dB, RTN ${l.rtnOutputSqnrDb} dB`);
  assert.ok(report.output!.sqnrDb > nearest.report.output!.sqnrDb, `the outputs through the bodies: GPTQ ${report.output!.sqnrDb.toFixed(2)} dB, RTN ${nearest.report.output!.sqnrDb.toFixed(2)} dB`);
  // A layer's Hessian is its input's, wherever that is computed: cond never true, the then-branch never ran and
  // nothing computed inner_mm's input t1 (then_mm's reads x, a main-graph input: it has one).
  const partial = await lowBitModelCalibrated(Model.fromProto(ifModel()), gptq, [ifFeeds(11, false, true), ifFeeds(12, false, false)]);
  const byNode = new Map(partial.report.layers.map((l) => [l.node, l]));
  assert.equal(byNode.get("inner_mm")!.rtnOutputSqnrDb, undefined, "inner_mm rounded to nearest");
  for (const n of ["then_mm", "else_gemm"]) assert.notEqual(byNode.get(n)!.rtnOutputSqnrDb, undefined, `${n} GPTQ'd`);
  assert.ok(partial.report.notes.some((n) => n.startsWith("1 weight(s) inside If/Loop/Scan bodies rounded to nearest: no calibration batch ran the body that holds them")), partial.report.notes.join("; "));
});

test("FP4 learned rounding inside If bodies: each body's layers are fitted on their inputs where computed; a layer whose input no batch computed keeps nearest codes", async () => {
  const fp4 = { mode: "fp4", smallLayers: "fp4", protect: false } as const;
  const data: Feeds[] = [ifFeeds(11, true, true), ifFeeds(12, false, false), ifFeeds(13, true, true)];
  const [learned, nearest] = [await lowBitModelCalibrated(Model.fromProto(ifModel()), { ...fp4, rounding: "learned" }, data), await lowBitModelCalibrated(Model.fromProto(ifModel()), { ...fp4, rounding: "nearest" }, data)];
  assert.ok(learned.report.notes.some((n) => n.startsWith("learned rounding: 3 FP4 layer(s)")), learned.report.notes.join("; "));
  assert.ok(learned.report.output!.sqnrDb > nearest.report.output!.sqnrDb, `learned ${learned.report.output!.sqnrDb.toFixed(2)} dB, nearest ${nearest.report.output!.sqnrDb.toFixed(2)} dB`);
  const partial = await lowBitModelCalibrated(Model.fromProto(ifModel()), { ...fp4, rounding: "learned" }, [ifFeeds(11, false, true), ifFeeds(12, false, false)]);
  assert.ok(partial.report.notes.some((n) => /^learned rounding: 2 FP4 layer\(s\), .*; 1 kept nearest rounding \(no calibration batch ran the body that holds it/.test(n)), partial.report.notes.join("; "));
});

test("int4 GPTQ and FP4 learned rounding in a Loop body: the MatMul's input (carried state) comes out stacked over the iterations, every one a row", async () => {
  const data = [loopFeeds(1), loopFeeds(2), loopFeeds(3)];
  const { report } = await lowBitModelCalibrated(Model.fromProto(loopModel()), { mode: "int4", algorithm: "gptq", blockSize: 16, protect: false }, data);
  const loop = report.layers.find((l) => l.node === "loop_mm")!;
  assert.ok(loop.rtnOutputSqnrDb !== undefined && loop.outputSqnrDb! >= loop.rtnOutputSqnrDb, `GPTQ ${loop.outputSqnrDb} dB, RTN ${loop.rtnOutputSqnrDb} dB`);
  // 3 batches × 3 iterations (M) × 4 rows: the top-level MatMul sees 12, the body's 36; the note gives the most.
  assert.ok(report.notes.includes("GPTQ calibration: 3 batches, 36 activation rows per layer"), report.notes.join("; "));
  const fp4 = await lowBitModelCalibrated(Model.fromProto(loopModel()), { mode: "fp4", smallLayers: "fp4", rounding: "learned", protect: false }, data);
  assert.ok(fp4.report.notes.some((n) => n.startsWith("learned rounding: 2 FP4 layer(s)")), fp4.report.notes.join("; "));
});

test("int4 GPTQ on a Conv inside an If branch: its input patches are cut where the branch computes them", async () => {
  // If(cond): then = Conv(Relu(x), Wc[16, 8, 3, 3], pads 1), its input computed in the branch; else = Concat(x, x).
  const conv = body(
    "then",
    [makeNode("Relu", ["x"], ["r"], { name: "then_relu" }), makeNode("Conv", ["r", "Wc"], ["c"], { name: "then_conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] })],
    [valueInfo("c", F, [2, 16, 6, 6])],
  );
  const other = body("else", [makeNode("Concat", ["x", "x"], ["e"], { name: "else_concat", attributes: [attr.int("axis", 1)] })], [valueInfo("e", F, [2, 16, 6, 6])]);
  const proto = () =>
    makeModel(
      [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", conv), attr.graph("else_branch", other)] })],
      [valueInfo("x", F, [2, 8, 6, 6]), valueInfo("cond", DataType.BOOL, [])],
      [valueInfo("y", F, [2, 16, 6, 6])],
      [makeTensor("Wc", F, [16, 8, 3, 3], randomFloats(16 * 8 * 9, 5))],
    );
  const feeds = (seed: number, cond: boolean) => ({ x: new ort.Tensor("float32", randomFloats(2 * 8 * 36, seed), [2, 8, 6, 6]), cond: new ort.Tensor("bool", [cond], []) });
  const options = { mode: "int4", algorithm: "gptq", blockSize: 16, protect: false } as const;
  const { report } = await lowBitModelCalibrated(Model.fromProto(proto()), options, [feeds(1, true), feeds(2, false), feeds(3, true)]);
  const [layer] = report.layers;
  assert.equal(layer!.node, "then_conv");
  assert.ok(layer!.rtnOutputSqnrDb !== undefined && layer!.outputSqnrDb! > layer!.rtnOutputSqnrDb, `GPTQ ${layer!.outputSqnrDb} dB, RTN ${layer!.rtnOutputSqnrDb} dB`);
  assert.ok(!report.notes.some((n) => n.includes("rounded to nearest")), report.notes.join("; "));
  const never = await lowBitModelCalibrated(Model.fromProto(proto()), options, [feeds(2, false), feeds(4, false)]);
  assert.equal(never.report.layers[0]!.rtnOutputSqnrDb, undefined);
  assert.ok(never.report.notes.some((n) => n.startsWith("1 weight(s) inside If/Loop/Scan bodies rounded to nearest")), never.report.notes.join("; "));
});

test("int4 GPTQ and FP4 learned rounding on a Conv inside a Loop body: its patches are cut from the input stacked over the iterations", async () => {
  const data = [1, 2, 3, 4].map(loopConvFeeds);
  const { report } = await lowBitModelCalibrated(Model.fromProto(loopConvModel()), { mode: "int4", algorithm: "gptq", blockSize: 8, protect: false }, data);
  const [layer] = report.layers;
  assert.equal(layer!.node, "loop_conv");
  assert.ok(layer!.rtnOutputSqnrDb !== undefined && layer!.outputSqnrDb! > layer!.rtnOutputSqnrDb, `GPTQ ${layer!.outputSqnrDb} dB, RTN ${layer!.rtnOutputSqnrDb} dB`);
  assert.ok(!report.notes.some((n) => n.includes("rounded to nearest")), report.notes.join("; "));
  const fp4 = await lowBitModelCalibrated(Model.fromProto(loopConvModel()), { mode: "fp4", smallLayers: "fp4", rounding: "learned", protect: false }, data);
  assert.ok(fp4.report.notes.some((n) => n.startsWith("learned rounding: 1 FP4 layer(s)")), fp4.report.notes.join("; "));
});

/** If(cond): then = bidirectional LSTM, else = forward LSTM (I 8, H 16); all weights main-graph initializers. */
function lstmModel(): ModelProto {
  const [I, H] = [8, 16];
  const lstm = (name: string, w: string, r: string, b: string, out: string, direction: string) =>
    body(name, [makeNode("LSTM", ["x", w, r, b], ["", out], { name: `${name}_lstm`, attributes: [attr.int("hidden_size", H), attr.string("direction", direction)] })], [valueInfo(out, F)]);
  const weights = (suffix: string, dirs: number, seed: number) => [
    makeTensor(`W${suffix}`, F, [dirs, 4 * H, I], randomFloats(dirs * 4 * H * I, seed, -0.5, 0.5)),
    makeTensor(`R${suffix}`, F, [dirs, 4 * H, H], randomFloats(dirs * 4 * H * H, seed + 1, -0.5, 0.5)),
    makeTensor(`B${suffix}`, F, [dirs, 8 * H], randomFloats(dirs * 8 * H, seed + 2, -0.1, 0.1)),
  ];
  return makeModel(
    [
      makeNode("If", ["cond"], ["y"], {
        name: "if",
        attributes: [attr.graph("then_branch", lstm("bi", "W2", "R2", "B2", "yh_bi", "bidirectional")), attr.graph("else_branch", lstm("fw", "W1", "R1", "B1", "yh_fw", "forward"))],
      }),
    ],
    [valueInfo("x", F, [5, 2, I]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y", F)],
    [...weights("2", 2, 21), ...weights("1", 1, 31)],
  );
}

test("fp4: LSTM W and R are stored int8 per gate row behind DequantizeLinear (two directions through a Reshape); the LSTM runs in float", async () => {
  const proto = lstmModel();
  const { model: q, report } = lowBitModel(Model.fromProto(proto), { mode: "fp4" });
  assert.deepEqual(report.layers.map((l) => `${l.node}:${l.bits}`).sort(), ["bi_lstm:8", "fw_lstm:8"]);
  assert.ok(report.notes.some((n) => n.includes("2 LSTM(s) with W and R stored int8")), report.notes.join("; "));
  const byGraph = opsByGraph(q.proto);
  assert.deepEqual(byGraph.bi, { DequantizeLinear: 2, Reshape: 2, LSTM: 1 });
  assert.deepEqual(byGraph.fw, { DequantizeLinear: 2, LSTM: 1 });
  assert.deepEqual(initializerNames(q.proto).get("g")!.sort(), ["B1", "B2"], "W and R are gone from the main graph; the biases stay float");
  assertNamesUnique(q.proto);
  for (const l of report.layers) assert.ok(l.sqnrDb > 35, `${l.node}: weight SQNR ${l.sqnrDb.toFixed(1)} dB`);
  for (const cond of [true, false]) {
    const feeds = { x: new ort.Tensor("float32", randomFloats(5 * 2 * 8, 9), [5, 2, 8]), cond: new ort.Tensor("bool", [cond], []) };
    const db = await worstSqnr(proto, q.proto, feeds);
    assert.ok(db > 30, `cond ${cond}: output SQNR ${db.toFixed(1)} dB`);
  }
  // int4 has no 4-bit LSTM either: it stores them int8 the same way.
  const int4 = lowBitModel(Model.fromProto(proto), { mode: "int4" });
  assert.deepEqual(int4.report.layers.map((l) => [l.opType, l.bits]), [["LSTM", 8], ["LSTM", 8]]);
  assert.ok(int4.report.notes.some((n) => n.includes("2 LSTM(s) with W and R stored int8 per gate row (weight-only; there is no low-bit LSTM)")), int4.report.notes.join("; "));
});

test("fp4 protection: the ladder steps up weights inside bodies until the outputs meet the target", async () => {
  const data: Feeds[] = CONDS.map(([c1, c2], i) => ifFeeds(20 + i, c1, c2));
  const model = Model.fromProto(ifModel());
  const plain = await lowBitModelCalibrated(model, { mode: "fp4", protect: false }, data);
  const target = plain.report.output!.sqnrDb + 10;
  const { model: q, report } = await lowBitModelCalibrated(model, { mode: "fp4", protect: { minOutputSqnrDb: target, maxSize: Infinity } }, data);
  const o = report.output!;
  assert.ok(o.sqnrDb >= target, `${o.sqnrDb.toFixed(1)} dB ≥ target ${target.toFixed(1)} dB`);
  assert.ok(o.protected.length > 0 && o.protected.every((p) => ["then_mm", "inner_mm", "else_gemm"].includes(p.node)), JSON.stringify(o.protected));
  // The target is on the outputs pooled over the data (both branches' batches), as measured here by hand.
  let [signal, noise] = [0, 0];
  for (const feeds of data) {
    const ref = (await runModel(model.proto, feeds as Record<string, ort.Tensor>, "disabled")).y!.data as Float32Array;
    const got = (await runModel(q.proto, feeds as Record<string, ort.Tensor>, "all")).y!.data as Float32Array;
    for (let i = 0; i < ref.length; i++) (signal += ref[i]! ** 2), (noise += (ref[i]! - got[i]!) ** 2);
  }
  const db = 10 * Math.log10(signal / noise);
  assert.ok(Math.abs(db - o.sqnrDb) < 0.5, `pooled over the data: ${db.toFixed(1)} dB; reported ${o.sqnrDb.toFixed(1)} dB`);
});
