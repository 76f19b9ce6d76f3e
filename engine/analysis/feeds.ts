// Input feeds for benchmark and evaluate: host tensors built from a model's declared inputs (dynamic dimensions
// pinned by the batch size), or sliced out of a labelled dataset. Generated data is seeded, so two models in a
// comparison see identical inputs and reruns are repeatable.

import type { FeedTensor, InputSpec } from "../data/feeds";
import { randomData } from "../data/random";
import { dtypeFromOrt } from "../runtime/tensors";

/** A tensor on the host, the shape both the runner adapter and the metric code speak. */
export interface HostTensor {
  type: HostDType;
  dims: readonly number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array | Int16Array;
}

export type HostDType = "float32" | "float64" | "int32" | "int64" | "uint8" | "int8" | "uint16" | "int16" | "bool";

export type Feeds = Record<string, HostTensor>;

/** What a runner knows about one input or output. Symbolic or unknown dimensions are strings or -1. */
export interface ValueInfo {
  name: string;
  type: string;
  shape: readonly (number | string)[];
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * Seeded random feeds for every input of a model at the given batch size, from engine/data's generator (float
 * inputs standard normal, integer inputs small ids). The leading dynamic dimension becomes the batch; inputs with
 * other dynamic dimensions need their full shape in `shapes` (by input name).
 */
export function generateFeeds(inputs: readonly ValueInfo[], batch: number, seed = 1, shapes: Record<string, number[]> = {}): Feeds {
  const specs: InputSpec[] = inputs.map((i) => {
    const elemType = dtypeFromOrt(i.type);
    if (elemType === undefined) throw new Error(`input "${i.name}" has type ${i.type}, which generated data does not support; pass your own feeds`);
    return { name: i.name, elemType, shape: i.shape.map((d) => (typeof d === "number" && d < 0 ? null : d)) };
  });
  // Benchmarks report "generated data" in their settings; engine/data's calibration warning does not apply here.
  const first = randomData(specs, 1, { seed, batchSize: batch, shapes, warn: () => undefined }).next().value!;
  const feeds: Feeds = {};
  for (const [name, t] of Object.entries(first) as [string, FeedTensor][]) feeds[name] = { type: t.type as HostDType, dims: t.dims, data: t.data as HostTensor["data"] };
  return feeds;
}

/** Rows [start, start + count) along the first axis of a tensor, as a view where the array type allows. */
export function sliceRows(t: HostTensor, start: number, count: number): HostTensor {
  const rows = t.dims[0];
  if (rows === undefined) throw new Error("cannot slice a scalar tensor into batches");
  const end = Math.min(rows, start + count);
  const per = elementCount(t.dims.slice(1));
  return { type: t.type, dims: [end - start, ...t.dims.slice(1)], data: t.data.subarray(start * per, end * per) as HostTensor["data"] };
}

/** The batch size a set of feeds carries: the first dimension of the first input. */
export function feedsBatch(feeds: Feeds): number {
  const first = Object.values(feeds)[0];
  if (!first) throw new Error("feeds are empty: give one tensor per model input");
  return first.dims[0] ?? 1;
}

/** Checks feeds cover a model's inputs, naming what is missing so the user can fix the data, not the model. */
export function checkFeeds(feeds: Feeds, inputs: readonly ValueInfo[], model: string): void {
  const missing = inputs.filter((i) => !(i.name in feeds)).map((i) => i.name);
  if (missing.length) {
    throw new Error(`${model}: no data for input(s) ${missing.map((m) => `"${m}"`).join(", ")}; data has ${Object.keys(feeds).map((k) => `"${k}"`).join(", ") || "nothing"}`);
  }
}
