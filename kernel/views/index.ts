// Engine results as the notebook shows them: each result kind has its view here, and the kernel's display turns a
// cell's value into a MIME bundle through resultBundle(). The engine returns plain data and knows no MIME type.
import { AnalysisResult } from "../../engine/analysis/analyze";
import { BenchmarkResult } from "../../engine/analysis/benchmark";
import { EvaluationResult } from "../../engine/analysis/evaluate";
import type { MixedPrecisionResult } from "../../engine/analysis/sensitivity";
import { Model } from "../../engine/onnx/model";
import { formatSummary, summarize } from "../../engine/onnx/summary";
import { analysisMimeBundle } from "./analysis-view";
import { benchmarkMimeBundle } from "./benchmark-view";
import { evaluationMimeBundle } from "./evaluate-view";
import { searchMimeBundle } from "./mixed-report";

const isMixedPrecision = (v: object): v is MixedPrecisionResult => (v as { kind?: unknown }).kind === "ptq.mixed-precision";

/** The rich form of an engine result (or a Model: its summary, never a protobuf dump); undefined for other values. */
export function resultBundle(value: unknown): Record<string, unknown> | undefined {
  if (value === null || typeof value !== "object") return undefined;
  if (value instanceof Model) return { "text/plain": formatSummary(summarize(value)) };
  if (value instanceof BenchmarkResult) return benchmarkMimeBundle(value.toJSON());
  if (value instanceof EvaluationResult) return evaluationMimeBundle(value.toJSON());
  if (value instanceof AnalysisResult) return analysisMimeBundle(value);
  if (isMixedPrecision(value)) return searchMimeBundle(value);
  return undefined;
}
