// How an evaluation reads: a text table, an HTML table and a plotly bar chart with confidence-interval whiskers.

import type { EvaluationJson } from "../../engine/analysis/evaluate";
import { escapeHtml, renderTable } from "../../engine/analysis/format";
import { MIME, type AccuracyDisplay } from "../display-types";

/** Our own full JSON; the renderer draws the accuracy view below. */
export const EVALUATION_MIME = "application/vnd.ptq.evaluation+json";

/** Proportion-like metrics print as percentages and differences as percentage points. */
export function isRateMetric(metric: string): boolean {
  return /^top\d+$|^agreement$|^f1$|^cer$|^wer$/.test(metric);
}

function isRate(j: EvaluationJson): boolean {
  return isRateMetric(j.metric);
}

function fmt(j: EvaluationJson, x: number): string {
  // Six significant digits: cosine similarities of a good quantization all start with 0.999.
  return isRate(j) ? `${(x * 100).toFixed(2)}%` : x.toPrecision(6);
}

function fmtDiff(j: EvaluationJson, x: number): string {
  const s = x >= 0 ? "+" : "";
  return isRate(j) ? `${s}${(x * 100).toFixed(2)} pp` : `${s}${x.toPrecision(3)}`;
}

function rows(j: EvaluationJson): string[][] {
  return j.models.map((m) => [
    m.name,
    fmt(j, m.score.estimate),
    `[${fmt(j, m.score.lo)}, ${fmt(j, m.score.hi)}]`,
    m.vsFirst ? `${fmtDiff(j, m.vsFirst.diff.estimate)} [${fmtDiff(j, m.vsFirst.diff.lo)}, ${fmtDiff(j, m.vsFirst.diff.hi)}]` : "—",
    m.vsFirst?.pValue !== undefined ? m.vsFirst.pValue.toPrecision(2) : "—",
  ]);
}

function header(j: EvaluationJson): string[] {
  const pct = Math.round((j.models[0]?.score.level ?? 0.95) * 100);
  return ["model", j.metric, `${pct}% CI`, `Δ vs first (paired ${pct}% CI)`, "McNemar p"];
}

function caption(j: EvaluationJson): string {
  const dir = j.higherIsBetter ? "higher is better" : "lower is better";
  return `${j.metric} on ${j.samples} samples against ${j.reference} (${dir}).`;
}

export function evaluationText(j: EvaluationJson): string {
  return [renderTable(header(j), rows(j)), "", caption(j), ...j.notes.map((n) => `! ${n}`)].join("\n");
}

export function evaluationHtml(j: EvaluationJson): string {
  const head = header(j).map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = rows(j)
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`)
    .join("");
  const notes = j.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table><p>${escapeHtml(caption(j))}</p>${notes ? `<ul>${notes}</ul>` : ""}`;
}

export function evaluationPlot(j: EvaluationJson): { data: unknown[]; layout: unknown } {
  return {
    data: [
      {
        type: "bar",
        x: j.models.map((m) => m.name),
        y: j.models.map((m) => m.score.estimate),
        error_y: { type: "data", symmetric: false, array: j.models.map((m) => m.score.hi - m.score.estimate), arrayminus: j.models.map((m) => m.score.estimate - m.score.lo) },
      },
    ],
    layout: { title: { text: caption(j) }, yaxis: { title: { text: j.metric } } },
  };
}

/** The renderer's accuracy table: only for fractions where higher is better (accuracy, agreement, F1). */
function accuracyDisplay(j: EvaluationJson): AccuracyDisplay | undefined {
  if (!isRate(j) || !j.higherIsBetter) return undefined;
  return { kind: "ptq.accuracy", metrics: [j.metric], rows: j.models.map((m) => ({ model: m.name, values: [m.score.estimate], samples: j.samples })), baseline: 0 };
}

/** Renderer types first (VS Code shows the first it can render), our full JSON last for scripts and saved files. */
export function evaluationMimeBundle(j: EvaluationJson): Record<string, unknown> {
  const acc = accuracyDisplay(j);
  return {
    ...(acc ? { [MIME.accuracy]: acc } : {}),
    [MIME.plotly]: evaluationPlot(j),
    "text/html": evaluationHtml(j),
    "text/plain": evaluationText(j),
    [EVALUATION_MIME]: j,
  };
}
