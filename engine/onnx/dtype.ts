// The ONNX element types: one table saying how each is stored (bits per element, which TensorProto field holds it
// when raw_data is not used) and which JS array it decodes to. Everything else looks types up here.
import { TensorProto_DataType as DataType } from "onnx-buf";
import { OnnxError } from "./errors";

export { DataType };

/** The typed array of each numeric decoded kind, the one place that pairs element types with JS arrays. */
export const DECODED_ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
} as const;

export type NumericKind = keyof typeof DECODED_ARRAYS;
/** Which JS array a decoded tensor of this type comes back as (see readTensor): float32 for float and every smaller
 *  float format (their values), string[] for strings. */
export type DecodedKind = NumericKind | "string";
/** A decoded numeric tensor's array (engine/onnx's TensorData, strings excluded). */
export type NumericArray = InstanceType<(typeof DECODED_ARRAYS)[NumericKind]>;

/** A typed array class, as DECODED_ARRAYS holds them. */
export interface NumericArrayType {
  new (n: number): NumericArray;
  new (buffer: ArrayBuffer): NumericArray;
  readonly name: string;
  readonly BYTES_PER_ELEMENT: number;
}

/** The array a decoded tensor of this kind comes back as. */
export function decodedArray(kind: NumericKind): NumericArrayType {
  return DECODED_ARRAYS[kind];
}

/** The decoded kind of a typed array (the name onnxruntime gives its type, too), or undefined for other arrays. */
export function kindOfArray(data: unknown): NumericKind | undefined {
  for (const [kind, A] of Object.entries(DECODED_ARRAYS)) if (data instanceof A) return kind as NumericKind;
  return undefined;
}

/** Which typed TensorProto field carries the values when raw_data is not used. */
export type TypedField = "floatData" | "doubleData" | "int32Data" | "int64Data" | "uint64Data" | "stringData";

export interface DTypeInfo {
  id: DataType;
  /** Lower-case name as ONNX writes it in text form ("float", "float16", "int4", ...). */
  name: string;
  /** Storage bits per element (4 for int4/uint4/float4e2m1, 2 for int2/uint2; 0 for strings; complex: per lane). */
  bits: number;
  decoded: DecodedKind;
  field: TypedField;
  /** Elements per value: 2 for complex types (stored as interleaved real, imaginary). */
  lanes: number;
}

const T = (id: DataType, name: string, bits: number, decoded: DecodedKind, field: TypedField, lanes = 1): DTypeInfo => ({
  id,
  name,
  bits,
  decoded,
  field,
  lanes,
});

const TABLE: DTypeInfo[] = [
  T(DataType.FLOAT, "float", 32, "float32", "floatData"),
  T(DataType.UINT8, "uint8", 8, "uint8", "int32Data"),
  T(DataType.INT8, "int8", 8, "int8", "int32Data"),
  T(DataType.UINT16, "uint16", 16, "uint16", "int32Data"),
  T(DataType.INT16, "int16", 16, "int16", "int32Data"),
  T(DataType.INT32, "int32", 32, "int32", "int32Data"),
  T(DataType.INT64, "int64", 64, "int64", "int64Data"),
  T(DataType.STRING, "string", 0, "string", "stringData"),
  T(DataType.BOOL, "bool", 8, "uint8", "int32Data"),
  T(DataType.FLOAT16, "float16", 16, "float32", "int32Data"),
  T(DataType.DOUBLE, "double", 64, "float64", "doubleData"),
  T(DataType.UINT32, "uint32", 32, "uint32", "uint64Data"),
  T(DataType.UINT64, "uint64", 64, "uint64", "uint64Data"),
  T(DataType.COMPLEX64, "complex64", 32, "float32", "floatData", 2),
  T(DataType.COMPLEX128, "complex128", 64, "float64", "doubleData", 2),
  T(DataType.BFLOAT16, "bfloat16", 16, "float32", "int32Data"),
  T(DataType.FLOAT8E4M3FN, "float8e4m3fn", 8, "float32", "int32Data"),
  T(DataType.FLOAT8E4M3FNUZ, "float8e4m3fnuz", 8, "float32", "int32Data"),
  T(DataType.FLOAT8E5M2, "float8e5m2", 8, "float32", "int32Data"),
  T(DataType.FLOAT8E5M2FNUZ, "float8e5m2fnuz", 8, "float32", "int32Data"),
  T(DataType.UINT4, "uint4", 4, "uint8", "int32Data"),
  T(DataType.INT4, "int4", 4, "int8", "int32Data"),
  T(DataType.FLOAT4E2M1, "float4e2m1", 4, "float32", "int32Data"),
  T(DataType.FLOAT8E8M0, "float8e8m0", 8, "float32", "int32Data"),
  T(DataType.UINT2, "uint2", 2, "uint8", "int32Data"),
  T(DataType.INT2, "int2", 2, "int8", "int32Data"),
];

const BY_ID = new Map<number, DTypeInfo>(TABLE.map((d) => [d.id, d]));
const BY_NAME = new Map<string, DTypeInfo>(TABLE.map((d) => [d.name, d]));

/** The table entry for an ONNX element type; `what` names the tensor or value for the error message. */
export function dtypeInfo(id: number, what?: string): DTypeInfo {
  const d = BY_ID.get(id);
  if (!d) {
    const where = what ? ` of ${what}` : "";
    throw new OnnxError(`unknown or unsupported ONNX element type ${id}${where} (known: ${TABLE.map((t) => t.name).join(", ")})`);
  }
  return d;
}

export function dtypeName(id: number): string {
  return BY_ID.get(id)?.name ?? `type${id}`;
}

export function dtypeByName(name: string): DataType {
  const d = BY_NAME.get(name.toLowerCase());
  if (!d) throw new OnnxError(`unknown ONNX element type "${name}"`);
  return d.id;
}

export function allDTypes(): readonly DTypeInfo[] {
  return TABLE;
}

/** Storage size in bytes of `count` elements of type `id` (packed types round up to whole bytes). */
export function storageBytes(id: number, count: number): number {
  const d = dtypeInfo(id);
  return Math.ceil((count * d.bits) / 8);
}

/** Product of dims; an empty list is a scalar (1 element). Negative or non-integer dims are an error. */
export function elementCount(dims: readonly (number | bigint)[], what = "tensor"): number {
  let n = 1;
  for (const d of dims) {
    const v = Number(d);
    if (!Number.isSafeInteger(v) || v < 0) throw new OnnxError(`${what} has an invalid dimension ${String(d)}`);
    n *= v;
  }
  if (!Number.isSafeInteger(n)) throw new OnnxError(`${what} has too many elements (${n})`);
  return n;
}

const INTEGER_TYPES: ReadonlySet<number> = new Set([
  DataType.INT8, DataType.UINT8, DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32, DataType.INT64, DataType.UINT64,
]);

/** Whether an element type is a plain (8 to 64-bit) integer. */
export const isIntegerType = (id: number | undefined): boolean => id !== undefined && INTEGER_TYPES.has(id);
