// Which layers hurt? Two ways to ask, each one conversion and run per quantized node (two with 16-bit activations):
// "restore-one" scores the model with only that node restored to float (everything else quantized) against the
// all-quantized baseline; "quantize-one" scores it with only that node quantized (everything else float), and
// predicts what keeping it float gains by adding noise powers. Restore-one is blind when several nodes each ruin
// the output alone: restoring any one leaves the others, so each looks useless and noise decides their order (on
// PP-OCRv3's recogniser the six nodes that cost most ranked among the last: docs/mixed-precision.md). Quantize-one
// sees each against a clean background, so what else is quantized cannot mask it.
import type { Feeds } from "../../data/feeds";
import { convert, type ConvertCache, type PreparedModel } from "../../quant/index";
import type { DownstreamRuns } from "./downstream";
import { convertMixed, type MixConfig } from "./mixed-model";
import { comparedTensors, modelOutputs, outputSqnr, type BatchOutput, type RunOptions, type Yardstick } from "./outputs";
import { ProgressClock, type Progress } from "./progress";
import type { ConvertRunSeconds, LayerSensitivity, SensitivityRanking } from "./types";

export interface SensitivityOptions extends RunOptions {
  /** What is compared (default "auto": the logits a final Softmax reads, the graph outputs otherwise). */
  yardstick?: Yardstick;
  /**
   * Also measure each node with 16-bit activations instead of float (`int16GainDb`): a second conversion and run
   * per node. The search does this unless its remedy is "float".
   */
  rankInt16?: boolean;
  /** Called after each model is measured (done and total count measurements), with the time left. */
  onProgress?(done: number, total: number, progress: Progress): void;
  /** "restore-one" (default for rankSensitivity) or "quantize-one" (the search's): see the top of this file. */
  method?: RankMethod;
  /** Stops before the next node once aborted (rejects with the signal's reason). */
  signal?: AbortSignal;
}

export type RankMethod = "restore-one" | "quantize-one";

/** A configuration's score, higher is better (output SQNR in dB). */
export type Score = (config: MixConfig) => Promise<number>;

/** Ranks `nodes` by what keeping each float gains on `score` (options.method), most first. */
export async function rankNodes(
  nodes: readonly { name: string; opType: string }[],
  score: Score,
  options: Pick<SensitivityOptions, "rankInt16" | "onProgress" | "method" | "signal"> & { clock?: ProgressClock } = {},
): Promise<SensitivityRanking> {
  const method = options.method ?? "restore-one";
  const clock = options.clock ?? new ProgressClock(1 + nodes.length * (options.rankInt16 ? 2 : 1), (p) => options.onProgress?.(p.done, p.total, p));
  const measure: Score = async (config) => {
    const db = await score(config);
    clock.tick("rank");
    return db;
  };
  const baselineDb = await measure({ keepFloat: [], int16: [] });
  const rankOne = async (n: { name: string; opType: string }): Promise<LayerSensitivity> => {
    options.signal?.throwIfAborted();
    const [float, int16] = nodeConfigs(nodes, n.name, method);
    const db = await measure(float);
    const layer: LayerSensitivity = { node: n.name, opType: n.opType, outputSqnrDb: db, gainDb: db - baselineDb };
    if (options.rankInt16) layer.int16GainDb = (await measure(int16)) - baselineDb;
    return layer;
  };
  const layers: LayerSensitivity[] = [];
  for (const n of nodes) layers.push(await rankOne(n));
  if (method === "quantize-one") predictGains(layers, baselineDb);
  layers.sort((a, b) => b.gainDb - a.gainDb);
  return { method, baselineDb, layers };
}

/** The two configurations that measure `node` (float remedy, 16-bit remedy) by `method`. */
function nodeConfigs(nodes: readonly { name: string }[], node: string, method: RankMethod): [MixConfig, MixConfig] {
  if (method === "restore-one") return [{ keepFloat: [node], int16: [] }, { keepFloat: [], int16: [node] }];
  const others = nodes.map((n) => n.name).filter((m) => m !== node);
  return [{ keepFloat: others, int16: [] }, { keepFloat: others, int16: [node] }];
}

