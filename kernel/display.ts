// The cell-side display API (`import { display } from "ptq"`): rich outputs as MIME bundles with standard types
// (so a saved .ipynb renders on GitHub and in Jupyter) plus our `application/vnd.ptq.*+json` types, first in the
// bundle, where the notebook renderer adds interactivity. Where the bundles go is set by the kernel (setSink);
// outside a kernel (CLI, tests) they go nowhere, so library code may call display freely.
import { inspect } from "node:util";
import { MIME } from "./display-types";
import { resultBundle } from "./views/index";
import type { Histograms, MimeBundle, ModelSummary, ProgressState, QuantState } from "./protocol";

/** A value with a rich form: return a MIME bundle. `toMimeBundle()` is also honoured (the Jupyter convention). */
export const richDisplay: unique symbol = Symbol.for("ptq.display") as never;

export const Mime = {
  table: MIME.table,
  plotly: MIME.plotly,
  json: "application/json",
  html: "text/html",
  markdown: "text/markdown",
  plain: "text/plain",
  png: "image/png",
} as const;

export interface DisplaySink {
  display(bundle: MimeBundle, displayId?: string): void;
  update(displayId: string, bundle: MimeBundle): void;
  progress(state: ProgressState): void;
  model(summary: ModelSummary): void;
  quant(state: QuantState.Params): void;
  histograms(params: Histograms.Params): void;
}

let sink: DisplaySink | undefined;
let nextId = 1;

/** Called by the kernel process once; the bundles then reach the cell that is running. */
export function setSink(s: DisplaySink | undefined): void {
  sink = s;
}

export interface DisplayHandle {
  readonly id: string;
  /** Replaces this output in place with the rich form of `value`. */
  update(value: unknown): void;
}

export interface ProgressHandle {
  /** Sets the count done (and optionally a new total); cheap to call on every item. */
  report(done: number, total?: number): void;
  /** Marks the progress finished (the bar shows complete). */
  finish(): void;
  /** `report` bound for APIs that take an `onProgress(done, total)` callback. */
  readonly onProgress: (done: number, total?: number) => void;
}

/** A phase of a long call, as the engine's onProgress names it (engine/calibrate's PhaseProgress). */
export interface PhaseEvent {
  phase: string;
  unit?: string;
  etaSeconds?: number;
}

export interface PhasesHandle {
  /** For calibrate(), quantizeStatic(), lowBitProgress() and friends: `onProgress(done, total, phase)`. */
  readonly onProgress: (done: number, total?: number, phase?: PhaseEvent) => void;
  /** Marks the last phase finished. */
  finish(): void;
}

export type TableRow = Record<string, unknown>;
export interface TableData {
  columns: string[];
  rows: unknown[][];
  title?: string;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

function cellText(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, "");
  if (v === null || v === undefined) return "";
  return typeof v === "string" ? v : inspect(v, { depth: 1, breakLength: Infinity });
}

/** Rows of objects (columns are the union of keys, in first-seen order) or explicit columns and rows. */
export function toTableData(data: TableRow[] | TableData, title?: string): TableData {
  if (!Array.isArray(data)) return title ? { ...data, title } : data;
  const columns: string[] = [];
  for (const row of data) for (const k of Object.keys(row)) if (!columns.includes(k)) columns.push(k);
  return { columns, rows: data.map((r) => columns.map((c) => r[c])), ...(title ? { title } : {}) };
}

