// A real Conv often has a dead output channel (all-zero weights). With symmetric uint8 weights (the portable
// default) that channel got zero point 0 and the others 128, which dynamic quantization's ConvInteger (one weight
// zero point; replaced since by weight-only Convs) refused: every PP-OCR model and the openWakeWord melspectrogram
// failed `--mode dynamic`. The dead channel still quantizes and decodes to zeros.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { quantizeDynamicModel } from "../../../engine/quant/dynamic";
import { sqnr } from "../../../engine/quant/math";
import { resolveConfig } from "../../../engine/quant/types";
import { makeModel, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;

test("dynamic INT8 of a Conv with an all-zero output channel (uint8 weights): quantized, runs, close to float, the dead channel zero", async () => {
  const w = randomFloats(8 * 3 * 3 * 3, 9, -0.5, 0.5);
  w.fill(0, 2 * 27, 3 * 27); // output channel 2 is dead
  const source = Model.fromProto(
    makeModel([makeNode("Conv", ["x", "W"], ["y"], { name: "conv" })], [valueInfo("x", F, [1, 3, 8, 8])], [valueInfo("y", F, [1, 8, 6, 6])], [makeTensor("W", F, [8, 3, 3, 3], w)]),
  );
  const { model, summary } = await quantizeDynamicModel(source, resolveConfig(), false);
  assert.deepEqual(summary.weights, { type: "uint8", targetCpu: "any" });
  assert.deepEqual(summary.quantized.map((n) => n.name), ["conv"]);
  const feeds = { x: new ort.Tensor("float32", randomFloats(192, 4), [1, 3, 8, 8]) };
  const ref = await runModel(source.proto, feeds, "disabled");
  const got = await runModel(model.proto, feeds);
  assert.ok(sqnr(ref.y!.data as Float32Array, got.y!.data as Float32Array) > 25);
  assert.ok((got.y!.data as Float32Array).subarray(2 * 36, 3 * 36).every((v) => v === 0), "the dead channel reads 0");
});
