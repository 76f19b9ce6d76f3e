// A causal attention mask adds -Inf before Softmax. Quantizing that sum clamps -Inf to the range minimum and lets
// masked positions leak into attention; convert() must keep such tensors in float and say so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType, Model, attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../../../engine/onnx";
import { calibrate, convert, prepare, release } from "../../../engine/quant";
import { createSession } from "../../../engine/runtime/session";
import { sqnr } from "../../../engine/quant/math";

const T = 8;

function maskedAttention(): Model {
  const mask = Float32Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -Infinity : 0));
  const v = Float32Array.from({ length: T * T }, (_, i) => Math.sin(i) * 0.5);
  const g = makeGraph(
    "masked_attention",
    [
      makeNode("Add", ["scores", "mask"], ["masked"], { name: "add_mask" }),
      makeNode("Softmax", ["masked"], ["probs"], { name: "softmax", attributes: [attr.int("axis", -1)] }),
      makeNode("MatMul", ["probs", "V"], ["y"], { name: "attend" }),
    ],
    [makeValueInfo("scores", DataType.FLOAT, ["batch", T, T])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", T, T])],
    { initializers: [makeTensor("mask", DataType.FLOAT, [T, T], mask), makeTensor("V", DataType.FLOAT, [T, T], v)] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
}

function batch(seed: number) {
  let s = seed;
  const data = Float32Array.from({ length: 4 * T * T }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 12 - 6);
  return { scores: { data, dims: [4, T, T] } };
}

test("tensors with -Inf from calibration stay float, the rest is quantized, and the output stays close", async () => {
  const float = maskedAttention();
  const prepared = await prepare(float, {}, { optimize: false });
  await calibrate(prepared, [batch(1), batch(2), batch(3)]);
  await release(prepared);
  assert.ok(prepared.ranges.get("masked")?.nonFinite, "calibration counted the -Inf values of the masked scores");
  const { model: q, summary } = await convert(prepared);
  const producer = q.graph.node.find((n) => n.output.includes("masked"))!;
  assert.equal(producer.opType, "Add", "the masked scores are not replaced by a DequantizeLinear output");
  assert.ok(q.graph.node.some((n) => n.opType === "QuantizeLinear"), "other tensors are still quantized");
  assert.ok(summary.warnings.some((w) => /kept "masked" in float: calibration saw NaN\/±Inf/.test(w)));
  const feeds = batch(9);
  const run = async (m: Model) => {
    const s = await createSession(m.toBytes(), { threads: 1 });
    try {
      return (await s.run(feeds)).y.data as Float32Array;
    } finally {
      await s.dispose();
    }
  };
  const db = sqnr(await run(float), await run(q));
  assert.ok(db > 25, `output SQNR ${db.toFixed(1)} dB`);
});
