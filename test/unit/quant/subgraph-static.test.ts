// Static Q/DQ inside If/Loop bodies: calibration observes the bodies' tensors (threaded out to the main graph),
// each body is annotated as the top level is (seeing the enclosing graphs' weights) and rewritten with Q/DQ; a body
// calibration never reached (a branch not taken) falls back to the dynamic pass; Conv and LSTM stay dynamic unless
// QConfig.opTypes names Conv.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ModelProto } from "onnx-buf";
import * as ort from "onnxruntime-node";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { calibrate, convert, prepare, release, type PreparedModel, type QConfig } from "../../../engine/quant/index";
import { bodyObservations } from "../../../engine/quant/subgraph";
import { decodeUnfusedWeights } from "../../../engine/quant/unfused-weights";
import { makeModel, randomFloats, valueInfo } from "./build";
import { assertNamesUnique, body, loopFeeds, loopModel, matmul, opsByGraph, worstSqnr } from "./subgraph-check";

const F = DataType.FLOAT;

/** prepare() with the bodies' tensors added to what calibration observes (what prepare() itself lists once wired). */
async function prepareWithBodies(proto: ModelProto, config: QConfig = {}): Promise<PreparedModel> {
  const p = await prepare(Model.fromProto(proto), config, { optimize: false });
  return { ...p, observe: [...new Set([...p.observe, ...bodyObservations(p.model.graph, p.config)])] };
}

/**
 * If(cond): then = MatMul(x, W) → Relu → nested If(cond2) { MatMul(·, W_inner) } else { Sigmoid };
 * else = Gemm(x, W, bias) → Add(x·W-shaped residual). W is a main-graph initializer both branches read.
 */
