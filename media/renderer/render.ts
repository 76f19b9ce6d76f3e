// Pure render functions of the notebook renderer: JSON in, table models / HTML strings / plotly figures out. No DOM
// access here, so node's test runner checks them; index.ts is the only part that touches the page.
import type { AccuracyDisplay, BenchmarkDisplay, HistogramDisplay, PlotlyFigure, SqnrDisplay, TableDisplay } from "../../kernel/display-types";

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** A cell: what it shows, what it sorts by, and a class for highlighting (good/bad/noisy). */
export interface Cell {
  text: string;
  sort: number | string;
  cls?: "good" | "bad" | "noisy" | "base";
  title?: string;
}

export interface TableModel {
  caption: string;
  headers: string[];
  rows: Cell[][];
  notes: string[];
}

const num = (text: string, sort: number, cls?: Cell["cls"], title?: string): Cell => ({ text, sort, cls, title });
const str = (text: string): Cell => ({ text, sort: text });

export function formatMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`;
}

export function formatBytes(b: number): string {
  const units = ["B", "KB", "MB", "GB"];
  let v = b;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

/** Speed-ups above 1 are good, below 1 bad; an untrustworthy ratio is "noisy" whatever its value. */
export function benchmarkTable(d: BenchmarkDisplay): TableModel {
  const rows: Cell[][] = [];
  for (const m of d.models) {
    for (const b of m.batches) {
      const v = b.vsFirst;
      const speed: Cell = !v
        ? { text: "baseline", sort: 1, cls: "base" }
        : !v.verdict.trustworthy
          ? num(`${v.speedup.toFixed(2)}× (noisy)`, v.speedup, "noisy", v.verdict.reason)
          : num(`${v.speedup.toFixed(2)}×`, v.speedup, v.speedup >= 1.05 ? "good" : v.speedup < 0.95 ? "bad" : undefined);
      rows.push([
        str(m.name),
        num(String(b.batch), b.batch),
        num(formatBytes(m.fileBytes) + (m.sizeRatio !== undefined ? ` (${m.sizeRatio.toFixed(2)}×)` : ""), m.fileBytes),
        num(formatMs(b.latencyMs.p50), b.latencyMs.p50),
        num(formatMs(b.latencyMs.p90), b.latencyMs.p90),
        num(formatMs(b.latencyMs.p99), b.latencyMs.p99),
        num(b.throughput.toFixed(1), b.throughput),
        speed,
      ]);
    }
  }
  return {
    caption: "Benchmark",
    headers: ["model", "batch", "size", "p50", "p90", "p99", "samples/s", "speed-up"],
    rows,
    notes: d.notes ?? [],
  };
}

/** Each metric as a percentage, with the drop against the baseline row; drops beyond the threshold are "bad". */
export function accuracyTable(d: AccuracyDisplay): TableModel {
  const base = d.rows[d.baseline ?? 0];
  const threshold = d.dropThreshold ?? 0.01;
  const headers = ["model", ...d.metrics.flatMap((m) => [m, `Δ ${m}`]), "samples"];
  const rows = d.rows.map((r, i) => [
    str(r.model),
    ...d.metrics.flatMap((_, j) => {
      const v = r.values[j] ?? NaN;
      const value = num(`${(v * 100).toFixed(2)} %`, v);
      if (!base || i === (d.baseline ?? 0)) return [value, { text: "baseline", sort: 0, cls: "base" as const }];
      const drop = (base.values[j] ?? NaN) - v;
      const cls: Cell["cls"] = drop > threshold ? "bad" : drop < -threshold ? "good" : undefined;
      return [value, num(`${drop > 0 ? "−" : "+"}${Math.abs(drop * 100).toFixed(2)} pt`, -drop, cls)];
    }),
    num(r.samples !== undefined ? String(r.samples) : "", r.samples ?? 0),
  ]);
  return { caption: "Accuracy", headers, rows, notes: [] };
}

/** A `display.table`: numbers sort as numbers (and print with up to 4 decimals), everything else as text. */
export function genericTable(d: TableDisplay): TableModel {
  const cell = (v: string | number | boolean | null): Cell => {
    if (typeof v === "number") return num(Number.isInteger(v) ? String(v) : String(Number(v.toFixed(4))), v);
    return str(v === null ? "" : String(v));
  };
  return { caption: d.title ?? "", headers: d.columns, rows: d.rows.map((r) => d.columns.map((_, i) => cell(r[i] ?? null))), notes: [] };
}

/** Stable sort by one column; numbers before strings, ascending or descending. */
export function sortRows(rows: Cell[][], col: number, descending: boolean): Cell[][] {
  const sign = descending ? -1 : 1;
  return rows
    .map((r, i) => [r, i] as const)
    .sort(([a, i], [b, j]) => {
      const x = a[col]?.sort ?? "";
      const y = b[col]?.sort ?? "";
      const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return c !== 0 ? sign * c : i - j;
    })
    .map(([r]) => r);
}

function cellHtml(c: Cell): string {
  const cls = c.cls ? ` class="ptq-${c.cls}"` : "";
  const title = c.title ? ` title="${escapeHtml(c.title)}"` : "";
  return `<td${cls}${title}>${escapeHtml(c.text)}</td>`;
}

export function tbodyHtml(rows: Cell[][]): string {
  return rows.map((r) => `<tr>${r.map(cellHtml).join("")}</tr>`).join("");
}

/** The whole table; headers carry data-col so the entry can make them sort on click. */
export function tableHtml(t: TableModel): string {
  const head = t.headers.map((h, i) => `<th data-col="${i}" tabindex="0" role="button">${escapeHtml(h)}</th>`).join("");
  const notes = t.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("");
  return (
    `<table class="ptq-table"><caption>${escapeHtml(t.caption)}</caption><thead><tr>${head}</tr></thead>` +
    `<tbody>${tbodyHtml(t.rows)}</tbody></table>${notes ? `<ul class="ptq-notes">${notes}</ul>` : ""}`
  );
}

/** Colours read from the VS Code theme's CSS variables (passed in so this stays pure). */
export interface ThemeColors {
  foreground: string;
  accent: string;
  warn: string;
  muted: string;
}

export function histogramFigure(d: HistogramDisplay, theme: ThemeColors, logScale = d.logScale ?? false): PlotlyFigure {
  const centers = d.counts.map((_, i) => ((d.edges[i] ?? 0) + (d.edges[i + 1] ?? 0)) / 2);
  const widths = d.counts.map((_, i) => (d.edges[i + 1] ?? 0) - (d.edges[i] ?? 0));
  const vline = (x: number, color: string, dash: string) => ({
    type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1, line: { color, dash, width: 2 },
  });
  const shapes = [vline(d.floatRange[0], theme.muted, "dot"), vline(d.floatRange[1], theme.muted, "dot")];
  if (d.clipRange) shapes.push(vline(d.clipRange[0], theme.warn, "dash"), vline(d.clipRange[1], theme.warn, "dash"));
  return {
    data: [{ type: "bar", x: centers, y: d.counts, width: widths, marker: { color: theme.accent }, name: d.tensor }],
    layout: {
      title: { text: `${d.tensor}${d.method ? ` (${d.method})` : ""}` },
      yaxis: { type: logScale ? "log" : "linear", title: { text: "count" } },
      xaxis: { title: { text: "value" } },
      shapes,
      annotations: [
        { x: d.floatRange[1], yref: "paper", y: 1, text: "float range", showarrow: false, xanchor: "right", font: { color: theme.muted } },
        ...(d.clipRange
          ? [{ x: d.clipRange[1], yref: "paper", y: 0.92, text: "clipping range", showarrow: false, xanchor: "right", font: { color: theme.warn } }]
          : []),
      ],
      ...themeLayout(theme),
    },
    config: { displaylogo: false, responsive: true },
  };
}

export function sqnrFigure(d: SqnrDisplay, theme: ThemeColors): PlotlyFigure {
  const warn = d.warnBelowDb ?? 20;
  return {
    data: [{
      type: "bar",
      x: d.layers.map((l) => l.name),
      y: d.layers.map((l) => l.sqnrDb),
      text: d.layers.map((l) => l.op ?? ""),
      marker: { color: d.layers.map((l) => (l.sqnrDb < warn ? theme.warn : theme.accent)) },
    }],
    layout: {
      title: { text: "SQNR per layer (dB, higher is better)" },
      yaxis: { title: { text: "dB" } },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: warn, y1: warn, line: { color: theme.warn, dash: "dash" } }],
      ...themeLayout(theme),
    },
    config: { displaylogo: false, responsive: true },
  };
}

/** Transparent backgrounds and the theme's text colour, so plots follow light, dark and high-contrast themes. */
export function themeLayout(theme: ThemeColors): Record<string, unknown> {
  return {
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: theme.foreground },
    margin: { t: 40, r: 20, b: 60, l: 60 },
    height: 320,
  };
}
