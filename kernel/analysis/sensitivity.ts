// Which layers hurt? Rank quantized nodes by how much the model's output improves when that one node alone is
// restored to float (everything else quantized), then search the smallest set to keep in float that meets an
// accuracy target. One calibration serves every candidate: convert() is re-run with a longer exclude list.
// Ranking costs one conversion and run per quantized node, so it can run on a small sample (`rankData`, output
// SQNR needs no labels) while the search checks its few candidates on the full data.
import type { Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import { convert, type PreparedModel } from "../quant/index";
import { createSession, type ExecutionProvider } from "../runtime/session";
import { ErrorAccumulator } from "./error-stats";
import { argmaxRows, classLabels } from "./metrics";
import type { HostTensor } from "./feeds";

export interface SensitivityOptions {
  ep?: ExecutionProvider;
  threads?: number;
  /** Called after each candidate model is measured. */
  onProgress?(done: number, total: number): void;
}

export interface SearchOptions extends SensitivityOptions {
  /**
   * Data to rank nodes on, by output SQNR (default: the search's own data). A few hundred samples rank as well as
   * thousands at a fraction of the cost: the ranking runs once per quantized node, the search only ~log2(nodes)
   * times.
   */
  rankData?: readonly Feeds[];
  /**
   * Keep at least this share (0–1) of the quantizable weight parameters in int8 (default 0: no limit). Nodes whose
   * restoration would go over the budget are passed over in favour of the next, lighter ones in the ranking: one
   * big Conv kept in float can otherwise cost a third of the model's int8 weights for a fraction of a dB.
   */
  minInt8WeightShare?: number;
  /** Called after each search step (each candidate measured on the full data), with that step. */
  onStep?(step: SearchStep): void;
}

export interface LayerSensitivity {
  node: string;
  opType: string;
  /** Output SQNR (dB, all outputs together) with only this node restored to float. */
  outputSqnrDb: number;
  /** outputSqnrDb minus the all-quantized model's: how much this node's quantization costs. */
  gainDb: number;
}

export interface SensitivityRanking {
  /** Output SQNR of the fully quantized model. */
  baselineDb: number;
  /** Most sensitive first. */
  layers: LayerSensitivity[];
}

/** One output tensor of one batch, as float32. */
export interface BatchOutput {
  data: Float32Array;
  dims: number[];
}

/** Runs `model` over `data` and returns its outputs per batch, in graph-output order. */
export async function modelOutputs(model: Model, data: readonly Feeds[], options: SensitivityOptions = {}): Promise<BatchOutput[][]> {
  const s = await createSession(model, { ep: options.ep, threads: options.threads });
  try {
    const names = s.outputs.map((o) => o.name);
    const out: BatchOutput[][] = [];
    for (const feeds of data) {
      const r = await s.run(feeds as never, names);
      out.push(names.map((n) => ({ data: Float32Array.from(r[n]!.data as ArrayLike<number>), dims: r[n]!.dims })));
    }
    return out;
  } finally {
    await s.dispose();
  }
}

export function outputSqnr(reference: BatchOutput[][], candidate: BatchOutput[][]): number {
  const acc = new ErrorAccumulator();
  reference.forEach((batch, b) => batch.forEach((t, i) => acc.add(t.data, candidate[b]![i]!.data)));
  return acc.result().sqnrDb;
}

/** convert() with extra nodes kept in float. */
export async function convertExcluding(prepared: PreparedModel, keepFloat: readonly string[]): Promise<Model> {
  const variant: PreparedModel = { ...prepared, config: { ...prepared.config, exclude: [...prepared.config.exclude, ...keepFloat] } };
  return convert(variant);
}

export async function rankSensitivity(
  prepared: PreparedModel,
  data: readonly Feeds[],
  options: SensitivityOptions = {},
  reference?: BatchOutput[][],
): Promise<SensitivityRanking> {
  if (prepared.ranges.size === 0 && prepared.observe.length > 0) throw new Error("rankSensitivity: calibrate the prepared model first");
  if (data.length === 0) throw new Error("rankSensitivity: no data; give at least one batch of inputs");
  reference ??= await modelOutputs(prepared.model, data, options);
  const full = await convert(prepared);
  const quantizedNodes = prepared.summary?.quantized ?? [];
  const baselineDb = outputSqnr(reference, await modelOutputs(full, data, options));
  const layers: LayerSensitivity[] = [];
  for (const [i, n] of quantizedNodes.entries()) {
    const m = await convertExcluding(prepared, [n.name]);
    const db = outputSqnr(reference, await modelOutputs(m, data, options));
    layers.push({ node: n.name, opType: n.opType, outputSqnrDb: db, gainDb: db - baselineDb });
    options.onProgress?.(i + 1, quantizedNodes.length);
  }
  await convert(prepared); // leave prepared.summary describing the full conversion, as the caller had it
  layers.sort((a, b) => b.gainDb - a.gainDb);
  return { baselineDb, layers };
}

/** An accuracy target: output SQNR against the float model, or a top-1 drop on labelled data. */
export type AccuracyTarget = { kind: "sqnr"; minDb: number } | { kind: "drop"; maxPp: number; labels: HostTensor };

export interface SearchStep {
  keptFloat: string[];
  /** Output SQNR in dB, or top-1 accuracy in % for a drop target. */
  metric: number;
  met: boolean;
  /** Share of the quantizable nodes' weight parameters that stay int8. */
  int8WeightShare: number;
}

export interface MixedPrecisionResult {
  target: AccuracyTarget;
  /** The float model's top-1 (%) for a drop target. */
  floatMetric?: number;
  ranking: SensitivityRanking;
  steps: SearchStep[];
  /** The smallest prefix of the candidates that meets the target (all of them when none does). */
  chosen: SearchStep;
  /** Ranked nodes left out of the candidates because keeping them float would break minInt8WeightShare. */
  overBudget: string[];
  model: Model;
}

/**
 * Keeps the k most sensitive nodes in float for the smallest k that meets the target, found by binary search over
 * the sensitivity ranking (restoring more nodes only ever moves the model towards float; the chosen k is checked).
 * With minInt8WeightShare the candidates are the ranking minus the nodes that would not fit the float-weight budget.
 */
export async function searchMixedPrecision(
  prepared: PreparedModel,
  data: readonly Feeds[],
  target: AccuracyTarget,
  options: SearchOptions = {},
): Promise<MixedPrecisionResult> {
  const reference = await modelOutputs(prepared.model, data, options);
  const ranking = options.rankData
    ? await rankSensitivity(prepared, options.rankData, options)
    : await rankSensitivity(prepared, data, options, reference);
  const labels = target.kind === "drop" ? classLabels(target.labels) : undefined;
  const floatMetric = labels ? top1(reference, labels) : undefined;
  const weights = weightParams(prepared);
  const totalWeights = [...weights.values()].reduce((a, b) => a + b, 0) || 1;
  const minShare = options.minInt8WeightShare ?? 0;
  if (!(minShare >= 0 && minShare <= 1)) throw new Error(`minInt8WeightShare: ${minShare} must be between 0 and 1`);
  const budget = (1 - minShare) * totalWeights;
  const candidates: string[] = [];
  const overBudget: string[] = [];
  let floatSoFar = 0;
  for (const { node } of ranking.layers) {
    const w = weights.get(node) ?? 0;
    if (floatSoFar + w > budget) {
      overBudget.push(node);
    } else {
      floatSoFar += w;
      candidates.push(node);
    }
  }
  const steps = new Map<number, SearchStep & { model: Model }>();
  const measure = async (k: number) => {
    const cached = steps.get(k);
    if (cached) return cached;
    const keptFloat = candidates.slice(0, k);
    const model = await convertExcluding(prepared, keptFloat);
    const outs = await modelOutputs(model, data, options);
    const metric = labels ? top1(outs, labels) : outputSqnr(reference, outs);
    const met = target.kind === "sqnr" ? metric >= target.minDb : floatMetric! - metric <= target.maxPp;
    const floatWeights = keptFloat.reduce((a, n) => a + (weights.get(n) ?? 0), 0);
    const step = { keptFloat, metric, met, int8WeightShare: 1 - floatWeights / totalWeights, model };
    steps.set(k, step);
    options.onStep?.({ keptFloat, metric, met, int8WeightShare: step.int8WeightShare });
    return step;
  };
  let lo = 0;
  let hi = candidates.length;
  if ((await measure(lo)).met) hi = lo;
  else if (!(await measure(hi)).met) lo = hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((await measure(mid)).met) hi = mid;
    else lo = mid;
  }
  const chosen = await measure(hi);
  await convert(prepared);
  const ordered = [...steps.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
  return {
    target,
    floatMetric,
    ranking,
    steps: ordered.map(({ model: _m, ...s }) => s),
    chosen: { keptFloat: chosen.keptFloat, metric: chosen.metric, met: chosen.met, int8WeightShare: chosen.int8WeightShare },
    overBudget,
    model: chosen.model,
  };
}

/** Top-1 accuracy (%) of the first output over all batches, against one class label per sample in order. */
export function top1(outputs: BatchOutput[][], labels: Int32Array): number {
  let correct = 0;
  let seen = 0;
  for (const batch of outputs) {
    const { data, dims } = batch[0]!;
    const rows = dims[0] ?? 1;
    const pred = argmaxRows({ rows, cols: data.length / rows, data });
    for (let r = 0; r < rows; r++, seen++) {
      if (seen >= labels.length) throw new Error(`the data has more samples than the ${labels.length} labels`);
      if (pred[r] === labels[seen]) correct++;
    }
  }
  if (seen !== labels.length) throw new Error(`the data has ${seen} samples but there are ${labels.length} labels`);
  return (100 * correct) / seen;
}

/** Weight parameter count per quantized node (its constant inputs), for the int8 share of a mixed model. */
function weightParams(prepared: PreparedModel): Map<string, number> {
  const inits = new Map(prepared.model.graph.initializer.map((t) => [t.name, t.dims.reduce((a, d) => a * Number(d), 1)]));
  const m = new Map<string, number>();
  for (const n of prepared.model.graph.node) {
    const count = n.input.reduce((a, i) => a + (inits.get(i) ?? 0), 0);
    if (count) m.set(n.name, count);
  }
  return m;
}
