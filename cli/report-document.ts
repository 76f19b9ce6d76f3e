// The FP32-vs-quantized report behind `ptq report` and the demo: one evaluation, one benchmark, and the checks a
// CI pipeline sets (largest tolerated metric drop, smallest acceptable speed-up). Text, JSON and a standalone HTML
// page all come from the same object.

import path from "node:path";
import type { BenchmarkResult } from "../engine/analysis/benchmark";
import { benchmarkHtml, benchmarkText } from "../kernel/views/benchmark-view";
import type { EvaluationJson } from "../engine/analysis/evaluate";
import { evaluationHtml, evaluationText, isRateMetric } from "../kernel/views/evaluate-view";
import { escapeHtml } from "../engine/analysis/format";

type BenchJson = ReturnType<BenchmarkResult["toJSON"]>;

export interface ReportCheck {
  name: "max-drop" | "min-speedup";
  limit: number;
  value: number;
  passed: boolean;
  /** What the value means, e.g. "percentage points of top1 lost". */
  unit: string;
}

export interface ReportJson {
  kind: "ptq.report";
  version: 1;
  reference: string;
  candidate: string;
  evaluation: EvaluationJson;
  benchmark: BenchJson;
  /** candidate's metric loss against the reference: positive is worse (pp for accuracy-like metrics). */
  drop: number;
  dropUnit: string;
  /** median-latency speed-up of the candidate at the first batch size; trustworthy false when too noisy. */
  speedup: number;
  speedupTrustworthy: boolean;
  checks: ReportCheck[];
  passed: boolean;
  notes: string[];
}

export function buildReport(evaluation: EvaluationJson, bench: BenchJson, limits: { maxDrop?: number; minSpeedup?: number }, notes: string[] = []): ReportJson {
  const [ref, cand] = evaluation.models;
  const candBench = bench.models[1]?.batches[0];
  if (!ref || !cand || !candBench?.vsFirst) throw new Error("a report needs exactly two models, each evaluated and benchmarked");
  const rate = isRateMetric(evaluation.metric);
  const scale = rate ? 100 : 1;
  const drop = (evaluation.higherIsBetter ? ref.score.estimate - cand.score.estimate : cand.score.estimate - ref.score.estimate) * scale;
  const dropUnit = rate ? `percentage points of ${evaluation.metric} lost` : `${evaluation.metric} lost (metric units)`;
  const checks: ReportCheck[] = [];
  if (limits.maxDrop !== undefined) checks.push({ name: "max-drop", limit: limits.maxDrop, value: drop, passed: drop <= limits.maxDrop, unit: dropUnit });
  const speedup = candBench.vsFirst.speedup;
  if (limits.minSpeedup !== undefined) checks.push({ name: "min-speedup", limit: limits.minSpeedup, value: speedup, passed: speedup >= limits.minSpeedup, unit: "× median latency" });
  return {
    kind: "ptq.report",
    version: 1,
    reference: ref.name,
    candidate: cand.name,
    evaluation,
    benchmark: bench,
    drop,
    dropUnit,
    speedup,
    speedupTrustworthy: candBench.vsFirst.verdict.trustworthy,
    checks,
    passed: checks.every((c) => c.passed),
    notes,
  };
}

function checkLine(c: ReportCheck): string {
  const op = c.name === "max-drop" ? "≤" : "≥";
  return `${c.passed ? "PASS" : "FAIL"} ${c.name}: ${c.value.toFixed(3)} ${op} ${c.limit} (${c.unit})`;
}

export function reportText(r: ReportJson): string {
  return [
    `Reference: ${r.reference}`,
    `Candidate: ${r.candidate}`,
    "",
    evaluationText(r.evaluation),
    "",
    benchmarkText(r.benchmark),
    "",
    ...r.notes.map((n) => `! ${n}`),
    ...r.checks.map(checkLine),
    r.checks.length ? (r.passed ? "All checks passed." : "Some checks FAILED.") : "",
  ]
    .join("\n")
    .trimEnd();
}

export function reportHtml(r: ReportJson): string {
  const checks = r.checks.map((c) => `<li class="${c.passed ? "pass" : "fail"}">${escapeHtml(checkLine(c))}</li>`).join("");
  const notes = r.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>PTQ report: ${escapeHtml(path.basename(r.candidate))}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child{text-align:left}.pass{color:#080}.fail{color:#b00;font-weight:bold}</style>
</head><body>
<h1>PTQ report</h1>
<p>Reference <code>${escapeHtml(r.reference)}</code>, candidate <code>${escapeHtml(r.candidate)}</code>.</p>
<h2>Accuracy</h2>${evaluationHtml(r.evaluation)}
<h2>Speed and size</h2>${benchmarkHtml(r.benchmark)}
${notes ? `<h2>Notes</h2><ul>${notes}</ul>` : ""}${checks ? `<h2>Checks</h2><ul>${checks}</ul>` : ""}
<script type="application/json" id="ptq-report">${JSON.stringify(r).replace(/</g, "\\u003c")}</script>
</body></html>
`;
}
