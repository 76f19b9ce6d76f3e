// analyze(): "which layers broke my accuracy?" in one call. Weight and activation error per tensor between the
// float model and its quantized twin, optionally the per-node sensitivity ranking. The kernel shows the result as a
// sorted table and a plotly bar chart of SQNR per layer (kernel/views/analysis-view.ts).
import type { CalibrationData, Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import { convert, type PreparedModel, type QuantizationSummary } from "../quant/index";
import { activationErrors, weightErrors, type CompareOptions, type TensorError } from "./quant-error";
import { rankSensitivity, type SensitivityRanking } from "./sensitivity";

export interface AnalyzeOptions extends CompareOptions {
  /** Batches of `data` to use (default 16): analysis runs the models several times. */
  maxBatches?: number;
  /** Also rank nodes by sensitivity (one extra conversion and run per quantized node). Needs a PreparedModel. */
  sensitivity?: boolean;
  /** Rows below this SQNR are flagged (default 20 dB). */
  warnBelowDb?: number;
}

export interface AnalysisJson {
  weights: TensorError[];
  biases: TensorError[];
  activations: TensorError[];
  outputs: TensorError[];
  sensitivity?: SensitivityRanking;
  warnBelowDb: number;
}

export class AnalysisResult {
  /** `summary`: the conversion's, when analyze() made the quantized model itself (from a PreparedModel). */
  constructor(
    readonly json: AnalysisJson,
    readonly summary?: QuantizationSummary,
  ) {}

  /** Every tensor, worst SQNR first. */
  worst(limit = Infinity): TensorError[] {
    return [...this.json.weights, ...this.json.activations, ...this.json.outputs].sort((a, b) => a.sqnrDb - b.sqnrDb).slice(0, limit);
  }

  toJSON(): AnalysisJson {
    return this.json;
  }
}

/**
 * Compares a float model with its quantized version on `data`. Give a calibrated PreparedModel (its float model is
 * the preprocessed one calibration ran on, and convert() makes the quantized one), or both models explicitly.
 */
export async function analyze(
  subject: PreparedModel | { float: Model; quantized: Model },
  data: CalibrationData,
  options: AnalyzeOptions = {},
): Promise<AnalysisResult> {
  const batches = await takeBatches(data, options.maxBatches ?? 16);
  const prepared = "config" in subject ? subject : undefined;
  const float = prepared ? prepared.model : (subject as { float: Model }).float;
  const conversion = prepared ? await convert(prepared) : undefined;
  const quantized = conversion ? conversion.model : (subject as { quantized: Model }).quantized;
  const errors = await activationErrors(float, quantized, batches, options);
  const stored = weightErrors(float, quantized);
  const json: AnalysisJson = {
    weights: stored.filter((e) => e.kind === "weight"),
    biases: stored.filter((e) => e.kind === "bias"),
    activations: errors.filter((e) => e.kind === "activation"),
    outputs: errors.filter((e) => e.kind === "output"),
    warnBelowDb: options.warnBelowDb ?? 20,
  };
  if (options.sensitivity) {
    if (!prepared) throw new Error("analyze: sensitivity ranking needs a calibrated PreparedModel (from prepare + calibrate)");
    json.sensitivity = await rankSensitivity(prepared, batches, options);
  }
  return new AnalysisResult(json, conversion?.summary);
}

/** Materializes up to `max` batches (analysis passes over the data more than once). */
export async function takeBatches(data: CalibrationData, max: number): Promise<Feeds[]> {
  const out: Feeds[] = [];
  for await (const feeds of data) {
    out.push(feeds);
    if (out.length >= max) break;
  }
  if (out.length === 0) throw new Error("no data: give at least one batch of inputs");
  return out;
}

