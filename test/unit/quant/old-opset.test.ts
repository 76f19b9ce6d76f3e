// Real exports come at opsets 7–12 (paddle2onnx, tf2onnx 1.x, old torch). Every path upgrades such a model with our
// own upgrader where it needs a newer opset, says so, and writes a model onnxruntime runs: static, dynamic and FP4 on
// an opset-9 model with Slice (whose inputs became tensors at 10), which used to be refused or written broken.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { lowBitModel } from "../../../engine/lowbit/index";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { quantizeDynamicModel } from "../../../engine/quant/dynamic";
import { resolveConfig } from "../../../engine/quant/types";
import { makeModel, quantizeTiny, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;

/** x[2,64] → MatMul(W[64,64]) → Slice (opset-9 attributes: the first 32 columns) → Relu → y[2,32], opset 9. */
function opset9Slice() {
  return makeModel(
    [
      makeNode("MatMul", ["x", "W"], ["h"], { name: "mm" }),
      makeNode("Slice", ["h"], ["s"], { name: "slice", attributes: [attr.ints("starts", [0]), attr.ints("ends", [32]), attr.ints("axes", [1])] }),
      makeNode("Relu", ["s"], ["y"], { name: "relu" }),
    ],
    [valueInfo("x", F, [2, 64])],
    [valueInfo("y", F, [2, 32])],
    [makeTensor("W", F, [64, 64], randomFloats(64 * 64, 3, -0.3, 0.3))],
    9,
  );
}

const x = () => ({ x: new ort.Tensor("float32", randomFloats(128, 11), [2, 64]) });

test("static INT8 on an opset-9 model with Slice: upgraded to 13, said so, runs and stays close to float", async () => {
  const r = await quantizeTiny(opset9Slice(), { x: [2, 64] });
  assert.equal(r.qdq.opset(), 13);
  assert.deepEqual(r.summary.opset, { before: 9, after: 13 });
  assert.ok(r.summary.warnings.some((w) => /upgraded the model from opset 9 to 13/.test(w)), r.summary.warnings.join("\n"));
  assert.ok(r.ops.DequantizeLinear! > 0);
  assert.ok(r.sqnr > 25, `SQNR ${r.sqnr} dB`);
});

test("dynamic INT8 on an opset-9 model: upgraded, MatMulInteger written, runs", async () => {
  const source = Model.fromProto(opset9Slice());
  const { model, summary } = await quantizeDynamicModel(source, resolveConfig(), false);
  assert.equal(summary.opset.before, 9);
  assert.ok(summary.warnings.some((w) => /upgraded the model from opset 9 to 13/.test(w)));
  assert.ok(model.graph.node.some((n) => n.opType === "MatMulInteger"));
  const ref = await runModel(source.proto, x(), "disabled");
  const got = await runModel(model.proto, x());
  assert.deepEqual(got.y!.dims, ref.y!.dims);
});

test("FP4 (runnable form) on an opset-9 model: upgraded for its Mod/Slice decode, and onnxruntime runs it", async () => {
  const source = Model.fromProto(opset9Slice());
  const { model, report } = lowBitModel(source, { mode: "fp4", fp4Format: "nvfp4", smallLayers: "fp4" });
  assert.ok(report.notes.some((n) => /upgraded the model from opset 9 to 10/.test(n)), report.notes.join("\n"));
  assert.equal(source.opset(), 9, "the input model is untouched");
  const got = await runModel(model.proto, x()); // "No Op registered for Mod with domain_version of 9" before
  assert.deepEqual(got.y!.dims, [2, 32]);
});
