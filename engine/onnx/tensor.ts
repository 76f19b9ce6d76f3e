// Tensor codecs: TensorProto ⇄ { dtype, dims, data } for every ONNX element type, from raw_data, the typed fields
// (float_data, int32_data, ...) or external data. Small float formats decode to Float32Array; packed 4- and 2-bit
// integers unpack to one element per byte; int64/uint64 stay exact as BigInt arrays.
import { create } from "@bufbuild/protobuf";
import { TensorProtoSchema, type TensorProto } from "onnx-buf";
import { DataType, DECODED_ARRAYS, decodedArray, dtypeInfo, dtypeName, elementCount, storageBytes, type DTypeInfo } from "./dtype";
import { OnnxError } from "./errors";
import { isExternal, readExternalBytes } from "./external";
import * as fb from "./floatbits";

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

/** A decoded tensor. `data` holds one entry per element (complex: two, real then imaginary). */
export interface TensorValue {
  dtype: DataType;
  dims: number[];
  data: TensorData;
}

/** Values makeTensor accepts: numbers for numeric types (bigints for 64-bit ones too), strings for STRING. */
export type TensorInput = ArrayLike<number> | ArrayLike<bigint> | readonly boolean[] | readonly string[];

const describe = (t: TensorProto, d: DTypeInfo) =>
  `tensor "${t.name}" (${d.name}, shape [${t.dims.join(", ")}])`;

/** A float decoder for each small float format, by element type. */
const SMALL_FLOAT_DECODE: Partial<Record<DataType, (code: number) => number>> = {
  [DataType.FLOAT16]: fb.float16ToFloat,
  [DataType.BFLOAT16]: fb.bfloat16ToFloat,
  [DataType.FLOAT8E4M3FN]: (c) => fb.float8e4m3fn.decode(c),
  [DataType.FLOAT8E4M3FNUZ]: (c) => fb.float8e4m3fnuz.decode(c),
  [DataType.FLOAT8E5M2]: (c) => fb.float8e5m2.decode(c),
  [DataType.FLOAT8E5M2FNUZ]: (c) => fb.float8e5m2fnuz.decode(c),
  [DataType.FLOAT8E8M0]: fb.float8e8m0ToFloat,
  [DataType.FLOAT4E2M1]: (c) => fb.float4e2m1.decode(c),
};

const SMALL_FLOAT_ENCODE: Partial<Record<DataType, (x: number) => number>> = {
  [DataType.FLOAT16]: fb.floatToFloat16,
  [DataType.BFLOAT16]: fb.floatToBfloat16,
  [DataType.FLOAT8E4M3FN]: (x) => fb.float8e4m3fn.encode(x),
  [DataType.FLOAT8E4M3FNUZ]: (x) => fb.float8e4m3fnuz.encode(x),
  [DataType.FLOAT8E5M2]: (x) => fb.float8e5m2.encode(x),
  [DataType.FLOAT8E5M2FNUZ]: (x) => fb.float8e5m2fnuz.encode(x),
  [DataType.FLOAT8E8M0]: fb.floatToFloat8e8m0,
  [DataType.FLOAT4E2M1]: (x) => fb.float4e2m1.encode(x),
};

