// reduceRange = 7-bit weights only, as onnxruntime's reduce_range: the u8×s8 saturation it exists for (x86 without
// VNNI) comes from the weight's magnitude, so activations keep their full 8 bits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { readTensor } from "../../../engine/onnx/tensor";
import { makeTensor } from "../../../engine/onnx/tensor";
import { makeModel, quantizeTiny, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;

function convRelu() {
  const w = (name: string, dims: number[], seed: number) => makeTensor(name, F, dims, randomFloats(dims.reduce((a, b) => a * b, 1), seed, -0.5, 0.5));
  return makeModel(
    [
      makeNode("Conv", ["x", "W", "B"], ["c1"], { name: "conv1", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
      makeNode("Relu", ["c1"], ["y"], { name: "relu" }),
    ],
    [valueInfo("x", F, [1, 8, 8, 8])],
    [valueInfo("y", F, [1, 16, 8, 8])],
    [w("W", [16, 8, 3, 3], 1), w("B", [16], 2)],
  );
}

const init = (r: Awaited<ReturnType<typeof quantizeTiny>>, name: string) => {
  const t = r.qdq.graph.initializer.find((i) => i.name === name);
  assert.ok(t, `initializer ${name}`);
  return Array.from(readTensor(t).data as ArrayLike<number>);
};

test("reduceRange: int8 weights within [-64, 64], activations keep 8 bits, Relu still folded, QLinearConv", async () => {
  const full = await quantizeTiny(convRelu(), { x: [1, 8, 8, 8] }, { weightType: "int8" });
  const r = await quantizeTiny(convRelu(), { x: [1, 8, 8, 8] }, { weightType: "int8", reduceRange: true });
  const wq = init(r, "W_quantized");
  assert.ok(Math.max(...wq.map(Math.abs)) === 64, "per-channel symmetric 7-bit weights reach ±64");
  assert.ok(Math.max(...init(full, "W_quantized").map(Math.abs)) === 127);
  // The activation parameters are exactly those of the full-range run: 8-bit, zero point 0 for x in [-1, 1) → not 0.
  for (const t of ["x_scale", "x_zero_point", "y_scale", "y_zero_point"]) assert.deepEqual(init(r, t), init(full, t), t);
  assert.equal(init(r, "y_zero_point")[0], 0, "Relu output uses the whole uint8 range from 0");
  assert.deepEqual(r.summary.foldedActivations, ["relu"]);
  assert.equal(r.fused.QLinearConv, 1);
  assert.ok(r.sqnr > 25, `SQNR ${r.sqnr}`);
});
