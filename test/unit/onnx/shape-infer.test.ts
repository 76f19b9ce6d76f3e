// engine/onnx/shape-infer.ts per op, on tiny graphs built in code (test/slow/shape-infer-corpus.test.ts checks it
// against onnxruntime on the corpus' real models).
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType, attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type AttributeProto, type NodeProto, type TensorProto } from "../../../engine/onnx";
import type { Dim } from "../../../engine/onnx/proto";
import { inferModelShapes, inferShapes, rowActivationBytes } from "../../../engine/onnx/shape-infer";

const F = DataType.FLOAT;
const I64 = DataType.INT64;
const n = (op: string, inputs: string[], outputs: string[], ...attributes: AttributeProto[]): NodeProto => makeNode(op, inputs, outputs, { attributes });
const ints = (name: string, v: number[]) => attr.ints(name, v);
const i64 = (name: string, v: number[]) => makeTensor(name, I64, [v.length], v.map(BigInt));
const zeros = (name: string, dims: number[]) => makeTensor(name, F, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));

/** Inferred shapes of a graph whose inputs are given as name → shape (float unless a type is given). */
function infer(nodes: NodeProto[], inputs: Record<string, Dim[] | [DataType, Dim[]]>, inits: TensorProto[] = [], opset = 13) {
  const vi = Object.entries(inputs).map(([name, s]) =>
    typeof s[0] === "number" && Array.isArray(s[1]) ? makeValueInfo(name, s[0] as DataType, s[1]) : makeValueInfo(name, F, s as Dim[]));
  const g = makeGraph("g", nodes, vi, [], { initializers: inits });
  const { tensors } = inferShapes(g, opset);
  return (name: string) => tensors.get(name)?.shape;
}

test("Conv: pads, strides, dilations, group, auto_pad; the batch keeps its symbol", () => {
  const s = infer([
    n("Conv", ["x", "w"], ["a"], ints("pads", [1, 1, 1, 1]), ints("strides", [2, 2])),
    n("Conv", ["x", "w"], ["b"], ints("dilations", [2, 2])),
    n("Conv", ["x", "w"], ["c"], attr.string("auto_pad", "SAME_UPPER"), ints("strides", [2, 2])),
    n("Conv", ["x", "wg"], ["d"], attr.int("group", 3), ints("kernel_shape", [1, 1])),
    n("Conv", ["x", "w"], ["e"], attr.string("auto_pad", "VALID")),
  ], { x: ["N", 3, 15, 16] }, [zeros("w", [8, 3, 3, 3]), zeros("wg", [6, 1, 1, 1])]);
  assert.deepEqual(s("a"), ["N", 8, 8, 8]);
  assert.deepEqual(s("b"), ["N", 8, 11, 12]);
  assert.deepEqual(s("c"), ["N", 8, 8, 8]);
  assert.deepEqual(s("d"), ["N", 6, 15, 16]);
  assert.deepEqual(s("e"), ["N", 8, 13, 14]);
  const any = infer([n("Conv", ["x", "w"], ["a"])], { x: [-1, 3, 5, 5] }, [zeros("w", [8, 3, 3, 3])]);
  assert.deepEqual(any("a"), [null, 8, 3, 3], "an input's -1 (exporters' \"any size\") is unknown, not a size");
});

test("ConvTranspose: stride, pads, output_padding, group; output_shape wins", () => {
  const s = infer([
    n("ConvTranspose", ["x", "w"], ["a"], ints("strides", [2, 2]), ints("pads", [1, 1, 1, 1]), ints("output_padding", [1, 1])),
    n("ConvTranspose", ["x", "w"], ["b"], ints("strides", [2, 2]), attr.int("group", 2)),
    n("ConvTranspose", ["x", "w"], ["c"], ints("strides", [2, 2]), ints("output_shape", [20, 21])),
  ], { x: [1, 4, 10, 10] }, [zeros("w", [4, 5, 3, 3])]);
  assert.deepEqual(s("a"), [1, 5, 20, 20]);
  assert.deepEqual(s("b"), [1, 10, 21, 21]);
  assert.deepEqual(s("c"), [1, 5, 20, 21]);
});

