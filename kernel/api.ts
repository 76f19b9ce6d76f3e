// What `import { … } from "ptq"` gives a notebook cell. Typings for it are generated from this file at build time
// (scripts/build-ptq-types.mjs → out/ptq). Adding an engine API to notebooks is one export line here.
import { display } from "./display";
import { Model } from "./onnx/model";
import { modelSummary } from "./model-summary";

export { display, richDisplay, Mime, toBundle } from "./display";
export type { Display, DisplayHandle, ProgressHandle, TableData, TableRow, PlotlyFigure } from "./display";
export type { MimeBundle, ModelSummary, TensorQuantState } from "./protocol";

export { Model } from "./onnx/model";
export { prepare, calibrate, convert, release, quantizeStatic, quantizeDynamic } from "./quant/index";
export type { PreparedModel, PrepareOptions, QConfig, QuantizationSummary } from "./quant/index";
export { benchmark } from "./analysis/benchmark";
export type { BenchmarkOptions, BenchmarkResult, BenchmarkModels } from "./analysis/benchmark";
export { evaluate } from "./analysis/evaluate";
export { readNpyTensor as readNpy } from "./analysis/dataset";
export { openData, readNpyFolder, readNpz } from "./data/readers";
export { analyze } from "./analysis/analyze";
export type { AnalysisResult, AnalyzeOptions } from "./analysis/analyze";
export { rankSensitivity, searchMixedPrecision } from "./analysis/sensitivity";
export type { AccuracyTarget, MixedPrecisionResult, SensitivityRanking } from "./analysis/sensitivity";
export { lowBitModel, quantizeLowBit } from "./lowbit/index";
export type { LowBitOptions, LowBitReport } from "./lowbit/index";

/** Loads an ONNX model (external data beside it included) and shows it in the Model Layers view. */
export async function loadModel(file: string): Promise<Model> {
  const model = await Model.load(file);
  display.model(modelSummary(model));
  return model;
}
