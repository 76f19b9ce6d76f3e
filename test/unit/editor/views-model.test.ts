import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "onnx-buf";
import { buildLayerTree, findLayerNode, layerParents, layerView } from "../../../src/views/layerModel";
import { describeEntry, fileQuantState, groupByNode, notQuantizedMessage, quantStateOfModel } from "../../../src/views/quantStateModel";
import { floatTensor, graph, mlp, model, node, valueInfo } from "./build-model";

const t8 = (name: string, dataType: 2 | 3, dims: number[], values: number[]) =>
  create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), rawData: dataType === 3 ? new Uint8Array(new Int8Array(values).buffer) : new Uint8Array(values) });

/** x → Q/DQ (uint8, per-tensor) → MatMul with an int8 per-channel DQ weight → Relu (float). */
function qdqModel() {
  return model(graph("g", [
    node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"]),
    node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"]),
    node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w_dq"], { axis: 1 }),
    node("MatMul", ["x_dq", "w_dq"], ["y"], {}, { name: "fc" }),
    node("Relu", ["y"], ["z"], {}, { name: "act" }),
  ], [valueInfo("x", 1, ["N", 4])], [valueInfo("z", 1, ["N", 3])], [
    floatTensor("x_scale", [], [0.02]), t8("x_zp", 2, [], [128]),
    t8("w_q", 3, [4, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), floatTensor("w_scale", [3], [0.01, 0.02, 0.005]), t8("w_zp", 3, [3], [0, 0, 0]),
  ]));
}

test("quant state from a QDQ model: activation uint8 per-tensor with its range, weight int8 per-channel, Relu float", () => {
  const entries = quantStateOfModel(qdqModel());
  const x = entries.find((e) => e.tensor === "x_q")!;
  assert.equal(x.node, "fc");
  assert.deepEqual([x.quantized, x.type, x.granularity, x.role], [true, "uint8", "per-tensor", "input"]);
  assert.equal(x.scale!.count, 1);
  assert.ok(Math.abs(x.scale!.min - 0.02) < 1e-7);
  assert.ok(Math.abs(x.range![0] - -2.56) < 1e-5 && Math.abs(x.range![1] - 2.54) < 1e-5, String(x.range));
  const w = entries.find((e) => e.tensor === "w_q")!;
  assert.deepEqual([w.type, w.granularity, w.role, w.scale!.count, w.zeroPoint], ["int8", "per-channel", "weight", 3, { min: 0, max: 0 }]);
  const r = entries.find((e) => e.node === "act")!;
  assert.deepEqual([r.quantized, r.reason], [false, "no Q/DQ in the model"]);
  const groups = groupByNode(entries);
  assert.deepEqual(groups.map((g) => [g.node, g.state]), [["fc", "quantized"], ["act", "float"]]);
  assert.match(describeEntry(w), /^int8 per-channel · scale 0\.005–0\.02 \(3\) · zp 0$/);
  assert.match(describeEntry(r), /^float · no Q\/DQ/);
  // A float model: nothing quantized.
  assert.ok(quantStateOfModel(mlp()).every((e) => !e.quantized));
});

test("layer tree: inputs/outputs, grouped by op or in order, params and bytes, filter, nested subgraphs", () => {
  const byOp = buildLayerTree(mlp(), { groupBy: "op", filter: "" });
  assert.deepEqual(byOp.map((g) => [g.label, g.description]), [["Inputs", "1"], ["Outputs", "1"], ["MatMul", "2"], ["Add", "1"], ["LeakyRelu", "1"], ["Reshape", "1"], ["Transpose", "1"]]);
  assert.deepEqual(byOp[0]!.children.map((c) => [c.label, c.description]), [["input", "float[N,4]"]]);
  const mm = byOp[2]!.children[0]!;
  assert.equal(mm.label, "/fc1/MatMul");
  assert.equal(mm.description, "MatMul · 256 params");
  assert.ok(mm.details.includes("in  fc1.weight: float[4,64] (initializer)"), mm.details.join("\n"));
  assert.ok(mm.details.includes("parameters: 256 (1024 bytes)"));
  const order = buildLayerTree(mlp(), { groupBy: "order", filter: "" });
  assert.deepEqual(order[2]!.children.map((c) => c.op), ["MatMul", "Add", "LeakyRelu", "MatMul", "Reshape", "Transpose"]);
  const filtered = buildLayerTree(mlp(), { groupBy: "order", filter: "relu" });
  assert.deepEqual(filtered.map((g) => g.label), ["Nodes"]);
  assert.deepEqual(filtered[0]!.children.map((c) => c.op), ["LeakyRelu"]);
  const body = graph("then_body", [node("Relu", ["x"], ["y1"])], [], [valueInfo("y1", 1, [2])]);
  const withIf = buildLayerTree(model(graph("g", [node("If", ["c"], ["y"], { then_branch: body, else_branch: body })], [valueInfo("c", 9, []), valueInfo("x", 1, [2])], [valueInfo("y", 1, [2])])), { groupBy: "order", filter: "" });
  const ifNode = withIf[2]!.children[0]!;
  assert.deepEqual(ifNode.children.map((c) => [c.kind, c.label]), [["graph", "then_branch: then_body"], ["graph", "else_branch: then_body"]]);
  assert.equal(ifNode.children[0]!.children.at(-1)!.children[0]!.op, "Relu");
});

test("a float model has no quantization state to show (one message, not a 'float' row per node); a QDQ model has", () => {
  assert.deepEqual(fileQuantState(mlp()), []);
  assert.match(notQuantizedMessage("rec.onnx"), /^rec\.onnx has no quantized tensors\. Quantize this model or run analyze\(\)/);
  assert.ok(fileQuantState(qdqModel()).some((e) => e.quantized && e.tensor === "w_q"));
  assert.ok(fileQuantState(qdqModel()).some((e) => !e.quantized && e.node === "act"), "the float nodes of a quantized model stay listed");
});

test("layer view: a filter says how much it leaves; one that matches nothing shows a row that clears it, not an empty tree", () => {
  assert.deepEqual(layerView(mlp(), { groupBy: "op", filter: "" }).message, undefined);
  const some = layerView(mlp(), { groupBy: "order", filter: "relu" });
  assert.equal(some.message, 'Filter "relu": 1 of 6 nodes match');
  assert.deepEqual(some.roots[0]!.children.map((c) => c.op), ["LeakyRelu"]);
  const none = layerView(mlp(), { groupBy: "op", filter: "softmax_2" });
  assert.equal(none.message, 'Filter "softmax_2": 0 of 6 nodes match');
  assert.deepEqual(none.roots.map((r) => [r.kind, r.label, r.description]), [["none", 'No node matches "softmax_2"', "Clear filter"]]);
});

test("a node picked in the graph is found in the layer tree with its parents, bodies included (TreeView.reveal's getParent)", () => {
  const byOp = buildLayerTree(mlp(), { groupBy: "op", filter: "" });
  const mm = findLayerNode(byOp, "/fc1/MatMul")!;
  const parents = layerParents(byOp);
  assert.equal(mm.kind, "node");
  assert.equal(parents.get(mm)!.label, "MatMul");
  assert.equal(parents.get(parents.get(mm)!), undefined, "a group is a root");
  // The input value "input" is not a node: a node's name only matches node items.
  assert.equal(findLayerNode(byOp, "input"), undefined);
  const body = graph("then_body", [node("Relu", ["x"], ["y1"], {}, { name: "inner" })], [], [valueInfo("y1", 1, [2])]);
  const withIf = buildLayerTree(model(graph("g", [node("If", ["c"], ["y"], { then_branch: body }, { name: "cond" })], [valueInfo("c", 9, [])], [valueInfo("y", 1, [2])])), { groupBy: "order", filter: "" });
  const inner = findLayerNode(withIf, "inner")!;
  const chain: string[] = [];
  const up = layerParents(withIf);
  for (let i: typeof inner | undefined = inner; i; i = up.get(i)) chain.unshift(`${i.kind}:${i.label}`);
  assert.deepEqual(chain, ["group:Nodes", "node:cond", "graph:then_branch: then_body", "group:Nodes", "node:inner"]);
});
