// What `import { … } from "ptq"` gives a notebook cell. Typings for it are generated from this file at build time
// (scripts/build-ptq-types.mjs → out/ptq). Adding an engine API to notebooks is one export line here.
import { analyze as analyzeModels, type AnalysisResult, type AnalyzeOptions } from "../engine/analysis/analyze";
import { benchmark as benchmarkModels, type BenchmarkModels, type BenchmarkOptions, type BenchmarkResult } from "../engine/analysis/benchmark";
import { evaluate as evaluateModels } from "../engine/analysis/evaluate";
import { searchMixedPrecision as searchMixedPrecisionModels, type MixedPrecisionResult } from "../engine/analysis/sensitivity";
import { tradeoffMimeBundle, tradeoffPlot } from "./views/mixed-report";
import { display } from "./display";
import { modelSummary } from "./model-summary";
import { histogramDisplays } from "./histogram-display";
import { quantStateOfAnalysis, quantStateOfConversion } from "./quant-state-display";
import type { CalibrationData } from "../engine/data/feeds";
import { Model } from "../engine/onnx/model";
import { KernelEnv } from "./protocol";
import { calibrate as calibrateModel, convert as convertModel, prepare as prepareModel, quantizeDynamic as quantizeDynamicFile, type CollectOptions, type DynamicFileOptions, type PrepareOptions, type PreparedModel, type QConfig, type QuantizationSummary } from "../engine/quant/index";
import type { ExecutionProvider } from "../engine/runtime/session";
import { decodeUnfusedWeightsNote } from "../engine/quant/unfused-weights";
import { quantizeStatic as quantizeStaticFile } from "../engine/recovery/rounding-choice";
import type { StaticFileOptions } from "../engine/quant/index";
import { lowBitModelCalibrated as lowBitCalibrated, lowBitProgress, quantizeLowBit as quantizeLowBitFile, type LearnedRoundingOption, type LowBitCollectOptions, type LowBitOptions, type LowBitReport } from "../engine/lowbit/index";
import { cellSignal } from "./cell-signal";

export { display, richDisplay, Mime, toBundle } from "./display";
export type { Display, DisplayHandle, ProgressHandle, TableData, TableRow, PlotlyFigure } from "./display";
export type { MimeBundle, ModelSummary, TensorQuantState } from "./protocol";

export { Model } from "../engine/onnx/model";
export { release, decodeUnfusedWeights } from "../engine/quant/index";
export type { PreparedModel, PrepareOptions, QConfig, QuantizationSummary } from "../engine/quant/index";
export type { BenchmarkOptions, BenchmarkResult, BenchmarkModels } from "../engine/analysis/benchmark";
export { readNpyTensor as readNpy, loadData } from "../engine/analysis/dataset";
export { openData, readNpyFolder, readNpz } from "../engine/data/readers";
export type { AnalysisResult, AnalyzeOptions } from "../engine/analysis/analyze";
export { rankSensitivity } from "../engine/analysis/sensitivity";
export type { AccuracyTarget, MixedPrecisionResult, SensitivityRanking } from "../engine/analysis/sensitivity";
export { lowBitModel, lowBitProgress } from "../engine/lowbit/index";
export { correctBias, equalizeCrossLayer, refineRounding, smoothQuant } from "../engine/recovery/index";
export type { BiasCorrectionReport, CleReport, RoundingReport, SmoothQuantReport } from "../engine/recovery/index";
export type { LowBitCollectOptions, LowBitOptions, LowBitReport } from "../engine/lowbit/index";

/**
 * A long call's options as a cell runs it: unless the cell passes its own, `onProgress` shows one progress output per
 * phase (the calibration batches, each measurement, protection, learned rounding) with its ETA, and `signal` is the
 * cell's, so interrupting the cell stops the work at its next step (kernel/cell-signal).
 */
async function withCellProgress<T, O extends Pick<CollectOptions, "onProgress" | "signal">>(options: O, run: (o: O) => Promise<T>): Promise<T> {
  const signal = options.signal ?? cellSignal();
  if (options.onProgress) return run({ ...options, signal });
  const phases = display.phases();
  const result = await run({ ...options, signal, onProgress: phases.onProgress });
  phases.finish();
  return result;
}

