// The quantization report page: FP32 vs quantized size, latency (p50/p90/p99: the benchmark's percentiles),
// throughput, the metric and its drop, and a per-layer SQNR chart when the quantizer reported one. Pure; every
// model-derived string escaped.
import type { BenchmarkDisplay, SqnrDisplay } from "../../kernel/display-types";
import { benchmarkTable, formatBytes, formatMs, tableHtml } from "../../media/renderer/render";
import { describeOutput } from "../../engine/lowbit/describe";
import type { OutputReport } from "../../engine/lowbit/protect";
import { describeOutputCheck, type OutputCheck } from "../../engine/quant/output-check-text";
import { escapeHtml as h } from "../webview/html";

/** The fields of `ptq report --json` (engine/analysis/report.ts ReportJson) this page shows. */
export interface ReportSubset {
  reference: string;
  candidate: string;
  evaluation: { metric: string; samples: number; models: Array<{ name: string; score: { estimate: number } }> };
  benchmark: BenchmarkDisplay;
  drop: number;
  dropUnit: string;
  speedup: number;
  speedupTrustworthy: boolean;
  notes: string[];
}

/** The fields of `ptq quantize --json` (the engine's QuantizationSummary, or a low-bit run's) the notes come from. */
export interface QuantizeSummarySubset {
  sqnr?: SqnrDisplay;
  warnings?: string[];
  /** A low-bit run's notes ... */
  notes?: string[];
  /** ... and, with calibration data, its outputs against the float model's and what protection did. */
  output?: OutputReport;
  weights?: { type: string; targetCpu: string; reduceRange?: boolean; why?: string };
  protectedLayers?: { nodes: string[]; why: string };
  wideActivations?: { why: string };
  /** QConfig.rounding "auto": the rounding written and why. */
  rounding?: { why: string };
  /** A static file's outputs against the float model on the calibration rows (engine/quant/output-check). */
  outputCheck?: OutputCheck;
}

/**
 * What the quantizer said about the file, as `ptq quantize` prints it after "wrote …": the weight type for the
 * target CPU, the layers kept float or widened by measurement, and its notes (opset upgraded, denormal weights set
 * to 0, a sequence model's readings …).
 */
export function quantizerNotes(s: QuantizeSummarySubset | undefined): string[] {
  if (!s) return [];
  const notes: string[] = [];
  if (s.weights) notes.push(`weights ${s.weights.type}${s.weights.reduceRange ? " (7 bits)" : ""} for target CPU "${s.weights.targetCpu}"${s.weights.why ? `: ${s.weights.why}` : ""}`);
  if (s.protectedLayers?.nodes.length) notes.push(s.protectedLayers.why);
  if (s.wideActivations) notes.push(`16-bit activations: ${s.wideActivations.why}`);
  if (s.rounding) notes.push(s.rounding.why);
  if (s.output) notes.push(describeOutput(s.output));
  if (s.outputCheck) notes.push(describeOutputCheck(s.outputCheck));
  return [...notes, ...(s.warnings ?? []), ...(s.notes ?? [])];
}

export interface QuantizeReportView {
  input: string;
  output: string;
  scheme: string;
  inputBytes: number;
  outputBytes: number;
  seconds: number;
  report?: ReportSubset;
  /** Why there are no measurements (the report command failed or was cancelled). */
  reportError?: string;
  sqnr?: SqnrDisplay;
  /** Warnings from the wizard, e.g. calibration on random data. */
  warnings: string[];
  /** What the quantizer noted (quantizerNotes of its summary). */
  notes?: string[];
  /** What the measurements were made on (held-out samples), or why they are on the calibration samples. */
  dataNote?: string;
  /** The command that runs the same config again from a terminal. */
  reproduce?: string;
}

const base = (p: string) => p.split(/[\\/]/).pop() ?? p;

export function reportBody(v: QuantizeReportView): string {
  const ratio = v.inputBytes > 0 ? v.outputBytes / v.inputBytes : NaN;
  const rows: string[] = [
    `<tr><th></th><th>FP32 (${h(base(v.input))})</th><th>quantized (${h(base(v.output))})</th><th></th></tr>`,
    `<tr><td>file size</td><td class="num">${formatBytes(v.inputBytes)}</td><td class="num">${formatBytes(v.outputBytes)}</td><td class="num">${ratio.toFixed(2)}× (${(1 / ratio).toFixed(1)}× smaller)</td></tr>`,
  ];
  const r = v.report;
  if (r) {
    const [b0, b1] = r.benchmark.models.map((m) => m.batches[0]);
    if (b0 && b1) {
      for (const p of ["p50", "p90", "p99"] as const) {
        rows.push(`<tr><td>latency ${p} (batch ${b0.batch})</td><td class="num">${formatMs(b0.latencyMs[p])}</td><td class="num">${formatMs(b1.latencyMs[p])}</td><td></td></tr>`);
      }
      rows.push(`<tr><td>throughput</td><td class="num">${b0.throughput.toFixed(1)}/s</td><td class="num">${b1.throughput.toFixed(1)}/s</td><td class="num">${r.speedup.toFixed(2)}× ${r.speedupTrustworthy ? "" : '<span class="muted">(noisy)</span>'}</td></tr>`);
    }
    const [e0, e1] = r.evaluation.models;
    if (e0 && e1) {
      rows.push(`<tr><td>${h(r.evaluation.metric)} (${r.evaluation.samples} samples)</td><td class="num">${e0.score.estimate.toFixed(4)}</td><td class="num">${e1.score.estimate.toFixed(4)}</td><td class="num ${r.drop > 1 ? "warn" : ""}">${r.drop.toFixed(2)} ${h(r.dropUnit)}</td></tr>`);
    }
  }
  const warnings = v.warnings.map((w) => `<p class="warn">${h(w)}</p>`).join("");
  const measured = r
    ? `${v.dataNote ? `<p id="data-note">${h(v.dataNote)}</p>` : ""}${tableHtml(benchmarkTable(r.benchmark))}${r.notes.map((n) => `<p class="muted">${h(n)}</p>`).join("")}`
    : `<p class="muted">Not measured: ${h(v.reportError ?? "no report")}.</p>`;
  return `<h1>Quantized ${h(base(v.input))} → ${h(base(v.output))}</h1>
<p class="muted">${h(v.scheme)} · took ${v.seconds.toFixed(1)} s · written to <code>${h(v.output)}</code></p>
${warnings}
${v.notes?.length ? `<ul id="quantizer-notes" class="muted">${v.notes.map((n) => `<li>${h(n)}</li>`).join("")}</ul>` : ""}
<div><button data-command="ptq.openReportInNotebook">Open in notebook</button><button class="secondary" data-command="ptq.openQuantized">Open quantized model</button></div>
<table id="summary">${rows.join("")}</table>
${measured}
${v.reproduce ? `<p class="muted" id="reproduce">From a terminal: <code>${h(v.reproduce)}</code></p>` : ""}
${v.sqnr ? `<h2>SQNR per layer</h2><div id="sqnr" class="ptq-plot"></div>` : ""}`;
}
