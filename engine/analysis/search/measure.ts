// measure(config) → metric: converts the calibrated model with a configuration's nodes kept float or widened to
// 16 bits, runs it on the search data and scores it against the float model's outputs (computed once). Each
// configuration is measured once; asking again returns the same measurement.
import type { Feeds } from "../../data/feeds";
import type { Model } from "../../onnx/model";
import type { ConvertCache, PreparedModel } from "../../quant/index";
import { WEIGHTED_OPS } from "../../quant/scope";
import { classLabels } from "../metrics";
import { convertMixed, weightParams, type MixConfig } from "./mixed-model";
import { argmaxAgreement, comparedTensors, correctness, modelOutputs, outputSqnr, percentCorrect, type BatchOutput, type RunOptions, type Yardstick } from "./outputs";
import type { AccuracyTarget, ConvertRunSeconds, SearchStep } from "./types";

/** A measured configuration: its step, its model and (drop, agreement targets) which samples it gets right. */
export type Measured = SearchStep & { model: Model; ok?: Uint8Array };

export interface Measurer {
  measure(config: MixConfig): Promise<Measured>;
  /** Every configuration measured so far, in the order measured. */
  readonly measured: readonly Measured[];
  /** The float model's compared tensors (yardstick) on the search data. */
  readonly reference: BatchOutput[][];
  /** The tensors compared: graph outputs, or the logits a final Softmax reads. */
  readonly tensors: readonly string[];
  /** Drop targets: which samples the float model gets right, and its top-1 (%). */
  readonly floatOk?: Uint8Array;
  readonly floatMetric?: number;
  /** Parameter count of each node's weights, and of all of them. */
  readonly weights: ReadonlyMap<string, number>;
  readonly totalWeights: number;
  /** Wall seconds spent converting configurations and running them (session creation included), so far. */
  readonly seconds: ConvertRunSeconds;
}

export interface MeasureOptions extends RunOptions {
  /** What is compared (default "auto": the logits a final Softmax reads, the graph outputs otherwise). */
  yardstick?: Yardstick;
  /** Stops before the next conversion once aborted (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Called after each new configuration is measured. */
  onMeasured?(step: SearchStep): void;
  /** The search's ConvertCache, shared with its other conversions of `prepared`. */
  cache?: ConvertCache;
  /** Where to add the seconds spent converting and running (a fresh count by default). */
  seconds?: ConvertRunSeconds;
}

export async function createMeasurer(prepared: PreparedModel, data: readonly Feeds[], target: AccuracyTarget, options: MeasureOptions = {}): Promise<Measurer> {
  // Argmax is the same before and after a Softmax, and the graph outputs keep each sample's shape (a Softmax over
  // the last axis below opset 13 reads a flattened tensor): agreement is counted on the outputs.
  const tensors = comparedTensors(prepared.model, target.kind === "agreement" ? "outputs" : options.yardstick);
  const reference = await modelOutputs(prepared.model, data, options, tensors);
  const labels = target.kind === "drop" ? classLabels(target.labels) : undefined;
  const floatOk = labels ? correctness(reference, labels) : undefined;
  const floatMetric = floatOk ? percentCorrect(floatOk) : undefined;
  const weights = weightParams(prepared);
  const totalWeights = [...weights.values()].reduce((a, b) => a + b, 0) || 1;
  // Protected layers stay float in every conversion (quant/index): their weights are not int8 either.
  const alwaysFloat = prepared.config.protect ? (prepared.protected?.nodes ?? []) : [];
  const cache = new Map<string, Promise<Measured>>();
  const measured: Measured[] = [];
  const seconds = options.seconds ?? { convert: 0, run: 0 };

  const run = async (config: MixConfig): Promise<Measured> => {
    options.signal?.throwIfAborted();
    const keptFloat = [...config.keepFloat];
    const int16 = [...config.int16];
    const t0 = performance.now();
    const { model, summary } = await convertMixed(prepared, { keepFloat: keptFloat, int16 }, options.cache);
    const t1 = performance.now();
    const outs = await modelOutputs(model, data, options, tensors);
    seconds.convert += (t1 - t0) / 1000;
    seconds.run += (performance.now() - t1) / 1000;
    const ok = labels ? correctness(outs, labels) : target.kind === "agreement" ? argmaxAgreement(reference, outs, target.per ?? "sample") : undefined;
    const metric = ok ? percentCorrect(ok) : outputSqnr(reference, outs);
    const met = target.kind === "sqnr" ? metric >= target.minDb : target.kind === "drop" ? floatMetric! - metric <= target.maxPp : metric >= target.minPct;
    // And the weighted nodes the conversion itself left float (a small Conv onnxruntime runs in float beside a widened
    // activation, say: engine/quant/qdq planSmallestFloat).
    const leftFloat = summary.float.filter((f) => WEIGHTED_OPS.has(f.opType)).map((f) => f.name);
    const floatWeights = [...new Set([...keptFloat, ...alwaysFloat, ...leftFloat])].reduce((a, n) => a + (weights.get(n) ?? 0), 0);
    const remedy: SearchStep["remedy"] = keptFloat.length && int16.length ? "both" : keptFloat.length ? "float" : "int16";
    const step: SearchStep = { remedy, keptFloat, int16, metric, met, int8WeightShare: 1 - floatWeights / totalWeights, bytes: model.toBytes().byteLength };
    measured.push({ ...step, model, ok });
    options.onMeasured?.(step);
    return measured[measured.length - 1]!;
  };
  const measure = (config: MixConfig) => {
    const key = `${config.keepFloat.join("\0")}\u0001${config.int16.join("\0")}`;
    let m = cache.get(key);
    if (!m) cache.set(key, (m = run(config)));
    return m;
  };
  return { measure, measured, reference, tensors, floatOk, floatMetric, weights, totalWeights, seconds };
}
