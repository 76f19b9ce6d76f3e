// Executes a .ipynb's TypeScript cells in a fresh PTQ kernel process, outside VS Code (the `ptq notebook run`
// command, for CI and for saving a notebook's outputs), and returns the notebook with each cell's outputs and
// execution count, in the form Jupyter, GitHub and VS Code read.
import { readFileSync } from "node:fs";
import path from "node:path";
import { KernelDiedError, KernelProcess, type ExecutionProvider } from "../kernelProcess";
import { Display, Progress, Stream, UpdateDisplay, type MimeBundle } from "../../kernel/protocol";
import { CellOutputs, type NbOutput } from "./outputs";

/** The parts of an nbformat 4 notebook we read and write; everything else is kept as it was. */
export interface Notebook {
  cells: NotebookCell[];
  metadata?: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

export interface NotebookCell {
  cell_type: "code" | "markdown" | "raw";
  source: string | string[];
  metadata?: Record<string, unknown>;
  execution_count?: number | null;
  outputs?: unknown[];
  [key: string]: unknown;
}

export interface RunOptions {
  /** out/kernel/main.js */
  kernelMain: string;
  executionProvider?: ExecutionProvider;
  /** Keep going after a failing cell (its error is saved as its output). */
  allowErrors?: boolean;
  /** Per cell; the kernel is killed and the cell fails when it runs longer. */
  cellTimeoutMs?: number;
  /** Called as each code cell starts and ends (for a progress line). */
  onCell?(index: number, total: number, status: "start" | "ok" | "error"): void;
}

export interface CellFailure {
  /** 0-based index among all cells. */
  cell: number;
  name: string;
  message: string;
}

export interface RunResult {
  notebook: Notebook;
  executed: number;
  failures: CellFailure[];
  durationMs: number;
}

/** Reads and checks a notebook file; the error names the file and what is wrong with it. */
export function readNotebook(file: string): Notebook {
  let nb: Notebook;
  try {
    nb = JSON.parse(readFileSync(file, "utf8")) as Notebook;
  } catch (e) {
    throw new Error(`${file}: not a readable .ipynb (${(e as Error).message})`);
  }
  if (!nb || !Array.isArray(nb.cells) || typeof nb.nbformat !== "number") throw new Error(`${file}: not an nbformat notebook (no "cells" list or "nbformat" number)`);
  if (nb.nbformat < 4) throw new Error(`${file}: nbformat ${nb.nbformat} is too old; open and save it in Jupyter or VS Code to convert it to version 4`);
  return nb;
}

const source = (cell: NotebookCell) => (Array.isArray(cell.source) ? cell.source.join("") : cell.source);

/** Multi-line strings as nbformat writes them: a list of lines, each keeping its newline. */
function lines(text: string): string[] {
  return text.split(/(?<=\n)/).filter((l) => l.length > 0);
}

function toNbformat(o: NbOutput): Record<string, unknown> {
  if (o.output_type === "stream") return { ...o, text: lines(o.text) };
  if (o.output_type === "error") return o;
  const data: Record<string, unknown> = {};
  for (const [mime, value] of Object.entries(o.data as MimeBundle)) {
    // JSON types stay objects; images stay base64 strings; other text is stored as lines.
    data[mime] = typeof value === "string" && (mime.startsWith("text/") || mime === "image/svg+xml") ? lines(value) : value;
  }
  return { output_type: "display_data", data, metadata: o.metadata };
}

export async function runNotebook(file: string, options: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  const nb = readNotebook(file);
  const codeCells = nb.cells.map((c, i) => [c, i] as const).filter(([c]) => c.cell_type === "code");
  const kernel = new KernelProcess({ mainPath: options.kernelMain, cwd: path.dirname(path.resolve(file)), executionProvider: options.executionProvider ?? "cpu" });
  const failures: CellFailure[] = [];
  let current: CellOutputs | undefined;
  let currentId = "";
  const c = kernel.connection;
  c.onNotification(Stream.type, (p) => p.cellId === currentId && current?.stream(p.name, p.text));
  c.onNotification(Display.type, (p) => p.cellId === currentId && current?.display(p.bundle, p.displayId));
  c.onNotification(UpdateDisplay.type, (p) => current?.updateDisplay(p.displayId, p.bundle));
  c.onNotification(Progress.type, (p) => p.cellId === currentId && current?.progress(p));
  kernel.onRawOutput((o) => current?.stream(o.name, o.text));

  let executed = 0;
  let stopped = false;
  try {
    for (const [n, [cell, index]] of codeCells.entries()) {
      if (stopped) {
        // Outputs of an earlier run next to this run's error would mislead: cells after the failure are cleared.
        cell.outputs = [];
        cell.execution_count = null;
        continue;
      }
      options.onCell?.(n, codeCells.length, "start");
      const outputs = new CellOutputs();
      current = outputs;
      currentId = `cell-${index}`;
      const count = ++executed;
      let error: { name: string; message: string; stack?: string } | undefined;
      // A cell past its time kills the kernel; execute() then rejects with KernelDiedError carrying this reason.
      const timeout = options.cellTimeoutMs;
      const timer = timeout ? setTimeout(() => kernel.kill(`The cell ran longer than ${timeout / 1000} s and the kernel was stopped.`), timeout) : undefined;
      try {
        const r = await kernel.execute({ cellId: currentId, code: source(cell), executionCount: count });
        if (r.status !== "ok") error = r.error ?? { name: r.status, message: `the cell ended with status ${r.status}` };
      } catch (e) {
        error = e instanceof KernelDiedError ? { name: "KernelDied", message: e.message } : { name: "Error", message: (e as Error).message };
      } finally {
        clearTimeout(timer);
      }
      // Notifications sent before the response are delivered first; this turn lets any still queued arrive.
      await new Promise((r) => setImmediate(r));
      if (error) outputs.error(error);
      cell.outputs = outputs.outputs.map(toNbformat);
      cell.execution_count = count;
      options.onCell?.(n, codeCells.length, error ? "error" : "ok");
      if (error) {
        failures.push({ cell: index, name: error.name, message: error.message });
        if (!options.allowErrors || !kernel.running) stopped = true;
      }
      current = undefined;
    }
  } finally {
    await kernel.shutdown();
  }
  return { notebook: nb, executed, failures, durationMs: performance.now() - t0 };
}

/** The notebook as Jupyter writes it: one-space indentation, a final newline. */
export function serializeNotebook(nb: Notebook): string {
  return JSON.stringify(nb, null, 1) + "\n";
}
