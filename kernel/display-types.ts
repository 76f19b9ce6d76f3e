// The JSON shapes our notebook renderer (media/renderer) draws, one MIME type each. The kernel side (analysis,
// calibrate) emits them in a cell's display bundle; the renderer reads only the fields named here, so producers may
// carry more. Types only: both the kernel and the browser bundle import this file. See docs/renderer.md.

export const MIME = {
  /** engine/analysis/benchmark.ts BenchmarkResult.toJSON(). */
  benchmark: "application/vnd.ptq.benchmark+json",
  /** FP32 vs quantized accuracy / agreement table. */
  accuracy: "application/vnd.ptq.accuracy+json",
  /** One activation's calibration histogram with its float range and chosen clipping range. */
  histogram: "application/vnd.ptq.histogram+json",
  /** Per-layer SQNR (dB), e.g. from a sensitivity analysis. */
  sqnr: "application/vnd.ptq.sqnr+json",
  /** A table from `display.table` (or a value shown as one): sortable columns. */
  table: "application/vnd.ptq.table+json",
  /** Plotly figures: { data, layout?, config? }. */
  plotly: "application/vnd.plotly.v1+json",
} as const;

export type PtqMime = (typeof MIME)[keyof typeof MIME];

/** kernel/display.ts `tableBundle`: column names and rows of JSON scalars (null for a missing value). */
export interface TableDisplay {
  columns: string[];
  rows: Array<Array<string | number | boolean | null>>;
  title?: string;
}

/** The subset of engine/analysis BenchmarkResult.toJSON() the renderer reads. */
export interface BenchmarkDisplay {
  kind: "ptq.benchmark";
  models: Array<{
    name: string;
    fileBytes: number;
    sizeRatio?: number;
    batches: Array<{
      batch: number;
      latencyMs: { p50: number; p90: number; p99: number };
      throughput: number;
      /** Against the first model: speed-up = first's median / this one's; absent on the first model. */
      vsFirst?: { speedup: number; verdict: { trustworthy: boolean; reason: string } };
    }>;
  }>;
  notes?: string[];
}

/** Accuracy of a reference model and its quantized variants on the same samples. */
export interface AccuracyDisplay {
  kind: "ptq.accuracy";
  /** Metric names, e.g. "top-1", "agreement", "F1"; each row has one value per metric (fraction 0..1). */
  metrics: string[];
  rows: Array<{ model: string; values: number[]; samples?: number }>;
  /** Row index everything is compared to; default 0. */
  baseline?: number;
  /** Drops larger than this (fraction, e.g. 0.01 = one point) are highlighted; default 0.01. */
  dropThreshold?: number;
}

export interface HistogramDisplay {
  kind: "ptq.histogram";
  tensor: string;
  /** Bin edges (counts.length + 1 values) and counts. */
  edges: number[];
  counts: number[];
  /** Observed float range. */
  floatRange: [number, number];
  /** The calibrated clipping range (what scale/zero point were computed from). */
  clipRange?: [number, number];
  method?: string;
  logScale?: boolean;
}

export interface SqnrDisplay {
  kind: "ptq.sqnr";
  /** One entry per layer or tensor, in graph order. */
  layers: Array<{ name: string; sqnrDb: number; op?: string }>;
  /** Layers below this many dB are highlighted; default 20. */
  warnBelowDb?: number;
}

/** One tensor's quantization state, as the Quantization State view shows it. The kernel sends these after
 * calibrate/convert (with method, reason and SQNR); src/views also derives them from a QDQ model file. */
export interface QuantStateEntry {
  node: string;
  op: string;
  tensor: string;
  role: "input" | "weight" | "bias" | "output";
  quantized: boolean;
  /** Why a tensor stayed float: "excluded", "unsupported op", "chosen by the search", "no Q/DQ in the model". */
  reason?: string;
  /** Quantized element type, e.g. "int8", "uint8", "int4", "float8e4m3fn". */
  type?: string;
  granularity?: "per-tensor" | "per-channel" | "blocked";
  /** Scales: one value per-tensor; min/max over channels or blocks otherwise. */
  scale?: { min: number; max: number; count: number };
  zeroPoint?: { min: number; max: number };
  /** The float range the quantized grid covers (per-tensor only). */
  range?: [number, number];
  /** Calibration method, e.g. "minmax", "entropy", "percentile 99.99". */
  method?: string;
  sqnrDb?: number;
}

export interface PlotlyFigure {
  data: unknown[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}
