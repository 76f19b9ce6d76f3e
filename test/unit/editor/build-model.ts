// Builds tiny real ONNX models in code for the editor's tests (printer, summary, escaping), with onnx-buf.
import { create, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, OperatorSetIdProtoSchema,
  TensorProtoSchema, TypeProtoSchema, TypeProto_TensorSchema, TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema, ValueInfoProtoSchema, StringStringEntryProtoSchema,
  type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from "onnx-buf";

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  const dim = dims.map((d) =>
    create(TensorShapeProto_DimensionSchema, {
      value: typeof d === "number" ? { case: "dimValue", value: BigInt(d) } : { case: "dimParam", value: d },
    }),
  );
  const tensorType = create(TypeProto_TensorSchema, { elemType, shape: create(TensorShapeProtoSchema, { dim }) });
  return create(ValueInfoProtoSchema, { name, type: create(TypeProtoSchema, { value: { case: "tensorType", value: tensorType } }) });
}

export function floatTensor(name: string, dims: number[], values: number[]): TensorProto {
  const raw = new Uint8Array(new Float32Array(values).buffer);
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: 1, rawData: raw });
}

export function int64Tensor(name: string, values: number[]): TensorProto {
  return create(TensorProtoSchema, { name, dims: [BigInt(values.length)], dataType: 7, int64Data: values.map(BigInt) });
}

export type Attr = number | string | number[] | GraphProto | { ints: number[] };

export function attr(name: string, v: Attr): AttributeProto {
  if (typeof v === "string") return create(AttributeProtoSchema, { name, type: 3, s: new TextEncoder().encode(v) });
  if (typeof v === "number") {
    return Number.isInteger(v)
      ? create(AttributeProtoSchema, { name, type: 2, i: BigInt(v) })
      : create(AttributeProtoSchema, { name, type: 1, f: v });
  }
  if (Array.isArray(v)) return create(AttributeProtoSchema, { name, type: 6, floats: v });
  if ("ints" in v) return create(AttributeProtoSchema, { name, type: 7, ints: v.ints.map(BigInt) });
  return create(AttributeProtoSchema, { name, type: 5, g: v });
}

export function node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}, extra: { name?: string; domain?: string } = {}): NodeProto {
  return create(NodeProtoSchema, {
    opType, input: inputs, output: outputs, name: extra.name ?? "", domain: extra.domain ?? "",
    attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
  });
}

export function graph(name: string, nodes: NodeProto[], inputs: ValueInfoProto[], outputs: ValueInfoProto[], inits: TensorProto[] = []): GraphProto {
  return create(GraphProtoSchema, { name, node: nodes, input: inputs, output: outputs, initializer: inits });
}

export function model(g: GraphProto, opset = 13, extra: { producer?: string; doc?: string; metadata?: Record<string, string> } = {}): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: 8n, graph: g, producerName: extra.producer ?? "ptq-test", docString: extra.doc ?? "",
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(opset) })],
    metadataProps: Object.entries(extra.metadata ?? {}).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
  });
}

/** A small MLP: MatMul → Add → Relu → MatMul, with a big initializer (elided) and a small one (printed). */
export function mlp(): ModelProto {
  const w1 = floatTensor("fc1.weight", [4, 64], Array.from({ length: 256 }, (_, i) => (i % 7) / 10 - 0.3));
  const b1 = floatTensor("fc1.bias", [64], new Array(64).fill(0.5));
  const w2 = floatTensor("fc2.weight", [64, 2], Array.from({ length: 128 }, (_, i) => (i % 5) / 10 - 0.2));
  const shape = int64Tensor("shape", [-1, 2]);
  return model(
    graph("main_graph", [
      node("MatMul", ["input", "fc1.weight"], ["/fc1/MatMul_output_0"], {}, { name: "/fc1/MatMul" }),
      node("Add", ["/fc1/MatMul_output_0", "fc1.bias"], ["h"]),
      node("LeakyRelu", ["h"], ["r"], { alpha: 0.1 }),
      node("MatMul", ["r", "fc2.weight"], ["y"]),
      node("Reshape", ["y", "shape"], ["out"]),
      node("Transpose", ["out"], ["out_t"], { perm: { ints: [1, 0] } }),
    ], [valueInfo("input", 1, ["N", 4])], [valueInfo("out_t", 1, [2, "N"])], [w1, b1, w2, shape]),
    13,
    { producer: "pytorch" },
  );
}

export function bytesOf(m: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, m);
}
