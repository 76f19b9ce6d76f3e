import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, TensorProtoSchema, type NodeProto, type TensorProto } from "onnx-buf";
import { DataType, Model, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../../../engine/onnx";
import { quantizeWeightsLowBit, type LowBitOptions } from "../../../engine/lowbit/rewrite";
import { modelGraph, quantKindOf } from "../../../src/editor/graphModel";
import type { GraphData, GraphNodeData } from "../../../media/graph/types";
import { floatTensor, graph, mlp, model, node, valueInfo } from "./build-model";

function rawTensor(name: string, dataType: number, dims: number[], bytes: number[]): TensorProto {
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType, rawData: new Uint8Array(bytes) });
}

/** The node with a tensor attribute added (build-model's attr() has no tensor case). */
function withTensorAttr(n: NodeProto, name: string, t: TensorProto): NodeProto {
  n.attribute.push(create(AttributeProtoSchema, { name, type: 4, t }));
  return n;
}

const byName = (g: GraphData, name: string): GraphNodeData => {
  const n = g.nodes.find((x) => x.name === name);
  assert.ok(n, `node ${name} in ${g.nodes.map((x) => x.name).join(", ")}`);
  return n;
};

test("graph of a float model: inputs, nodes, outputs; edges typed from value_info; weights in the details", () => {
  const { graph: g, quantized } = modelGraph(mlp());
  assert.equal(quantized, false);
  assert.deepEqual(g.nodes.map((n) => `${n.kind}:${n.op}`), ["input:Input", "node:MatMul", "node:Add", "node:LeakyRelu", "node:MatMul", "node:Reshape", "node:Transpose", "output:Output"]);
  const mm = byName(g, "/fc1/MatMul");
  assert.deepEqual(mm.inputs[1], { name: "fc1.weight", type: "float[4,64]", kind: "initializer", elements: 256, bytes: 1024 });
  assert.equal(mm.state, undefined, "no overlay on a float model");
  const inId = g.nodes[0]!.id;
  assert.deepEqual(g.edges.find((e) => e.from === inId), { from: inId, to: mm.id, tensor: "input", type: "float[N,4]" });
  // Nameless nodes are named by their first output; the last edge reaches the output node with the output's type.
  assert.equal(byName(g, "h").op, "Add");
  assert.equal(g.edges.at(-1)!.type, "float[2,N]");
  assert.deepEqual(byName(g, "r").attributes, [{ name: "alpha", value: "0.1" }]);
  // Edges only between drawn nodes: initializers are not nodes.
  const ids = new Set(g.nodes.map((n) => n.id));
  assert.ok(g.edges.every((e) => ids.has(e.from) && ids.has(e.to)));
});

/** x → Q → DQ → Conv(·, DQ(int8 W)) → y, the shape a QDQ quantizer writes. */
function qdqConv(weightType = 3, weightBytes = [1, 2, 3, 4]) {
  const inits = [
    floatTensor("x_scale", [], [0.5]), rawTensor("x_zp", 2, [], [128]),
    rawTensor("W_q", weightType, [1, 1, 2, 2], weightBytes), floatTensor("W_scale", [], [0.25]), rawTensor("W_zp", weightType, [], [0]),
  ];
  return model(graph("qdq", [
    node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"], {}, { name: "x_QuantizeLinear" }),
    node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"], {}, { name: "x_DequantizeLinear" }),
    node("DequantizeLinear", ["W_q", "W_scale", "W_zp"], ["W_dq"], {}, { name: "W_DequantizeLinear" }),
    node("Conv", ["x_dq", "W_dq"], ["y"], {}, { name: "conv1" }),
    node("Relu", ["y"], ["z"], {}, { name: "relu1" }),
  ], [valueInfo("x", 1, [1, 1, 4, 4])], [valueInfo("z", 1, [1, 1, 3, 3])], inits), 21);
}

