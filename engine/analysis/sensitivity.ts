// Which layers hurt? Rank quantized nodes by how much the model's output improves when that one node alone is
// restored to float (everything else quantized), then search the smallest set to keep in float that meets an
// accuracy target. One calibration serves every candidate: convert() is re-run with a longer exclude list.
// Ranking costs one conversion and run per quantized node, so it can run on a small sample (`rankData`, output
// SQNR needs no labels) while the search checks its few candidates on the full data.
import type { Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import { convert, type PreparedModel, type Quantized } from "../quant/index";
import type { QType } from "../quant/math";
import { annotateGraph } from "../quant/registry";
import { createSession, type ExecutionProvider } from "../runtime/session";
import { ErrorAccumulator } from "./error-stats";
import { argmaxRows, classLabels } from "./metrics";
import { pairedProportionDiff } from "./stats";
import type { HostTensor } from "./feeds";

export interface SensitivityOptions {
  ep?: ExecutionProvider;
  threads?: number;
  /**
   * Also measure each node with 16-bit activations instead of float (`int16GainDb`): a second conversion and run
   * per node. The search does this unless its remedy is "float".
   */
  rankInt16?: boolean;
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
  /**
   * What happens to the nodes the search picks. "int16": their activations (inputs and outputs) get 16 bits while
   * their weights stay int8 (no weight leaves int8; onnxruntime runs such a node as DequantizeLinear + the float
   * op, as it does a float node). "float": they are not quantized at all. "auto" (default): both searches, and the
   * one that meets the target changing fewer nodes wins (16 bits on a tie); when neither alone does, the two
   * combined (some nodes float, others at 16 bits). Each remedy has its own ranking (what it gains on one node
   * alone), so anything but "float" measures every node twice.
   */
  remedy?: Remedy | "auto";
  /** Called after each search step (each candidate measured on the full data), with that step. */
  onStep?(step: SearchStep): void;
  /**
   * Also time the float model and every configuration the search measured, interleaved in one benchmark (kernel
   * /analysis/benchmark: `seconds` per batch size for all of them together, default 2; batch default 1), so the
   * trade-off table has latency beside accuracy and size. Off by default: it adds `seconds` of runs.
   */
  tradeoff?: { batch?: number; seconds?: number };
}

/** What a mixed model does with a sensitive node: keep it float, or give its activations 16 bits. */
export type Remedy = "float" | "int16";

export interface LayerSensitivity {
  node: string;
  opType: string;
  /** Output SQNR (dB, all outputs together) with only this node restored to float. */
  outputSqnrDb: number;
  /** outputSqnrDb minus the all-quantized model's: how much this node's quantization costs. */
  gainDb: number;
  /** With rankInt16: the gain when only this node's activations get 16 bits (its weights stay int8). */
  int16GainDb?: number;
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
export async function convertExcluding(prepared: PreparedModel, keepFloat: readonly string[]): Promise<Quantized> {
  return convertMixed(prepared, { keepFloat });
}

/** convert() with extra nodes kept in float and others given 16-bit activations (their weights stay int8). */
export async function convertMixed(prepared: PreparedModel, mix: { keepFloat?: readonly string[]; int16?: readonly string[] }): Promise<Quantized> {
  const { exclude, overrides } = prepared.config;
  const wide = widen(prepared.config.activationType);
  const sixteen = Object.fromEntries(sixteenBitTensors(prepared, mix.int16 ?? []).map((t) => [t, { ...overrides[t], type: wide }]));
  const variant: PreparedModel = {
    ...prepared,
    config: { ...prepared.config, exclude: [...exclude, ...(mix.keepFloat ?? [])], overrides: { ...overrides, ...sixteen } },
  };
  return convert(variant);
}

function widen(t: QType): QType {
  return t === "uint8" || t === "uint16" ? "uint16" : "int16";
}

/**
 * The tensors whose type decides the activations `nodes` read and write: each quantized, non-constant input and
 * output, or the tensor whose parameters it shares (a Reshape's output is quantized with its input's scale and type).
 * Outputs count because restoring a node to float (what the ranking measured) drops its output Q too where only it
 * wanted one (a Conv's output Q, there for onnxruntime's QLinearConv fusion).
 */
function sixteenBitTensors(prepared: PreparedModel, nodes: readonly string[]): string[] {
  if (nodes.length === 0) return [];
  const graph = prepared.model.graph;
  const marks = annotateGraph(graph, prepared.config);
  const constants = new Set(graph.initializer.map((t) => t.name));
  const wanted = new Set(nodes);
  const out = new Set<string>();
  for (const [node, tensors] of marks.nodes) {
    if (!wanted.has(node.name)) continue;
    for (const t of tensors) {
      if (constants.has(t) || marks.weights.has(t) || !marks.activations.has(t)) continue;
      let root = t;
      for (let depth = 0; depth < 64; depth++) {
        const next = marks.activations.get(root)?.sameAs;
        if (!next || !marks.activations.has(next)) break;
        root = next;
      }
      out.add(root);
    }
  }
  return [...out];
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
  const quantizedNodes = full.summary.quantized;
  const baselineDb = outputSqnr(reference, await modelOutputs(full.model, data, options));
  const layers: LayerSensitivity[] = [];
  for (const [i, n] of quantizedNodes.entries()) {
    const m = await convertExcluding(prepared, [n.name]);
    const db = outputSqnr(reference, await modelOutputs(m.model, data, options));
    const layer: LayerSensitivity = { node: n.name, opType: n.opType, outputSqnrDb: db, gainDb: db - baselineDb };
    if (options.rankInt16) {
      const m16 = await convertMixed(prepared, { int16: [n.name] });
      layer.int16GainDb = outputSqnr(reference, await modelOutputs(m16.model, data, options)) - baselineDb;
    }
    layers.push(layer);
    options.onProgress?.(i + 1, quantizedNodes.length);
  }
  layers.sort((a, b) => b.gainDb - a.gainDb);
  return { baselineDb, layers };
}

/** An accuracy target: output SQNR against the float model, or a top-1 drop on labelled data. */
export type AccuracyTarget = { kind: "sqnr"; minDb: number } | { kind: "drop"; maxPp: number; labels: HostTensor };

export interface SearchStep {
  /** How the nodes this step picked are treated ("both": some float, the others at 16 bits). */
  remedy: Remedy | "both";
  /** Nodes not quantized (remedy "float"). */
  keptFloat: string[];
  /** Nodes whose activations are 16-bit, weights still int8 (remedy "int16"). */
  int16: string[];
  /** Output SQNR in dB, or top-1 accuracy in % for a drop target. */
  metric: number;
  met: boolean;
  /** Share of the quantizable nodes' weight parameters that stay int8. */
  int8WeightShare: number;
  /** Serialized size of this configuration's model. */
  bytes: number;
  /** Median latency (ms) with options.tradeoff. */
  latencyMs?: number;
}

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
}

/**
 * Gives the k most sensitive nodes 16-bit activations or keeps them in float (options.remedy) for the smallest k that
 * meets the target, found by binary search over the remedy's sensitivity ranking (changing more nodes only ever
 * moves the model towards float; the chosen k is checked). With minInt8WeightShare the float candidates are the ranking minus
 * the nodes that would not fit the float-weight budget; 16-bit activations cost no int8 weights.
 */
export async function searchMixedPrecision(
  prepared: PreparedModel,
  data: readonly Feeds[],
  target: AccuracyTarget,
  options: SearchOptions = {},
): Promise<MixedPrecisionResult> {
  const remedy = options.remedy ?? "auto";
  if (!["auto", "float", "int16"].includes(remedy)) throw new Error(`remedy: "${remedy}" is not one of auto, float, int16`);
  const reference = await modelOutputs(prepared.model, data, options);
  const rankOptions = { ...options, rankInt16: remedy !== "float" };
  const ranking = options.rankData
    ? await rankSensitivity(prepared, options.rankData, rankOptions)
    : await rankSensitivity(prepared, data, rankOptions, reference);
  const labels = target.kind === "drop" ? classLabels(target.labels) : undefined;
  const floatOk = labels ? correctness(reference, labels) : undefined;
  const floatMetric = floatOk ? percentCorrect(floatOk) : undefined;

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
  // 16-bit activations keep every weight int8, so every ranked node is a candidate for them, in the order of what
  // 16 bits alone gain; float only those within the weight budget, in the order of what float gains.
  const int16Candidates = byInt16Gain(ranking.layers).map((l) => l.node);
  // Each configuration measured, with its model and (drop targets) which samples it gets right.
  type Measured = SearchStep & { model: Model; ok?: Uint8Array };
  const steps = new Map<string, Measured>();
  // k float candidates and the first j int16 candidates that are not among them.
  const measure = async (k: number, j: number) => {
    const key = `${k}:${j}`;
    const cached = steps.get(key);
    if (cached) return cached;
    const keptFloat = candidates.slice(0, k);
    const int16 = int16Candidates.filter((n) => !keptFloat.includes(n)).slice(0, j);
    const { model } = await convertMixed(prepared, { keepFloat: keptFloat, int16 });
    const outs = await modelOutputs(model, data, options);
    const ok = labels ? correctness(outs, labels) : undefined;
    const metric = ok ? percentCorrect(ok) : outputSqnr(reference, outs);
    const met = target.kind === "sqnr" ? metric >= target.minDb : floatMetric! - metric <= target.maxPp;
    const floatWeights = keptFloat.reduce((a, n) => a + (weights.get(n) ?? 0), 0);
    const remedy: SearchStep["remedy"] = keptFloat.length && int16.length ? "both" : keptFloat.length ? "float" : "int16";
    const step: SearchStep = { remedy, keptFloat, int16, metric, met, int8WeightShare: 1 - floatWeights / totalWeights, bytes: model.toBytes().byteLength };
    steps.set(key, { ...step, model, ok });
    options.onStep?.(step);
    return steps.get(key)!;
  };
  // The smallest n in [0, max] whose model meets the target, by binary search (changing more nodes only ever moves
  // the model towards float; the chosen one is measured). Undefined when even max does not.
  const smallest = async (max: number, at: (n: number) => Promise<Measured>) => {
    if ((await at(0)).met) return at(0);
    if (!(await at(max)).met) return undefined;
    let lo = 0;
    let hi = max;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if ((await at(mid)).met) hi = mid;
      else lo = mid;
    }
    return at(hi);
  };
  const all16 = int16Candidates.length;
  // "auto" searches each remedy alone and takes the one that changes fewer nodes (fewer nodes left unfused), 16
  // bits on a tie (it keeps their weights int8). When neither alone meets the target (the weights of a few nodes
  // hurt, the activations of others), it combines them: the fewest float nodes that meet it with every other node
  // at 16 bits, then the fewest 16-bit nodes beside those.
  const by16 = remedy !== "float" ? await smallest(all16, (j) => measure(0, j)) : undefined;
  const byFloat = remedy !== "int16" ? await smallest(candidates.length, (k) => measure(k, 0)) : undefined;
  const changed = (s: SearchStep) => s.int16.length + s.keptFloat.length;
  let chosen = by16 && byFloat ? (changed(by16) <= changed(byFloat) ? by16 : byFloat) : (by16 ?? byFloat);
  if (!chosen && remedy === "auto") {
    const k = (await smallest(candidates.length, (n) => measure(n, all16)))?.keptFloat.length;
    if (k !== undefined) chosen = await smallest(all16, (j) => measure(k, j));
  }
  // Nothing meets the target: the closest the remedy gets (every candidate it may touch).
  chosen ??= await measure(remedy === "int16" ? 0 : candidates.length, remedy === "float" ? 0 : all16);
  // A drop target is only as good as the data it is measured on: say so when the chosen model's drop is noisier
  // than the target itself (the choice is then partly luck, and may not hold on new data).
  const warnings: string[] = [];
  if (target.kind === "drop") {
    const se = 100 * pairedProportionDiff(floatOk!, chosen.ok!).stdErr;
    if (se > target.maxPp) {
      const n = floatOk!.length;
      warnings.push(
        `on ${n} labelled samples the chosen model's top-1 drop has a standard error of ${se.toFixed(2)} pp, more than the ` +
          `${target.maxPp} pp target: the choice may not hold on new data; about ${Math.ceil((n * (se / (target.maxPp / 2)) ** 2) / 1000) * 1000} samples ` +
          `would bring it to half the target`,
      );
    }
  }
  const ordered = [...steps.values()].sort((a, b) => a.keptFloat.length - b.keptFloat.length || a.int16.length - b.int16.length);
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
    floatMetric,
    ranking,
    steps: ordered.map(({ model: _m, ok: _ok, ...s }) => s),
    chosen: { remedy: chosen.remedy, keptFloat: chosen.keptFloat, int16: chosen.int16, metric: chosen.metric, met: chosen.met, int8WeightShare: chosen.int8WeightShare, bytes: chosen.bytes, latencyMs: chosen.latencyMs },
    overBudget,
    warnings,
    model: chosen.model,
    float,
  };
}

