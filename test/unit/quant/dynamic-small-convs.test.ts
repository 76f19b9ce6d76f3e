// Dynamic mode leaves the model's smallest Convs float (engine/quant/dynamic SMALL_CONV_SHARE): smallest first, within
// a share of every weighted node's weight elements; the others are stored int8 as before. Static mode does the same
// for the Convs inside If/Loop/Scan bodies (weight-only there too); its top-level Convs keep Q/DQ.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ModelProto } from "onnx-buf";
import * as ort from "onnxruntime-node";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { SMALL_CONV_SHARE, smallestConvs } from "../../../engine/quant/dynamic";
import { calibrate, convert, prepare, quantizeDynamicModel, release, resolveConfig, type QConfig } from "../../../engine/quant/index";
import { bodyObservations } from "../../../engine/quant/subgraph";
import { GraphScope } from "../../../engine/quant/subgraph";
import { init, model, rand } from "../recovery/build";
import { makeModel, randomFloats, valueInfo } from "./build";
import { body, opsByGraph, worstSqnr } from "./subgraph-check";

/** x [1, 4, 8, 8] → Conv "a" (8×4×3×3: 288 weights) → Conv "b" (16×8×3×3: 1152) → depthwise Conv "dw" (16×1×3×3:
 *  144) → Flatten → MatMul "fc" (1024 × `fcOut`). */