test("pooling: MaxPool with ceil_mode and its indices, AveragePool, GlobalAveragePool", () => {
  const s = infer([
    n("MaxPool", ["x"], ["a", "ai"], ints("kernel_shape", [3, 3]), ints("strides", [2, 2]), attr.int("ceil_mode", 1)),
    n("MaxPool", ["x"], ["b"], ints("kernel_shape", [3, 3]), ints("strides", [2, 2])),
    n("AveragePool", ["x"], ["c"], ints("kernel_shape", [2, 2]), ints("strides", [2, 2]), ints("pads", [1, 1, 1, 1])),
    n("GlobalAveragePool", ["x"], ["d"]),
  ], { x: [2, 3, 10, 10] });
  assert.deepEqual([s("a"), s("ai"), s("b"), s("c"), s("d")], [[2, 3, 5, 5], [2, 3, 5, 5], [2, 3, 4, 4], [2, 3, 6, 6], [2, 3, 1, 1]]);
});

test("MatMul broadcasts its batch dims and drops a 1-D side; Gemm follows transA/transB", () => {
  const s = infer([
    n("MatMul", ["a", "b"], ["ab"]),
    n("MatMul", ["v", "b"], ["vb"]),
    n("MatMul", ["a", "v6"], ["av"]),
    n("Gemm", ["g", "h"], ["gh"], attr.int("transA", 1), attr.int("transB", 1)),
  ], { a: [2, 1, 3, 4], b: [5, 4, 6], v: [4], v6: [4], g: [7, "M"], h: [9, 7] });
  assert.deepEqual(s("ab"), [2, 5, 3, 6]);
  assert.deepEqual(s("vb"), [5, 6]);
  assert.deepEqual(s("av"), [2, 1, 3]);
  assert.deepEqual(s("gh"), ["M", 9]);
});

test("elementwise ops broadcast like numpy; comparisons are bool, Where takes its values' type", () => {
  const g = makeGraph("g", [
    n("Add", ["x", "y"], ["s"]),
    n("Equal", ["x", "y"], ["e"]),
    n("Where", ["c", "i", "x"], ["w"]),
    n("Mul", ["x", "z"], ["m"]),
    n("Sub", ["x", "bad"], ["b"]),
  ], [makeValueInfo("x", F, ["N", 3, 1]), makeValueInfo("y", F, [4]), makeValueInfo("c", DataType.BOOL, [3, 4]),
    makeValueInfo("i", DataType.INT32, [1]), makeValueInfo("z", F, ["K", 1, 5]), makeValueInfo("bad", F, [2, 7])], []);
  const t = inferShapes(g, 13).tensors;
  assert.deepEqual(t.get("s"), { elemType: F, shape: ["N", 3, 4] });
  assert.deepEqual(t.get("e"), { elemType: DataType.BOOL, shape: ["N", 3, 4] });
  assert.deepEqual(t.get("w"), { elemType: DataType.INT32, shape: ["N", 3, 4] });
  assert.deepEqual(t.get("m")?.shape, [null, 3, 5], "two different symbols: unknown");
  assert.deepEqual(t.get("b")?.shape, undefined, "shapes that cannot broadcast: unknown");
});

test("unary ops keep the shape; Cast changes the type; BatchNormalization and Softmax keep the input's", () => {
  const g = makeGraph("g", [
    n("HardSwish", ["x"], ["a"]), n("Clip", ["a", "", ""], ["b"]), n("Cast", ["b"], ["c"], attr.int("to", DataType.FLOAT16)),
    n("BatchNormalization", ["x", "s", "s", "s", "s"], ["d"]), n("Softmax", ["d"], ["e"], attr.int("axis", -1)),
  ], [makeValueInfo("x", F, ["N", 3, 7])], [], { initializers: [zeros("s", [3])] });
  const t = inferShapes(g, 13).tensors;
  assert.deepEqual(t.get("b"), { elemType: F, shape: ["N", 3, 7] });
  assert.deepEqual(t.get("c"), { elemType: DataType.FLOAT16, shape: ["N", 3, 7] });
  assert.deepEqual(t.get("e")?.shape, ["N", 3, 7]);
});

