// What the recovery transforms share: float initializers read and replaced by name, and per-channel statistics of
// intermediate tensors over data (the tensors exposed as extra outputs, as calibration does).
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { augmentModel } from "../calibrate/augment";
import type { CalibrationData } from "../data/feeds";
import { DataType } from "../onnx/dtype";
import { constantValue, forEachGraph, uniqueName } from "../onnx/graph";
import { Model } from "../onnx/model";
import { decodeUnfusedWeights, encodeDecodedWeights } from "../quant/unfused-weights";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { createSession, type ExecutionProvider } from "../runtime/session";

/** A float initializer decoded, with its dims. */
export interface FloatInit {
  name: string;
  dims: number[];
  data: Float32Array;
}

/** The float32 initializer `name`, or undefined when it is not one (a node output, another type). */
export function floatInit(graph: GraphProto, name: string, baseDir?: string): FloatInit | undefined {
  const t = graph.initializer.find((i) => i.name === name);
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  return { name, dims: t.dims.map(Number), data: tensorToFloat32(t, baseDir) };
}

/** A float32 constant (initializer or Constant node output), decoded. */
export function floatConstant(graph: GraphProto, name: string, baseDir?: string): FloatInit | undefined {
  const t: TensorProto | undefined = constantValue(graph, name);
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  return { name, dims: t.dims.map(Number), data: tensorToFloat32(t, baseDir) };
}

/** Replaces the initializer `name` in place (same position), or appends it when new. */
export function setFloatInit(graph: GraphProto, name: string, dims: readonly number[], data: Float32Array): void {
  const t = makeTensor(name, DataType.FLOAT, dims, data);
  const i = graph.initializer.findIndex((x) => x.name === name);
  if (i >= 0) graph.initializer[i] = t;
  else graph.initializer.push(t);
}

/** A fresh initializer name (nothing in the graph uses it yet). */
export function freshName(graph: GraphProto, base: string): string {
  return uniqueName(graph, base);
}

/** How many node inputs (any node, the main graph) read `name`; graph outputs count too. */
export function readerCount(graph: GraphProto, name: string): number {
  let n = graph.output.filter((o) => o.name === name).length;
  for (const node of graph.node) for (const i of node.input) if (i === name) n++;
  return n;
}

export function readersOf(graph: GraphProto, name: string): NodeProto[] {
  return graph.node.filter((n) => n.input.includes(name));
}

export function producerOf(graph: GraphProto, name: string): NodeProto | undefined {
  return graph.node.find((n) => n.output.includes(name));
}

/** Per-channel statistics of one tensor over the data. */
export interface ChannelStats {
  /** max |x| per channel. */
  absMax: Float64Array;
  /** mean x per channel. */
  mean: Float64Array;
  /** values seen per channel. */
  count: number;
}

/** Which axis holds the channel: 1 for NCHW Conv outputs, the last one for MatMul/Gemm activations. */
export type ChannelAxis = "channel-first" | "last";

export interface StatsRequest {
  tensor: string;
  axis: ChannelAxis;
}

export interface StatsOptions {
  ep?: ExecutionProvider;
}

/**
 * Runs the model over the data with `tensors` exposed as outputs and reduces each to per-channel max |x| and mean.
 * The whole tensor comes back per batch (fine for the layer sizes PTQ is run on; one batch in memory at a time).
 */
export async function channelStats(model: Model, requests: readonly StatsRequest[], data: CalibrationData, options: StatsOptions = {}): Promise<Map<string, ChannelStats>> {
  const out = new Map<string, ChannelStats>();
  if (requests.length === 0) return out;
  const aug = augmentModel(model, requests.map((r) => r.tensor), false);
  const session = await createSession(aug.model, { ep: options.ep, optimization: "disabled" });
  const acc = requests.map(() => ({ absMax: new Float64Array(0), sum: new Float64Array(0), count: 0 }));
  let batches = 0;
  try {
    for await (const feeds of data) {
      const res = await session.run(feeds);
      requests.forEach((r, k) => {
        const t = res[aug.outputs[k]!.raw!]!;
        const x = t.data as Float32Array;
        const dims = t.dims;
        const ax = r.axis === "last" ? dims.length - 1 : 1;
        if (dims.length <= ax) throw new Error(`tensor "${r.tensor}" has shape [${dims.join(", ")}]: no channel axis ${ax}`);
        const C = dims[ax]!;
        const inner = dims.slice(ax + 1).reduce((a, b) => a * b, 1);
        const a = acc[k]!;
        if (a.absMax.length === 0) {
          a.absMax = new Float64Array(C);
          a.sum = new Float64Array(C);
        } else if (a.absMax.length !== C) throw new Error(`tensor "${r.tensor}" changed its channel count between batches (${a.absMax.length} → ${C})`);
        for (let i = 0; i < x.length; i++) {
          const c = Math.floor(i / inner) % C;
          const v = x[i]!;
          if (!Number.isFinite(v)) continue;
          a.sum[c]! += v;
          const m = Math.abs(v);
          if (m > a.absMax[c]!) a.absMax[c] = m;
        }
        a.count += x.length / C;
      });
      batches++;
    }
  } finally {
    await session.dispose();
  }
  if (batches === 0) throw new Error("no data: give at least one batch of inputs");
  requests.forEach((r, k) => {
    const a = acc[k]!;
    out.set(r.tensor, { absMax: a.absMax, mean: a.sum.map((s) => s / a.count), count: a.count });
  });
  return out;
}

/** Range of a list of positive numbers as [min, max] (for reports). */
export function spread(xs: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    lo = Math.min(lo, xs[i]!);
    hi = Math.max(hi, xs[i]!);
  }
  return [lo, hi];
}

/** Our QDQ rewrite names a weight's DequantizeLinear output `<weight>_DequantizeLinear_Output`. */
export const WEIGHT_DQ = "_DequantizeLinear_Output";

/**
 * A copy of convert()'s model (`quantized`) for a recovery step to rewrite, and `done`, which makes the result from
 * it. A written file's Convs onnxruntime runs in float decode their weights by Cast/Mul: the copy reads them as the
 * DequantizeLinears they were, and `done` decodes them again. `who` names the caller when there is nothing quantized.
 */
export function qdqWorkingCopy(who: string, quantized: Model): { q: Model; done: () => Model } {
  const q = quantized.clone();
  const decoded = encodeDecodedWeights(q) > 0;
  let weights = false;
  forEachGraph(q.graph, (g) => (weights ||= g.node.some((n) => n.opType === "DequantizeLinear" && n.output[0]?.endsWith(WEIGHT_DQ))));
  if (!weights) {
    throw new Error(`${who}: ${quantized.path ?? "the second model"} has no quantized weights; pass the QDQ model from convert() (the float one goes first)`);
  }
  return {
    q,
    done: () => {
      const model = Model.fromProto(q.proto, q.dir);
      if (decoded) decodeUnfusedWeights(model);
      return model;
    },
  };
}

