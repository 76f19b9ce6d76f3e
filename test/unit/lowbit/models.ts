// Small low-bit test models built in code, shared by the rewrite and GPTQ tests.
import { DataType, Model, attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../../../engine/onnx";

function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
}

export function randomArray(n: number, seed: number, scale = 0.2): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * scale);
}

/** x[B,64] → Gemm(transB, W1[48,64], b1) → Relu → MatMul(W2[48,40]) → y; img[B,3,8,8] → Conv(Wc[8,3,3,3]) → z. */
export function buildModel(opset = 13): Model {
  const g = makeGraph(
    "lowbit_test",
    [
      makeNode("Gemm", ["x", "W1", "b1"], ["h"], { name: "fc1", attributes: [attr.int("transB", 1)] }),
      makeNode("Relu", ["h"], ["hr"], { name: "relu" }),
      makeNode("MatMul", ["hr", "W2"], ["y"], { name: "fc2" }),
      makeNode("Conv", ["img", "Wc"], ["z"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
    ],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 64]), makeValueInfo("img", DataType.FLOAT, ["batch", 3, 8, 8])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 40]), makeValueInfo("z", DataType.FLOAT, ["batch", 8, 8, 8])],
    {
      initializers: [
        makeTensor("W1", DataType.FLOAT, [48, 64], randomArray(48 * 64, 1)),
        makeTensor("b1", DataType.FLOAT, [48], randomArray(48, 2)),
        makeTensor("W2", DataType.FLOAT, [48, 40], randomArray(48 * 40, 3)),
        makeTensor("Wc", DataType.FLOAT, [8, 3, 3, 3], randomArray(8 * 27, 4)),
      ],
    },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": opset } }));
}
