// Conversion between our tensors ({ dtype, dims, data }, as engine/onnx decodes them) and onnxruntime's Tensor.
// float16 travels as IEEE half bits inside onnxruntime; on our side it is Float32Array, like readTensor gives.
import type { Tensor as OrtTensor } from "onnxruntime-node";
import { DataType, dtypeName } from "../onnx/dtype";
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

/** A tensor going into or coming out of a session. */
export interface RuntimeTensor {
  data: TensorData;
  dims: readonly number[];
  /** ONNX element type; inferred from the array type when omitted (Uint8Array is uint8, not bool). */
  dtype?: DataType;
  /** onnxruntime's name for the type ("float32", ...); accepted as an alternative to dtype. */
  type?: string;
}

/** A session output: dtype and type are always set. */
export interface OutputTensor extends RuntimeTensor {
  dtype: DataType;
  type: OrtType;
  dims: number[];
}

function inferDtype(data: TensorData): DataType {
  if (Array.isArray(data)) return DataType.STRING;
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof Float64Array) return DataType.DOUBLE;
  if (data instanceof Int8Array) return DataType.INT8;
  if (data instanceof Uint8Array) return DataType.UINT8;
  if (data instanceof Int16Array) return DataType.INT16;
  if (data instanceof Uint16Array) return DataType.UINT16;
  if (data instanceof Int32Array) return DataType.INT32;
  if (data instanceof Uint32Array) return DataType.UINT32;
  if (data instanceof BigInt64Array) return DataType.INT64;
  return DataType.UINT64;
}

export function toOrtTensor(Tensor: typeof OrtTensor, name: string, t: RuntimeTensor): OrtTensor {
  const dtype = t.dtype ?? (t.type !== undefined ? dtypeFromOrt(t.type) : inferDtype(t.data));
  const type = dtype === undefined ? undefined : ortType(dtype);
  if (dtype === undefined || type === undefined) {
    throw new OnnxError(
      `input "${name}": onnxruntime-node cannot take ${t.type ?? dtypeName(dtype ?? 0)} tensors from JavaScript; feed float and quantize inside the graph`,
    );
  }
  let data: TensorData = t.data;
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
