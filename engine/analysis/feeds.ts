// Input feeds for benchmark and evaluate: generated from a model's declared inputs (dynamic dimensions pinned by
// the batch size), or sliced out of a labelled dataset. Generated data is seeded, so two models in a comparison see
// identical inputs and reruns are repeatable. The tensors are engine/runtime's one Tensor (re-exported by engine/data).

import { inputSpecsOf, type Feeds, type ReportedInput, type Tensor } from "../data/feeds";
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
  const rows = t.dims[0];
  if (rows === undefined) throw new Error("cannot slice a scalar tensor into batches");
  const end = Math.min(rows, start + count);
  const per = elementCount(t.dims.slice(1));
  const data = isStringData(t.data) ? t.data.slice(start * per, end * per) : t.data.subarray(start * per, end * per);
  return { type: t.type, dims: [end - start, ...t.dims.slice(1)], data };
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