test("Reshape: 0 copies, -1 takes the rest (a symbol cancels); Shape → Gather → Concat → Reshape gives the shape", () => {
  const s = infer([
    n("Reshape", ["x", "t1"], ["a"]),
    n("Shape", ["x"], ["sh"]),
    n("Gather", ["sh", "zero"], ["batch"], attr.int("axis", 0)),
    n("Unsqueeze", ["batch", "axes0"], ["b1"]),
    n("Concat", ["b1", "m1"], ["t2"], attr.int("axis", 0)),
    n("Reshape", ["x", "t2"], ["b"]),
    n("Flatten", ["x"], ["f"], attr.int("axis", 2)),
    n("Reshape", ["x", "unknown"], ["u"]),
  ], { x: ["N", 3, 4, 5], unknown: [I64, [3]] }, [i64("t1", [0, 0, -1]), makeTensor("zero", I64, [], [0n]), i64("axes0", [0]), i64("m1", [-1])]);
  assert.deepEqual(s("a"), ["N", 3, 20]);
  assert.deepEqual(s("sh"), [4]);
  assert.deepEqual(s("b"), ["N", 60]);
  assert.deepEqual(s("f"), [null, 20]);
  assert.deepEqual(s("u"), [null, null, null], "a target not known: its rank only");
});

test("Transpose, Squeeze/Unsqueeze by attribute (opset 11) and by input (opset 13)", () => {
  const nodes = (opset: number) => opset < 13
    ? [n("Squeeze", ["x"], ["sq"], ints("axes", [1])), n("Unsqueeze", ["x"], ["us"], ints("axes", [0, -1]))]
    : [n("Squeeze", ["x", "ax"], ["sq"]), n("Unsqueeze", ["x", "ax2"], ["us"])];
  for (const opset of [11, 13]) {
    const s = infer([...nodes(opset), n("Transpose", ["x"], ["t"], ints("perm", [2, 0, 1])), n("Transpose", ["x"], ["r"]), n("Squeeze", ["x"], ["all"])],
      { x: [5, 1, 7] }, [i64("ax", [1]), i64("ax2", [0, -1])], opset);
    assert.deepEqual([s("sq"), s("us"), s("t"), s("r"), s("all")], [[5, 7], [1, 5, 1, 7, 1], [7, 5, 1], [7, 1, 5], [5, 7]], `opset ${opset}`);
  }
});

test("Concat adds its axis; Split by attribute, by input and in equal parts", () => {
  const s = infer([
    n("Concat", ["a", "b"], ["c"], attr.int("axis", -1)),
    n("Split", ["c", "parts"], ["s1", "s2"], attr.int("axis", 2)),
    n("Split", ["c"], ["e1", "e2", "e3"], attr.int("axis", 2)),
  ], { a: ["N", 2, 3], b: ["N", 2, 6] }, [i64("parts", [4, 5])]);
  assert.deepEqual([s("c"), s("s1"), s("s2"), s("e1"), s("e3")], [["N", 2, 9], ["N", 2, 4], ["N", 2, 5], ["N", 2, 3], ["N", 2, 3]]);
  const old = infer([n("Split", ["a"], ["p", "q"], attr.int("axis", 2), ints("split", [1, 2]))], { a: [1, 2, 3] }, [], 11);
  assert.deepEqual([old("p"), old("q")], [[1, 2, 1], [1, 2, 2]]);
});

test("Slice with constant starts/ends (negative, clamped, stepped), by attribute before opset 10", () => {
  const s = infer([
    n("Slice", ["x", "st", "en", "ax"], ["a"]),
    n("Slice", ["x", "st2", "en2", "ax2", "step"], ["b"]),
    n("Slice", ["x", "st", "big", "ax"], ["c"]),
    n("Slice", ["x", "st", "en", "dyn"], ["d"]),
  ], { x: ["N", 10, 8], dyn: [I64, [1]] }, [i64("st", [-3]), i64("en", [1000]), i64("ax", [1]), i64("st2", [7]), i64("en2", [0]), i64("ax2", [2]), i64("step", [-2]), i64("big", [2 ** 31 - 1])]);
  assert.deepEqual([s("a"), s("b"), s("c"), s("d")], [["N", 3, 8], ["N", 10, 4], ["N", 3, 8], [null, null, null]]);
  const old = infer([n("Slice", ["x"], ["a"], ints("starts", [1]), ints("ends", [-1]), ints("axes", [0]))], { x: [6, 2] }, [], 9);
  assert.deepEqual(old("a"), [4, 2]);
});

