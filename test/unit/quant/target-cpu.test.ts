// The written model depends on QConfig.targetCpu, never on the machine that quantizes: the default ("any") writes
// uint8 weights (U8U8) or 7-bit int8 ones (U8S7), both exact on every CPU, as measured at the outputs
// (test/unit/quant/weight-format); "vnni"/"arm" int8 weights; "native" alone reads this CPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { signedWeightsSafe } from "../../../engine/quant/cpu";
import { defaultWeightType, resolveConfig } from "../../../engine/quant/types";
import { makeModel, quantizeTiny, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;

function matmul() {
  return makeModel(
    [makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })],
    [valueInfo("x", F, [4, 16])],
    [valueInfo("y", F, [4, 8])],
    [makeTensor("W", F, [16, 8], randomFloats(128, 7))],
  );
}

const weightZeroPointType = (r: Awaited<ReturnType<typeof quantizeTiny>>) => {
  const t = r.qdq.graph.initializer.find((i) => i.name === "W_zero_point");
  assert.ok(t, "the weight has a zero point initializer");
  return t.dataType;
};

test("the default weight type comes from targetCpu, not from /proc/cpuinfo", () => {
  assert.equal(resolveConfig().targetCpu, "any");
  assert.equal(resolveConfig().weightType, "uint8");
  assert.equal(resolveConfig({ targetCpu: "avx2" }).weightType, "uint8");
  assert.equal(resolveConfig({ targetCpu: "vnni" }).weightType, "int8");
  assert.equal(resolveConfig({ targetCpu: "arm" }).weightType, "int8");
  assert.equal(resolveConfig({ targetCpu: "native" }).weightType, signedWeightsSafe() ? "int8" : "uint8");
  assert.equal(resolveConfig({ targetCpu: "vnni", weightType: "uint8" }).weightType, "uint8", "an explicit weightType wins");
  assert.equal(defaultWeightType("any"), "uint8");
  assert.throws(() => resolveConfig({ targetCpu: "avx512" as never }), /targetCpu: "avx512" is not one of any, avx2, vnni, arm, native/);
});

test("targetCpu decides the written weights and the summary says so", async () => {
  const any = await quantizeTiny(matmul(), { x: [4, 16] });
  assert.equal(weightZeroPointType(any), DataType.UINT8);
  const { why, ...weights } = any.summary.weights!;
  assert.deepEqual(weights, { type: "uint8", targetCpu: "any" });
  assert.match(why ?? "", /^weightType auto chose uint8 \(U8U8\)/, "7 bits measurably cost this MatMul");
  const vnni = await quantizeTiny(matmul(), { x: [4, 16] }, { targetCpu: "vnni" });
  assert.equal(weightZeroPointType(vnni), DataType.INT8);
  assert.deepEqual(vnni.summary.weights, { type: "int8", targetCpu: "vnni" });
});
