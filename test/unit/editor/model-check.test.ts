// The Quantize Model wizard's look at a model before its first question (src/quantize/modelCheck.ts): refusals with
// the reason, what will happen on the way, schemes with nothing to quantize left out, inputs that need a shape.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { GraphProtoSchema } from "onnx-buf";
import { DataType } from "../../../engine/onnx/dtype";
import { attr, makeGraph, makeModel, makeNode, makeValueInfo } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { checkModel, parseShape } from "../../../src/quantize/modelCheck";
import { defaultOptions, reportArgs } from "../../../src/quantize/options";

const F = DataType.FLOAT;
const w = (name: string, dims: number[]) => makeTensor(name, F, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.1));

test("a Conv-only model at opset 9 with symbolic height/width: upgrade said, every scheme offered, the input named for a shape", () => {
  const m = makeModel(
    makeGraph("g", [makeNode("Conv", ["x", "W"], ["y"], { name: "conv" })], [makeValueInfo("x", F, [-1, 3, "h", "w"])], [makeValueInfo("y", F, [-1, 8, "h", "w"])], { initializers: [w("W", [8, 3, 1, 1])] }),
    { opsets: { "": 9 } },
  );
  const c = checkModel(m, "/m/det.onnx");
  assert.equal(c.refusal, undefined);
  assert.deepEqual(c.notes, ["opset 9: upgraded to 13 on the way (the input file is unchanged)"]);
  assert.deepEqual(c.unavailable, {}, "INT4 and FP4 both cover Conv weights");
  assert.deepEqual(c.symbolic, [{ name: "x", dims: ["?", 3, "h", "w"] }]);
});

test("refusals before any question: already quantized, nothing to quantize; weights only inside If branches are quantized by every scheme", () => {
  const q = makeModel(makeGraph("g", [makeNode("DequantizeLinear", ["a", "s"], ["y"], { name: "dq" })], [makeValueInfo("a", DataType.INT8, [4])], [makeValueInfo("y", F, [4])]));
  assert.match(checkModel(q, "q.onnx").refusal ?? "", /^q\.onnx is already quantized \(it has DequantizeLinear node "dq"\): quantize the float model$/);
  const branch = create(GraphProtoSchema, { name: "b", node: [makeNode("MatMul", ["x", "W"], ["o"], { name: "mm" })], output: [makeValueInfo("o", F, [2, 2])] });
  const vad = makeModel(makeGraph("g", [makeNode("If", ["c"], ["y"], { name: "if", attributes: [attr.graph("then_branch", branch), attr.graph("else_branch", branch)] })], [makeValueInfo("c", DataType.BOOL, [])], [makeValueInfo("y", F, [2, 2])]));
  const inBranches = checkModel(vad, "vad.onnx");
  assert.equal(inBranches.refusal, undefined);
  assert.match(inBranches.notes.join("\n"), /2 weighted node\(s\) inside If\/Loop\/Scan subgraphs: INT8 quantizes their weights dynamically \(activations stay float there\); INT4\/FP4 quantize their weights as at the top level/);
  assert.deepEqual(inBranches.unavailable, {}, "INT4 and FP4 reach the branches' MatMuls too");
  const convBranch = create(GraphProtoSchema, { name: "b", node: [makeNode("Conv", ["x", "W"], ["o"], { name: "conv" })], output: [makeValueInfo("o", F, [1, 2, 2, 2])] });
  const convs = makeModel(makeGraph("g", [makeNode("If", ["c"], ["y"], { name: "if", attributes: [attr.graph("then_branch", convBranch), attr.graph("else_branch", convBranch)] })], [makeValueInfo("c", DataType.BOOL, [])], [makeValueInfo("y", F, [1, 2, 2, 2])]));
  assert.deepEqual(checkModel(convs, "convs.onnx").unavailable, {}, "Convs in branches: INT4 and FP4");
  const lstm = makeModel(makeGraph("g", [makeNode("LSTM", ["x", "W", "R"], ["y"], { name: "lstm" })], [makeValueInfo("x", F, [1, 1, 4])], [makeValueInfo("y", F, [1, 1, 1, 4])], { initializers: [w("W", [1, 16, 4]), w("R", [1, 16, 4])] }));
  assert.deepEqual(Object.keys(checkModel(lstm, "lstm.onnx").unavailable).sort(), ["fp4-weights", "int4-weights"], "an LSTM alone: INT8's");
  const relu = makeModel(makeGraph("g", [makeNode("Relu", ["x"], ["y"], { name: "r" })], [makeValueInfo("x", F, [1, 4])], [makeValueInfo("y", F, [1, 4])]));
  assert.match(checkModel(relu, "relu.onnx").refusal ?? "", /it has no Conv, MatMul, Gemm or RNN node/);
});

test("shapes the user types are checked against the model; the report gets them when it has no data", () => {
  const dims = ["?", 3, "h", "w"] as const;
  assert.deepEqual(parseShape("1x3x48x320", dims), [1, 3, 48, 320]);
  assert.deepEqual(parseShape(" 2 × 3 × 32 × 32 ", dims), [2, 3, 32, 32]);
  assert.equal(parseShape("1x3x48", dims), "give 4 sizes, e.g. 1x3x64x64");
  assert.equal(parseShape("1x4x48x320", dims), "axis 1 is fixed at 3 by the model");
  assert.equal(parseShape("1x3x0x320", dims), "sizes are positive integers");
  const o = { ...defaultOptions("/m/det.onnx", "int8-dynamic"), shapes: { x: [1, 3, 48, 320] } };
  assert.deepEqual(reportArgs(o).slice(-3), ["--json", "--shape", "x=1x3x48x320"]);
  assert.ok(!reportArgs(o, { heldout: "/tmp/h" }).includes("--shape"), "data gives the shapes (the CLI refuses both)");
});
