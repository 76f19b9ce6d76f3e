// Guards against onnxruntime-node binding pitfalls that kill the process or fail obscurely (measured, see
// shared/notes/onnxruntime-node-facts.md): int4/uint4 graph outputs abort Node when fetched, bf16/fp8 outputs
// make session creation fail. Such outputs are cast to float inside the graph before the session sees them.
import { AttributeProto_AttributeType, type GraphProto, type ModelProto } from "onnx-buf";
import { create } from "@bufbuild/protobuf";
import { AttributeProtoSchema } from "onnx-buf";
import { DataType, dtypeName } from "../onnx/dtype";
import { OnnxError } from "../onnx/errors";
import { makeNode, makeValueInfo, valueInfoTensor } from "../onnx/proto";
import { producers, uniqueName, usedNames } from "../onnx/graph";

/** Element types the JS binding cannot hand back. */
const UNSAFE_OUTPUT = new Set<number>([
  DataType.INT4,
  DataType.UINT4,
  DataType.INT2,
  DataType.UINT2,
  DataType.BFLOAT16,
  DataType.FLOAT8E4M3FN,
  DataType.FLOAT8E4M3FNUZ,
  DataType.FLOAT8E5M2,
  DataType.FLOAT8E5M2FNUZ,
  DataType.FLOAT8E8M0,
  DataType.FLOAT4E2M1,
  DataType.COMPLEX64,
  DataType.COMPLEX128,
]);

export function isUnsafeOutputType(dtype: number): boolean {
  return UNSAFE_OUTPUT.has(dtype);
}

/** Graph outputs whose declared type the binding cannot return. */
export function unsafeOutputs(graph: GraphProto): { name: string; dtype: DataType }[] {
  const out: { name: string; dtype: DataType }[] = [];
  for (const o of graph.output) {
    const t = valueInfoTensor(o);
    if (t && isUnsafeOutputType(t.elemType)) out.push({ name: o.name, dtype: t.elemType });
  }
  return out;
}

/**
 * Rewrites `proto` (a copy the caller owns) so every unsafe graph output is computed in its own type and then
 * cast to float under the original output name. Returns the names cast. Refuses what cannot be cast on CPU.
 */
export function castUnsafeOutputs(proto: ModelProto): string[] {
  const graph = proto.graph;
  if (!graph) return [];
  const bad = unsafeOutputs(graph);
  if (bad.length === 0) return [];
  const prod = producers(graph);
  const taken = usedNames(graph);
  for (const { name, dtype } of bad) {
    if (dtype === DataType.FLOAT4E2M1 || dtype === DataType.COMPLEX64 || dtype === DataType.COMPLEX128) {
      throw new OnnxError(
        `graph output "${name}" is ${dtypeName(dtype)}, which onnxruntime cannot return or cast on CPU: expose a dequantized float tensor instead`,
      );
    }
    const node = prod.get(name);
    if (!node) throw new OnnxError(`graph output "${name}" is ${dtypeName(dtype)} and not computed by a node; it cannot be cast for onnxruntime-node`);
    const raw = uniqueName(graph, `${name}_${dtypeName(dtype)}`, taken);
    node.output = node.output.map((o) => (o === name ? raw : o));
    for (const n of graph.node) n.input = n.input.map((i) => (i === name ? raw : i));
    const cast = makeNode("Cast", [raw], [name], {
      name: uniqueName(graph, `${name}_to_float`, taken),
      attributes: [create(AttributeProtoSchema, { name: "to", type: AttributeProto_AttributeType.INT, i: BigInt(DataType.FLOAT) })],
    });
    graph.node.splice(graph.node.indexOf(node) + 1, 0, cast);
    const at = graph.output.findIndex((o) => o.name === name);
    const shape = valueInfoTensor(graph.output[at]!)?.shape;
    graph.output[at] = makeValueInfo(name, DataType.FLOAT, shape);
  }
  return bad.map((b) => b.name);
}
