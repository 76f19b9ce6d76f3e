// Names and value decoding for ONNX's textual syntax: element type names as onnx.printer spells them, identifier
// quoting, and small-tensor value decoding. Pure: no Node or VS Code APIs, so the extension host can use it.
import type { TensorProto, TypeProto } from "onnx-buf";
import { dtypeInfo } from "../onnx/dtype";

/** The element type's name as onnx.printer spells it (engine/onnx/dtype.ts's table), `dtypeN` if unknown. */
export function elemTypeName(t: number): string {
  try {
    return dtypeInfo(t).name;
  } catch {
    return `dtype${t}`;
  }
}

/** Bits per element (all lanes of a complex value); 0 where the size is not fixed (string) or the type unknown. */
function elemBits(t: number): number {
  try {
    const d = dtypeInfo(t);
    return d.bits * d.lanes;
  } catch {
    return 0;
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_.]*$/;

/** Quotes a name unless the ONNX parser accepts it bare (names like `onnx::Conv_5` or `/conv/Conv` need quotes). */
export function ident(name: string): string {
  return IDENT.test(name) ? name : quote(name);
}

export function quote(s: string): string {
  return JSON.stringify(s);
}

export function typeText(t: TypeProto | undefined): string {
  const v = t?.value;
  switch (v?.case) {
    case "tensorType":
    case "sparseTensorType": {
      const shape = v.value.shape;
      const dims = shape
        ? `[${shape.dim.map((d) => (d.value.case === "dimValue" ? d.value.value.toString() : d.value.case === "dimParam" ? d.value.value : "?")).join(",")}]`
        : "";
      const base = elemTypeName(v.value.elemType) + dims;
      return v.case === "sparseTensorType" ? `sparse_tensor(${base})` : base;
    }
    case "sequenceType":
      return `seq(${typeText(v.value.elemType)})`;
    case "mapType":
      return `map(${elemTypeName(v.value.keyType)}, ${typeText(v.value.valueType)})`;
    case "optionalType":
      return `optional(${typeText(v.value.elemType)})`;
    default:
      return "?";
  }
}

export function elementCount(t: TensorProto): number {
  return t.dims.reduce((n, d) => n * Number(d), 1);
}

/** Bytes a tensor's data takes (stored in the file or externally); strings count their bytes. */
export function tensorBytes(t: TensorProto): number {
  if (t.dataType === 8) return t.stringData.reduce((n, s) => n + s.length, 0);
  return Math.ceil((elementCount(t) * elemBits(t.dataType)) / 8);
}

function formatFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  return String(Number(x.toPrecision(7)));
}

/** Decodes a tensor's values for printing, or undefined when its type or storage is not decoded here. */
export function tensorValues(t: TensorProto): string[] | undefined {
  const n = elementCount(t);
  if (t.dataType === 8) return t.stringData.map((s) => quote(new TextDecoder().decode(s)));
  if (t.rawData.length === 0) {
    if (t.floatData.length) return t.floatData.map(formatFloat);
    if (t.doubleData.length) return t.doubleData.map(formatFloat);
    if (t.int64Data.length) return t.int64Data.map(String);
    if (t.uint64Data.length) return t.uint64Data.map(String);
    if (t.int32Data.length && [2, 3, 4, 5, 6, 9].includes(t.dataType)) return t.int32Data.map(String);
    return n === 0 ? [] : undefined;
  }
  const raw = t.rawData;
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const read: Record<number, [number, (o: number) => string]> = {
    1: [4, (o) => formatFloat(dv.getFloat32(o, true))],
    2: [1, (o) => String(dv.getUint8(o))],
    3: [1, (o) => String(dv.getInt8(o))],
    4: [2, (o) => String(dv.getUint16(o, true))],
    5: [2, (o) => String(dv.getInt16(o, true))],
    6: [4, (o) => String(dv.getInt32(o, true))],
    7: [8, (o) => String(dv.getBigInt64(o, true))],
    9: [1, (o) => String(dv.getUint8(o))],
    11: [8, (o) => formatFloat(dv.getFloat64(o, true))],
    12: [4, (o) => String(dv.getUint32(o, true))],
    13: [8, (o) => String(dv.getBigUint64(o, true))],
  };
  const r = read[t.dataType];
  if (!r || raw.byteLength < n * r[0]) return undefined;
  return Array.from({ length: n }, (_, i) => r[1](i * r[0]));
}
