// Shapes of intermediate tensors, found by running the model: every node output is exposed as a graph output,
// the model runs on zero-filled sample inputs, and the shapes come back. It runs twice with different sizes for
// symbolic input dimensions; a dimension that changes between the runs is reported as symbolic.
import { create } from "@bufbuild/protobuf";
import { ValueInfoProtoSchema } from "onnx-buf";
import { DataType, dtypeName, elementCount } from "../onnx/dtype";
import { OnnxError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import { valueInfoTensor, type Dim } from "../onnx/proto";
import type { TensorData } from "../onnx/tensor";
import { createSession, type Session } from "./session";
import { isUnsafeOutputType } from "./guard";
import { dtypeFromOrt, type RuntimeTensor } from "./tensors";

export interface IntermediateShape {
  /** The tensor (a node output). */
  name: string;
  node: string;
  op: string;
  /** Element type as onnxruntime reports it; undefined if it could not be fetched. */
  dtype: string | undefined;
  /** Numbers are fixed; a string is a dimension that follows a symbolic input dimension. */
  shape: Dim[] | undefined;
  /** Why there is no shape, when there is none. */
  note?: string;
}

export interface ShapeOptions {
  /** Sizes for symbolic input dimensions, by name; others use `defaultDim`. */
  dims?: Record<string, number>;
  /** Default 1 (then 2 for the second run that detects symbolic dimensions). */
  defaultDim?: number;
  threads?: number;
}

function zeros(dtype: DataType, n: number): TensorData {
  switch (dtype) {
    case DataType.FLOAT:
    case DataType.FLOAT16:
      return new Float32Array(n);
    case DataType.DOUBLE:
      return new Float64Array(n);
    case DataType.INT64:
      return new BigInt64Array(n);
    case DataType.UINT64:
      return new BigUint64Array(n);
    case DataType.INT32:
      return new Int32Array(n);
    case DataType.UINT32:
      return new Uint32Array(n);
    case DataType.INT16:
      return new Int16Array(n);
    case DataType.UINT16:
      return new Uint16Array(n);
    case DataType.INT8:
      return new Int8Array(n);
    case DataType.UINT8:
    case DataType.BOOL:
      return new Uint8Array(n);
    case DataType.STRING:
      return Array.from({ length: n }, () => "");
    default:
      throw new OnnxError(`cannot make a sample input of type ${dtypeName(dtype)}`);
  }
}

function sampleFeeds(model: Model, sym: (name: string | null) => number): { feeds: Record<string, RuntimeTensor>; symbols: string[] } {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  const feeds: Record<string, RuntimeTensor> = {};
  const symbols: string[] = [];
  for (const v of model.graph.input) {
    if (inits.has(v.name)) continue;
    const t = valueInfoTensor(v);
    if (!t) throw new OnnxError(`input "${v.name}" is not a tensor; shapes cannot be sampled`);
    if (!t.shape) throw new OnnxError(`input "${v.name}" has no shape; shapes cannot be sampled without one`);
    const dims = t.shape.map((d) => {
      if (typeof d === "number") return d;
      if (d !== null && !symbols.includes(d)) symbols.push(d);
      return sym(d);
    });
    feeds[v.name] = { dtype: t.elemType, dims, data: zeros(t.elemType, elementCount(dims)) };
  }
  return { feeds, symbols };
}

/** Exposes every top-level node output as a graph output, so one run reports all of their shapes. */
function exposeAll(model: Model): Model {
  const m = model.clone();
  const have = new Set(m.graph.output.map((o) => o.name));
  for (const n of m.graph.node) {
    for (const o of n.output) {
      if (o && !have.has(o)) {
        m.graph.output.push(create(ValueInfoProtoSchema, { name: o }));
        have.add(o);
      }
    }
  }
  return m;
}

export async function intermediateShapes(model: Model, options: ShapeOptions = {}): Promise<IntermediateShape[]> {
  const exposed = exposeAll(model);
  let session: Session;
  try {
    session = await createSession(exposed, { optimization: "disabled", ...(options.threads ? { threads: options.threads } : {}) });
  } catch (e) {
    throw new OnnxError(`cannot run the model to find intermediate shapes: ${(e as Error).message}`, model.path);
  }
  try {
    const types = new Map(session.outputs.map((o) => [o.name, o.type]));
    const fetchable = session.outputs
      .filter((o) => o.type !== undefined && dtypeFromOrt(o.type) !== undefined && !isUnsafeOutputType(dtypeFromOrt(o.type)!))
      .map((o) => o.name);
    const base = options.defaultDim ?? 1;
    const runAt = async (k: number) => {
      const { feeds, symbols } = sampleFeeds(model, (name) => (name !== null && options.dims?.[name] !== undefined ? options.dims[name]! * k : base * k));
      const out = await session.run(feeds, fetchable);
      return { out, symbols };
    };
    const a = await runAt(1);
    const b = a.symbols.length || model.graph.input.some((v) => valueInfoTensor(v)?.shape?.includes(null)) ? await runAt(2) : a;
    const symbol = a.symbols.length === 1 ? a.symbols[0]! : "?";
    const result: IntermediateShape[] = [];
    for (const n of model.graph.node) {
      for (const o of n.output) {
        if (!o) continue;
        const ta = a.out[o];
        const tb = b.out[o];
        const entry: IntermediateShape = { name: o, node: n.name, op: n.opType, dtype: types.get(o), shape: undefined };
        if (ta && tb) {
          entry.shape = ta.dims.map((d, i) => (tb.dims.length === ta.dims.length && tb.dims[i] !== d ? symbol : d));
          if (tb.dims.length !== ta.dims.length) entry.note = "rank depends on the input size";
        } else {
          entry.note = types.get(o) ? `onnxruntime-node cannot return ${types.get(o)} tensors` : "not a tensor";
        }
        result.push(entry);
      }
    }
    return result;
  } finally {
    await session.dispose();
  }
}
