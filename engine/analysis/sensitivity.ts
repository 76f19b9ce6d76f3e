// Accuracy-driven mixed precision: rank the quantized nodes by how much restoring each alone helps (search/rank),
// then let a strategy (search/strategy) pick configurations — nodes kept in float or given 16-bit activations — and
// an injected measure (search/measure: convert with that configuration, run, score against the float model) say
// whether each meets the target. One calibration serves every configuration. Ranking costs one conversion and run
// per quantized node (two with 16-bit activations), so it runs on a small sample (32 rows spread over the search
// data, or `rankData`: output SQNR needs no labels), each quantize-one model only from its node on (search/
// downstream), while the search checks its few candidates on the full data.
import { fixedBatchSize, type Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import type { PreparedModel } from "../quant/index";
import { convert, ConvertCache } from "../quant/index";
import { MIN_INT8_WEIGHT_SHARE } from "../quant/options";
import { withinBudget } from "../quant/protect";
import { createMeasurer, type Measured } from "./search/measure";
import { binarySearchSteps, ProgressClock } from "./search/progress";
import { comparedTensors } from "./search/outputs";
import { downstreamRuns } from "./search/downstream";
import { byInt16Gain, checkRankable, rankConfigs, rankNodes, sqnrScore, type RankMethod, type SensitivityOptions } from "./search/rank";
import { RANK_SAMPLES, spreadRows } from "./search/subset";
import { greedySearch, prefixSearch } from "./search/strategy";
import type { AccuracyTarget, ConvertRunSeconds, Remedy, SearchStep, SensitivityRanking } from "./search/types";
import { pairedProportionDiff } from "./stats";

export { convertExcluding, convertMixed, type MixConfig } from "./search/mixed-model";
export { argmaxAgreement, correctness, modelOutputs, outputSqnr, percentCorrect, top1, type BatchOutput } from "./search/outputs";
export { comparedTensors, type Yardstick } from "./search/outputs";
export type { Progress } from "./search/progress";
export { byInt16Gain, rankSensitivity, type RankMethod, type SensitivityOptions } from "./search/rank";
export type { AccuracyTarget, ConvertRunSeconds, LayerSensitivity, Remedy, SearchStep, SensitivityRanking } from "./search/types";

export interface SearchOptions extends SensitivityOptions {
  /**
   * Data to rank nodes on, by output SQNR (default: the search's own data). A few hundred samples rank as well as
   * thousands at a fraction of the cost: the ranking runs once per quantized node, the search only ~log2(nodes)
   * times.
   */
  rankData?: readonly Feeds[];
  /**
   * Without rankData, how many samples (rows) of the search data rank the nodes: that many spread evenly over it
   * (search/subset's spreadRows), default 32 (RANK_SAMPLES); Infinity ranks on all. The ranking only orders the
   * nodes; the search's steps measure their candidates on all the data.
   */
  rankSamples?: number;
  /**
   * Quantize-one ranking runs only the part of each configuration's model that its quantized node changes, fed the
   * float model's activations computed once (search/downstream), instead of the whole model (default true).
   */
  runDownstream?: boolean;
  /**
   * How nodes are ranked (search/rank). Default "quantize-one": each node quantized alone against a float
   * background, which several nodes that each ruin the output cannot mask.
   */
  rankMethod?: RankMethod;
  /**
   * Keep at least this share (0–1) of the quantizable weight parameters in int8 (default 0.8, MIN_INT8_WEIGHT_SHARE:
   * the file stays at most ~0.4× the float one). Nodes whose restoration would go over the budget are passed over in
   * favour of the next, lighter ones in the ranking: one big Conv kept in float can otherwise cost a third of the
   * model's int8 weights for a fraction of a dB. 0 lifts the floor.
   */
  minInt8WeightShare?: number;
  /**
   * What happens to the nodes the search picks. "int16": their activations (inputs and outputs) get 16 bits while
   * their weights stay int8 (no weight leaves int8; onnxruntime runs such a node as DequantizeLinear + the float
   * op, as it does a float node). "float": they are not quantized at all. "auto" (default): both searches, and the
   * one that meets the target changing fewer nodes wins (16 bits on a tie); when neither alone does, the two
   * combined (some nodes float, others at 16 bits). Each remedy has its own ranking (what it gains on one node
   * alone), so anything but "float" measures every node twice.
   */
  remedy?: Remedy | "auto";
  /**
   * Greedy re-ranking after the prefix search (search/strategy's greedySearch), for when errors compound and the
   * one-shot ranking misorders the nodes: from nothing kept float, each step measures the next `window` candidates
   * (default 4) on top of those accepted, accepts the one that raises the metric most (never one that lowers it)
   * and re-ranks; it stops after `budget` configurations (default 24), and is taken when it meets the target with
   * fewer float nodes than the prefix search changed (or when that met nothing). It runs only where the ranking
   * shows it misorders: the prefix search met nothing, or one of its prefixes measured no better than a shorter one.
   * Float candidates only (the float remedy, and auto's float part). `false` turns it off.
   */
  greedy?: false | { budget?: number; window?: number };
  /** Called after each search step (each candidate measured on the full data), with that step. */
  onStep?(step: SearchStep): void;
  /**
   * Also time the float model and every configuration the search measured, interleaved in one benchmark (kernel
   * /analysis/benchmark: `seconds` per batch size for all of them together, default 2; batch default 1), so the
   * trade-off table has latency beside accuracy and size. Off by default: it adds `seconds` of runs.
   */
  tradeoff?: { batch?: number; seconds?: number };
}

export { MIN_INT8_WEIGHT_SHARE, RANK_SAMPLES };

export interface MixedPrecisionResult {
  kind: "ptq.mixed-precision";
  target: AccuracyTarget;
  /** The float model's top-1 (%) for a drop target. */
  floatMetric?: number;
  ranking: SensitivityRanking;
  steps: SearchStep[];
  /**
   * The smallest prefix of the remedy's ranking that meets the target (under "auto", whichever remedy's changes
   * fewer nodes, or both combined); when none does, every candidate the remedy may touch (both under "auto").
   */
  chosen: SearchStep;
  /** Ranked nodes left out of the candidates because keeping them float would break minInt8WeightShare. */
  overBudget: string[];
  /** Caveats about the result (a drop target measured on too few samples to trust). */
  warnings: string[];
  model: Model;
  /** The float model's size, and its latency with options.tradeoff: the trade-off table's first row. */
  float: { bytes: number; latencyMs?: number };
  /** Where the time went: wall seconds in all, converting and running configurations, and measurements made. */
  timing: ConvertRunSeconds & { total: number; measurements: number };
  /**
   * What the ranking ran on: how many samples (rows) of how many (rankData's own count twice when given), and how
   * many float activations it fed to the parts of the models it ran, and their bytes (0: it ran whole models).
   */
  rankedOn: { samples: number; of: number; cachedTensors: number; cachedBytes: number };
}

/**
 * Gives the k most sensitive nodes 16-bit activations or keeps them in float (options.remedy) for the smallest k that
 * meets the target (search/strategy's prefixSearch). With minInt8WeightShare the float candidates are the ranking
 * minus the nodes that would not fit the float-weight budget; 16-bit activations cost no int8 weights.
 */
export async function searchMixedPrecision(
  prepared: PreparedModel,
  data: readonly Feeds[],
  target: AccuracyTarget,
  options: SearchOptions = {},
): Promise<MixedPrecisionResult> {
  if (prepared.config.rounding !== "nearest") {
    throw new Error(`QConfig.rounding "${prepared.config.rounding}" is not applied by the accuracy-target search (searchMixedPrecision): it measures nearest rounding's codes; use rounding "nearest" with a target`);
  }
  const remedy = options.remedy ?? "auto";
  if (!["auto", "float", "int16"].includes(remedy)) throw new Error(`remedy: "${remedy}" is not one of auto, float, int16`);
  const minShare = options.minInt8WeightShare ?? MIN_INT8_WEIGHT_SHARE;
  if (!(minShare >= 0 && minShare <= 1)) throw new Error(`minInt8WeightShare: ${minShare} must be between 0 and 1`);
  const rankInt16 = remedy !== "float";
  const greedy = options.greedy === false ? undefined : { budget: options.greedy?.budget ?? 24, window: options.greedy?.window ?? 4 };
  if (greedy && !(Number.isInteger(greedy.budget) && greedy.budget >= 0 && Number.isInteger(greedy.window) && greedy.window >= 1))
    throw new Error(`greedy: budget ${greedy.budget} and window ${greedy.window} must be whole numbers, budget ≥ 0 and window ≥ 1`);
  checkRankable(prepared, options.rankData ?? data, "searchMixedPrecision");
  const rankOn = options.rankData ? spreadRows(options.rankData, Infinity) : spreadRows(data, options.rankSamples ?? RANK_SAMPLES, (fixedBatchSize(prepared.model) ?? 1) > 1);
  const start = performance.now();
  // Every conversion of the search shares what does not change between configurations (quant's ConvertCache).
  const cache = new ConvertCache();
  const seconds: ConvertRunSeconds = { convert: 0, run: 0 };
  const quantized = (await convert(prepared, { cache })).summary.quantized;
  const nodes = quantized.length;
  // Rank: a baseline and one or two measurements per node; search: a binary search per remedy (a third when "auto"
  // combines them); greedy, when it runs, grows the total.
  const searchSteps = (remedy === "auto" ? 3 : 1) * binarySearchSteps(nodes);
  let measurements = 0;
  const rankMeasurements = 1 + nodes * (rankInt16 ? 2 : 1);
  const clock = new ProgressClock(rankMeasurements + searchSteps, (p) => ((measurements = p.done), options.onProgress?.(p.done, p.total, p)), {
    rankMeasurements,
    samples: { rank: rankOn.rows, search: spreadRows(data, Infinity).rows },
  });
  const measurer = await createMeasurer(prepared, data, target, {
    ...options,
    cache,
    seconds,
    onMeasured: (step) => {
      clock.tick("search");
      options.onStep?.(step);
    },
  });
  // The float model's outputs on the search data serve the ranking too when it ranks on all that data, comparing the
  // same tensors (an agreement target compares the graph outputs, the ranking the yardstick's).
  const rankTensors = comparedTensors(prepared.model, options.yardstick);
  const same = rankOn.data === data && measurer.tensors.join("\0") === rankTensors.join("\0");
  const method = options.rankMethod ?? "quantize-one";
  const downstream =
    method === "quantize-one" && options.runDownstream !== false
      ? await downstreamRuns(prepared, rankOn.data, rankConfigs(quantized, method, rankInt16), rankTensors, options, { cache, seconds })
      : undefined;
  const score = await sqnrScore(prepared, rankOn.data, options, same ? measurer.reference : undefined, { cache, seconds, downstream });
  const ranking = await rankNodes(quantized, score, { ...options, rankInt16, method, clock });

  const { float: candidates, overBudget } = withinBudget(ranking.layers.map((l) => l.node), measurer.weights, (1 - minShare) * measurer.totalWeights);
  // 16-bit activations keep every weight int8, so every ranked node is a candidate for them, in the order of what
  // 16 bits alone gain; float only those within the weight budget, in the order of what float gains.
  const int16 = byInt16Gain(ranking.layers).map((l) => l.node);
  let chosen = await prefixSearch(remedy, { float: candidates, int16 }, measurer.measure);
  const changed = chosen.keptFloat.length + chosen.int16.length;
  const maxNodes = chosen.met ? changed - 1 : candidates.length;
  // Greedy only where the ranking shows it misorders: the target unmet, or a longer prefix measured no better than
  // a shorter one (the nodes added gained nothing: errors compound or cancel). Otherwise its budget would be spent
  // confirming the prefix.
  if (greedy && remedy !== "int16" && greedy.budget > 0 && maxNodes > 0 && (!chosen.met || notMonotone(measurer.measured))) {
    const g = await greedySearch(candidates, measurer.measure, { ...greedy, maxNodes });
    if (g.met && (!chosen.met || g.keptFloat.length < changed)) chosen = g;
  }
  clock.finish();
  const warnings = target.kind === "drop" ? dropWarnings(target.maxPp, measurer.floatOk!, chosen) : [];

  const ordered = [...measurer.measured].sort((a, b) => a.keptFloat.length - b.keptFloat.length || a.int16.length - b.int16.length);
  const float: MixedPrecisionResult["float"] = { bytes: prepared.model.toBytes().byteLength };
  if (options.tradeoff) {
    const { benchmark } = await import("./benchmark");
    const models = Object.fromEntries([["float", prepared.model], ...ordered.map((s, i) => [`step ${i}`, s.model])]);
    const b = await benchmark(models, { batchSizes: [options.tradeoff.batch ?? 1], seconds: options.tradeoff.seconds ?? 2, threads: options.threads, ep: options.ep });
    const p50 = b.models.map((m) => m.batches[0]!.latencyMs.p50);
    float.latencyMs = p50[0];
    ordered.forEach((s, i) => (s.latencyMs = p50[i + 1]));
  }
  return {
    kind: "ptq.mixed-precision",
    target,
    floatMetric: measurer.floatMetric,
    ranking,
    steps: ordered.map(stepOf),
    chosen: stepOf(chosen),
    overBudget,
    warnings,
    model: chosen.model,
    float,
    timing: { total: (performance.now() - start) / 1000, ...seconds, measurements },
    rankedOn: { samples: rankOn.rows, of: rankOn.of, cachedTensors: downstream?.tensors ?? 0, cachedBytes: downstream?.bytes ?? 0 },
  };
}

const stepOf = ({ remedy, keptFloat, int16, metric, met, int8WeightShare, bytes, latencyMs }: Measured): SearchStep => ({
  remedy,
  keptFloat,
  int16,
  metric,
  met,
  int8WeightShare,
  bytes,
  latencyMs,
});

/**
 * Whether a float-only configuration that missed the target measured no better than one with fewer float nodes
 * (the prefix search's prefixes of one ranking).
 */
function notMonotone(measured: readonly Measured[]): boolean {
  const float = measured.filter((m) => m.int16.length === 0 && !m.met).sort((a, b) => a.keptFloat.length - b.keptFloat.length);
  let best = -Infinity;
  for (const m of float) {
    if (m.metric <= best) return true;
    best = Math.max(best, m.metric);
  }
  return false;
}

/**
 * A drop target is only as good as the data it is measured on: say so when the chosen model's drop is noisier than
 * the target itself (the choice is then partly luck, and may not hold on new data).
 */
function dropWarnings(maxPp: number, floatOk: Uint8Array, chosen: Measured): string[] {
  const se = 100 * pairedProportionDiff(floatOk, chosen.ok!).stdErr;
  if (se <= maxPp) return [];
  const n = floatOk.length;
  return [
    `on ${n} labelled samples the chosen model's top-1 drop has a standard error of ${se.toFixed(2)} pp, more than the ` +
      `${maxPp} pp target: the choice may not hold on new data; about ${Math.ceil((n * (se / (maxPp / 2)) ** 2) / 1000) * 1000} samples ` +
      `would bring it to half the target`,
  ];
}
