// The engine as a library, with no VS Code, kernel or CLI attached:
//   const { quantizeStatic, openData, Model } = require("ptq-studio/engine");
// Model I/O, running a model (createSession: the one way; Tensor and Feeds are what it takes and gives), INT8 (static
// and dynamic), low-bit weights, accuracy recovery, and the analysis tools. Results are plain data; the notebook
// kernel (kernel/) and the CLI (cli/) render them.
export * from "./onnx/index";
export { createSession, type ExecutionProvider, type IOInfo, type Session, type SessionOptions, type SessionSource } from "./runtime/session";
export type { OutputTensor } from "./runtime/tensors";
export * from "./data/index";
export * from "./quant/index";
export * from "./lowbit/index";
export * from "./recovery/index";
// Shadows engine/quant's quantizeStatic (export * above): this one also applies QConfig.rounding "auto".
export { quantizeStatic } from "./recovery/rounding-choice";
export { analyze, AnalysisResult, type AnalysisJson, type AnalyzeOptions } from "./analysis/analyze";
export { benchmark, BenchmarkResult, type BenchmarkModels, type BenchmarkOptions } from "./analysis/benchmark";
export { evaluate, EvaluationResult, type EvaluationJson } from "./analysis/evaluate";
export { loadData } from "./analysis/dataset";
export { rankSensitivity, searchMixedPrecision, type AccuracyTarget, type MixedPrecisionResult, type SensitivityRanking } from "./analysis/sensitivity";