function copyBytes(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** Unpacks 4- or 2-bit codes (first element in the low bits) into one code per element. */
export function unpackBits(bytes: Uint8Array, count: number, bits: 4 | 2): Uint8Array {
  const out = new Uint8Array(count);
  const per = 8 / bits;
  const mask = (1 << bits) - 1;
  for (let i = 0; i < count; i++) out[i] = (bytes[(i / per) | 0]! >> ((i % per) * bits)) & mask;
  return out;
}

export function packBits(codes: ArrayLike<number>, bits: 4 | 2): Uint8Array {
  const per = 8 / bits;
  const mask = (1 << bits) - 1;
  const out = new Uint8Array(Math.ceil(codes.length / per));
  for (let i = 0; i < codes.length; i++) out[(i / per) | 0]! |= (codes[i]! & mask) << ((i % per) * bits);
  return out;
}

/** Decodes a tensor's storage codes (as stored: bit patterns for small floats) into its JS array. */
function decodeCodes(d: DTypeInfo, codes: ArrayLike<number>, count: number): TensorData {
  const small = SMALL_FLOAT_DECODE[d.id];
  if (small) {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = small(codes[i]!);
    return out;
  }
  switch (d.id) {
    case DataType.INT4:
    case DataType.INT2: {
      const out = new Int8Array(count);
      const signBit = 1 << (d.bits - 1);
      for (let i = 0; i < count; i++) out[i] = codes[i]! & signBit ? codes[i]! - (signBit << 1) : codes[i]!;
      return out;
    }
    case DataType.BOOL: {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = codes[i] ? 1 : 0;
      return out;
    }
    default:
      return Uint8Array.from({ length: count }, (_, i) => codes[i]!);
  }
}

/** The element codes of a tensor stored in int32_data: one per element, or packed bytes for sub-byte types. */
function codesFromInt32Data(t: TensorProto, d: DTypeInfo, count: number): ArrayLike<number> {
  if (d.bits < 8) {
    const bytes = Uint8Array.from(t.int32Data, (v) => v & 0xff);
    if (bytes.length !== storageBytes(d.id, count)) {
      throw new OnnxError(`${describe(t, d)} needs ${storageBytes(d.id, count)} packed int32_data entries, has ${bytes.length}`);
    }
    return unpackBits(bytes, count, d.bits as 4 | 2);
  }
  if (t.int32Data.length !== count) {
    throw new OnnxError(`${describe(t, d)} needs ${count} int32_data values, has ${t.int32Data.length}`);
  }
  return t.int32Data;
}

function fromRaw(t: TensorProto, d: DTypeInfo, bytes: Uint8Array, count: number): TensorData {
  const need = storageBytes(d.id, count * d.lanes);
  if (bytes.byteLength !== need) {
    throw new OnnxError(
      `${describe(t, d)} needs ${need} bytes of data but has ${bytes.byteLength}: the file is corrupted or the shape is wrong`,
    );
  }
  const n = count * d.lanes;
  if (d.bits < 8) return decodeCodes(d, unpackBits(bytes, n, d.bits as 4 | 2), n);
  if (SMALL_FLOAT_DECODE[d.id]) {
    const codes = d.bits === 16 ? new Uint16Array(copyBytes(bytes)) : bytes;
    return decodeCodes(d, codes, n);
  }
  if (d.decoded === "string") throw new OnnxError(`${describe(t, d)}: strings cannot be stored in raw_data (use string_data)`);
  return d.id === DataType.BOOL ? decodeCodes(d, bytes, n) : new (decodedArray(d.decoded))(copyBytes(bytes));
}

function fromTypedFields(t: TensorProto, d: DTypeInfo, count: number): TensorData {
  const n = count * d.lanes;
  const check = (have: number) => {
    if (have !== n) throw new OnnxError(`${describe(t, d)} needs ${n} values in ${d.field}, has ${have}`);
  };
  switch (d.field) {
    case "floatData":
      check(t.floatData.length);
      return Float32Array.from(t.floatData);
    case "doubleData":
      check(t.doubleData.length);
      return Float64Array.from(t.doubleData);
    case "int64Data":
      check(t.int64Data.length);
      return BigInt64Array.from(t.int64Data);
    case "uint64Data":
      check(t.uint64Data.length);
      return d.id === DataType.UINT32
        ? Uint32Array.from(t.uint64Data, (v) => Number(v))
        : BigUint64Array.from(t.uint64Data);
    case "stringData": {
      check(t.stringData.length);
      const dec = new TextDecoder();
      return t.stringData.map((b) => dec.decode(b));
    }
    case "int32Data": {
      const codes = codesFromInt32Data(t, d, n);
      if (SMALL_FLOAT_DECODE[d.id] || d.bits < 8 || d.id === DataType.BOOL) return decodeCodes(d, codes, n);
      // Left: int8, uint8, int16, uint16 and int32, each wrapped to its array as the spec stores them.
      const out = new (decodedArray(d.decoded as "int32"))(codes.length) as Int32Array;
      out.set(codes);
      return out;
    }
  }
}

/** Where the tensor's values are: external file, raw_data, or a typed field. */
export function tensorStorage(t: TensorProto): "external" | "raw" | "typed" {
  if (isExternal(t)) return "external";
  if (t.rawData.byteLength > 0) return "raw";
  const d = dtypeInfo(t.dataType, `tensor "${t.name}"`);
  return (t[d.field] as ArrayLike<unknown>).length > 0 || d.field === "stringData" ? "typed" : "raw";
}

/**
 * Decodes a TensorProto. `baseDir` is the folder external data is read from (Model.dir); it is only needed for
 * tensors stored externally.
 */
export function readTensor(t: TensorProto, baseDir?: string): TensorValue {
  const d = dtypeInfo(t.dataType, `tensor "${t.name}"`);
  const dims = t.dims.map(Number);
  const count = elementCount(dims, `tensor "${t.name}"`);
  const where = tensorStorage(t);
  const data =
    where === "typed"
      ? fromTypedFields(t, d, count)
      : fromRaw(t, d, where === "external" ? readExternalBytes(t, baseDir) : t.rawData, count);
  return { dtype: d.id, dims, data };
}

/** Any numeric tensor as float32 values (int64 converted with Number; strings are an error). */
export function tensorToFloat32(t: TensorProto, baseDir?: string): Float32Array {
  const v = readTensor(t, baseDir);
  if (v.data instanceof Float32Array) return v.data;
  if (Array.isArray(v.data)) throw new OnnxError(`tensor "${t.name}" holds strings, not numbers`);
  const src = v.data;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = Number(src[i]!);
  return out;
}

/** The stored bytes of a non-string tensor, little-endian, packed as raw_data would hold them. */
export function tensorRawBytes(t: TensorProto, baseDir?: string): Uint8Array {
  const where = tensorStorage(t);
  if (where === "raw") return t.rawData;
  if (where === "external") return readExternalBytes(t, baseDir);
  const v = readTensor(t, baseDir);
  const d = dtypeInfo(v.dtype);
  return encodeRaw(d, v.data, `tensor "${t.name}"`);
}

function toNumbers(data: TensorInput, n: number, what: string): ArrayLike<number> {
  if (data.length !== n) throw new OnnxError(`${what}: shape needs ${n} values, got ${data.length}`);
  if (n > 0 && typeof data[0] === "string") throw new OnnxError(`${what}: got strings for a numeric type`);
  if (n > 0 && typeof data[0] !== "number") return Array.from(data as ArrayLike<bigint | boolean>, Number);
  return data as ArrayLike<number>;
}

function toBigInts(data: TensorInput, n: number, what: string): bigint[] {
  if (data.length !== n) throw new OnnxError(`${what}: shape needs ${n} values, got ${data.length}`);
  return Array.from(data as ArrayLike<number | bigint | boolean>, (v) =>
    typeof v === "bigint" ? v : BigInt(Math.trunc(Number(v))),
  );
}

/** Storage codes for element types that live in int32_data or raw bytes of width ≤ 16 bits. */
function encodeCodes(d: DTypeInfo, values: ArrayLike<number>): ArrayLike<number> {
  const small = SMALL_FLOAT_ENCODE[d.id];
  if (small) return Array.from(values, small);
  if (d.id === DataType.BOOL) return Array.from(values, (v) => (v ? 1 : 0));
  if (d.bits < 8) return Array.from(values, (v) => v & ((1 << d.bits) - 1));
  return values;
}

function encodeRaw(d: DTypeInfo, data: TensorInput, what: string): Uint8Array {
  const n = data.length;
  if (d.bits < 8) return packBits(encodeCodes(d, toNumbers(data, n, what)), d.bits as 4 | 2);
  if (SMALL_FLOAT_ENCODE[d.id]) {
    const codes = encodeCodes(d, toNumbers(data, n, what));
    return d.bits === 16 ? new Uint8Array(Uint16Array.from(codes).buffer) : Uint8Array.from(codes);
  }
  if (d.decoded === "string") throw new OnnxError(`${what}: strings are stored in string_data, not raw_data`);
  let arr: ArrayBufferView;
  if (d.decoded === "float32" && data instanceof Float32Array) arr = data;
  else if (d.decoded === "int64" || d.decoded === "uint64") arr = DECODED_ARRAYS[d.decoded].from(toBigInts(data, n, what));
  else {
    // Stored as the decoded array holds them (set() converts like the array's from(): truncating, wrapping).
    const values = d.decoded === "uint8" ? encodeCodes(d, toNumbers(data, n, what)) : toNumbers(data, n, what);
    const typed = new (decodedArray(d.decoded))(values.length) as Float64Array;
    typed.set(values);
    arr = typed;
  }
  return new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength));
}