/** Top-1 accuracy (%) of the first output over all batches, against one class label per sample in order. */
export function top1(outputs: BatchOutput[][], labels: Int32Array): number {
  return percentCorrect(correctness(outputs, labels));
}

/** The share (%) of samples a correctness vector marks right. */
export function percentCorrect(ok: Uint8Array): number {
  return (100 * ok.reduce((a, b) => a + b, 0)) / ok.length;
}

/** Per sample, 1 where the first output's argmax is the label (batches in order). */
export function correctness(outputs: BatchOutput[][], labels: Int32Array): Uint8Array {
  const ok = new Uint8Array(labels.length);
  let seen = 0;
  for (const batch of outputs) {
    const { data, dims } = batch[0]!;
    const rows = dims[0] ?? 1;
    const pred = argmaxRows({ rows, cols: data.length / rows, data });
    for (let r = 0; r < rows; r++, seen++) {
      if (seen >= labels.length) throw new Error(`the data has more samples than the ${labels.length} labels`);
      ok[seen] = pred[r] === labels[seen] ? 1 : 0;
    }
  }
  if (seen !== labels.length) throw new Error(`the data has ${seen} samples but there are ${labels.length} labels`);
  return ok;
}

/** The ranking reordered by what 16-bit activations alone gain (rankInt16), most first. */
export function byInt16Gain(layers: readonly LayerSensitivity[]): LayerSensitivity[] {
  return [...layers].sort((a, b) => (b.int16GainDb ?? 0) - (a.int16GainDb ?? 0));
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
