// Input feeds for benchmark and evaluate: generated from a model's declared inputs (dynamic dimensions pinned by
// the batch size), or sliced out of a labelled dataset. Generated data is seeded, so two models in a comparison see
// identical inputs and reruns are repeatable. The tensors are engine/runtime's one Tensor (re-exported by engine/data).

import { batchSymbol, inputSpecsOf, type Feeds, type ReportedInput, type Tensor } from "../data/feeds";
import { randomData } from "../data/random";
import { elementCount } from "../onnx/dtype";
import { isStringData } from "../runtime/tensors";

export type { Feeds, Tensor };

/**
 * Seeded random feeds for every input of a model at the given batch size, from engine/data's generator (float
 * inputs standard normal, integer inputs small ids). The leading dynamic dimension becomes the batch; inputs with
 * other dynamic dimensions need their full shape in `shapes` (by input name). An input with no dims (onnxruntime
 * reports a scalar and an unknown rank alike) gets a scalar unless `shapes` says otherwise.
 */
export function generateFeeds(inputs: readonly ReportedInput[], batch: number, seed = 1, shapes: Record<string, number[]> = {}): Feeds {
  const specs = inputSpecsOf(inputs);
  const given: Record<string, readonly number[]> = { ...shapes };
  for (const s of specs) if (s.shape === undefined) given[s.name] ??= [];
  // Benchmarks report "generated data" in their settings; engine/data's calibration warning does not apply here.
  return randomData(specs, 1, { seed, batchSize: batch, shapes: given, warn: () => undefined }).next().value!;
}

/** Rows [start, start + count) along the first axis of a tensor, as a view where the array type allows. */
export function sliceRows(t: Tensor, start: number, count: number): Tensor {
  return sliceSamples(t, 0, start, count);
}

/**
 * Samples [start, start + count) along `axis` of a tensor: a view along the first axis where the array type allows,
 * a copy along another. A scalar has no samples: every batch takes it whole, so it comes back as it is.
 */
export function sliceSamples(t: Tensor, axis: number, start: number, count: number): Tensor {
  if (t.dims.length === 0) return t;
  const rows = t.dims[axis];
  if (rows === undefined) throw new Error(`cannot take samples along axis ${axis} of a tensor of rank ${t.dims.length}`);
  const end = Math.min(rows, start + count);
  const inner = elementCount(t.dims.slice(axis + 1));
  const outer = elementCount(t.dims.slice(0, axis));
  const dims = t.dims.map((d, i) => (i === axis ? end - start : d));
  if (outer === 1) {
    const data = isStringData(t.data) ? t.data.slice(start * inner, end * inner) : t.data.subarray(start * inner, end * inner);
    return { type: t.type, dims, data };
  }
  const take = (end - start) * inner;
  const parts = Array.from({ length: outer }, (_, o) => (o * rows + start) * inner);
  if (isStringData(t.data)) {
    const src = t.data;
    return { type: t.type, dims, data: parts.flatMap((at) => src.slice(at, at + take)) };
  }
  const src = t.data;
  const data = new (src.constructor as new (n: number) => typeof src)(outer * take);
  parts.forEach((at, o) => (data as Float32Array).set((src as Float32Array).subarray(at, at + take), o * take));
  return { type: t.type, dims, data };
}

/**
 * The axis each input carries its samples on. Most models put the batch first; a recurrent state often puts it
 * second (silero-vad's LSTM state is [2, batch, 64] beside input [batch, sequence]). Where the first input's first
 * dim is a symbol, an input that names the same symbol has its samples there; every other input, the first axis.
 * A scalar input (silero-vad's sample rate) has none: sliceSamples gives it to every batch whole.
 */
export function sampleAxes(inputs: readonly ReportedInput[]): Map<string, number> {
  const symbol = batchSymbol(inputs);
  return new Map(inputs.map((i) => [i.name, symbol !== undefined ? Math.max(0, i.shape?.indexOf(symbol) ?? 0) : 0]));
}

/** The first `count` samples of every input, each along its own axis (sampleAxes); scalars whole. */
export function firstSamples(feeds: Feeds, axes: ReadonlyMap<string, number>, count: number): Feeds {
  return Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, sliceSamples(t, axes.get(k) ?? 0, 0, count)]));
}

/** How many samples a set of feeds holds: the fewest along any input's sample axis (scalars hold no samples). */
export function samplesIn(feeds: Feeds, axes: ReadonlyMap<string, number>): number {
  const counts = Object.entries(feeds).flatMap(([k, t]) => (t.dims.length === 0 ? [] : [t.dims[axes.get(k) ?? 0] ?? 1]));
  return counts.length ? Math.min(...counts) : 1;
}

/** The batch size a set of feeds carries: the first dimension of the first input. */
export function feedsBatch(feeds: Feeds): number {
  const first = Object.values(feeds)[0];
  if (!first) throw new Error("feeds are empty: give one tensor per model input");
  return first.dims[0] ?? 1;
}

/**
 * Checks feeds cover a model's inputs, naming what is missing so the user can fix the data, not the model. Only
 * names: the feeds hold every sample (or a batch at a size the model may fix), so engine/data's checkFeeds, which
 * also holds them to the model's shapes, is not the check here.
 */
export function requireInputs(feeds: Feeds, inputs: readonly ReportedInput[], model: string): void {
  const missing = inputs.filter((i) => !(i.name in feeds)).map((i) => i.name);
  if (missing.length) {
    throw new Error(`${model}: no data for input(s) ${missing.map((m) => `"${m}"`).join(", ")}; data has ${Object.keys(feeds).map((k) => `"${k}"`).join(", ") || "nothing"}`);
  }
}
