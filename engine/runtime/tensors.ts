// The engine's one Tensor ({ data, dims, type }) and its conversion to and from onnxruntime's Tensor. float16 travels
// as IEEE half bits inside onnxruntime; outputs come back as Float32Array values, like readTensor gives.
import type { Tensor as OrtTensor } from "onnxruntime-node";
import { DataType, decodedArray, dtypeInfo, dtypeName, kindOfArray, type NumericArrayType } from "../onnx/dtype";
import { OnnxError } from "../onnx/errors";
import { float16ToFloat, floatToFloat16 } from "../onnx/floatbits";
import type { TensorData } from "../onnx/tensor";

/** onnxruntime's element type names. */
export type OrtType = OrtTensor.Type;

const ORT_BY_DTYPE: Partial<Record<DataType, OrtType>> = {
  [DataType.FLOAT]: "float32",
  [DataType.DOUBLE]: "float64",
  [DataType.FLOAT16]: "float16",
  [DataType.INT8]: "int8",
  [DataType.UINT8]: "uint8",
  [DataType.INT16]: "int16",
  [DataType.UINT16]: "uint16",
  [DataType.INT32]: "int32",
  [DataType.UINT32]: "uint32",
  [DataType.INT64]: "int64",
  [DataType.UINT64]: "uint64",
  [DataType.BOOL]: "bool",
  [DataType.STRING]: "string",
};
const DTYPE_BY_ORT = new Map<string, DataType>(Object.entries(ORT_BY_DTYPE).map(([k, v]) => [v, Number(k)]));

export function ortType(dtype: DataType): OrtType | undefined {
  return ORT_BY_DTYPE[dtype];
}

export function dtypeFromOrt(type: string): DataType | undefined {
  return DTYPE_BY_ORT.get(type);
}

/** The numeric arrays a tensor holds (engine/onnx's decoded tensor data, strings excluded). */
export type TensorArray = Exclude<TensorData, string[]>;

/** The array an input of this type is fed as from values (float16 as float32 values, bool as uint8), if any. */
export function feedArray(dtype: DataType): NumericArrayType | undefined {
  const info = ortType(dtype) === undefined || dtype === DataType.STRING ? undefined : dtypeInfo(dtype);
  return info && info.decoded !== "string" ? decodedArray(info.decoded) : undefined;
}

/** Sets every element of `data` to `value` (as a bigint in a 64-bit integer array); returns `data`. */
export function fillNumber<T extends TensorArray>(data: T, value: number): T {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) data.fill(BigInt(value));
  else (data as Exclude<TensorArray, BigInt64Array | BigUint64Array>).fill(value);
  return data;
}

/**
 * The engine's one tensor: what the data readers yield, what a session takes and returns, what the analysis
 * measures. An onnxruntime Tensor fits (it has data, dims and type), so does a plain `{ data, dims }`.
 * float16 is either its IEEE half bits in a Uint16Array or its values in a Float32Array; bool is a Uint8Array.
 */
export interface Tensor {
  readonly data: TensorArray | readonly string[];
  readonly dims: readonly number[];
  /** onnxruntime's type name ("float32", "int64", ...); when omitted, the session takes the model input's type. */
  readonly type?: string;
}

/** One batch: a tensor per model input name. */
export type Feeds = { readonly [inputName: string]: Tensor };

/** A session output: its type is always set (and given as an ONNX element type too); float16 comes back as Float32Array. */
export interface OutputTensor extends Tensor {
  readonly data: TensorData;
  readonly dims: number[];
  readonly type: OrtType;
  readonly dtype: DataType;
}

/** True when the tensor holds strings (the one kind of data that is not a typed array). */
export const isStringData = (data: Tensor["data"]): data is readonly string[] => Array.isArray(data);

/** The element type an array holds when nothing says otherwise (Uint8Array is uint8, not bool). */
function inferDtype(data: Tensor["data"]): DataType | undefined {
  if (isStringData(data)) return DataType.STRING;
  const kind = kindOfArray(data);
  return kind === undefined ? undefined : dtypeFromOrt(kind);
}

/** `dtype`: the element type to send, where the caller knows it (the model input's); else `t.type` or the array's. */
export function toOrtTensor(Tensor: typeof OrtTensor, name: string, t: Tensor, known?: DataType): OrtTensor {
  const dtype = known ?? (t.type !== undefined ? dtypeFromOrt(t.type) : inferDtype(t.data));
  const type = dtype === undefined ? undefined : ortType(dtype);
  if (dtype === undefined || type === undefined) {
    throw new OnnxError(
      `input "${name}": onnxruntime-node cannot take ${t.type ?? dtypeName(dtype ?? 0)} tensors from JavaScript; feed float and quantize inside the graph`,
    );
  }
  let data = t.data;
  if (dtype === DataType.FLOAT16 && !(data instanceof Uint16Array)) {
    const src = data as ArrayLike<number>;
    const bits = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) bits[i] = floatToFloat16(src[i]!);
    data = bits;
  }
  if (dtype === DataType.BOOL && !(data instanceof Uint8Array)) data = Uint8Array.from(data as ArrayLike<number>, (v) => (v ? 1 : 0));
  return new Tensor(type as "float32", data as Float32Array, [...t.dims]);
}

export function fromOrtTensor(t: OrtTensor, name: string): OutputTensor {
  const dtype = dtypeFromOrt(t.type);
  if (dtype === undefined) throw new OnnxError(`output "${name}" has type ${t.type}, which this binding cannot return`);
  let data = t.data as TensorData;
  if (dtype === DataType.FLOAT16) {
    const bits = data as unknown as Uint16Array;
    const f = new Float32Array(bits.length);
    for (let i = 0; i < bits.length; i++) f[i] = float16ToFloat(bits[i]!);
    data = f;
  }
  return { dtype, type: t.type, dims: [...t.dims], data };
}
