// One queue per notebook: cells run one at a time in the order they were asked for; an error, an interrupt or a
// dead kernel cancels what is still queued (as Jupyter does), and every run reaches end().
import type * as vscode from "vscode";
import type { ErrorInfo } from "../../kernel/protocol";
import { KernelDiedError } from "../../client/kernelProcess";
import type { KernelManager, ManagedKernel } from "../kernel/manager";
import type { CellRun } from "./cellRun";

export interface QueueHooks {
  /** Called before a run starts, with its kernel: route that kernel's notifications for `run.id` to it. */
  attach(run: CellRun, kernel: ManagedKernel): void;
  detach(run: CellRun): void;
  nextOrder(kernel: ManagedKernel): number;
  /** Called when a run ended in `kernel`, with whether it succeeded. */
  finished(run: CellRun, kernel: ManagedKernel, ok: boolean): void;
}

export class ExecutionQueue {
  private readonly pending: CellRun[] = [];
  private current: CellRun | undefined;
  private pumping = false;

  constructor(
    private readonly notebook: vscode.NotebookDocument,
    private readonly kernels: KernelManager,
    private readonly hooks: QueueHooks,
  ) {}

  get running(): CellRun | undefined {
    return this.current;
  }

  enqueue(runs: CellRun[]): Promise<void> {
    this.pending.push(...runs);
    return this.pump();
  }

  /** Ends every queued (not yet running) cell as cancelled. */
  cancelQueued(): void {
    for (const run of this.pending.splice(0)) void run.end(undefined);
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let run = this.pending.shift(); run; run = this.pending.shift()) {
        this.current = run;
        const ok = await this.runOne(run);
        this.current = undefined;
        if (!ok) this.cancelQueued();
      }
    } finally {
      this.current = undefined;
      this.pumping = false;
    }
  }

  /** Runs one cell; false when what follows must not run. Never throws. */
  private async runOne(run: CellRun): Promise<boolean> {
    let kernel: ManagedKernel;
    try {
      kernel = this.kernels.getOrStart(this.notebook);
    } catch (e) {
      run.start(0);
      await run.end(false, { name: "KernelStartError", message: `The kernel could not start: ${String(e)}` });
      return false;
    }
    this.hooks.attach(run, kernel);
    const order = this.hooks.nextOrder(kernel);
    run.start(order);
    let error: ErrorInfo | undefined;
    let status: "ok" | "error" | "interrupted" = "error";
    try {
      const r = await kernel.process.execute({ cellId: run.id, code: run.cell.document.getText(), executionCount: order });
      status = r.status;
      error = r.error;
    } catch (e) {
      error = e instanceof KernelDiedError
        ? { name: "KernelDied", message: `${e.exit.reason} The next run starts a fresh kernel.` }
        : { name: "KernelError", message: e instanceof Error ? e.message : String(e) };
    } finally {
      this.hooks.detach(run);
    }
    this.hooks.finished(run, kernel, status === "ok");
    await run.end(status === "ok", status === "ok" ? undefined : error);
    return status === "ok";
  }
}
