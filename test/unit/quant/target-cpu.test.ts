// The written model depends on QConfig.targetCpu, never on the machine that quantizes: the default ("any") writes
// uint8 weights (U8U8) or 7-bit int8 ones (U8S7), both exact on every CPU, as measured at the outputs
// (test/unit/quant/weight-format); "vnni"/"arm" int8 weights; "native" alone reads this CPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor, readTensor } from "../../../engine/onnx/tensor";
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

/** x[N, 4, 6, 6] → depthwise 3×3 Conv (group 4: each output channel reads one input channel, 9 weights). */
function depthwise() {
  return makeModel(
    [makeNode("Conv", ["x", "W"], ["y"], { name: "dw", attributes: [attr.int("group", 4), attr.ints("pads", [1, 1, 1, 1])] })],
    [valueInfo("x", F, ["N", 4, 6, 6])],
    [valueInfo("y", F, ["N", 4, 6, 6])],
    [makeTensor("W", F, [4, 1, 3, 3], randomFloats(36, 11))],
  );
}

/** The weight W as the file's DequantizeLinear decodes it. */
function decodedWeight(r: Awaited<ReturnType<typeof quantizeTiny>>): number[] {
  const get = (n: string) => r.qdq.graph.initializer.find((i) => i.name === n)!;
  const q = readTensor(get("W_quantized")).data as ArrayLike<number>;
  const s = readTensor(get("W_scale")).data as ArrayLike<number>;
  const z = readTensor(get("W_zero_point")).data as ArrayLike<number>;
  return Array.from(q, (v, i) => (v - z[Math.floor(i / 9)]!) * s[Math.floor(i / 9)]!);
}

test("a depthwise Conv's uint8 weights decode to the int8 file's: the target changes the kernel, not the weights", async () => {
  const portable = await quantizeTiny(depthwise(), { x: [2, 4, 6, 6] }, { weightType: "uint8", protect: false });
  const vnni = await quantizeTiny(depthwise(), { x: [2, 4, 6, 6] }, { targetCpu: "vnni", protect: false });
  assert.equal(weightZeroPointType(portable), DataType.UINT8);
  assert.equal(weightZeroPointType(vnni), DataType.INT8);
  assert.deepEqual(decodedWeight(portable), decodedWeight(vnni));
});
