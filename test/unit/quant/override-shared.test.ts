// A type override on a data-movement output (Flatten, MaxPool, Reshape share their source's scale so onnxruntime
// can drop the DQ→Q between them) must still win: "16-bit" on a Gemm after a Flatten gave it a uint8 input.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { openData } from "../../../engine/data/readers";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { calibrate, convert, prepare, release, type QConfig } from "../../../engine/quant/index";
import { createSession } from "../../../engine/runtime/session";

const FIX = path.join(__dirname, "..", "..", "fixtures");
const FLATTEN_OUT = "/head/head.0/Flatten_output_0";

/** The zero point's data type of the DequantizeLinear whose output `consumer` reads as its first input. */
function inputType(model: Model, consumer: string): number | undefined {
  const g = model.graph;
  const node = g.node.find((n) => n.name === consumer)!;
  const dq = g.node.find((n) => n.opType === "DequantizeLinear" && n.output[0] === node.input[0]);
  return dq && g.initializer.find((t) => t.name === dq.input[2])?.dataType;
}

async function quantized(config: QConfig): Promise<Model> {
  const model = await Model.load(path.join(FIX, "models", "cnn.onnx"));
  const prepared = await prepare(model, { ...config, calibration: { method: "minmax" } });
  try {
    await calibrate(prepared, openData(path.join(FIX, "data", "calib", "npy"), model.proto, { batchSize: 8 }));
  } finally {
    await release(prepared);
  }
  return (await convert(prepared)).model;
}

test("a uint16 override on a Flatten's output gives the Gemm a uint16 input; without it the Flatten shares the uint8 scale", async () => {
  const plain = await quantized({});
  assert.equal(inputType(plain, "/head/head.1/Gemm"), DataType.UINT8);
  const wide = await quantized({ overrides: { [FLATTEN_OUT]: { type: "uint16" } } });
  assert.equal(inputType(wide, "/head/head.1/Gemm"), DataType.UINT16);
  assert.equal(inputType(wide, "/head/head.0/Flatten"), DataType.UINT8, "the Flatten's own input keeps its type");
  const session = await createSession(wide);
  try {
    const x = new Float32Array(2 * 28 * 28).map((_, i) => (i % 17) / 17);
    const out = await session.run({ input: { type: "float32", dims: [2, 1, 28, 28], data: x } });
    assert.ok(Object.values(out)[0].data.length > 0, "the model runs");
  } finally {
    await session.dispose();
  }
});
