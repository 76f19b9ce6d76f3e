// A constant weight holding NaN/Inf cannot be quantized: its node stays float and the summary says why, for every
// weighted op (MatMul was listed as quantized while its weight stayed float).
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { makeModel, quantizeTiny, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;

test("a MatMul whose constant weight holds NaN stays float and says why", async () => {
  const w = randomFloats(64, 5);
  w[3] = NaN;
  const proto = makeModel([makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })], [valueInfo("x", F, [2, 16])], [valueInfo("y", F, [2, 4])], [makeTensor("W", F, [16, 4], w)]);
  const r = await quantizeTiny(proto, { x: [2, 16] });
  assert.ok(!r.summary.quantized.some((q) => q.name === "mm"), "mm is not listed as quantized");
  assert.match(r.summary.float.find((f) => f.name === "mm")?.reason ?? "", /NaN\/Inf/);
});