test("Gather with constant indices; Shape values through Slice/Cast/Mul feed a Reshape", () => {
  const s = infer([
    n("Gather", ["x", "idx"], ["g"], attr.int("axis", 1)),
    n("Shape", ["x"], ["sh"]),
    n("Slice", ["sh", "s0", "s2", "s0"], ["hw"]),
    n("Cast", ["hw"], ["hw32"], attr.int("to", DataType.INT32)),
    n("Cast", ["hw32"], ["hw64"], attr.int("to", DataType.INT64)),
    n("Mul", ["hw64", "two"], ["hw2"]),
    n("Reshape", ["y", "hw2"], ["r"]),
  ], { x: [3, 5, 7], y: [60] }, [makeTensor("idx", I64, [2, 2], [0n, 1n, 2n, 3n]), i64("s0", [0]), i64("s2", [2]), i64("two", [2])]);
  assert.deepEqual(s("g"), [3, 2, 2, 7]);
  assert.deepEqual(s("r"), [6, 10]);
});

test("ReduceMean/ReduceSum: axes by attribute or by input as the opset says, keepdims", () => {
  const s = infer([
    n("ReduceMean", ["x"], ["a"], ints("axes", [-1]), attr.int("keepdims", 0)),
    n("ReduceSum", ["x", "ax"], ["b"]),
    n("ReduceMean", ["x"], ["c"]),
  ], { x: ["N", 4, 5] }, [i64("ax", [1])], 13);
  assert.deepEqual([s("a"), s("b"), s("c")], [["N", 4], ["N", 1, 5], [1, 1, 1]]);
  const v18 = infer([n("ReduceMean", ["x", "ax"], ["a"], attr.int("keepdims", 0))], { x: ["N", 4, 5] }, [i64("ax", [1])], 18);
  assert.deepEqual(v18("a"), ["N", 5]);
});

test("Resize by scales or sizes (opset 10's and 11's inputs), Pad by input and by attribute, DepthToSpace", () => {
  const scales = makeTensor("sc", F, [4], [1, 1, 2, 2.5]);
  const s = infer([
    n("Resize", ["x", "", "sc"], ["a"]),
    n("Resize", ["x", "", "", "sz"], ["b"]),
    n("Pad", ["x", "pads"], ["p"]),
    n("DepthToSpace", ["x"], ["d"], attr.int("blocksize", 2)),
  ], { x: ["N", 8, 4, 4] }, [scales, i64("sz", [1, 8, 9, 9]), i64("pads", [0, 0, 1, 2, 0, 0, 3, 4])], 13);
  assert.deepEqual([s("a"), s("b"), s("p"), s("d")], [["N", 8, 8, 10], [1, 8, 9, 9], ["N", 8, 8, 10], ["N", 2, 8, 8]]);
  const v10 = infer([n("Resize", ["x", "sc"], ["a"])], { x: [1, 8, 4, 4] }, [scales], 10);
  assert.deepEqual(v10("a"), [1, 8, 8, 10]);
  const v2 = infer([n("Pad", ["x"], ["p"], ints("pads", [0, 1, 0, 1]))], { x: [3, 4] }, [], 2);
  assert.deepEqual(v2("p"), [3, 6]);
});

test("QuantizeLinear takes its zero point's type (uint8 without one); DequantizeLinear its scale's", () => {
  const g = makeGraph("g", [n("QuantizeLinear", ["x", "s", "zp"], ["q"]), n("QuantizeLinear", ["x", "s"], ["q8"]), n("DequantizeLinear", ["q", "s", "zp"], ["y"])],
    [makeValueInfo("x", F, ["N", 3])], [], { initializers: [makeTensor("s", F, [], [0.5]), makeTensor("zp", DataType.INT8, [], [0])] });
  const t = inferShapes(g, 13).tensors;
  assert.deepEqual([t.get("q"), t.get("q8")?.elemType, t.get("y")], [{ elemType: DataType.INT8, shape: ["N", 3] }, DataType.UINT8, { elemType: F, shape: ["N", 3] }]);
});

test("LSTM and GRU outputs from hidden_size, direction and layout", () => {
  const s = infer([
    n("LSTM", ["x", "w", "r"], ["y", "h", "c"], attr.int("hidden_size", 16), attr.string("direction", "bidirectional")),
    n("GRU", ["xb", "w", "r"], ["gy", "gh"], attr.int("hidden_size", 8), attr.int("layout", 1)),
  ], { x: ["T", 2, 5], xb: [2, "T", 5] });
  assert.deepEqual([s("y"), s("h"), s("c")], [["T", 2, 2, 16], [2, 2, 16], [2, 2, 16]]);
  assert.deepEqual([s("gy"), s("gh")], [[2, "T", 1, 8], [2, 1, 8]]);
});

