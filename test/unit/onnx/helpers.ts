// Small real models built in code, shared by the onnx tests.
import { DataType, Model, attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../../../engine/onnx";

/** x[1,4] → MatMul W[4,3] → Add b → Relu → y, with a Constant-node weight feeding a Mul. */
export function smallMlp(opset = 17): Model {
  const w = makeTensor("W", DataType.FLOAT, [4, 3], Array.from({ length: 12 }, (_, i) => (i - 6) / 4));
  const b = makeTensor("b", DataType.FLOAT, [3], [0.5, -0.25, 0]);
  const k = makeNode("Constant", [], ["k"], { name: "const_k", attributes: [attr.tensor("value", makeTensor("", DataType.FLOAT, [3], [2, 2, 2]))] });
  const g = makeGraph(
    "mlp",
    [
      makeNode("MatMul", ["x", "W"], ["h"], { name: "mm" }),
      makeNode("Add", ["h", "b"], ["z"], { name: "add" }),
      k,
      makeNode("Mul", ["z", "k"], ["z2"], { name: "mul" }),
      makeNode("Relu", ["z2"], ["y"], { name: "relu" }),
    ],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 4])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 3])],
    { initializers: [w, b] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": opset } }));
}

/** A model with a big initializer (n floats) to exercise external data. */
export function bigWeights(n: number): Model {
  const w = makeTensor("big", DataType.FLOAT, [n], Float32Array.from({ length: n }, (_, i) => Math.sin(i)));
  const s = makeTensor("small", DataType.FLOAT, [1], [3]);
  const g = makeGraph(
    "big",
    [makeNode("Add", ["x", "big"], ["t"]), makeNode("Mul", ["t", "small"], ["y"])],
    [makeValueInfo("x", DataType.FLOAT, [n])],
    [makeValueInfo("y", DataType.FLOAT, [n])],
    { initializers: [w, s] },
  );
  return Model.fromProto(makeModel(g));
}

/** An If whose branches read an outer value and an outer initializer. */
export function withIf(): Model {
  const thenG = makeGraph("then", [makeNode("Add", ["x", "one"], ["t_out"])], [], [makeValueInfo("t_out", DataType.FLOAT, [2])]);
  const elseG = makeGraph("else", [makeNode("Sub", ["x", "one"], ["e_out"])], [], [makeValueInfo("e_out", DataType.FLOAT, [2])]);
  const g = makeGraph(
    "if",
    [makeNode("If", ["cond"], ["y"], { name: "branch", attributes: [attr.graph("then_branch", thenG), attr.graph("else_branch", elseG)] })],
    [makeValueInfo("cond", DataType.BOOL, []), makeValueInfo("x", DataType.FLOAT, [2])],
    [makeValueInfo("y", DataType.FLOAT, [2])],
    { initializers: [makeTensor("one", DataType.FLOAT, [2], [1, 1])] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
}

/** x → QuantizeLinear (int4, scale 1) → q → DequantizeLinear → y, opset 21: an int4 intermediate tensor. */
export function int4QuantDequant(): Model {
  const g = makeGraph(
    "q",
    [makeNode("QuantizeLinear", ["x", "s", "zp"], ["q"], { name: "quant" }), makeNode("DequantizeLinear", ["q", "s", "zp"], ["y"], { name: "dq" })],
    [makeValueInfo("x", DataType.FLOAT, [4])],
    [makeValueInfo("y", DataType.FLOAT, [4])],
    { initializers: [makeTensor("s", DataType.FLOAT, [], [1]), makeTensor("zp", DataType.INT4, [], [0])] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 21 } }));
}
