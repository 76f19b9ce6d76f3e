// The one protocol between the extension host (client) and the kernel process (server), imported by both sides.
// Every message is a namespace: its method name, its typed jsonrpc type, and who sends it to whom. Outputs of a
// running cell travel as notifications tagged with the cell's `cellId`; jsonrpc keeps their order on the wire, so
// the client can append them to the cell as they arrive and settle the cell when the `execute` response comes.
import { NotificationType, RequestType, RequestType0 } from "vscode-jsonrpc";
import type { HistogramDisplay, QuantStateEntry } from "./display-types";

/** Where a kernel runs its models (the engine's own type: one name for one thing). */
export type { ExecutionProvider } from "../engine/runtime/session";

/** A MIME type → data map, as in Jupyter: strings for text types, JSON values for `+json` types, base64 for images. */
export type MimeBundle = Record<string, unknown>;

export interface ErrorInfo {
  /** "TypeError", "TSError" for type-check failures, "Interrupted", … */
  name: string;
  message: string;
  /** The stack with kernel-internal frames removed; cell frames rewritten to `cell:line:col`. */
  stack?: string;
  /** 1-based position in the cell's own source, when known. */
  line?: number;
  column?: number;
}

export type ExecuteStatus = "ok" | "error" | "interrupted";

/** client → kernel: run one cell. Outputs stream as notifications before the response settles the cell. */
export namespace Execute {
  export const method = "ptq/execute";
  export interface Params {
    cellId: string;
    code: string;
    executionCount: number;
  }
  export interface Result {
    status: ExecuteStatus;
    error?: ErrorInfo;
    durationMs: number;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * client → kernel: stop the awaiting cell now. A request, so the client learns the kernel's event loop is free: only
 * a kernel that does not answer (a busy synchronous cell) is sent SIGINT, then killed.
 */
export namespace Interrupt {
  export const method = "ptq/interrupt";
  export const type = new RequestType0<void, void>(method);
}

/** client → kernel: completions at `offset` (UTF-16) in a cell, typed against everything executed so far. */
export namespace Complete {
  export const method = "ptq/complete";
  export interface Params {
    code: string;
    offset: number;
  }
  export interface Result {
    start: number;
    end: number;
    items: string[];
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** client → kernel: hover text (markdown) at `offset` in a cell; null when there is nothing there. */
export namespace Inspect {
  export const method = "ptq/inspect";
  export interface Params {
    code: string;
    offset: number;
  }
  export interface Result {
    markdown: string;
    start: number;
    length: number;
  }
  export const type = new RequestType<Params, Result | null, void>(method);
}

/** kernel → client: a rich output for a cell. With `displayId`, later `UpdateDisplay`s replace it in place. */
export namespace Display {
  export const method = "ptq/display";
  export interface Params {
    cellId: string;
    bundle: MimeBundle;
    displayId?: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** kernel → client: replace the output shown for `displayId` (in whichever cell made it). */
export namespace UpdateDisplay {
  export const method = "ptq/updateDisplay";
  export interface Params {
    displayId: string;
    bundle: MimeBundle;
  }
  export const type = new NotificationType<Params>(method);
}

/** kernel → client: text a cell wrote to stdout or stderr, sent as it is written. */
export namespace Stream {
  export const method = "ptq/stream";
  export interface Params {
    cellId: string;
    name: "stdout" | "stderr";
    text: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** One progress output: `label: [bar] done/total unit, ETA …` (client/notebook/outputs' progressText). */
export interface ProgressState {
  progressId: string;
  label: string;
  done: number;
  total?: number;
  /** What done and total count ("batches", "layers"). */
  unit?: string;
  /** Seconds left, where the engine estimates them. */
  etaSeconds?: number;
  finished: boolean;
}

/** kernel → client: progress of a long loop (e.g. calibrate's onProgress); shown as one output updated in place. */
export namespace Progress {
  export const method = "ptq/progress";
  export interface Params extends ProgressState {
    cellId: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** One graph input or output of a model. Unknown dims are names (`"batch"`) or null. */
export interface ValueSummary {
  name: string;
  type: string;
  shape: (number | string | null)[];
}

export interface NodeSummary {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  /** Output shapes, where shape inference knows them. */
  shapes?: (number | string | null)[][];
  /** Number of parameters in this node's initializer inputs. */
  params: number;
}

export interface ModelSummary {
  /** Where the model came from (a path), so the views can tell models apart. */
  source: string;
  opset?: number;
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  nodes: NodeSummary[];
}

/** kernel → client: a cell loaded or changed a model; the editor's layer tree shows it. */
export namespace ModelState {
  export const method = "ptq/modelState";
  export type Params = ModelSummary;
  export const type = new NotificationType<Params>(method);
}

/** Per-tensor quantization state: the shape the Quantization State view draws (kernel/display-types.ts). */
export type TensorQuantState = QuantStateEntry;

/** kernel → client: per-tensor quantization state of a model (analyze() sends it with each tensor's SQNR); the
 * Quantization State view shows it. */
export namespace QuantState {
  export const method = "ptq/quantState";
  export interface Params {
    source: string;
    tensors: TensorQuantState[];
    /** SQNR below this many dB is flagged (analyze's warnBelowDb), when the tensors carry SQNR. */
    warnBelowDb?: number;
  }
  export const type = new NotificationType<Params>(method);
}

/** kernel → client: calibration histograms of observed activations (after a calibration run); the Histograms view
 * lists them and opens each as a plotly chart. Added by the editor area; the client side calls viewsApi().setHistograms. */
export namespace Histograms {
  export const method = "ptq/histograms";
  export interface Params {
    source: string;
    histograms: HistogramDisplay[];
  }
  export const type = new NotificationType<Params>(method);
}

/** kernel → client: the kernel is about to exit on its own (process.exit in a cell, a fatal error); why. */
export namespace Exiting {
  export const method = "ptq/exiting";
  export interface Params {
    reason: string;
    cellId?: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** kernel → client: the kernel's own diagnostics (its stdout/stderr belong to cells), for the output channel. */
export namespace Log {
  export const method = "ptq/log";
  export interface Params {
    level: "info" | "warn" | "error";
    message: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** client → kernel: release resources and exit; the response comes just before the process exits. */
export namespace Shutdown {
  export const method = "ptq/shutdown";
  export const type = new RequestType0<void, void>(method);
}

/** Environment variables the client sets when it forks the kernel. */
export const KernelEnv = {
  /** "cpu" or "cuda": the default execution provider for sessions a cell creates. */
  executionProvider: "PTQ_EXECUTION_PROVIDER",
  /** The pid the kernel watches; it exits when that process is gone (IPC disconnect is not always delivered). */
  parentPid: "PTQ_PARENT_PID",
} as const;
