// The few ONNX graph helpers the quantizer needs: build tensors/nodes, read float initializers, look up attributes.
// Kept small and local so the engine works on a plain onnx-buf ModelProto; anything general belongs in kernel/onnx.
import { create } from "@bufbuild/protobuf";
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType as AttrType,
  NodeProtoSchema,
  TensorProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from "onnx-buf";

export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, FLOAT16: 10, DOUBLE: 11 } as const;

export type AttrValue = number | bigint | number[] | bigint[] | string | TensorProto;

export function makeNode(
  opType: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attrs: Record<string, AttrValue> = {},
  domain = "",
): NodeProto {
  const attribute = Object.entries(attrs).map(([k, v]) => makeAttr(k, v));
  return create(NodeProtoSchema, { opType, input: inputs, output: outputs, name, attribute, domain });
}

function makeAttr(name: string, v: AttrValue): AttributeProto {
  if (typeof v === "bigint") return create(AttributeProtoSchema, { name, type: AttrType.INT, i: v });
  if (typeof v === "number")
    return Number.isInteger(v) && !Object.is(v, -0)
      ? create(AttributeProtoSchema, { name, type: AttrType.INT, i: BigInt(v) })
      : create(AttributeProtoSchema, { name, type: AttrType.FLOAT, f: v });
  if (typeof v === "string") return create(AttributeProtoSchema, { name, type: AttrType.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) {
    if (v.length > 0 && typeof v[0] === "bigint") return create(AttributeProtoSchema, { name, type: AttrType.INTS, ints: v as bigint[] });
    return create(AttributeProtoSchema, { name, type: AttrType.INTS, ints: (v as number[]).map((x) => BigInt(x)) });
  }
  return create(AttributeProtoSchema, { name, type: AttrType.TENSOR, t: v });
}

/** A float attribute (e.g. `alpha`) — use for values that must stay FLOAT even when integral. */
export function floatAttr(name: string, f: number): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AttrType.FLOAT, f });
}

export function getAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function getInt(node: NodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? Number(a.i) : fallback;
}

export function getFloat(node: NodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? a.f : fallback;
}

/** A tensor stored as raw little-endian bytes (what onnxruntime reads fastest). */
export function makeTensor(name: string, dataType: number, dims: readonly number[], data: ArrayBufferView): TensorProto {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return create(TensorProtoSchema, { name, dataType, dims: dims.map((d) => BigInt(d)), rawData: bytes });
}

export function tensorDims(t: TensorProto): number[] {
  return t.dims.map((d) => Number(d));
}

/** The values of a FLOAT, FLOAT16 or DOUBLE tensor as float32; undefined for other types or external data. */
export function readFloat(t: TensorProto): Float32Array | undefined {
  if (t.externalData.length > 0) return undefined;
  const n = tensorDims(t).reduce((a, b) => a * b, 1);
  const raw = t.rawData;
  if (t.dataType === DT.FLOAT) {
    if (raw.length) return new Float32Array(raw.slice().buffer, 0, n);
    return Float32Array.from(t.floatData);
  }
  if (t.dataType === DT.DOUBLE) {
    if (raw.length) return Float32Array.from(new Float64Array(raw.slice().buffer, 0, n));
    return Float32Array.from(t.doubleData);
  }
  if (t.dataType === DT.FLOAT16) {
    // int32_data holds one fp16 bit pattern per element when raw_data is empty.
    const bits = raw.length ? new Uint16Array(raw.slice().buffer, 0, n) : Uint16Array.from(t.int32Data);
    return Float32Array.from(bits, halfToFloat);
  }
  return undefined;
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

export function isFloatType(dt: number): boolean {
  return dt === DT.FLOAT || dt === DT.FLOAT16 || dt === DT.DOUBLE;
}

export function opsetOf(model: ModelProto, domain = ""): number {
  const o = model.opsetImport.find((x) => (x.domain === "ai.onnx" ? "" : x.domain) === domain);
  return o ? Number(o.version) : 0;
}

/** Per-tensor element type as far as the graph declares it (inputs, outputs, value_info, initializers). */
export function declaredTypes(graph: GraphProto): Map<string, number> {
  const m = new Map<string, number>();
  for (const vi of [...graph.input, ...graph.output, ...graph.valueInfo]) {
    const tt = vi.type?.value;
    if (tt?.case === "tensorType") m.set(vi.name, tt.value.elemType);
  }
  for (const t of graph.initializer) m.set(t.name, t.dataType);
  return m;
}
