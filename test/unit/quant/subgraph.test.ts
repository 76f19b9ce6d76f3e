// Quantization inside If/Loop/Scan bodies: weights that live in (or are read from) a body are quantized, in dynamic
// mode and, dynamically, in static mode too; names stay unique across the model, a weight read by several bodies
// is stored once, next to its float original. Before this, such models got 0 nodes quantized (silero-vad).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ModelProto } from "onnx-buf";
import * as ort from "onnxruntime-node";
import { openData } from "../../../engine/data/readers";
import { DataType } from "../../../engine/onnx/dtype";
import { forEachGraph } from "../../../engine/onnx/graph";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { calibrate, convert, prepare, quantizeDynamic, quantizeDynamicModel, quantizeStatic, release, resolveConfig, type QConfig } from "../../../engine/quant/index";
import { makeModel, randomFloats, valueInfo } from "./build";
import { FIX, top1 } from "./eval";
import { allOps, assertNamesUnique, body, loopFeeds, loopModel, worstSqnr } from "./subgraph-check";
import { tempDir } from "../../temp";

const F = DataType.FLOAT;

/**
 * If(cond): then = MatMul(x, W) followed by a nested If whose then-branch has a MatMul with a weight of its own;
 * else = Gemm(x, W, bias). W is a main-graph initializer both branches read (silero-vad's layout).
 */