/** Every configuration rankNodes measures besides its baseline, in order. */
export function rankConfigs(nodes: readonly { name: string }[], method: RankMethod, rankInt16 = false): MixConfig[] {
  return nodes.flatMap((n) => nodeConfigs(nodes, n.name, method).slice(0, rankInt16 ? 2 : 1));
}

/** Noise-to-signal power of an SQNR in dB. */
const nsr = (db: number) => 10 ** (-db / 10);

/**
 * Quantize-one: each node's noise power alone (outputSqnrDb; int16GainDb + baselineDb its SQNR alone at 16 bits)
 * becomes a predicted gain, the SQNR won by removing that noise from the sum of all nodes' noise: keeping
 * it float removes all of it, 16 bits the difference between its 8- and 16-bit noise.
 */
function predictGains(layers: LayerSensitivity[], baselineDb: number): void {
  const total = layers.reduce((a, l) => a + nsr(l.outputSqnrDb), 0);
  const gain = (removed: number) => (removed <= 0 ? 0 : removed >= total ? Infinity : 10 * Math.log10(total / (total - removed)));
  for (const l of layers) {
    const own = nsr(l.outputSqnrDb);
    if (l.int16GainDb !== undefined) l.int16GainDb = gain(own - nsr(l.int16GainDb + baselineDb));
    l.gainDb = gain(own);
  }
}

/**
 * SQNR of each configuration's compared tensors (options.yardstick) against the float model's on `data` (computed
 * once unless given). `shared`: the search's ConvertCache (shared with its other conversions), where to add the
 * seconds spent converting and running, and `downstream` (search/downstream) to run only the part of each model its
 * configuration changed.
 */
export async function sqnrScore(
  prepared: PreparedModel,
  data: readonly Feeds[],
  options: RunOptions & { yardstick?: Yardstick } = {},
  reference?: BatchOutput[][],
  shared: { cache?: ConvertCache; seconds?: ConvertRunSeconds; downstream?: DownstreamRuns } = {},
): Promise<Score> {
  const tensors = comparedTensors(prepared.model, options.yardstick);
  const ref = reference ?? (await modelOutputs(prepared.model, data, options, tensors));
  // A configuration that quantizes nothing (a node that only quantizes beside its neighbours, asked to quantize
  // alone) is the float model: its conversion says so, and it is not run.
  const seconds = shared.seconds ?? { convert: 0, run: 0 };
  return async (config) => {
    const t0 = performance.now();
    const { model, summary } = await convertMixed(prepared, config, shared.cache);
    const t1 = performance.now();
    seconds.convert += (t1 - t0) / 1000;
    if (summary.quantized.length === 0) return Infinity;
    const part = shared.downstream?.cut(model);
    const outs = await modelOutputs(part?.model ?? model, part?.data ?? data, options, tensors);
    seconds.run += (performance.now() - t1) / 1000;
    return outputSqnr(ref, outs);
  };
}

export async function rankSensitivity(
  prepared: PreparedModel,
  data: readonly Feeds[],
  options: SensitivityOptions & { clock?: ProgressClock } = {},
  reference?: BatchOutput[][],
): Promise<SensitivityRanking> {
  checkRankable(prepared, data, "rankSensitivity");
  const nodes = (await convert(prepared)).summary.quantized;
  return rankNodes(nodes, await sqnrScore(prepared, data, options, reference), options);
}

/** Refuses an uncalibrated model or no data, naming the caller. */
export function checkRankable(prepared: PreparedModel, data: readonly Feeds[], caller: string): void {
  if (prepared.ranges.size === 0 && prepared.observe.length > 0) throw new Error(`${caller}: calibrate the prepared model first`);
  if (data.length === 0) throw new Error(`${caller}: no data; give at least one batch of inputs`);
}

/** The ranking reordered by what 16-bit activations alone gain (rankInt16), most first. */
export function byInt16Gain(layers: readonly LayerSensitivity[]): LayerSensitivity[] {
  return [...layers].sort((a, b) => (b.int16GainDb ?? 0) - (a.int16GainDb ?? 0));
}