/** Calibrates (see engine/quant) and shows the activation histograms, with their clipping ranges, in the
 *  Histograms view. Progress and interrupt: withCellProgress. */
export async function calibrate(prepared: PreparedModel, data: CalibrationData, options: CollectOptions = {}): Promise<void> {
  await withCellProgress(options, (o) => calibrateModel(prepared, data, o));
  if (prepared.histograms.size) display.histograms({ source: prepared.source ?? "", histograms: histogramDisplays(prepared) });
}

/** A notebook's quantized model: the Model, with what was done to it as `summary` (not enumerable). */
export type QuantizedModel = Model & { readonly summary: QuantizationSummary };

/** Converts (see engine/quant; the PreparedModel is not changed) and shows what was quantized, how, and what stayed
 *  float and why in the Quantization State view (analyze() adds each tensor's SQNR). The summary rides on the model:
 *  `const int8 = await convert(prepared); int8.summary.quantized`. */
export async function convert(prepared: PreparedModel): Promise<QuantizedModel> {
  const { model, summary } = await convertModel(prepared);
  // The model a cell times and saves is the file `ptq quantize` writes: Convs onnxruntime runs in float read their
  // int8 weights through Cast/Mul it folds at load (correctBias, refineRounding and analyze read that form too).
  const decoded = prepared.config.format === "qoperator" ? undefined : decodeUnfusedWeightsNote(model);
  if (decoded) summary.warnings.push(decoded);
  display.quantState({ source: prepared.source ?? "", tensors: quantStateOfConversion(prepared, summary) });
  return Object.defineProperty(model, "summary", { value: summary }) as QuantizedModel;
}

/**
 * Static INT8 from file to file (engine/recovery/rounding-choice's quantizeStatic): calibrate, convert, round, check
 * the outputs, write atomically. Each phase shows as a progress output with its ETA; interrupting the cell stops it.
 */
export function quantizeStatic(input: string | Model, output: string, data: CalibrationData, config: QConfig = {}, options: StaticFileOptions = {}): Promise<QuantizationSummary> {
  return withCellProgress(options, (o) => quantizeStaticFile(input, output, data, config, { ep: defaultExecutionProvider(), ...o }));
}

/**
 * Dynamic INT8 from file to file (engine/quant's quantizeDynamic). With `{ data }`, protection and the output check
 * show their progress and interrupting the cell stops them; without data nothing is measured.
 */
export function quantizeDynamic(input: string, output: string, config: QConfig = {}, options: DynamicFileOptions = {}): Promise<QuantizationSummary> {
  if (!options.data) return quantizeDynamicFile(input, output, config, options);
  return withCellProgress(options, (o) => quantizeDynamicFile(input, output, config, { ep: defaultExecutionProvider(), ...o }));
}

/** lowBitModelCalibrated's options as a cell runs it: the notebook's progress outputs and the cell's signal (withCellProgress). */
function withLowBitProgress<T>(options: LearnedRoundingOption, collect: LowBitCollectOptions, run: (c: LowBitCollectOptions) => Promise<T>): Promise<T> {
  const own = collect.onProgress || collect.onRankProgress || collect.onRoundingProgress;
  if (own) return run({ ...collect, signal: collect.signal ?? cellSignal() });
  return withCellProgress<T, CollectOptions>({ signal: collect.signal }, (o) => run({ ...lowBitProgress(options, o.onProgress, o.signal), ...(collect.threads && { threads: collect.threads }) }));
}

/** Low-bit weights with calibration data (engine/lowbit): protection and learned rounding show their progress; interrupting the cell stops them. */
export function lowBitModelCalibrated(model: Model, options: LowBitOptions & LearnedRoundingOption, data: CalibrationData, collect: LowBitCollectOptions = {}): ReturnType<typeof lowBitCalibrated> {
  return withLowBitProgress(options, collect, (c) => lowBitCalibrated(model, options, data, c));
}