test("Q/DQ pairs are folded onto the node they feed, which carries the state, scales and zero points", () => {
  const { graph: g, quantized } = modelGraph(qdqConv());
  assert.equal(quantized, true);
  assert.deepEqual(g.nodes.map((n) => n.op), ["Input", "Conv", "Relu", "Output"], "no Q/DQ node is drawn");
  const conv = byName(g, "conv1");
  assert.deepEqual(conv.folded, ["x_DequantizeLinear", "x_QuantizeLinear", "W_DequantizeLinear"]);
  assert.equal(conv.state, "int8");
  assert.equal(byName(g, "relu1").state, "float");
  // The edge runs from the graph input itself, labelled with its declared shape.
  assert.deepEqual(g.edges[0], { from: g.nodes[0]!.id, to: conv.id, tensor: "x", type: "float[1,1,4,4]" });
  assert.deepEqual(conv.inputs.map((t) => `${t.name}:${t.type}:${t.kind}`), ["x:float[1,1,4,4]:edge", "W_q:int8[1,1,2,2]:initializer"]);
  const w = conv.quant!.find((q) => q.role === "weight")!;
  assert.equal(w.type, "int8");
  assert.deepEqual(w.scale, { min: 0.25, max: 0.25, count: 1 });
  assert.match(w.text, /int8 per-tensor · scale 0\.25 · zp 0/);
  const x = conv.quant!.find((q) => q.role === "input")!;
  assert.equal(x.type, "uint8");
  assert.deepEqual(x.zeroPoint, { min: 128, max: 128 });
});

test("a node's colour: the narrowest quantized type among its tensors", () => {
  assert.equal(modelGraph(qdqConv(22, [0x21, 0x43])).graph.nodes[1]!.state, "int4");
  assert.equal(modelGraph(qdqConv(23, [0x21, 0x43])).graph.nodes[1]!.state, "fp4");
  assert.equal(quantKindOf([{ node: "n", op: "MatMul", tensor: "a", role: "input", quantized: true, type: "int16" }]), "int16");
  assert.equal(quantKindOf([{ node: "n", op: "MatMul", tensor: "a", role: "input", quantized: false }]), "float");
  assert.equal(quantKindOf([], "MatMulNBits"), "int4");
});

/** x[1,16,6,6] → Conv(W[32,16,3,3]) → Relu → z, its weight rewritten by the low-bit pass as `options` asks. */
function lowBitConv(options: LowBitOptions) {
  const w = makeTensor("W", DataType.FLOAT, [32, 16, 3, 3], Float32Array.from({ length: 32 * 144 }, (_, i) => Math.sin(i) / 8));
  const g = makeGraph(
    "lowbit_conv",
    [makeNode("Conv", ["x", "W"], ["y"], { name: "conv" }), makeNode("Relu", ["y"], ["z"], { name: "relu" })],
    [makeValueInfo("x", DataType.FLOAT, [1, 16, 6, 6])],
    [makeValueInfo("z", DataType.FLOAT, [1, 32, 4, 4])],
    { initializers: [w] },
  );
  const m = Model.fromProto(makeModel(g, { opsets: { "": 21 } }));
  quantizeWeightsLowBit(m, options);
  return m.proto;
}

test("a low-bit Conv's weight decode (int4, FP4, an int8 layer) is folded onto the Conv, which reads the codes and is coloured by them", () => {
  const cases: [LowBitOptions, string, string][] = [
    [{ mode: "int4", blockSize: 32 }, "int4", "uint4"],
    [{ mode: "int4", blockSize: 32, symmetric: false }, "int4", "uint4"],
    [{ mode: "fp4" }, "fp4", "float4e2m1"],
    [{ mode: "fp4", int8: ["conv"] }, "int8", "int8"],
  ];
  for (const [options, state, type] of cases) {
    const what = JSON.stringify(options);
    const { graph: g, quantized } = modelGraph(lowBitConv(options));
    assert.equal(quantized, true, what);
    assert.deepEqual(g.nodes.map((n) => n.op), ["Input", "Conv", "Relu", "Output"], `${what}: no decode node is drawn`);
    const conv = byName(g, "conv");
    assert.equal(conv.state, state, what);
    assert.ok((conv.folded ?? []).length >= 2, `${what}: the decode's nodes are listed as folded`);
    const w = conv.quant!.find((q) => q.role === "weight")!;
    assert.equal(w.type, type, what);
    assert.equal(w.tensor, conv.inputs[1]!.name, `${what}: the Conv reads the codes`);
    if (state !== "fp4") assert.match(w.text, /scale [\d.e-]+/, `${what}: ${w.text}`);
    if (state === "int4") assert.match(w.text, (options as { symmetric?: boolean }).symmetric === false ? /zp \d+–\d+/ : /zp 8/, `${what}: ${w.text}`);
    assert.equal(byName(g, "relu").state, "float", what);
  }
  // A float constant computation is not a decode: no integer codes.
  assert.equal(modelGraph(lowBitConv({ mode: "fp4", export: "fake" })).quantized, false);
});

