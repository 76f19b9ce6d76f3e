// analyze()'s result as the notebook shows it: a table of every tensor's error, worst first (text and HTML), the
// SQNR-per-layer bars for our renderer and plotly. The engine returns the numbers (engine/analysis/analyze.ts).
import type { AnalysisResult } from "../../engine/analysis/analyze";
import { escapeHtml, renderTable } from "../../engine/analysis/format";
import type { TensorError } from "../../engine/analysis/quant-error";
import { MIME, type SqnrDisplay } from "../display-types";

const fmtDb = (db: number) => (db === Infinity ? "exact" : `${db.toFixed(2)} dB`);
/** JSON and the bar chart have no ±Infinity: an exact tensor draws at 200 dB. */
const clampDb = (db: number) => (Number.isFinite(db) ? db : db > 0 ? 200 : -50);
const COLUMNS = ["kind", "tensor", "op", "SQNR", "cosine", "max |err|"];
const cells = (e: TensorError) => [e.kind, e.tensor, e.opType, fmtDb(e.sqnrDb), e.cosine.toFixed(5), e.maxAbs.toPrecision(3)];

export function analysisText(r: AnalysisResult): string {
  let text = renderTable(COLUMNS, r.worst().map(cells));
  const s = r.json.sensitivity;
  if (s) {
    text += `\n\nSensitivity (output SQNR ${fmtDb(s.baselineDb)} fully quantized; gain when the node alone stays float):\n`;
    text += renderTable(["node", "op", "output SQNR", "gain"], s.layers.map((l) => [l.node, l.opType, fmtDb(l.outputSqnrDb), `${l.gainDb >= 0 ? "+" : ""}${l.gainDb.toFixed(2)} dB`]));
  }
  return text;
}

export function analysisHtml(r: AnalysisResult): string {
  const warn = r.json.warnBelowDb;
  const row = (e: TensorError) =>
    `<tr${e.sqnrDb < warn ? ' class="ptq-warn" style="color: var(--vscode-errorForeground, #c00)"' : ""}>` +
    cells(e).map((c) => `<td>${escapeHtml(c)}</td>`).join("") +
    "</tr>";
  const head = COLUMNS.map((h) => `<th>${h}</th>`).join("");
  return `<table class="ptq-analysis"><thead><tr>${head}</tr></thead><tbody>${r.worst().map(row).join("")}</tbody></table>`;
}

export function sqnrDisplay(r: AnalysisResult): SqnrDisplay {
  const layers = [...r.json.weights, ...r.json.activations].map((e) => ({ name: `${e.kind === "weight" ? "w" : "a"}: ${e.tensor}`, sqnrDb: clampDb(e.sqnrDb), op: e.opType }));
  return { kind: "ptq.sqnr", layers, warnBelowDb: r.json.warnBelowDb };
}

export function analysisPlot(r: AnalysisResult): { data: unknown[]; layout: unknown } {
  const d = sqnrDisplay(r);
  return {
    data: [{ type: "bar", x: d.layers.map((l) => l.name), y: d.layers.map((l) => l.sqnrDb), marker: { color: d.layers.map((l) => (l.sqnrDb < r.json.warnBelowDb ? "#d62728" : "#1f77b4")) } }],
    layout: { title: { text: "SQNR per tensor (higher is better)" }, yaxis: { title: { text: "dB" } }, xaxis: { automargin: true } },
  };
}

export function analysisMimeBundle(r: AnalysisResult): Record<string, unknown> {
  return { [MIME.sqnr]: sqnrDisplay(r), [MIME.plotly]: analysisPlot(r), "text/html": analysisHtml(r), "text/plain": analysisText(r) };
}
