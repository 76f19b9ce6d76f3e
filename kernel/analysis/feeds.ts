// Input feeds for benchmark and evaluate: host tensors built from a model's declared inputs (dynamic dimensions
// pinned by the batch size), or sliced out of a labelled dataset. Generated data is seeded, so two models in a
// comparison see identical inputs and reruns are repeatable.

import { seededRandom } from "./stats";

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
 * Pins a declared shape to concrete dimensions: the leading dynamic dimension becomes the batch size; any other
 * dynamic dimension needs an explicit value in `dimOverrides` (by symbol name), because guessing it would time a
 * different workload than the user runs.
 */
export function pinShape(info: ValueInfo, batch: number, dimOverrides: Record<string, number> = {}): number[] {
  return info.shape.map((d, i) => {
    if (typeof d === "number" && d >= 0) return d;
    if (typeof d === "string" && d in dimOverrides) return dimOverrides[d]!;
    if (i === 0) return batch;
    throw new Error(
      `input "${info.name}" has a dynamic dimension ${i} (${JSON.stringify(d)}) that is not the batch; ` +
        `give its size with dimOverrides (e.g. { "${typeof d === "string" ? d : "dim"}": 128 }) or pass your own feeds`,
    );
  });
}

function allocate(type: string, n: number, rand: () => number, name: string): HostTensor["data"] {
  switch (type) {
    case "float32":
      return Float32Array.from({ length: n }, () => rand() * 2 - 1);
    case "float64":
      return Float64Array.from({ length: n }, () => rand() * 2 - 1);
    // Integer inputs are usually ids or indices: zeros are always in range.
    case "int32":
      return new Int32Array(n);
    case "int64":
      return new BigInt64Array(n);
    case "uint8":
      return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
    case "int8":
      return Int8Array.from({ length: n }, () => Math.floor(rand() * 256) - 128);
    case "bool":
      return new Uint8Array(n);
    default:
      throw new Error(`input "${name}" has type ${type}, which generated data does not support; pass your own feeds`);
  }
}

/** Seeded random feeds for every input of a model, at the given batch size. */
export function generateFeeds(inputs: readonly ValueInfo[], batch: number, seed = 1, dimOverrides: Record<string, number> = {}): Feeds {
  const rand = seededRandom(seed);
  const feeds: Feeds = {};
  for (const info of inputs) {
    const dims = pinShape(info, batch, dimOverrides);
    feeds[info.name] = { type: info.type as HostDType, dims, data: allocate(info.type, elementCount(dims), rand, info.name) };
  }
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