function ifModel(): ModelProto {
  const nestedThen = body("then2", [makeNode("MatMul", ["t1", "W_inner"], ["t2"], { name: "inner_mm" })], [valueInfo("t2", F, [4, 8])], [makeTensor("W_inner", F, [8, 8], randomFloats(64, 3))]);
  const nestedElse = body("else2", [makeNode("Relu", ["t1"], ["t3"], { name: "inner_relu" })], [valueInfo("t3", F, [4, 8])]);
  const thenBranch = body(
    "then",
    [
      makeNode("MatMul", ["x", "W"], ["t1"], { name: "then_mm" }),
      makeNode("If", ["cond2"], ["then_out"], { name: "if2", attributes: [attr.graph("then_branch", nestedThen), attr.graph("else_branch", nestedElse)] }),
    ],
    [valueInfo("then_out", F, [4, 8])],
  );
  const elseBranch = body("else", [makeNode("Gemm", ["x", "W", "bias"], ["else_out"], { name: "else_gemm" })], [valueInfo("else_out", F, [4, 8])], [makeTensor("bias", F, [8], randomFloats(8, 4))]);
  return makeModel(
    [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", thenBranch), attr.graph("else_branch", elseBranch)] })],
    [valueInfo("x", F, [4, 16]), valueInfo("cond", DataType.BOOL, []), valueInfo("cond2", DataType.BOOL, [])],
    [valueInfo("y", F, [4, 8])],
    [makeTensor("W", F, [16, 8], randomFloats(128, 1))],
  );
}

test("dynamic: MatMul/Gemm inside If branches (nested too) are quantized; a weight two branches read is stored once", async () => {
  const proto = ifModel();
  const { model: q, summary } = await quantizeDynamicModel(Model.fromProto(proto), resolveConfig({}), false);
  assert.deepEqual(summary.quantized.map((n) => n.name).sort(), ["else_gemm", "inner_mm", "then_mm"]);
  const ops = allOps(q.proto);
  assert.equal(ops.MatMulInteger, 3);
  assert.equal(ops.MatMul, undefined);
  assert.equal(ops.Gemm, undefined);
  assertNamesUnique(q.proto);
  const top = q.graph.initializer.map((t) => t.name);
  assert.ok(!top.includes("W"), "the float W is gone: nothing reads it any more");
  assert.equal(top.filter((n) => n.startsWith("W_quantized")).length, 1, "W stored once, in the main graph, for both branches");
  let innerInits: string[] = [];
  forEachGraph(q.graph, (g) => {
    if (g.name === "then2") innerInits = g.initializer.map((t) => t.name);
  });
  assert.ok(innerInits.includes("W_inner_quantized") && !innerInits.includes("W_inner"), `a body's own weight is stored in that body: ${innerInits.join(", ")}`);
  const x = new ort.Tensor("float32", randomFloats(64, 7), [4, 16]);
  for (const [c1, c2] of [[true, true], [true, false], [false, false]]) {
    const feeds = { x, cond: new ort.Tensor("bool", [c1], []), cond2: new ort.Tensor("bool", [c2], []) };
    const db = await worstSqnr(proto, q.proto, feeds);
    assert.ok(db > 30, `cond ${c1}/${c2}: SQNR ${db.toFixed(1)} dB`);
  }
});

test("a Conv inside a body keeps float activations (int8 weight behind a DequantizeLinear, decoded by Cast/Sub/Mul in a dynamic file); one with a few weights stays float", async () => {
  const branch = (name: string) =>
    body(
      name,
      [
        makeNode("Conv", ["x", "Wc", "bc"], [`${name}_c1`], { name: `${name}_conv`, attributes: [attr.ints("pads", [1, 1])] }),
        makeNode("Conv", [`${name}_c1`, "Wsmall"], [`${name}_c2`], { name: `${name}_small`, attributes: [attr.ints("pads", [3, 3])] }),
      ],
      [valueInfo(`${name}_c2`, F, [1, 1, 32])],
    );
  const proto = makeModel(
    [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", branch("a")), attr.graph("else_branch", branch("b"))] })],
    [valueInfo("x", F, [1, 8, 32]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y", F, [1, 1, 32])],
    [makeTensor("Wc", F, [16, 8, 3], randomFloats(384, 51)), makeTensor("bc", F, [16], randomFloats(16, 52)), makeTensor("Wsmall", F, [1, 16, 1], randomFloats(16, 53))],
  );
  for (const mode of ["static", "dynamic"] as const) {
    let q: Model;
    let summary;
    if (mode === "dynamic") ({ model: q, summary } = await quantizeDynamicModel(Model.fromProto(proto), resolveConfig({}), false));
    else {
      const prepared = await prepare(Model.fromProto(proto), {}, { optimize: false });
      ({ model: q, summary } = await convert(prepared));
    }
    assert.deepEqual(summary.quantized.map((n) => n.name).sort(), ["a_conv", "b_conv"], mode);
    assert.match(summary.float.find((f) => f.name === "a_small")?.reason ?? "", /weight has 16 elements/);
    const ops = allOps(q.proto);
    // convert() leaves the DequantizeLinears (the static file's writer decodes them); the dynamic pass decodes.
    if (mode === "static") assert.equal(ops.DequantizeLinear, 2, "static: one DequantizeLinear per branch");
    else assert.deepEqual([ops.DequantizeLinear, ops.Cast], [undefined, 2], "dynamic: one decode per branch");
    assert.equal(ops.ConvInteger, undefined);
    assert.equal(q.graph.initializer.filter((t) => t.name.startsWith("Wc_quantized")).length, 1, "Wc stored once for both branches");
    assertNamesUnique(q.proto);
    const x = new ort.Tensor("float32", randomFloats(256, 54), [1, 8, 32]);
    const db = await worstSqnr(proto, q.proto, { x, cond: new ort.Tensor("bool", [true], []) });
    assert.ok(db > 35, `${mode}: SQNR ${db.toFixed(1)} dB`);
  }
});

test("static with nothing to observe (every weight in body Convs, weight-only, as silero-vad's): the file is checked on the calibration rows, and data that does not fit the model is refused", async () => {
  const branch = (name: string) => body(name, [makeNode("Conv", ["x", "Wc", "bc"], [`${name}_c`], { name: `${name}_conv`, attributes: [attr.ints("pads", [1, 1])] })], [valueInfo(`${name}_c`, F, [1, 16, 32])]);
  const proto = makeModel(
    [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", branch("a")), attr.graph("else_branch", branch("b"))] })],
    [valueInfo("x", F, [1, 8, 32]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y", F, [1, 16, 32])],
    [makeTensor("Wc", F, [16, 8, 3], randomFloats(384, 61)), makeTensor("bc", F, [16], randomFloats(16, 62))],
  );
  const dir = tempDir("ptq-subgraph-");
  const src = path.join(dir, "conv-if.onnx");
  Model.fromProto(proto).saveSync(src);
  const feeds = (k: number) => ({ x: new ort.Tensor("float32", randomFloats(256, 70 + k), [1, 8, 32]), cond: new ort.Tensor("bool", [k % 2 === 0], []) });
  const summary = await quantizeStatic(src, path.join(dir, "q.onnx"), [0, 1, 2, 3].map(feeds), {}, { optimize: false });
  assert.deepEqual(summary.quantized.map((n) => n.name).sort(), ["a_conv", "b_conv"]);
  assert.equal(summary.outputCheck?.rows, 4, JSON.stringify(summary.outputCheck));
  assert.ok(summary.outputCheck!.outputs[0]!.sqnrDb > 30, JSON.stringify(summary.outputCheck));
  // Before, such data was never read: a file was written from inputs the model cannot take.
  const wrong = [{ x: new ort.Tensor("float32", randomFloats(256, 80), [1, 8, 32]) }];
  await assert.rejects(quantizeStatic(src, path.join(dir, "wrong.onnx"), wrong, {}, { optimize: false }), /calibration batch 1: no data for input "cond"/);
  assert.equal(existsSync(path.join(dir, "wrong.onnx")), false);
});

test("static: a Loop body whose tensors calibration did not observe is quantized dynamically and the summary says so", async () => {
  const proto = loopModel();
  const p = await prepare(Model.fromProto(proto), {}, { optimize: false });
  const main = new Set([...p.model.graph.input.map((v) => v.name), ...p.model.graph.node.flatMap((n) => n.output)]);
  const prepared = { ...p, observe: p.observe.filter((t) => main.has(t)) };
  await calibrate(prepared, [1, 2, 3, 4].map(loopFeeds));
  await release(prepared);
  const { model: q, summary } = await convert(prepared);
  assert.deepEqual(summary.quantized.map((n) => `${n.name}:${n.opType}`), ["in_mm:MatMul", "loop_mm:MatMul"]);
  assert.ok(summary.warnings.some((w) => /1 node\(s\) inside If\/Loop\/Scan bodies were quantized dynamically .*calibration did not reach 1 body graph\(s\) \("loop_body"\)/.test(w)), summary.warnings.join("\n"));
  assert.ok(q.graph.node.some((n) => n.opType === "DequantizeLinear"), "top level: QDQ");
  const loopBody = q.graph.node.find((n) => n.opType === "Loop")!.attribute[0]!.g!;
  assert.deepEqual(loopBody.node.map((n) => n.opType).filter((o) => o.includes("Integer") || o.startsWith("Dynamic")), ["DynamicQuantizeLinear", "MatMulInteger"]);
  assertNamesUnique(q.proto);
  const db = await worstSqnr(proto, q.proto, loopFeeds(99));
  assert.ok(db > 25, `SQNR ${db.toFixed(1)} dB`);
});

test("dynamic: a Loop body's MatMul reading a main-graph weight is quantized", async () => {
  const proto = loopModel();
  const { model: q, summary } = await quantizeDynamicModel(Model.fromProto(proto), resolveConfig({}), false);
  assert.deepEqual(summary.quantized.map((n) => n.name), ["in_mm", "loop_mm"]);
  assert.equal(allOps(q.proto).MatMulInteger, 2);
  assertNamesUnique(q.proto);
  const db = await worstSqnr(proto, q.proto, loopFeeds(98));
  assert.ok(db > 30, `SQNR ${db.toFixed(1)} dB`);
});

/** If(cond): then = bidirectional LSTM (2 directions), else = forward LSTM; all weights main-graph initializers. */
function lstmModel(): ModelProto {
  const [I, H] = [8, 4];
  const lstm = (name: string, dirs: number, w: string, r: string, b: string, out: string, direction: string) =>
    body(name, [makeNode("LSTM", ["x", w, r, b], ["", out], { name: `${name}_lstm`, attributes: [attr.int("hidden_size", H), attr.string("direction", direction)] })], [valueInfo(out, F)]);
  const weights = (suffix: string, dirs: number, seed: number) => [
    makeTensor(`W${suffix}`, F, [dirs, 4 * H, I], randomFloats(dirs * 4 * H * I, seed)),
    makeTensor(`R${suffix}`, F, [dirs, 4 * H, H], randomFloats(dirs * 4 * H * H, seed + 1)),
    makeTensor(`B${suffix}`, F, [dirs, 8 * H], randomFloats(dirs * 8 * H, seed + 2, -0.1, 0.1)),
  ];
  return makeModel(
    [
      makeNode("If", ["cond"], ["y"], {
        name: "if",
        attributes: [attr.graph("then_branch", lstm("bi", 2, "W2", "R2", "B2", "yh_bi", "bidirectional")), attr.graph("else_branch", lstm("fw", 1, "W1", "R1", "B1", "yh_fw", "forward"))],
      }),
    ],
    [valueInfo("x", F, [5, 2, I]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y", F)],
    [...weights("2", 2, 21), ...weights("1", 1, 31)],
  );
}

for (const config of [{}, { weightType: "int8", perChannel: false }] satisfies QConfig[]) {
  test(`dynamic: LSTMs inside If branches become com.microsoft.DynamicQuantizeLSTM (${JSON.stringify(config)})`, async () => {
    const proto = lstmModel();
    const { model: q, summary } = await quantizeDynamicModel(Model.fromProto(proto), resolveConfig(config), false);
    assert.deepEqual(summary.quantized.map((n) => `${n.name}:${n.opType}`).sort(), ["bi_lstm:LSTM", "fw_lstm:LSTM"]);
    const ops = allOps(q.proto);
    assert.equal(ops.DynamicQuantizeLSTM, 2);
    assert.equal(ops.LSTM, undefined);
    assert.ok(q.proto.opsetImport.some((o) => o.domain === "com.microsoft"));
    assertNamesUnique(q.proto);
    const scale = q.graph.initializer.find((t) => t.name === "W2_scale")!;
    assert.deepEqual(scale.dims.map(Number), config.perChannel === false ? [2] : [2, 16], "one scale per direction (and gate row when per-channel)");
    const x = new ort.Tensor("float32", randomFloats(80, 41), [5, 2, 8]);
    for (const cond of [true, false]) {
      const db = await worstSqnr(proto, q.proto, { x, cond: new ort.Tensor("bool", [cond], []) });
      assert.ok(db > 25, `cond ${cond}: SQNR ${db.toFixed(1)} dB`);
    }
  });
}

test("weights only in a body op that is not quantized there (RNN): static and dynamic refuse, name the reason, write nothing", async () => {
  const rnn = (name: string) =>
    body(name, [makeNode("RNN", ["x", "W", "R"], ["", `${name}_h`], { name: `${name}_rnn`, attributes: [attr.int("hidden_size", 4)] })], [valueInfo(`${name}_h`, F)]);
  const proto = makeModel(
    [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", rnn("a")), attr.graph("else_branch", rnn("b"))] })],
    [valueInfo("x", F, [3, 1, 8]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y", F)],
    [makeTensor("W", F, [1, 4, 8], randomFloats(32, 1)), makeTensor("R", F, [1, 4, 4], randomFloats(16, 2))],
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-subgraph-"));
  try {
    const src = path.join(dir, "rnn.onnx");
    Model.fromProto(proto).saveSync(src);
    const out = path.join(dir, "rnn.int8.onnx");
    const why = /rnn\.onnx: no node was quantized: every candidate stayed float \(a_rnn \(RNN\): onnxruntime has no dynamically quantized RNN kernel; b_rnn/;
    await assert.rejects(quantizeDynamic(src, out), why);
    const feeds = [{ x: new ort.Tensor("float32", randomFloats(24, 3), [3, 1, 8]), cond: new ort.Tensor("bool", [true], []) }];
    await assert.rejects(quantizeStatic(src, out, feeds, {}, { optimize: false }), why);
    assert.equal(existsSync(out), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const ifFixture = path.join(FIX, "models", "if_model.onnx");

test("if_model.onnx: the Gemms of both heads (inside If branches) are quantized, static and dynamic, within 1 pp of FP32", { skip: !existsSync(ifFixture) && "fixture missing" }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-subgraph-"));
  try {
    const fp32 = 0.878; // manifest fp32Top1, one image at a time (the branch depends on the batch's mean)
    const staticOut = path.join(dir, "static.onnx");
    const data = openData(path.join(FIX, "data", "calib", "calib.npz"), Model.loadSync(ifFixture).proto, { batchSize: 32 });
    const s = await quantizeStatic(ifFixture, staticOut, data);
    const dynamicOut = path.join(dir, "dynamic.onnx");
    const d = await quantizeDynamic(ifFixture, dynamicOut);
    for (const [name, summary, file] of [["static", s, staticOut], ["dynamic", d, dynamicOut]] as const) {
      const gemms = summary.quantized.filter((n) => n.opType === "Gemm").map((n) => n.name).sort();
      assert.deepEqual(gemms, ["/bright/Gemm", "/dark/0/Gemm", "/dark/2/Gemm"], `${name}: ${JSON.stringify(summary.quantized.map((n) => n.name))}`);
      // Dynamic: MatMulInteger chains. Static: Q/DQ Gemms (a branch calibration reached) or the dynamic fallback.
      const q = Model.loadSync(file).proto;
      forEachGraph(q.graph!, (g) => {
        const dq = new Set(g.node.filter((n) => n.opType === "DequantizeLinear").flatMap((n) => n.output));
        for (const n of g.node.filter((n) => n.opType === "Gemm")) assert.ok(name === "static" && dq.has(n.input[1]!), `${name}: Gemm "${n.name}" has a float weight`);
      });
      const int8 = await top1(file, "input", "logits", 1);
      assert.ok(fp32 - int8 <= 0.01, `${name}: top-1 ${int8} vs FP32 ${fp32}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