/** A table as our interactive type, HTML and aligned text. */
export function tableBundle(data: TableRow[] | TableData, title?: string): MimeBundle {
  const t = toTableData(data, title);
  const cells = t.rows.map((r) => r.map(cellText));
  const head = `<tr>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("")}</tr>`;
  const body = cells.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`).join("");
  const caption = t.title ? `<caption>${escapeHtml(t.title)}</caption>` : "";
  const widths = t.columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  const plain = [...(t.title ? [t.title] : []), line(t.columns), ...cells.map(line)].join("\n");
  // JSON-safe cells: missing values are null, objects become their text.
  const rows = t.rows.map((r) => r.map((v) => (v === undefined ? null : typeof v === "number" || typeof v === "string" || typeof v === "boolean" || v === null ? v : cellText(v))));
  return {
    [Mime.table]: { columns: t.columns, rows, ...(t.title ? { title: t.title } : {}) },
    [Mime.html]: `<table>${caption}<thead>${head}</thead><tbody>${body}</tbody></table>`,
    [Mime.plain]: plain,
  };
}

export interface PlotlyFigure {
  data: unknown[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** The MIME bundle for any value: its rich form if it has one, else inspected text. */
export function toBundle(value: unknown): MimeBundle {
  const result = resultBundle(value);
  if (result) return result;
  if (value !== null && (typeof value === "object" || typeof value === "function")) {
    const v = value as { [richDisplay]?: () => MimeBundle; toMimeBundle?: () => MimeBundle };
    if (typeof v[richDisplay] === "function") return v[richDisplay]!();
    if (typeof v.toMimeBundle === "function") return v.toMimeBundle();
  }
  return { [Mime.plain]: typeof value === "string" ? inspect(value) : inspect(value, { depth: 4, colors: false }) };
}

/** Sends progress at most ~20 times a second (a tight loop must not flood the channel), and always its last step. */
function throttled(): (state: ProgressState) => void {
  let lastSent = 0;
  return (state) => {
    const now = Date.now();
    if (now - lastSent < 50 && (state.total === undefined || state.done < state.total)) return;
    lastSent = now;
    sink?.progress(state);
  };
}

function show(bundle: MimeBundle): DisplayHandle {
  const id = `ptq-display-${process.pid}-${nextId++}`;
  sink?.display(bundle, id);
  // A handle left as a cell's last value shows nothing (like Jupyter's display() returning None).
  return { id, update: (value: unknown) => sink?.update(id, toBundle(value)), [richDisplay]: () => ({}) } as DisplayHandle;
}

function toBase64(data: Uint8Array | string): string {
  return typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}

/** `display(value)` shows any value in its richest form; the methods make a specific kind of output. */
export const display = Object.assign((value: unknown): DisplayHandle => show(toBundle(value)), {
  html: (html: string) => show({ [Mime.html]: html, [Mime.plain]: html.replace(/<[^>]*>/g, "") }),
  markdown: (md: string) => show({ [Mime.markdown]: md, [Mime.plain]: md }),
  text: (text: string) => show({ [Mime.plain]: text }),
  json: (value: unknown) => show({ [Mime.json]: value, [Mime.plain]: JSON.stringify(value, null, 2) }),
  table: (data: TableRow[] | TableData, title?: string) => show(tableBundle(data, title)),
  /** PNG bytes (or base64); other image types by `mime`. */
  image: (data: Uint8Array | string, mime = Mime.png) => show({ [mime]: toBase64(data), [Mime.plain]: `<${mime} image>` }),
  plotly: (figure: PlotlyFigure) => show({ [Mime.plotly]: figure, [Mime.plain]: `<plot: ${figure.data.length} trace(s)>` }),
  /** Any bundle as is. */
  raw: (bundle: MimeBundle) => show(bundle),
  /** A progress output updated in place (pass `.onProgress` to calibrate and friends). */
  progress(label: string, total?: number): ProgressHandle {
    const id = `ptq-progress-${process.pid}-${nextId++}`;
    let last = 0;
    const send = throttled();
    const report = (done: number, t?: number) => {
      last = done;
      if (t !== undefined) total = t;
      send({ progressId: id, label, done, total, finished: false });
    };
    sink?.progress({ progressId: id, label, done: 0, total, finished: false });
    return { report, onProgress: report, finish: () => sink?.progress({ progressId: id, label, done: total ?? last, total: total ?? last, finished: true }) };
  },
  /**
   * Progress of a call that goes through phases, as calibrate()'s `onProgress(done, total, phase)` reports them: one
   * progress output per phase, with its unit and ETA; a phase is finished when the next begins, the last by
   * `finish()`. Events without a phase (calibration batches) show under `label`.
   */
  phases(label = "calibrating", unit = "batches"): PhasesHandle {
    let current: ProgressState | undefined;
    const send = throttled();
    // A phase is over when the next begins: its count is what it did (an engine's total may be an upper bound: the
    // weight type's runs stop early when a share is settled).
    const end = () => current && !current.finished && sink?.progress((current = { ...current, ...(current.total !== undefined && { total: current.done }), finished: true }));
    const onProgress = (done: number, total?: number, phase?: PhaseEvent) => {
      const name = phase?.phase ?? label;
      const next = { label: name, done, total, unit: phase?.unit ?? unit, etaSeconds: phase?.etaSeconds, finished: false };
      if (current?.label === name) return send((current = { ...next, progressId: current.progressId }));
      end();
      sink?.progress((current = { ...next, progressId: `ptq-progress-${process.pid}-${nextId++}` }));
    };
    return { onProgress, finish: end };
  },
  /** Shows a model in the editor's layer tree. */
  model: (summary: ModelSummary) => sink?.model(summary),
  /** Shows per-tensor quantization state in the editor's quantization tree. */
  quantState: (state: QuantState.Params) => sink?.quant(state),
  /** Shows calibration histograms (with their clipping ranges) in the editor's Histograms view. */
  histograms: (params: Histograms.Params) => sink?.histograms(params),
});
export type Display = typeof display;
