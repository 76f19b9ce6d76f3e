// A node kept float (excluded by the user, or by the mixed-precision search) must compute in float. onnxruntime's
// 'basic' WeightBiasQuantization quantizes the float weight of a Conv/ConvTranspose/Gemm whose input comes from a
// DequantizeLinear and whose output goes to a QuantizeLinear, so such a node reads the float tensor instead.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { calibrate, convert, prepare } from "../../../engine/quant/index";
import { sqnr } from "../../../engine/quant/math";
import { createSession } from "../../../engine/runtime/session";
import { makeModel, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;

/** x → Conv c1 → Relu → Conv c2 → Relu → Gemm-like Conv c3 → y, all 3×3 / 1×1 on 8 channels. */
function chain(): Model {
  const conv = (name: string, input: string, output: string, w: string) => makeNode("Conv", [input, w], [output], { name, attributes: [attr.ints("pads", [1, 1, 1, 1])] });
  return Model.fromProto(
    makeModel(
      [
        conv("c1", "x", "a", "W1"),
        makeNode("Relu", ["a"], ["ar"], { name: "r1" }),
        conv("c2", "ar", "b", "W2"),
        makeNode("Relu", ["b"], ["br"], { name: "r2" }),
        conv("c3", "br", "y", "W3"),
      ],
      [valueInfo("x", F, [1, 8, 6, 6])],
      [valueInfo("y", F, [1, 8, 6, 6])],
      [makeTensor("W1", F, [8, 8, 3, 3], randomFloats(576, 1, -0.3, 0.3)), makeTensor("W2", F, [8, 8, 3, 3], randomFloats(576, 2, -0.3, 0.3)), makeTensor("W3", F, [8, 8, 3, 3], randomFloats(576, 3, -0.3, 0.3))],
      13,
    ),
  );
}

test("an excluded Conv between quantized ones reads the float tensor, and onnxruntime leaves its weight float", async () => {
  const prepared = await prepare(chain(), { exclude: ["c2"] }, { optimize: false });
  await calibrate(prepared, [{ x: { data: randomFloats(288, 9), dims: [1, 8, 6, 6], type: "float32" } }]);
  const { model, summary } = await convert(prepared);
  assert.ok(summary.float.some((f) => f.name === "c2"));
  assert.ok(summary.foldedActivations.length > 0, "r1 folded into its Q's clamp: c2 must get the Relu back");
  const c2 = model.graph.node.find((n) => n.name === "c2")!;
  const producer = model.graph.node.find((n) => n.output.includes(c2.input[0]!))!;
  assert.equal(producer.opType, "Relu", `c2 reads ${producer.opType} ${producer.name}`);
  // Numerically: the quantized model stays close to the float one (reading the pre-Relu tensor would not).
  const feeds = { x: { data: randomFloats(288, 21), dims: [1, 8, 6, 6], type: "float32" } };
  const run = async (m: Model) => {
    const s = await createSession(m);
    try {
      return (await s.run(feeds)).y!.data as Float32Array;
    } finally {
      await s.dispose();
    }
  };
  assert.ok(sqnr(await run(chain()), await run(model)) > 25, "outputs close to float");
  // What onnxruntime makes of it at 'basic': c2's weight is still the float initializer.
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-float-node-"));
  try {
    const optimized = path.join(dir, "basic.onnx");
    const s = await createSession(model, { optimization: "basic", optimizedModelPath: optimized });
    await s.dispose();
    const o = await Model.load(optimized);
    const c2o = o.graph.node.find((n) => n.name === "c2")!;
    assert.ok(o.graph.initializer.some((t) => t.name === c2o.input[1] && t.dataType === F), `c2's weight ${c2o.input[1]} stays a float initializer`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
