// 16-bit activations below opset 21: com.microsoft Q/DQ moved to ai.onnx's at opset 21 where the model upgrades.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { OperatorSetIdProtoSchema } from "onnx-buf";
import * as ort from "onnxruntime-node";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { standardQdq } from "../../../engine/quant/standard-qdq";
import { makeModel, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;

/** x → Q → DQ (com.microsoft, uint16) → Relu → `tail` ops → y, at `opset`. */
function msSixteenBit(opset: number, tail: ReturnType<typeof makeNode>[] = [], extra: ReturnType<typeof makeTensor>[] = []): Model {
  const ms = { domain: "com.microsoft" };
  const p = makeModel(
    [
      makeNode("QuantizeLinear", ["x", "s", "z"], ["xq"], { name: "q", ...ms }),
      makeNode("DequantizeLinear", ["xq", "s", "z"], ["xd"], { name: "dq", ...ms }),
      makeNode("Relu", ["xd"], [tail.length ? "r" : "y"], { name: "relu" }),
      ...tail,
    ],
    [valueInfo("x", F, [2, 4, 3, 3])],
    [valueInfo("y", F, [2, 4, 3, 3])],
    [makeTensor("s", F, [], [1 / 4096]), makeTensor("z", DataType.UINT16, [], [32768]), ...extra],
    opset,
  );
  p.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: "com.microsoft", version: 1n }));
  return Model.fromProto(p);
}

test("com.microsoft 16-bit Q/DQ below opset 21 become ai.onnx Q/DQ at 21, with the same outputs", async () => {
  const ms = msSixteenBit(13);
  const r = standardQdq(ms);
  assert.ok(r && "model" in r, r && "why" in r ? r.why : "nothing done");
  const up = r.model;
  assert.equal(up.opset(""), 21);
  assert.deepEqual(up.graph.node.filter((n) => /^(Q|Deq)uantizeLinear$/.test(n.opType)).map((n) => n.domain), ["", ""]);
  assert.equal(up.opset("com.microsoft"), undefined, "no com.microsoft node left, so no import");
  assert.equal(ms.opset(""), 13, "the input model is not changed");
  assert.equal(ms.graph.node[0]!.domain, "com.microsoft");
  const feeds = { x: new ort.Tensor("float32", randomFloats(72, 5, -4, 4), [2, 4, 3, 3]) };
  const [a, b] = [await runModel(ms.proto, feeds), await runModel(up.proto, feeds)];
  assert.deepEqual(Array.from(b.y!.data as Float32Array), Array.from(a.y!.data as Float32Array));
  assert.ok((a.y!.data as Float32Array).some((v) => v > 0 && Math.abs(v * 4096 - Math.round(v * 4096)) < 1e-3), "on the 16-bit grid");
});

test("a model that does not upgrade to 21 keeps its com.microsoft Q/DQ and says which node stops it", () => {
  const gn = makeNode("GroupNormalization", ["r", "gs", "gb"], ["y"], { name: "groupnorm" });
  const m = msSixteenBit(18, [gn], [makeTensor("gs", F, [2], [1, 1]), makeTensor("gb", F, [2], [0, 0])]);
  const r = standardQdq(m);
  assert.ok(r && "why" in r, r ? "upgraded" : "nothing done");
  assert.match(r.why, /groupnorm.*GroupNormalization-18/);
  assert.equal(m.opset(""), 18);
  assert.equal(m.graph.node[0]!.domain, "com.microsoft");
});

test("nothing to do at opset 21 or without com.microsoft Q/DQ", () => {
  assert.equal(standardQdq(msSixteenBit(21)), undefined);
  assert.equal(standardQdq(Model.fromProto(makeModel([makeNode("Relu", ["x"], ["y"])], [valueInfo("x", F, [2])], [valueInfo("y", F, [2])], [], 13))), undefined);
});