/** Low-bit weights from file to file (engine/lowbit's quantizeLowBit); with data, as lowBitModelCalibrated. */
export function quantizeLowBit(input: string, output: string, options: LowBitOptions & LearnedRoundingOption, data?: CalibrationData, collect: LowBitCollectOptions = {}): Promise<LowBitReport> {
  if (!data) return quantizeLowBitFile(input, output, options);
  return withLowBitProgress(options, collect, (c) => quantizeLowBitFile(input, output, options, data, c));
}

/** Compares the float model with its quantized twin (see engine/analysis/analyze) and shows each tensor's SQNR in
 *  the Quantization State view. */
export async function analyze(subject: PreparedModel | { float: Model; quantized: Model }, data: CalibrationData, options?: AnalyzeOptions): Promise<AnalysisResult> {
  const result = await analyzeModels(subject, data, options);
  const prepared = "config" in subject ? subject : undefined;
  const source = (prepared ? prepared.source : (subject as { float: Model }).float.path) ?? "";
  display.quantState({ source, tensors: quantStateOfAnalysis(result.json, prepared, result.summary), warnBelowDb: result.json.warnBelowDb });
  return result;
}

/** What a cell gets from searchMixedPrecision: the engine's result, plus its trade-off as a table and a plot. */
export type NotebookMixedPrecision = MixedPrecisionResult & {
  /** Accuracy vs size vs latency of every configuration measured, as a displayable table (not enumerable). */
  tradeoff(): { toMimeBundle(): Record<string, unknown> };
  /** The same as a plotly figure: metric against size, one point per configuration (not enumerable). */
  plot(): { data: unknown[]; layout: unknown };
};

/** The mixed-precision search (see engine/analysis/sensitivity); the methods stay out of JSON and of copies. */
export async function searchMixedPrecision(...args: Parameters<typeof searchMixedPrecisionModels>): Promise<NotebookMixedPrecision> {
  const [prepared, data, target, options = {}] = args;
  // One progress output for the whole search (its count and ETA run across the ranking and the search steps).
  const progress = options.onProgress ? undefined : display.phases();
  const result = await searchMixedPrecisionModels(prepared, data, target, {
    ...options,
    signal: options.signal ?? cellSignal(),
    ...(progress && { onProgress: (done: number, total: number, p: { etaSeconds: number }) => progress.onProgress(done, total, { phase: "mixed-precision search", unit: "measurements", etaSeconds: p.etaSeconds }) }),
  });
  progress?.finish();
  return Object.defineProperties(result, {
    tradeoff: { value: () => ({ toMimeBundle: () => tradeoffMimeBundle(result) }) },
    plot: { value: () => tradeoffPlot(result) },
  }) as NotebookMixedPrecision;
}

/** Loads an ONNX model (external data beside it included) and shows it in the Model Layers view. */
export async function loadModel(file: string): Promise<Model> {
  const model = await Model.load(file);
  display.model(modelSummary(model));
  return model;
}

/** The notebook's execution provider (setting ptq.kernel.executionProvider); a call's own `ep` option wins. */
export function defaultExecutionProvider(): ExecutionProvider {
  return process.env[KernelEnv.executionProvider] === "cuda" ? "cuda" : "cpu";
}

/** prepare() with the notebook's execution provider for calibration runs. */
export function prepare(model: Model, config: QConfig = {}, options: PrepareOptions = {}): Promise<PreparedModel> {
  return prepareModel(model, config, { ep: defaultExecutionProvider(), ...options });
}

/** benchmark() with the notebook's execution provider. */
export function benchmark(models: BenchmarkModels, options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  return benchmarkModels(models, { ep: defaultExecutionProvider(), ...options });
}

/** evaluate() with the notebook's execution provider. */
export function evaluate(...args: Parameters<typeof evaluateModels>): ReturnType<typeof evaluateModels> {
  const [models, data, metric, options] = args;
  return evaluateModels(models, data, metric, { ep: defaultExecutionProvider(), ...options });
}