test("If: outputs where both branches agree, a body sees the outer tensors and is inferred too", () => {
  const thenG = makeGraph("then", [n("Relu", ["x"], ["t"])], [], [makeValueInfo("t", F)]);
  const elseG = makeGraph("else", [n("Slice", ["x", "st", "en", "ax"], ["e"])], [], [makeValueInfo("e", F)]);
  const g = makeGraph("g", [n("If", ["c"], ["y"], attr.graph("then_branch", thenG), attr.graph("else_branch", elseG))],
    [makeValueInfo("c", DataType.BOOL, []), makeValueInfo("x", F, [4, 6])], [],
    { initializers: [i64("st", [0]), i64("en", [3]), i64("ax", [1])] });
  const r = inferModelShapes(makeModel(g, { opsets: { "": 13 } }));
  assert.deepEqual(r.tensors.get("y")?.shape, [4, null], "the branches disagree on dim 1");
  assert.deepEqual(r.bodies.get(elseG)?.tensors.get("e")?.shape, [4, 3]);
});

test("unknown ops and malformed nodes give unknown shapes, never an exception; declared value_info fills in", () => {
  const g = makeGraph("g", [
    n("FancyOp", ["x"], ["a"]),
    n("Relu", ["a"], ["b"]),
    n("Conv", ["x"], ["c"]),
    n("Reshape", ["x", "bad"], ["d"]),
    n("MaxPool", ["x"], ["e"]),
    n("Gather", ["x", "idx"], ["f"], attr.int("axis", 9)),
    makeNode("Foo", ["x"], ["h"], { domain: "custom" }),
    n("MaxPool", ["x"], ["k"], attr.string("kernel_shape", "3x3")),
    n("Transpose", ["x"], ["p"], ints("perm", [0, 7, 1, 2])),
  ], [makeValueInfo("x", F, [1, 3, 4, 4])], [], {
    initializers: [makeTensor("bad", F, [2], [NaN, 3.5]), i64("idx", [0])],
    valueInfo: [makeValueInfo("b", F, [1, "C"]), makeValueInfo("h", F, [7])],
  });
  const t = inferShapes(g, 13).tensors;
  assert.deepEqual(t.get("a"), { elemType: undefined, shape: undefined });
  assert.deepEqual(t.get("b"), { elemType: F, shape: [1, "C"] }, "declared value_info where inference knows nothing");
  assert.equal(t.get("c")?.shape, undefined);
  assert.deepEqual(t.get("d")?.shape, [null, null], "a target that is no shape: its rank only");
  assert.equal(t.get("e")?.shape, undefined);
  assert.deepEqual(t.get("h"), { elemType: F, shape: [7] });
  assert.equal(t.get("f")?.shape, undefined, "an axis out of range");
  assert.equal(t.get("k")?.shape, undefined, "an attribute of the wrong type");
  assert.deepEqual(t.get("p")?.shape, [1, null, 3, 4], "a perm out of range: that dimension unknown");
});

test("rowActivationBytes: the node outputs one row of the given input makes, by element type; unknown ones count 0", () => {
  const g = makeGraph("g", [
    n("Conv", ["x", "w"], ["a"], ints("pads", [1, 1, 1, 1])), // [1, 8, H, W] float
    n("Cast", ["a"], ["h"], attr.int("to", DataType.FLOAT16)), // the same, 2 bytes each
    n("Shape", ["a"], ["s"]), // 4 int64
    makeNode("Foo", ["a"], ["u"], { domain: "custom" }), // unknown: 0
  ], [makeValueInfo("x", F, ["N", 3, "H", "W"])], [makeValueInfo("h", DataType.FLOAT16, ["N", 8, "H", "W"])], { initializers: [zeros("w", [8, 3, 3, 3])] });
  const m = makeModel(g);
  const plane = 20 * 30;
  assert.equal(rowActivationBytes(m, { x: [16, 3, 20, 30] }), 8 * plane * 4 + 8 * plane * 2 + 4 * 8, "the row axis counts 1, whatever the batch's");
  assert.equal(rowActivationBytes(m, { x: [1, 3, 40, 30] }), 2 * (8 * plane * 4 + 8 * plane * 2) + 4 * 8);
  assert.equal(rowActivationBytes(m, {}), 4 * 8, "no dims given: only what the declared shapes fix (Shape's four values)");
});
