// Shapes of intermediate tensors, found by running the model: every node output is exposed as a graph output,
// the model runs on zero-filled sample inputs (an integer input the graph tests against constants holds the first of
// them, so the branch the model was written for runs), and the shapes come back. It runs twice with different sizes for
// symbolic input dimensions; a dimension that changes between the runs is reported as symbolic. The inputs are
// sized first and refused past the feedBytes limit: a tiny model can declare an input of gigabytes.
import { create } from "@bufbuild/protobuf";
import { ValueInfoProtoSchema } from "onnx-buf";
import { DataType, dtypeName, elementCount, isIntegerType } from "../onnx/dtype";
import { comparedConstants } from "../onnx/graph";
import { OnnxError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import { negativeDimsUnknown, valueInfoTensor, type Dim } from "../onnx/proto";
import type { TensorData } from "../onnx/tensor";
// The one module of engine/data that lower layers use: it has no imports, so the layering holds.
import { checkFeedBytes, type Limits } from "../onnx/limits";
import { createSession, type Session } from "./session";
import { isUnsafeOutputType } from "./guard";
import { dtypeFromOrt, feedArray, fillNumber, ortType, type Feeds, type Tensor } from "./tensors";

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
  /** Override of the feedBytes limit on the zero-filled inputs (engine/onnx/limits.ts; docs/limits.md). */
  limits?: Limits;
}

/** Bytes a sample element takes in memory (a string: one pointer to the shared empty string). */
function sampleBytes(dtype: DataType): number {
  if (dtype === DataType.STRING) return 8;
  const a = feedArray(dtype);
  if (!a) throw new OnnxError(`cannot make a sample input of type ${dtypeName(dtype)}`);
  return a.BYTES_PER_ELEMENT;
}

/** `n` elements of `dtype`, all `value` (strings: empty). */
function filled(dtype: DataType, n: number, value = 0): TensorData {
  if (dtype === DataType.STRING) return Array.from({ length: n }, () => "");
  const a = feedArray(dtype);
  if (!a) throw new OnnxError(`cannot make a sample input of type ${dtypeName(dtype)}`);
  const data = new a(n);
  return value !== 0 ? fillNumber(data, value) : data;
}

interface SamplePlan {
  /** `value`: what an integer input the graph tests against constants is filled with (the first of them). */
  inputs: { name: string; dtype: DataType; dims: number[]; value?: number }[];
  /** Symbolic dimension names met, in order. */
  symbols: string[];
}

/** The sample inputs' shapes; their total size is checked against the feedBytes limit, nothing is allocated. */
function planFeeds(model: Model, sym: (name: string | null) => number, limits?: Limits): SamplePlan {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  const plan: SamplePlan = { inputs: [], symbols: [] };
  for (const v of model.graph.input) {
    if (inits.has(v.name)) continue;
    const t = valueInfoTensor(v);
    if (!t) throw new OnnxError(`input "${v.name}" is not a tensor; shapes cannot be sampled`);
    if (!t.shape) throw new OnnxError(`input "${v.name}" has no shape; shapes cannot be sampled without one`);
    const dims = negativeDimsUnknown(t.shape).map((d) => {
      if (typeof d === "number") return d;
      if (d !== null && !plan.symbols.includes(d)) plan.symbols.push(d);
      return sym(d);
    });
    elementCount(dims, `input "${v.name}"`); // too many elements is refused by name
    const value = isIntegerType(t.elemType) ? comparedConstants(model.graph, v.name)[0] : undefined;
    plan.inputs.push({ name: v.name, dtype: t.elemType, dims, ...(value !== undefined ? { value } : {}) });
  }
  checkFeedBytes(plan.inputs.map((p) => ({ ...p, bytesPerElement: sampleBytes(p.dtype) })), "zero-filled inputs to run the model on", limits);
  return plan;
}

function sampleFeeds(plan: SamplePlan): Feeds {
  const feeds: Record<string, Tensor> = {};
  for (const p of plan.inputs) feeds[p.name] = { type: ortType(p.dtype), dims: p.dims, data: filled(p.dtype, elementCount(p.dims), p.value) };
  return feeds;
}

/**
 * Zero-filled inputs for one run of `model` (see the header for integers): fixed dims as declared, symbolic ones from `dims` by name (else 1),
 * checked against the feedBytes limit before anything is allocated.
 */
export function zeroFeeds(model: Model, dims: Record<string, number> = {}, limits?: Limits): Feeds {
  return sampleFeeds(planFeeds(model, (name) => (name !== null ? dims[name] ?? 1 : 1), limits));
}

/** Exposes every top-level node output as a graph output, so one run reports all of their shapes. */
function exposeAll(model: Model): Model {
  const m = model.cloneSharingInitializers();
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
  const base = options.defaultDim ?? 1;
  const sizes = (k: number) => (name: string | null) => (name !== null && options.dims?.[name] !== undefined ? options.dims[name]! * k : base * k);
  // Both runs' inputs are sized before a session is made, so a model declaring huge inputs costs nothing.
  const plan1 = planFeeds(model, sizes(1), options.limits);
  const twice = plan1.symbols.length > 0 || model.graph.input.some((v) => valueInfoTensor(v)?.shape?.includes(null));
  const plan2 = twice ? planFeeds(model, sizes(2), options.limits) : undefined;
  const exposed = exposeAll(model);
  let session: Session;
  try {
    // Quiet: a model that cannot run at the sizes picked for its symbolic dims fails here, and the caller says so with
    // those sizes (ptq inspect, the graph view); onnxruntime's own log line would say it a second time, in red.
    session = await createSession(exposed, { optimization: "disabled", quiet: true, ...(options.threads ? { threads: options.threads } : {}) });
  } catch (e) {
    throw new OnnxError(`cannot run the model to find intermediate shapes: ${(e as Error).message}`, model.path);
  }
  try {
    const types = new Map(session.outputs.map((o) => [o.name, o.type]));
    const fetchable = session.outputs
      .filter((o) => o.type !== undefined && dtypeFromOrt(o.type) !== undefined && !isUnsafeOutputType(dtypeFromOrt(o.type)!))
      .map((o) => o.name);
    const outA = await session.run(sampleFeeds(plan1), fetchable);
    const outB = plan2 ? await session.run(sampleFeeds(plan2), fetchable) : outA;
    const symbol = plan1.symbols.length === 1 ? plan1.symbols[0]! : "?";
    const result: IntermediateShape[] = [];
    for (const n of model.graph.node) {
      for (const o of n.output) {
        if (!o) continue;
        const ta = outA[o];
        const tb = outB[o];
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
