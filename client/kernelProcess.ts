// One kernel process as the extension sees it: forked with IPC, a jsonrpc connection over it, and the reason it
// died when it dies (a crash, an abort, out of memory, process.exit in a cell). Free of `vscode` so unit tests
// drive the real process with it.
import { fork, type ChildProcess } from "node:child_process";
import { createMessageConnection, Emitter, IPCMessageReader, IPCMessageWriter, type Event, type MessageConnection } from "vscode-jsonrpc/node";
import { Execute, Exiting, Interrupt, KernelEnv, Shutdown, type ExecutionProvider } from "../kernel/protocol";

export type { ExecutionProvider };

export interface KernelProcessOptions {
  /** out/kernel/main.js */
  mainPath: string;
  /** The notebook's folder: relative paths in cells resolve from it. */
  cwd: string;
  executionProvider: ExecutionProvider;
  /** For running the kernel from TypeScript sources in tests. */
  execArgv?: string[];
}

export interface KernelExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** A sentence for the user: why the kernel is gone. */
  reason: string;
}

/** Thrown by execute() when the process dies before the cell finished. */
export class KernelDiedError extends Error {
  constructor(readonly exit: KernelExit) {
    super(exit.reason);
    this.name = "KernelDied";
  }
}

const STDERR_TAIL = 4000;
/** How long interrupt() waits for the kernel to answer before it takes the kernel to be busy and sends SIGINT. */
export const SIGNAL_AFTER_MS = 500;

function describeExit(code: number | null, signal: NodeJS.Signals | null, said: string | undefined, stderr: string, expected: boolean): string {
  if (said) return said;
  if (/heap out of memory|Allocation failed/i.test(stderr)) return "The kernel ran out of memory and stopped.";
  if (expected) return "The kernel was shut down.";
  switch (signal) {
    case "SIGABRT":
      return "The kernel process aborted (SIGABRT), e.g. process.abort() or a fatal error in native code.";
    case "SIGSEGV":
    case "SIGBUS":
      return `The kernel process crashed (${signal}: invalid memory access, usually in native code).`;
    case "SIGKILL":
      return "The kernel process was killed (SIGKILL), possibly by the system for using too much memory.";
    case null:
      return `The kernel process exited with code ${code}.`;
    default:
      return `The kernel process was stopped by ${signal}.`;
  }
}

export class KernelProcess {
  readonly connection: MessageConnection;
  /** Resolves once, when the process has exited. */
  readonly exited: Promise<KernelExit>;
  private readonly child: ChildProcess;
  private readonly rawOutput = new Emitter<{ name: "stdout" | "stderr"; text: string }>();
  private stderrTail = "";
  private exitReason: string | undefined;
  private expectedExit = false;
  private exitInfo: KernelExit | undefined;

  constructor(options: KernelProcessOptions) {
    this.child = fork(options.mainPath, [], {
      cwd: options.cwd,
      execArgv: options.execArgv ?? [],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      env: { ...process.env, [KernelEnv.executionProvider]: options.executionProvider, [KernelEnv.parentPid]: String(process.pid) },
    });
    // Output written around our capture (native code, Node's own fatal messages) still reaches the running cell.
    for (const name of ["stdout", "stderr"] as const) {
      this.child[name]?.setEncoding("utf8");
      this.child[name]?.on("data", (text: string) => {
        if (name === "stderr") this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
        this.rawOutput.fire({ name, text });
      });
    }
    this.connection = createMessageConnection(new IPCMessageReader(this.child), new IPCMessageWriter(this.child));
    this.connection.onNotification(Exiting.type, (p) => (this.exitReason = p.reason));
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.exitInfo) return;
        this.exitInfo = { code, signal, reason: describeExit(code, signal, this.exitReason, this.stderrTail, this.expectedExit) };
        resolve(this.exitInfo);
        // After the waiters have seen the exit: disposing rejects pending requests with a less useful error.
        setTimeout(() => this.connection.dispose(), 0);
      };
      this.child.on("exit", done);
      this.child.on("error", (e) => {
        this.exitReason ??= `The kernel process could not start: ${e.message}`;
        done(null, null);
      });
    });
    this.connection.listen();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Output that bypassed the kernel's capture, e.g. from native code. */
  get onRawOutput(): Event<{ name: "stdout" | "stderr"; text: string }> {
    return this.rawOutput.event;
  }

  /** Runs a cell; rejects with KernelDiedError if the process dies first. */
  async execute(params: Execute.Params): Promise<Execute.Result> {
    if (this.exitInfo) throw new KernelDiedError(this.exitInfo);
    const died = this.exited.then((e) => Promise.reject(new KernelDiedError(e)));
    try {
      return await Promise.race([this.connection.sendRequest(Execute.type, params), died]);
    } catch (e) {
      if (e instanceof KernelDiedError) throw e;
      // The channel can close just before the exit event: prefer the exit's reason when it follows shortly.
      const exit = await Promise.race([this.exited, new Promise<undefined>((r) => setTimeout(r, 2000))]);
      throw exit ? new KernelDiedError(exit) : e;
    }
  }

  /**
   * Stops the running cell: an awaiting one by a request its event loop answers, a busy synchronous one by SIGINT
   * (vm's breakOnSigint), sent only when that request goes unanswered for SIGNAL_AFTER_MS. A signal that reaches
   * the kernel just as a breakOnSigint script ends is not lost but kept: Node's SIGINT watchdog counts it in a
   * semaphore that outlives the script, and it stops the next cell that runs (measured: an interrupted awaiting
   * cell, then a busy one, under load). So the kernel is never signalled while it can answer.
   */
  async interrupt(): Promise<"message" | "signal" | "none"> {
    if (!this.running) return "none";
    const answered = this.connection.sendRequest(Interrupt.type).then(() => "message" as const, () => "none" as const);
    const late = new Promise<undefined>((r) => setTimeout(r, SIGNAL_AFTER_MS));
    const first = await Promise.race([answered, late]);
    if (first) return first;
    if (!this.running || process.platform === "win32") return "none";
    this.child.kill("SIGINT");
    return "signal";
  }

  /** Asks the kernel to exit, then kills it if it has not within `graceMs`. */
  async shutdown(graceMs = 1000): Promise<KernelExit> {
    if (this.exitInfo) return this.exitInfo;
    this.expectedExit = true;
    this.exitReason ??= "The kernel was shut down.";
    const timer = setTimeout(() => this.kill(), graceMs);
    void this.connection.sendRequest(Shutdown.type).catch(() => undefined);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  kill(reason?: string): void {
    if (!this.running) return;
    if (reason) this.exitReason = reason;
    this.expectedExit = true;
    this.child.kill("SIGKILL");
  }
}