export interface MakeTensorOptions {
  /** Store in raw_data (default, compact and fast) or in the typed field (float_data, int32_data, ...). */
  raw?: boolean;
}

/**
 * Builds a TensorProto. `data` holds one value per element (complex: real, imaginary pairs); small float formats
 * take float values and are rounded (half to even, saturating); int4/uint4/int2/uint2 are packed.
 */
export function makeTensor(
  name: string,
  dtype: DataType,
  dims: readonly number[],
  data: TensorInput,
  options: MakeTensorOptions = {},
): TensorProto {
  const d = dtypeInfo(dtype, `tensor "${name}"`);
  const what = `tensor "${name}" (${dtypeName(dtype)}, shape [${dims.join(", ")}])`;
  const n = elementCount(dims, what) * d.lanes;
  if (data.length !== n) throw new OnnxError(`${what}: shape needs ${n} values, got ${data.length}`);
  const t = create(TensorProtoSchema, { name, dataType: dtype, dims: dims.map((v) => BigInt(v)) });
  if (d.id === DataType.STRING) {
    const enc = new TextEncoder();
    t.stringData = Array.from(data as ArrayLike<string>, (s) => enc.encode(String(s)));
    return t;
  }
  if (options.raw !== false) {
    t.rawData = encodeRaw(d, data, what) as Uint8Array<ArrayBuffer>;
    return t;
  }
  switch (d.field) {
    case "floatData":
    case "doubleData":
      t[d.field] = Array.from(toNumbers(data, n, what));
      break;
    case "int64Data":
    case "uint64Data":
      t[d.field] = toBigInts(data, n, what);
      break;
    case "int32Data": {
      const codes = encodeCodes(d, toNumbers(data, n, what));
      t.int32Data = d.bits < 8 ? Array.from(packBits(codes, d.bits as 4 | 2)) : Array.from(codes);
      break;
    }
    case "stringData":
      break;
  }
  return t;
}
