// The kernel's request handlers: run cells one at a time, route everything a cell writes or displays to that
// cell, answer completion and hover. Output that arrives when no cell runs (a timer firing later) goes to the
// last cell that ran, which the client shows in its output channel.
import type { MessageConnection } from "vscode-jsonrpc";
import { setSink, toBundle } from "./display";
import type { Executor } from "./executor";
import { Complete, Display, Execute, Histograms, Inspect, Interrupt, Log, ModelState, Progress, QuantState, Shutdown, Stream, UpdateDisplay } from "./protocol";

export interface KernelState {
  /** The cell now running, or the last one that ran. */
  cellId: string;
  running: boolean;
}

export interface HandlerOptions {
  connection: MessageConnection;
  /** Created on first use, so the process answers (and forks) fast; the compiler takes ~1.5 s to start. */
  executor: () => Executor;
  state: KernelState;
  exit(code: number): void;
}

export function log(connection: MessageConnection, level: Log.Params["level"], message: string): void {
  void connection.sendNotification(Log.type, { level, message });
}

export function registerHandlers({ connection, executor, state, exit }: HandlerOptions): void {
  setSink({
    display: (bundle, displayId) => void connection.sendNotification(Display.type, { cellId: state.cellId, bundle, displayId }),
    update: (displayId, bundle) => void connection.sendNotification(UpdateDisplay.type, { displayId, bundle }),
    progress: (progress) => void connection.sendNotification(Progress.type, { cellId: state.cellId, ...progress }),
    model: (summary) => void connection.sendNotification(ModelState.type, summary),
    quant: (q) => void connection.sendNotification(QuantState.type, q),
    histograms: (params) => void connection.sendNotification(Histograms.type, params),
  });

  let queue: Promise<unknown> = Promise.resolve();
  connection.onRequest(Execute.type, (p) => {
    const run = async (): Promise<Execute.Result> => {
      const t0 = performance.now();
      state.cellId = p.cellId;
      state.running = true;
      try {
        const out = await executor().execute(p.code, `cell${p.executionCount}`);
        if (out.status !== "ok") return { status: out.status, error: out.error, durationMs: performance.now() - t0 };
        if (out.hasValue) {
          try {
            // A rich form may throw (user code); an empty bundle (a display handle) shows nothing.
            const bundle = toBundle(out.value);
            if (Object.keys(bundle).length > 0) await connection.sendNotification(Display.type, { cellId: p.cellId, bundle });
          } catch (e) {
            const message = `Could not display the result: ${e instanceof Error ? e.message : String(e)}`;
            return { status: "error", error: { name: "DisplayError", message }, durationMs: performance.now() - t0 };
          }
        }
        return { status: "ok", durationMs: performance.now() - t0 };
      } finally {
        state.running = false;
      }
    };
    // The client sends one cell at a time; the queue only guards against a misbehaving client.
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  });
  connection.onRequest(Interrupt.type, () => executor().interrupt());
  connection.onRequest(Complete.type, (p) => executor().complete(p.code, p.offset));
  connection.onRequest(Inspect.type, (p) => executor().inspect(p.code, p.offset));
  connection.onRequest(Shutdown.type, () => {
    setTimeout(() => exit(0), 20);
  });
}

/** Sends what a cell writes to stdout/stderr as Stream notifications, as it is written. */
export function captureStreams(connection: MessageConnection, state: KernelState): void {
  for (const name of ["stdout", "stderr"] as const) {
    const stream = process[name];
    stream.write = ((chunk: string | Uint8Array, encoding?: unknown, cb?: unknown): boolean => {
      const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString(typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
      void connection.sendNotification(Stream.type, { cellId: state.cellId, name, text });
      const done = typeof encoding === "function" ? encoding : cb;
      if (typeof done === "function") queueMicrotask(() => (done as () => void)());
      return true;
    }) as typeof stream.write;
  }
}