function ifModel(): ModelProto {
  const then2 = body("then2", [makeNode("MatMul", ["t1r", "W_inner"], ["t2"], { name: "inner_mm" })], [valueInfo("t2", F, [4, 8])], [makeTensor("W_inner", F, [8, 8], randomFloats(64, 3))]);
  const else2 = body("else2", [makeNode("Sigmoid", ["t1r"], ["t3"], { name: "inner_sigmoid" })], [valueInfo("t3", F, [4, 8])]);
  const thenB = body(
    "then",
    [
      makeNode("MatMul", ["x", "W"], ["t1"], { name: "then_mm" }),
      makeNode("Relu", ["t1"], ["t1r"], { name: "then_relu" }),
      makeNode("If", ["cond2"], ["then_out"], { name: "if2", attributes: [attr.graph("then_branch", then2), attr.graph("else_branch", else2)] }),
    ],
    [valueInfo("then_out", F, [4, 8])],
  );
  const elseB = body(
    "else",
    [makeNode("Gemm", ["x", "W", "bias"], ["e1"], { name: "else_gemm" }), makeNode("Add", ["e1", "e1"], ["else_out"], { name: "else_add" })],
    [valueInfo("else_out", F, [4, 8])],
    [makeTensor("bias", F, [8], randomFloats(8, 4))],
  );
  return makeModel(
    [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", thenB), attr.graph("else_branch", elseB)] })],
    [valueInfo("x", F, [4, 16]), valueInfo("cond", DataType.BOOL, []), valueInfo("cond2", DataType.BOOL, [])],
    [valueInfo("y", F, [4, 8])],
    [makeTensor("W", F, [16, 8], randomFloats(128, 1))],
  );
}

const ifFeeds = (seed: number, c1: boolean, c2: boolean) => ({
  x: new ort.Tensor("float32", randomFloats(64, seed), [4, 16]),
  cond: new ort.Tensor("bool", [c1], []),
  cond2: new ort.Tensor("bool", [c2], []),
});
const EVERY_BRANCH = [[true, true], [true, false], [false, false]] as const;

test("static: tensors inside If branches (nested too) are observed and get Q/DQ there; every branch close to float", async () => {
  const proto = ifModel();
  const prepared = await prepareWithBodies(proto);
  // The Relu folds into the Q of its output (t1r); MatMul/Gemm outputs get no Q of their own.
  for (const t of ["t1r", "e1", "else_out"]) assert.ok(prepared.observe.includes(t), `${t} is observed: ${prepared.observe.join(", ")}`);
  await calibrate(prepared, [1, 2, 3, 4, 5, 6].map((s, i) => ifFeeds(s, i % 3 !== 2, i % 3 === 0)));
  await release(prepared);
  for (const t of ["t1r", "e1", "else_out"]) assert.ok(prepared.ranges.has(t), `calibrated range of ${t}`);
  const { model: q, summary } = await convert(prepared);
  const ops = opsByGraph(q.proto);
  for (const g of ["then", "then2", "else"]) {
    assert.ok((ops[g]!.QuantizeLinear ?? 0) > 0 && (ops[g]!.DequantizeLinear ?? 0) > 0, `Q/DQ inside "${g}": ${JSON.stringify(ops[g])}`);
    assert.equal(ops[g]!.DynamicQuantizeLinear, undefined, `"${g}" is not dynamic`);
  }
  assert.deepEqual(summary.quantized.map((n) => n.name).sort(), ["else_add", "else_gemm", "inner_mm", "then_mm"]);
  assert.ok(!summary.warnings.some((w) => /quantized dynamically/.test(w)), summary.warnings.join("\n"));
  // Each branch was taken on some of the 6 runs only (then 4, its nested then2 2, else 2). What counts is where the
  // ranges a body uses come from: else's own tensors (2 runs); then2's MatMul reads t1r, which then computed on 4;
  // then's MatMul reads x, seen on every run.
  assert.deepEqual(prepared.ranges.get("e1")?.reached, { runs: 2, of: 6 });
  assert.equal(prepared.ranges.get("x")?.reached, undefined, "a main-graph tensor is in every run");
  const coverage = [...(summary.bodyCoverage ?? [])].sort((a, b) => a.body.localeCompare(b.body));
  assert.deepEqual(coverage, [
    { body: 'the else_branch of If node "if" (graph "else")', runs: 2, of: 6 },
    { body: 'the then_branch of If node "if2" (graph "then2")', runs: 4, of: 6 },
  ]);
  assert.ok(summary.warnings.some((w) => w.startsWith('the else_branch of If node "if" (graph "else") quantizes activations calibration saw on 2 of its 6 runs only')), summary.warnings.join("\n"));
  assert.equal(q.graph.initializer.filter((t) => t.name.startsWith("W_quantized")).length, 1, "W stored once, in the main graph, for both branches");
  assert.ok(!q.graph.initializer.some((t) => t.name === "W"), "the float W is gone");
  assertNamesUnique(q.proto);
  for (const [c1, c2] of EVERY_BRANCH) {
    const db = await worstSqnr(proto, q.proto, ifFeeds(99, c1, c2));
    assert.ok(db > 30, `cond ${c1}/${c2}: SQNR ${db.toFixed(1)} dB`);
  }
});

test("static: a branch calibration never took is quantized dynamically, and the summary says which", async () => {
  const proto = ifModel();
  const prepared = await prepareWithBodies(proto);
  await calibrate(prepared, [1, 2, 3, 4].map((s) => ifFeeds(s, true, true))); // never the else branches
  await release(prepared);
  assert.equal(prepared.ranges.has("e1"), false);
  const { model: q, summary } = await convert(prepared);
  const ops = opsByGraph(q.proto);
  assert.ok((ops.then!.QuantizeLinear ?? 0) > 0 && (ops.then2!.QuantizeLinear ?? 0) > 0, "the branches taken: Q/DQ");
  assert.equal(ops.else!.QuantizeLinear, undefined);
  assert.equal(ops.else!.MatMulInteger, 1, `the else branch: dynamic ${JSON.stringify(ops.else)}`);
  assert.ok(summary.warnings.some((w) => /1 node\(s\) inside If\/Loop\/Scan bodies were quantized dynamically .*: calibration did not reach 1 body graph\(s\) \("else"\)/.test(w)), summary.warnings.join("\n"));
  assert.equal(summary.bodyCoverage, undefined, "the branches taken were taken on every run");
  assertNamesUnique(q.proto);
  for (const [c1, c2] of EVERY_BRANCH) {
    const db = await worstSqnr(proto, q.proto, ifFeeds(98, c1, c2));
    assert.ok(db > 30, `cond ${c1}/${c2}: SQNR ${db.toFixed(1)} dB`);
  }
});

test("static: a Loop body's MatMul gets Q/DQ from the carried state's range over every iteration", async () => {
  const proto = loopModel();
  const prepared = await prepareWithBodies(proto, { calibration: { method: "minmax" } });
  assert.ok(prepared.observe.includes("h_in"), `the carried state is observed: ${prepared.observe.join(", ")}`);
  await calibrate(prepared, [1, 2, 3, 4].map(loopFeeds));
  await release(prepared);
  // h_in is h0 = x·W_in in the first iteration (beyond ±1 here) and a Tanh output after: its range is h0's.
  const h0 = [1, 2, 3, 4].flatMap((seed) => [...(matmul(randomFloats(64, seed), randomFloats(128, 11), 4, 16, 8))]);
  const h = prepared.ranges.get("h_in")!;
  assert.ok(Math.abs(h.min - Math.min(...h0)) < 1e-4 && Math.abs(h.max - Math.max(...h0)) < 1e-4, `h_in ${JSON.stringify(h)} vs h0 [${Math.min(...h0)}, ${Math.max(...h0)}]`);
  const { model: q, summary } = await convert(prepared);
  assert.deepEqual(summary.quantized.map((n) => n.name).sort(), ["in_mm", "loop_mm"], "the Add before the float Tanh stays float, as at the top level");
  const ops = opsByGraph(q.proto).loop_body!;
  assert.ok((ops.QuantizeLinear ?? 0) >= 1 && (ops.DequantizeLinear ?? 0) >= 2, JSON.stringify(ops));
  assert.equal(ops.DynamicQuantizeLinear, undefined);
  assertNamesUnique(q.proto);
  const db = await worstSqnr(proto, q.proto, loopFeeds(97));
  assert.ok(db > 25, `SQNR ${db.toFixed(1)} dB`);
});

/** If(cond) { Conv(x, Wc, bc) → Relu } else { Conv(x, Wc, bc) → Sigmoid }: both branches read Wc from the main graph. */
function convIfModel(): ModelProto {
  const branch = (name: string, act: string) =>
    body(
      name,
      [
        makeNode("Conv", ["x", "Wc", "bc"], [`${name}_c`], { name: `${name}_conv`, attributes: [attr.ints("pads", [1, 1])] }),
        makeNode(act, [`${name}_c`], [`${name}_out`], { name: `${name}_act` }),
      ],
      [valueInfo(`${name}_out`, F, [1, 16, 32])],
    );
  return makeModel(
    [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", branch("a", "Relu")), attr.graph("else_branch", branch("b", "Sigmoid"))] })],
    [valueInfo("x", F, [1, 8, 32]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y", F, [1, 16, 32])],
    [makeTensor("Wc", F, [16, 8, 3], randomFloats(384, 51)), makeTensor("bc", F, [16], randomFloats(16, 52))],
  );
}

const convFeeds = (seed: number, c: boolean) => ({ x: new ort.Tensor("float32", randomFloats(256, seed), [1, 8, 32]), cond: new ort.Tensor("bool", [c], []) });

for (const config of [{}, { opTypes: ["Conv", "Relu", "Sigmoid"] }] satisfies QConfig[]) {
  const named = config.opTypes !== undefined;
  test(`static, body Convs ${named ? "named in opTypes: Q/DQ (QLinearConv)" : "by default: int8 weight behind a DequantizeLinear"}`, async () => {
    const proto = convIfModel();
    const prepared = await prepareWithBodies(proto, config);
    await calibrate(prepared, [1, 2, 3, 4].map((s) => convFeeds(s, s % 2 === 0)));
    await release(prepared);
    const { model: q, summary } = await convert(prepared);
    const ops = opsByGraph(q.proto);
    assert.deepEqual(summary.quantized.filter((n) => n.opType === "Conv").map((n) => n.name).sort(), ["a_conv", "b_conv"]);
    for (const g of ["a", "b"]) {
      if (named) assert.ok((ops[g]!.QuantizeLinear ?? 0) >= 1 && ops[g]!.DequantizeLinear! >= 3, `"${g}": ${JSON.stringify(ops[g])}`);
      else assert.deepEqual([ops[g]!.QuantizeLinear, ops[g]!.DequantizeLinear], [undefined, 1], `"${g}": ${JSON.stringify(ops[g])}`);
    }
    const dynamicWarning = summary.warnings.some((w) => /Conv inside bodies is quantized dynamically unless QConfig.opTypes names it/.test(w));
    assert.equal(dynamicWarning, !named, summary.warnings.join("\n"));
    assertNamesUnique(q.proto);
    for (const c of [true, false]) {
      const db = await worstSqnr(proto, q.proto, convFeeds(77, c));
      assert.ok(db > 30, `cond ${c}: SQNR ${db.toFixed(1)} dB`);
    }
    if (named) return;
    // As written to a file: the weight-only body Convs read their weights through Cast/Mul (engine/quant/unfused-weights),
    // which onnxruntime folds at load, with the same outputs.
    const decoded = q.clone();
    assert.equal(decodeUnfusedWeights(decoded), 2);
    const after = opsByGraph(decoded.proto);
    for (const g of ["a", "b"]) assert.deepEqual([after[g]!.DequantizeLinear, after[g]!.Cast, after[g]!.Mul], [undefined, 1, 1], `"${g}": ${JSON.stringify(after[g])}`);
    assertNamesUnique(decoded.proto);
    const run = async (m: Model, feeds: ReturnType<typeof convFeeds>) => {
      const s = await ort.InferenceSession.create(m.toBytes());
      try {
        return (await s.run(feeds)).y!.data as Float32Array;
      } finally {
        await s.release();
      }
    };
    for (const c of [true, false]) assert.deepEqual(await run(decoded, convFeeds(78, c)), await run(q, convFeeds(78, c)), `cond ${c}`);
  });
}

test("a Transpose of a quantized tensor that an If branch reads: onnxruntime loads the model with its optimizations", async () => {
  // onnxruntime's QDQPropagation moved the DequantizeLinear past the Transpose and aborted the process on the
  // branch's implicit input (silero-vad's LSTM If); the Transpose now reads the float tensor.
  const branch = (name: string, w: string) => body(name, [makeNode("MatMul", ["xt", w], [`${name}_y`], { name: `${name}_mm` })], [valueInfo(`${name}_y`, F, [16, 8])]);
  const proto = makeModel(
    [
      makeNode("MatMul", ["x", "W"], ["y1"], { name: "top_mm" }),
      makeNode("Transpose", ["x"], ["xt"], { name: "top_transpose" }),
      makeNode("Transpose", ["x"], ["xt2"], { name: "top_transpose2" }),
      makeNode("If", ["cond"], ["y2"], { name: "if", attributes: [attr.graph("then_branch", branch("a", "W3")), attr.graph("else_branch", branch("b", "W4"))] }),
      makeNode("Identity", ["xt2"], ["y3"], { name: "keep_xt2" }),
    ],
    [valueInfo("x", F, [4, 16]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y1", F, [4, 8]), valueInfo("y2", F, [16, 8]), valueInfo("y3", F, [16, 4])],
    [makeTensor("W", F, [16, 8], randomFloats(128, 61)), makeTensor("W3", F, [4, 8], randomFloats(32, 62)), makeTensor("W4", F, [4, 8], randomFloats(32, 63))],
  );
  const feeds = (seed: number, c: boolean) => ({ x: new ort.Tensor("float32", randomFloats(64, seed), [4, 16]), cond: new ort.Tensor("bool", [c], []) });
  const prepared = await prepareWithBodies(proto);
  await calibrate(prepared, [1, 2, 3, 4].map((s) => feeds(s, s % 2 === 0)));
  await release(prepared);
  const { model: q } = await convert(prepared);
  for (const c of [true, false]) {
    const db = await worstSqnr(proto, q.proto, feeds(60, c));
    assert.ok(db > 30, `cond ${c}: SQNR ${db.toFixed(1)} dB`);
  }
  const transpose = q.graph.node.find((n) => n.name === "top_transpose")!;
  assert.notEqual(q.graph.node.find((n) => n.output.includes(transpose.input[0]!))?.opType, "DequantizeLinear", "the Transpose reads the float x");
});