function net(fcOut: number): Model {
  const nodes = [
    makeNode("Conv", ["x", "wa", "ba"], ["ya"], { name: "a", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
    makeNode("Conv", ["ya", "wb", "bb"], ["yb"], { name: "b", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
    makeNode("Conv", ["yb", "wd", "bd"], ["yd"], { name: "dw", attributes: [attr.int("group", 16), attr.ints("pads", [1, 1, 1, 1])] }),
    makeNode("Flatten", ["yd"], ["flat"], { name: "flatten" }),
    makeNode("MatMul", ["flat", "wf"], ["y"], { name: "fc" }),
  ];
  const inits = [
    init("wa", [8, 4, 3, 3], rand(288, 1)),
    init("ba", [8], rand(8, 2)),
    init("wb", [16, 8, 3, 3], rand(1152, 3)),
    init("bb", [16], rand(16, 4)),
    init("wd", [16, 1, 3, 3], rand(144, 5)),
    init("bd", [16], rand(16, 6)),
    init("wf", [1024, fcOut], rand(1024 * fcOut, 7)),
  ];
  return model(nodes, ["x", [1, 4, 8, 8]], ["y", [1, fcOut]], inits);
}

test("the smallest Convs within the share stay float, smallest first; larger ones are stored int8", async () => {
  // Weights: 288 + 1152 + 144 + 1024·100 = 103 984; the share's budget 1040: "dw" (144) and "a" (288), not "b" (1152).
  assert.equal(SMALL_CONV_SHARE, 0.01, "the figures below are for a 1 % share");
  const m = net(100);
  const small = smallestConvs(new GraphScope(m.graph));
  const names = new Set([...small.weights].map((t) => t.name));
  assert.deepEqual([...names].sort(), ["wa", "wd"]);
  assert.ok(Math.abs(small.share - 432 / 103984) < 1e-9);
  assert.ok(small.share <= SMALL_CONV_SHARE);

  const { summary } = await quantizeDynamicModel(m, resolveConfig(), false);
  const float = new Map(summary.float.map((f) => [f.name, f.reason]));
  assert.match(float.get("a") ?? "", /one of the model's smallest Convs \(288 weights; .*0\.42 % of its weights\)/);
  assert.match(float.get("dw") ?? "", /smallest Convs \(144 weights/);
  const quantized = new Set(summary.quantized.map((q) => q.name));
  assert.ok(quantized.has("b") && quantized.has("fc"), `b and fc quantized: ${[...quantized]}`);
});

test("a model whose Convs hold most of its weights keeps them all int8 (beyond the 128-weight floor)", async () => {
  // With a 1024 × 1 MatMul the total is 2608: the share's budget (26) fits no Conv.
  const m = net(1);
  assert.equal(smallestConvs(new GraphScope(m.graph)).weights.size, 0);
  const { summary } = await quantizeDynamicModel(m, resolveConfig(), false);
  const quantized = new Set(summary.quantized.map((q) => q.name));
  for (const n of ["a", "b", "dw"]) assert.ok(quantized.has(n), `${n} quantized`);
});

/**
 * x [1, 8, 32] → Conv "m_conv" (Wm 8×8×3: 192 weights) → If(cond) { Conv "a_conv" (Wc 16×8×3: 384) → Relu } else
 * { Conv "b_conv" (Wc) → Sigmoid } → MatMul "fc" (32 × 2048: 65 536). The share's budget, 1 % of 66 112, is 661.
 */
function convInIf(): ModelProto {
  const F = DataType.FLOAT;
  const branch = (name: string, act: string) =>
    body(
      name,
      [
        makeNode("Conv", ["y0", "Wc", "bc"], [`${name}_c`], { name: `${name}_conv`, attributes: [attr.ints("pads", [1, 1])] }),
        makeNode(act, [`${name}_c`], [`${name}_out`], { name: `${name}_act` }),
      ],
      [valueInfo(`${name}_out`, F, [1, 16, 32])],
    );
  return makeModel(
    [
      makeNode("Conv", ["x", "Wm", "bm"], ["y0"], { name: "m_conv", attributes: [attr.ints("pads", [1, 1])] }),
      makeNode("If", ["cond"], ["y1"], { name: "if", attributes: [attr.graph("then_branch", branch("a", "Relu")), attr.graph("else_branch", branch("b", "Sigmoid"))] }),
      makeNode("MatMul", ["y1", "Wf"], ["y"], { name: "fc" }),
    ],
    [valueInfo("x", F, [1, 8, 32]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y", F, [1, 16, 2048])],
    [
      makeTensor("Wm", F, [8, 8, 3], randomFloats(192, 61)),
      makeTensor("bm", F, [8], randomFloats(8, 62)),
      makeTensor("Wc", F, [16, 8, 3], randomFloats(384, 63)),
      makeTensor("bc", F, [16], randomFloats(16, 64)),
      makeTensor("Wf", F, [32, 2048], randomFloats(65536, 65, -0.1, 0.1)),
    ],
  );
}

const ifFeeds = (seed: number, c: boolean) => ({ x: new ort.Tensor("float32", randomFloats(256, seed), [1, 8, 32]), cond: new ort.Tensor("bool", [c], []) });

test("static mode: the smallest Convs inside bodies (weight-only, run in float) stay float; top-level Convs keep Q/DQ", async () => {
  const proto = convInIf();
  // Dynamic mode ranks every Conv: Wm (192) and Wc (384) fit the budget together.
  const all = smallestConvs(new GraphScope(Model.fromProto(proto).graph));
  assert.deepEqual([...all.weights].map((t) => t.name).sort(), ["Wc", "Wm"]);
  // Static mode's top-level Convs become QLinearConv: only the body's are candidates (their weights still count).
  const bodies = smallestConvs(new GraphScope(Model.fromProto(proto).graph), { bodiesOnly: true });
  assert.deepEqual([...bodies.weights].map((t) => t.name), ["Wc"]);
  assert.ok(Math.abs(bodies.share - 384 / 66112) < 1e-9);

  // prepare()'s list with the bodies' tensors, as test/unit/quant/subgraph-static.test.ts adds them.
  const p = await prepare(Model.fromProto(proto), {}, { optimize: false });
  const prepared = { ...p, observe: [...new Set([...p.observe, ...bodyObservations(p.model.graph, p.config)])] };
  await calibrate(prepared, [1, 2, 3, 4].map((s) => ifFeeds(s, s % 2 === 0)));
  await release(prepared);
  const { model: q, summary } = await convert(prepared);
  const float = new Map(summary.float.map((f) => [f.name, f.reason]));
  for (const n of ["a_conv", "b_conv"]) assert.match(float.get(n) ?? "", /one of the model's smallest Convs \(384 weights; .*0\.58 % of its weights\)/, n);
  const quantized = new Set(summary.quantized.map((n) => n.name));
  assert.ok(quantized.has("m_conv") && quantized.has("fc"), `m_conv and fc quantized: ${[...quantized]}`);
  const ops = opsByGraph(q.proto);
  for (const g of ["a", "b"]) assert.equal(ops[g]!.DequantizeLinear, undefined, `"${g}" reads Wc float: ${JSON.stringify(ops[g])}`);
  assert.ok(q.graph.initializer.some((t) => t.name === "Wc" && t.dataType === DataType.FLOAT), "Wc kept float");
  for (const c of [true, false]) {
    const db = await worstSqnr(proto, q.proto, ifFeeds(77, c));
    assert.ok(db > 25, `cond ${c}: SQNR ${db.toFixed(1)} dB`);
  }
});

/**
 * x [1, 4, 8, 8] → Sigmoid → Conv "a" (8×4×3×3: 288 weights) → Conv "b" (8×8×3×3: 576) and Conv "c" (576) → Add → Flatten →
 * MatMul "fc" (512 × 64: 32 768). The share's budget, 1 % of 34 208, is 342.
 */
function forkNet(): Model {
  const pads = [attr.ints("pads", [1, 1, 1, 1])];
  const nodes = [
    makeNode("Sigmoid", ["x"], ["xs"], { name: "sigmoid" }),
    makeNode("Conv", ["xs", "wa", "ba"], ["ya"], { name: "a", attributes: pads }),
    makeNode("Conv", ["ya", "wb", "bb"], ["yb"], { name: "b", attributes: pads }),
    makeNode("Conv", ["ya", "wc", "bc"], ["yc"], { name: "c", attributes: pads }),
    makeNode("Add", ["yb", "yc"], ["sum"], { name: "add" }),
    makeNode("Flatten", ["sum"], ["flat"], { name: "flatten" }),
    makeNode("MatMul", ["flat", "wf"], ["y"], { name: "fc" }),
  ];
  const inits = [
    init("wa", [8, 4, 3, 3], rand(288, 11)),
    init("ba", [8], rand(8, 12)),
    init("wb", [8, 8, 3, 3], rand(576, 13)),
    init("bb", [8], rand(8, 14)),
    init("wc", [8, 8, 3, 3], rand(576, 15)),
    init("bc", [8], rand(8, 16)),
    init("wf", [512, 64], rand(32768, 17)),
  ];
  return model(nodes, ["x", [1, 4, 8, 8]], ["y", [1, 64]], inits);
}

const forkFeeds = (seed: number) => ({ x: new ort.Tensor("float32", randomFloats(256, seed), [1, 4, 8, 8]) });

/** forkNet prepared with `config`, calibrated, "a"'s input widened to 16 bits when `wideInput` (as calibration.wideActivations would). */
async function forkConverted(config: QConfig, wideInput: boolean) {
  const prepared = await prepare(forkNet(), config, { optimize: false });
  await calibrate(prepared, [1, 2, 3, 4].map(forkFeeds));
  await release(prepared);
  if (wideInput) prepared.wide = { tensors: ["xs"], why: "widened by the test" };
  return convert(prepared);
}

test("static mode: a small top-level Conv onnxruntime runs in float (a widened input, written as a Clip) keeps its float weights", async () => {
  const { model: q, summary } = await forkConverted({}, true);
  const float = new Map(summary.float.map((f) => [f.name, f.reason]));
  assert.match(float.get("a") ?? "", /one of the model's smallest Convs \(288 weights; .*0\.84 % of its weights\): onnxruntime runs this Conv in float/);
  const quantized = new Set(summary.quantized.map((n) => n.name));
  assert.ok(quantized.has("b") && quantized.has("c") && quantized.has("fc") && !quantized.has("a"), `b, c and fc quantized, a not: ${[...quantized]}`);
  const made = new Map(q.graph.node.flatMap((n) => n.output.map((o) => [o, n])));
  const a = q.graph.node.find((n) => n.name === "a")!;
  assert.deepEqual(a.input.slice(1), ["wa", "ba"], "a reads its float weight and bias");
  assert.equal(made.get(a.input[0]!)?.opType, "Clip", "and the widened input's Clip, as before");
  const inits = new Map(q.graph.initializer.map((t) => [t.name, t]));
  assert.equal(inits.get("wa")?.dataType, DataType.FLOAT);
  assert.equal(inits.get("ba")?.dataType, DataType.FLOAT);
  // Nothing left of a's int8 weight or int32 bias: no DequantizeLinear, no codes.
  assert.ok(!q.graph.node.some((n) => n.opType === "DequantizeLinear" && (n.input[0] === "wa_quantized" || n.input[0] === "ba_quantized")));
  assert.ok(!inits.has("wa_quantized") && !inits.has("ba_quantized"), [...inits.keys()].join(", "));
  // "c" is fused (QLinearConv): its weight stays int8 behind its DequantizeLinear.
  const c = q.graph.node.find((n) => n.name === "c")!;
  assert.equal(made.get(c.input[1]!)?.opType, "DequantizeLinear");
  const db = await worstSqnr(forkNet().proto, q.proto, forkFeeds(99));
  assert.ok(db > 25, `SQNR ${db.toFixed(1)} dB`);
});

test("static mode: a small Conv run in float beside an 8-bit DequantizeLinear input keeps its int8 weight; so does one given a type", async () => {
  // "b" excluded: a float Conv reads "a"'s float output beside the Q "c" reads, so "a" cannot fuse. With a float weight
  // beside its DequantizeLinear input onnxruntime would quantize that weight itself, per tensor: "a" stays as it was.
  const excluded = await forkConverted({ exclude: ["b"] }, false);
  assert.ok(excluded.summary.quantized.some((n) => n.name === "a"), "a keeps its int8 weight");
  assert.ok(!excluded.summary.float.some((f) => /smallest Convs/.test(f.reason)), excluded.summary.float.map((f) => f.reason).join("\n"));
  // The same widened input given by a user (an override, not calibration's widening): "a" stays as asked.
  const asked = await forkConverted({ overrides: { xs: { type: "uint16" } } }, false);
  assert.ok(asked.summary.quantized.some((n) => n.name === "a"), "a keeps its int8 weight");
  const a = asked.model.graph.node.find((n) => n.name === "a")!;
  assert.equal(asked.model.graph.node.find((n) => n.output.includes(a.input[1]!))?.opType, "DequantizeLinear");
});