test("Constant nodes become weights of their reader; If bodies are nested graphs reading outer values", () => {
  const body = (op: string) => graph(`${op}_body`, [node(op, ["h"], ["o"], {}, { name: `${op}_in_body` })], [], [valueInfo("o", 1, [2])]);
  const m = model(graph("g", [
    withTensorAttr(node("Constant", [], ["k"], {}, { name: "const_k" }), "value", floatTensor("v", [2], [1, 2])),
    node("Add", ["x", "k"], ["h"], {}, { name: "add" }),
    node("Greater", ["x", "k"], ["c"], {}, { name: "gt" }),
    node("ReduceMin", ["c"], ["c1"], {}, { name: "any" }),
    node("If", ["c1"], ["y"], { then_branch: body("Relu"), else_branch: body("Neg") }, { name: "branch" }),
  ], [valueInfo("x", 1, [2])], [valueInfo("y", 1, [2])]), 13);
  const { graph: g } = modelGraph(m);
  assert.ok(!g.nodes.some((n) => n.op === "Constant"), "Constant folded");
  const add = byName(g, "add");
  assert.deepEqual(add.inputs[1], { name: "k", type: "float[2]", kind: "constant", elements: 2, bytes: 8 });
  assert.deepEqual(add.folded, ["const_k"]);
  const iff = byName(g, "branch");
  assert.deepEqual(iff.subgraphs!.map((s) => s.attribute), ["then_branch", "else_branch"]);
  assert.deepEqual(iff.attributes, [], "graph attributes are bodies, not attribute rows");
  const then = iff.subgraphs![0]!.graph;
  assert.deepEqual(then.nodes.map((n) => `${n.kind}:${n.op}:${n.name}`), ["input:Outer value:h", "node:Relu:Relu_in_body", "output:Output:o"]);
  assert.ok(then.nodes.every((n) => n.id.startsWith(`${iff.id}/then_branch/`)), "ids unique across the model");
  assert.equal(then.edges.length, 2);
});

test("attribute values are shown short: long lists and strings are cut with their length", () => {
  const custom = withTensorAttr(node("Custom", ["x"], ["y"], { ints: { ints: Array.from({ length: 40 }, (_, i) => i) }, s: "a".repeat(500) }), "t", floatTensor("t", [3], [1, 2, 3]));
  const m = model(graph("g", [custom], [valueInfo("x", 1, [1])], [valueInfo("y", 1, [1])]));
  const attrs = modelGraph(m).graph.nodes[1]!.attributes;
  assert.match(attrs[0]!.value, /^\[0, 1, .*15, … 40 values\]$/);
  assert.match(attrs[1]!.value, /… \(500 chars\)"$/);
  assert.equal(attrs[2]!.value, "float[3]");
});

test("edges the file gives no shape carry the inferred one, marked ~; declared types win; bodies are inferred too", () => {
  const { graph: g } = modelGraph(mlp());
  const edgeType = (tensor: string, gg = g) => gg.edges.find((e) => e.tensor === tensor)?.type;
  assert.equal(edgeType("/fc1/MatMul_output_0"), "~float[N,64]");
  assert.equal(edgeType("r"), "~float[N,64]");
  assert.equal(edgeType("out"), "~float[N,2]", "Reshape to [-1, 2]: the rest of N×2");
  assert.equal(byName(g, "/fc1/MatMul").outputs[0]!.type, "~float[N,64]", "the hover and details show it too");
  assert.equal(edgeType("input"), "float[N,4]", "a declared input keeps its type, unmarked");
  assert.equal(g.edges.at(-1)!.type, "float[2,N]", "a declared output keeps its type, unmarked");

  // A body: its tensors are inferred from the outer scope's; an output declared without dims gets them.
  const body = graph("then", [node("Relu", ["x"], ["t"], {}, { name: "relu_in_body" })], [], [makeValueInfo("t", DataType.FLOAT)]);
  const m = model(graph("g", [node("If", ["c"], ["y"], { then_branch: body, else_branch: body }, { name: "branch" })],
    [valueInfo("c", 9, []), valueInfo("x", 1, [3, "W"])], [valueInfo("y", 1, [3, "W"])]), 13);
  const then = byName(modelGraph(m).graph, "branch").subgraphs![0]!.graph;
  assert.equal(edgeType("t", then), "~float[3,W]");
});
