// NumPy .npy format (versions 1–3): a magic string, a Python-literal header dict, then the raw array in C order.
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html

import { readFileSync } from "node:fs";
import { DataType } from "../onnx/dtype";
import { DataError, type TensorArray, type LoadedArray } from "./feeds";

interface NpyType {
  dtype: DataType;
  bytes: number;
  make: (n: number) => TensorArray;
  /** Reads element i (little or big endian) from a DataView. */
  get: (v: DataView, off: number, le: boolean) => number | bigint;
}

const TYPES: Record<string, NpyType> = {
  f4: { dtype: DataType.FLOAT, bytes: 4, make: (n) => new Float32Array(n), get: (v, o, le) => v.getFloat32(o, le) },
  f8: { dtype: DataType.DOUBLE, bytes: 8, make: (n) => new Float64Array(n), get: (v, o, le) => v.getFloat64(o, le) },
  // float16 is kept as its bits: that is how onnxruntime-node takes float16 tensors.
  f2: { dtype: DataType.FLOAT16, bytes: 2, make: (n) => new Uint16Array(n), get: (v, o, le) => v.getUint16(o, le) },
  i1: { dtype: DataType.INT8, bytes: 1, make: (n) => new Int8Array(n), get: (v, o) => v.getInt8(o) },
  u1: { dtype: DataType.UINT8, bytes: 1, make: (n) => new Uint8Array(n), get: (v, o) => v.getUint8(o) },
  b1: { dtype: DataType.BOOL, bytes: 1, make: (n) => new Uint8Array(n), get: (v, o) => (v.getUint8(o) ? 1 : 0) },
  i2: { dtype: DataType.INT16, bytes: 2, make: (n) => new Int16Array(n), get: (v, o, le) => v.getInt16(o, le) },
  u2: { dtype: DataType.UINT16, bytes: 2, make: (n) => new Uint16Array(n), get: (v, o, le) => v.getUint16(o, le) },
  i4: { dtype: DataType.INT32, bytes: 4, make: (n) => new Int32Array(n), get: (v, o, le) => v.getInt32(o, le) },
  u4: { dtype: DataType.UINT32, bytes: 4, make: (n) => new Uint32Array(n), get: (v, o, le) => v.getUint32(o, le) },
  i8: { dtype: DataType.INT64, bytes: 8, make: (n) => new BigInt64Array(n), get: (v, o, le) => v.getBigInt64(o, le) },
  u8: { dtype: DataType.UINT64, bytes: 8, make: (n) => new BigUint64Array(n), get: (v, o, le) => v.getBigUint64(o, le) },
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** Parses a .npy file's bytes; `file` names it in errors. The data is copied (the input may be unaligned). */
export function parseNpy(bytes: Uint8Array, file: string): LoadedArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new DataError(`${file}: not a .npy file (missing the \\x93NUMPY magic)`);
  }
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new DataError(`${file}: unsupported .npy version ${major}`);
  }
  if (start + headerLen > bytes.length) {
    throw new DataError(`${file}: truncated: its .npy header says ${headerLen} bytes, the file has ${bytes.length - start} after the magic`);
  }
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) {
    throw new DataError(`${file}: .npy header not understood (structured or object arrays are not supported): ${header.trim()}`);
  }
  const key = `${descr[2]}${descr[3]}`;
  const t = TYPES[key];
  if (!t) throw new DataError(`${file}: numpy dtype '${descr[1]}${key}' is not supported (use float32, int64, ...)`);
  if (fortran[1] === "True") {
    throw new DataError(`${file}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray(x)`);
  }
  const dims = parseShape(shape[1]!, file);
  const count = dims.reduce((a, d) => a * d, 1);
  const dataStart = start + headerLen;
  const need = count * t.bytes;
  const have = bytes.length - dataStart;
  if (have < need) {
    throw new DataError(`${file}: truncated: shape [${dims.join(", ")}] needs ${need} bytes, file has ${have}`);
  }
  if (have > need) {
    throw new DataError(`${file}: shape [${dims.join(", ")}] needs ${need} bytes of data, but the file has ${have}: the header does not match the data`);
  }
  const little = descr[1] !== ">";
  const data = t.make(count);
  if (little && t.dtype !== DataType.BOOL) {
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart, dataStart + count * t.bytes));
  } else {
    const out = data as unknown as { [i: number]: number | bigint };
    for (let i = 0; i < count; i++) out[i] = t.get(view, dataStart + i * t.bytes, little);
  }
  return { dtype: t.dtype, dims, data };
}

/** The header's shape tuple ("3, 28, 28" or "3L," as Python 2 wrote it): dimensions must be whole numbers >= 0. */
function parseShape(tuple: string, file: string): number[] {
  const parts = tuple.split(",").map((s) => s.trim());
  if (parts.at(-1) === "") parts.pop(); // (3,)
  return parts.map((s) => {
    const d = /^\d+L?$/.test(s) ? parseInt(s, 10) : NaN;
    if (!Number.isSafeInteger(d)) {
      throw new DataError(`${file}: .npy shape (${tuple}) has the dimension "${s}"; dimensions must be whole numbers >= 0`);
    }
    return d;
  });
}

/** Reads and parses a .npy file (e.g. eval labels); errors name the file. */
export function loadNpy(file: string): LoadedArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new DataError(`${file}: cannot read (${(e as Error).message})`);
  }
  return parseNpy(bytes, file);
}

const DESCR = new Map<Function, string>([
  [Float32Array, "<f4"],
  [Float64Array, "<f8"],
  [Int8Array, "|i1"],
  [Uint8Array, "|u1"],
  [Int16Array, "<i2"],
  [Uint16Array, "<u2"],
  [Int32Array, "<i4"],
  [Uint32Array, "<u4"],
  [BigInt64Array, "<i8"],
  [BigUint64Array, "<u8"],
]);

/**
 * A .npy (format 1.0, C order, little endian) holding `data` with shape `dims`; the type comes from the array
 * (Uint16Array is written as uint16: give float16 bits another way). What parseNpy reads back.
 */
export function encodeNpy(data: Exclude<TensorArray, number[]>, dims: readonly number[]): Uint8Array {
  const descr = DESCR.get(data.constructor);
  if (!descr) throw new Error(`encodeNpy: no .npy type for ${data.constructor.name}`);
  if (dims.reduce((a, b) => a * b, 1) !== data.length) throw new Error(`encodeNpy: shape [${dims}] does not hold ${data.length} values`);
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims.join(", ")}${dims.length === 1 ? "," : ""}), }`;
  // magic(6) + version(2) + header length(2) + header, padded with spaces to a multiple of 64 and ended by \n.
  const header = dict + " ".repeat((64 - ((10 + dict.length + 1) % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([...MAGIC, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  // Typed arrays are in the platform's byte order: little endian on every platform Node ships for.
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}
