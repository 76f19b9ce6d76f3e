// The quantization API a notebook cell and the CLI use (PyTorch's shape: prepare → calibrate → convert):
//   const prepared = await prepare(model, config); await calibrate(prepared, data); const int8 = await convert(prepared);
// or one-shot quantizeStatic / quantizeDynamic from file to file.
import type { CalibrationData } from "../data/feeds";
import { Model } from "../onnx/model";
import type { ExecutionProvider } from "../runtime/session";
import { collectRanges, type CollectOptions, type RangeMap } from "./calibration";
import { quantizeDynamicModel } from "./dynamic";
import { preprocess } from "./preprocess";
import { QdqRewriter } from "./qdq";
import { lowerToQOperator } from "./qoperator";
import { annotateGraph } from "./registry";
import { resolveConfig, type QConfig, type QuantizationSummary, type ResolvedQConfig } from "./types";

export * from "./types";
export type { QType, QuantParams } from "./math";

export interface PrepareOptions {
  /** Run onnxruntime's 'basic' graph optimizer first (fold BatchNorm into Conv, constant-fold shapes). Default true. */
  optimize?: boolean;
  /** Execution provider for calibration runs. Default "cpu". */
  ep?: ExecutionProvider;
}

/** A float model ready for calibration: what will be quantized, what must be observed, and what was observed. */
export interface PreparedModel {
  /** The preprocessed float model (not the caller's: that is never modified). */
  readonly model: Model;
  readonly config: ResolvedQConfig;
  /** Activations calibration observes. */
  readonly observe: readonly string[];
  /** Calibrated [min, max] per observed tensor; grows with every calibrate() call. */
  readonly ranges: RangeMap;
  /** Samples seen so far (first axis of the first input, summed over batches). */
  samples: number;
  /** NaN/Inf values seen per tensor during calibration (skipped, not used in ranges). */
  readonly nonFinite: Map<string, number>;
  /** Filled by convert(). */
  summary: QuantizationSummary | undefined;
  readonly ep: ExecutionProvider;
}

export async function prepare(model: Model, config: QConfig = {}, options: PrepareOptions = {}): Promise<PreparedModel> {
  const resolved = resolveConfig(config);
  const pre = await preprocess(model, options.optimize ?? true);
  const marks = annotateGraph(pre.graph, resolved);
  const inits = new Set(pre.graph.initializer.map((t) => t.name));
  return {
    model: pre,
    config: resolved,
    observe: marks.observed((n) => inits.has(n)),
    ranges: new Map(),
    samples: 0,
    nonFinite: new Map(),
    summary: undefined,
    ep: options.ep ?? "cpu",
  };
}

/** Runs calibration data through the model and widens the observed ranges; call again to add more data. */
export async function calibrate(prepared: PreparedModel, data: CalibrationData, options: CollectOptions = {}): Promise<void> {
  if (prepared.config.calibration.method !== "minmax")
    throw new Error(`calibration method "${prepared.config.calibration.method}" needs kernel/calibrate's Calibrator, which is not available yet: use "minmax"`);
  const r = await collectRanges(prepared.model, prepared.observe, data, prepared.ranges, { ...options, ep: prepared.ep });
  prepared.samples += r.samples;
  for (const [k, v] of r.nonFinite) prepared.nonFinite.set(k, (prepared.nonFinite.get(k) ?? 0) + v);
}

/** The quantized model (QDQ, or QOperator when the config asks for it). The summary is left on `prepared.summary`. */
export async function convert(prepared: PreparedModel): Promise<Model> {
  const copy = prepared.model.clone();
  // Annotate the copy again (deterministic) so marks point at the copy's nodes.
  const marks = annotateGraph(copy.graph, prepared.config);
  const rewriter = new QdqRewriter(copy.proto, marks, prepared.ranges, prepared.config);
  rewriter.run();
  const summary = rewriter.summary;
  for (const [t, n] of prepared.nonFinite) summary.warnings.push(`tensor "${t}": ${n} NaN/Inf values during calibration were ignored`);
  let out = Model.fromProto(copy.proto, copy.dir);
  if (prepared.config.format === "qoperator") out = await lowerToQOperator(out);
  prepared.summary = summary;
  return out;
}

export interface QuantizeFileOptions extends PrepareOptions, CollectOptions {
  /** Replace OUTPUT if it exists. Default false. */
  overwrite?: boolean;
}

/** Loads INPUT, calibrates on `data`, writes the static INT8 model to OUTPUT (atomically; never over INPUT). */
export async function quantizeStatic(
  input: string,
  output: string,
  data: CalibrationData,
  config: QConfig = {},
  options: QuantizeFileOptions = {},
): Promise<QuantizationSummary> {
  const model = await Model.load(input);
  const prepared = await prepare(model, config, options);
  await calibrate(prepared, data, options);
  const q = await convert(prepared);
  await q.save(output, { overwrite: options.overwrite ?? false });
  return prepared.summary!;
}

/** Dynamic quantization (weights int8 offline, activations quantized at run time): no calibration data. */
export async function quantizeDynamic(
  input: string,
  output: string,
  config: QConfig = {},
  options: QuantizeFileOptions = {},
): Promise<QuantizationSummary> {
  const model = await Model.load(input);
  const { model: q, summary } = await quantizeDynamicModel(model, resolveConfig(config), options.optimize ?? true);
  await q.save(output, { overwrite: options.overwrite ?? false });
  return summary;
}

export { quantizeDynamicModel };
