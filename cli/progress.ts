// The one progress line every `ptq` command prints on a terminal: engine progress callbacks (calibration batches,
// GPTQ batches, the sensitivity ranking, search steps) become events, each drawn over the last on stderr as
// "stage: [####......] 3/10 batches, ETA 12 s", with the ETA only when the engine's event gives one.

import { etaSuffix } from "../client/notebook/outputs";

export interface ProgressEvent {
  stage: string;
  done?: number;
  total?: number;
  /** What is counted ("batches", "nodes"). */
  unit?: string;
  /** Seconds left, when the engine estimates it. */
  etaS?: number;
  /** Free text after the counts (a search step's result). */
  detail?: string;
}

/** What an engine callback may pass after (done, total): seconds left, or an object with an ETA in it. */
type EtaHint = number | { etaS?: number; etaMs?: number; etaSeconds?: number } | undefined;

const BAR = 30;

/** The event as one line (no terminal codes). */
export function progressLine(e: ProgressEvent): string {
  const parts: string[] = [];
  if (e.done !== undefined) {
    const unit = e.unit ? ` ${e.unit}` : "";
    if (e.total) {
      const bar = "#".repeat(Math.round((Math.min(e.done, e.total) / e.total) * BAR)).padEnd(BAR, ".");
      parts.push(`[${bar}] ${e.done}/${e.total}${unit}`);
    } else parts.push(`${e.done}${unit}`);
  }
  if (e.detail) parts.push(e.detail);
  return `${e.stage}: ${parts.join(" ")}${etaSuffix(e.done, e.total, e.etaS)}`;
}

export interface ProgressPrinter {
  update(e: ProgressEvent): void;
  /** An engine `onProgress(done, total?, eta?)` callback for one stage. */
  callback(stage: string, unit?: string): (done: number, total?: number, eta?: EtaHint) => void;
  /** Ends the line (call once the work is over, before printing anything else). */
  done(): void;
}

function etaOf(h: EtaHint): number | undefined {
  if (typeof h === "number") return h;
  if (h && typeof h === "object") return h.etaS ?? h.etaSeconds ?? (h.etaMs !== undefined ? h.etaMs / 1000 : undefined);
  return undefined;
}

/** Draws on `write` (stderr by default) when enabled (a terminal, not --json); a no-op otherwise. */
export function progressPrinter(enabled: boolean, write: (s: string) => void = (s) => void process.stderr.write(s)): ProgressPrinter {
  let drawn = false;
  const update = (e: ProgressEvent) => {
    if (!enabled) return;
    write(`\r${progressLine(e)}\x1b[K`);
    drawn = true;
  };
  return {
    update,
    callback: (stage, unit) => (done, total, eta) => update({ stage, done, total, unit, etaS: etaOf(eta) }),
    done() {
      if (drawn) write("\n");
      drawn = false;
    },
  };
}

/** Where a progress line starts when printed one per line (PTQ_PROGRESS=lines): what a caller reading stderr skips. */
export const PROGRESS_PREFIX = "progress: ";

/**
 * One event per line on `write`, `PROGRESS_PREFIX` first: a new stage at once, the same stage at most every
 * `everyMs` (a program reading stderr, such as the VS Code extension, shows the last).
 */
export function progressLines(write: (s: string) => void = (s) => void process.stderr.write(s), everyMs = 1000, now = () => Date.now()): ProgressPrinter {
  let stage: string | undefined;
  let at = -Infinity;
  const update = (e: ProgressEvent) => {
    const t = now();
    if (e.stage === stage && t - at < everyMs && !(e.total !== undefined && e.done === e.total)) return;
    stage = e.stage;
    at = t;
    write(`${PROGRESS_PREFIX}${progressLine(e)}\n`);
  };
  return {
    update,
    callback: (name, unit) => (done, total, eta) => update({ stage: name, done, total, unit, etaS: etaOf(eta) }),
    done() {},
  };
}

/**
 * The printer for a command's run: stderr on a terminal, unless the command prints JSON; with PTQ_PROGRESS=lines in
 * the environment, one line per event whatever stderr is (for a program that runs the CLI, --json included).
 */
export const terminalProgress = (json: boolean): ProgressPrinter =>
  process.env.PTQ_PROGRESS === "lines" ? progressLines() : progressPrinter(process.stderr.isTTY === true && !json);

/** calibrate()'s onProgress as events: the batches, then each measurement phase under its own name. */
export function calibrationProgress(p: ProgressPrinter): (done: number, total?: number, phase?: { phase: string; unit: string; etaSeconds?: number }) => void {
  return (done, total, phase) => p.update(phase ? { stage: phase.phase, done, total, unit: phase.unit, etaS: phase.etaSeconds } : { stage: "calibrating", done, total, unit: "batches" });
}
