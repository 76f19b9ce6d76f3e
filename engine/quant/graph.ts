// What the quantizer needs to know about a graph beyond engine/onnx's helpers: the element type of every value
// (only float tensors are quantized, and exported models compute shapes in int64 right next to the weights).
import type { GraphProto, NodeProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { subgraphs } from "../onnx/graph";
import { attrInt, valueInfoTensor } from "../onnx/proto";

const INT64_OUT = new Set(["Shape", "Size", "ArgMax", "ArgMin", "NonZero", "NonMaxSuppression", "TopK:1"]);
const BOOL_OUT = new Set(["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf"]);

/**
 * Element types of the values of `graph` (top level), from declarations first, then propagated forward through
 * nodes with simple rules (Cast→`to`, Shape→int64, comparisons→bool, If/Loop/Scan→their bodies' outputs, otherwise
 * the first known input type); `outer` holds the enclosing graphs' types when `graph` is a body. A value
 * left unknown is reported as undefined and treated as not quantizable.
 */
export function inferElemTypes(graph: GraphProto, outer: ReadonlyMap<string, number> = new Map()): Map<string, number> {
  const types = new Map<string, number>(outer);
  for (const vi of [...graph.input, ...graph.output, ...graph.valueInfo]) {
    const t = valueInfoTensor(vi);
    if (t && t.elemType !== DataType.UNDEFINED) types.set(vi.name, t.elemType);
  }
  for (const t of graph.initializer) types.set(t.name, t.dataType);
  for (const n of graph.node) {
    n.output.forEach((o, i) => {
      if (!o || types.has(o)) return;
      const t = outputType(n, i, types);
      if (t !== undefined) types.set(o, t);
    });
  }
  return types;
}

function outputType(n: NodeProto, index: number, types: Map<string, number>): number | undefined {
  const op = n.opType;
  if (n.domain !== "" && n.domain !== "ai.onnx") return types.get(n.input[0] ?? "");
  const offset = CONTROL_FLOW_OUTPUT_OFFSET[op];
  if (offset !== undefined) return bodyOutputType(n, index + offset, types);
  if (INT64_OUT.has(op) || INT64_OUT.has(`${op}:${index}`)) return DataType.INT64;
  if (BOOL_OUT.has(op)) return DataType.BOOL;
  if (op === "Cast") return attrInt(n, "to");
  if (op === "Constant") return n.attribute[0]?.t?.dataType ?? (n.attribute[0]?.name.startsWith("value_int") ? DataType.INT64 : DataType.FLOAT);
  if (op === "ConstantOfShape") return n.attribute[0]?.t?.dataType ?? DataType.FLOAT;
  if (op === "Where") return types.get(n.input[1] ?? "") ?? types.get(n.input[2] ?? "");
  if (op === "DequantizeLinear") return DataType.FLOAT;
  if (op === "QuantizeLinear") return types.get(n.input[2] ?? "") ?? DataType.UINT8;
  for (const i of n.input) {
    const t = types.get(i);
    if (t !== undefined) return t;
  }
  return undefined;
}

/** If's outputs are its branches' outputs; Loop's body outputs start with the condition, Scan's do not. */
const CONTROL_FLOW_OUTPUT_OFFSET: Partial<Record<string, number>> = { If: 0, Loop: 1, Scan: 0 };

/** The element type a body gives its output `index`, declared or inferred (with the enclosing values known). */
function bodyOutputType(n: NodeProto, index: number, types: Map<string, number>): number | undefined {
  for (const body of subgraphs(n)) {
    const out = body.output[index];
    if (!out) continue;
    const t = inferElemTypes(body, types).get(out.name);
    if (t !== undefined) return t;
  }
  return undefined;
}

export function isFloat32(types: ReadonlyMap<string, number>, name: string): boolean {
  return types.get(name) === DataType.FLOAT;
}
