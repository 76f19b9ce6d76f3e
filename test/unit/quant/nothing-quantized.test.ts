// A quantization that quantizes nothing writes nothing and says why. A real voice-activity model (silero-vad) keeps
// its whole network inside If branches; quantize printed "0 nodes quantized" and wrote an unchanged copy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { GraphProtoSchema } from "onnx-buf";
import * as ort from "onnxruntime-node";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { quantizeDynamic, quantizeStatic } from "../../../engine/quant/index";
import { makeModel, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;

test("weights only inside If branches: static and dynamic refuse, name the reason, write nothing", async () => {
  const branch = (name: string, seed: number) =>
    create(GraphProtoSchema, {
      name,
      node: [makeNode("MatMul", ["x", `W_${name}`], [`${name}_out`], { name: `${name}_mm` })],
      initializer: [makeTensor(`W_${name}`, F, [16, 8], randomFloats(128, seed))],
      output: [valueInfo(`${name}_out`, F, [4, 8])],
    });
  const proto = makeModel(
    [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", branch("then", 1)), attr.graph("else_branch", branch("else", 2))] })],
    [valueInfo("x", F, [4, 16]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y", F, [4, 8])],
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-nothing-"));
  try {
    const src = path.join(dir, "vad.onnx");
    Model.fromProto(proto).saveSync(src);
    const out = path.join(dir, "vad.int8.onnx");
    const why = /vad\.onnx: no node was quantized: its 2 Conv\/MatMul\/Gemm\/RNN node\(s\) sit inside If\/Loop\/Scan subgraphs, which are not quantized yet; nothing was written/;
    await assert.rejects(quantizeDynamic(src, out), why);
    const feeds = [{ x: new ort.Tensor("float32", randomFloats(64, 3), [4, 16]), cond: new ort.Tensor("bool", [true], []) }];
    await assert.rejects(quantizeStatic(src, out, feeds, {}, { optimize: false }), why);
    assert.equal(existsSync(out), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
