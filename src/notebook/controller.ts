// The notebook controller for VS Code's built-in `jupyter-notebook` type: TypeScript cells run in a PTQ kernel
// process per notebook. It routes each kernel's notifications to the cell that is running, implements interrupt
// (prompt for an awaiting cell; kill and restart within 5 s for a busy one) and refuses to run anything in an
// untrusted workspace, because cells are arbitrary code with the user's file and network access.
import * as vscode from "vscode";
import { Display, Progress, Stream, UpdateDisplay } from "../../kernel/protocol";
import type { Ctx } from "../ctx";
import type { KernelManager, ManagedKernel } from "../kernel/manager";
import { CellRun } from "./cellRun";
import { ExecutionQueue } from "./executionQueue";

export const CONTROLLER_ID = "ptq-kernel";
/** The kernelspec our notebooks are saved with (Jupyter's field; it makes VS Code prefer this controller). */
export const KERNELSPEC = { name: "ptq", display_name: "PTQ (TypeScript)", language: "typescript" };
const SWITCH = "Switch to TypeScript";
/** How long a cell may ignore an interrupt before its kernel is killed and restarted (the issue allows 5 s). */
export const INTERRUPT_GRACE_MS = 2000;
const UNTRUSTED = "The PTQ kernel does not run in an untrusted workspace: notebook cells are arbitrary code with your file and network access. Trust this workspace (Workspaces: Manage Workspace Trust) to run them.";

const isTypeScript = (cell: vscode.NotebookCell) => cell.document.languageId === "typescript";

export class PtqController implements vscode.Disposable {
  readonly controller: vscode.NotebookController;
  private readonly queues = new Map<string, ExecutionQueue>();
  private readonly runs = new Map<string, CellRun>();
  private readonly orders = new WeakMap<ManagedKernel, number>();
  /** Per kernel, the cells (document URIs) that ran to completion in it: what a later cell can rely on. */
  private readonly ranOk = new WeakMap<ManagedKernel, Set<string>>();
  private readonly adopting = new Map<string, Promise<void>>();
  private nextRunId = 1;

  constructor(
    private readonly ctx: Ctx,
    private readonly kernels: KernelManager,
  ) {
    this.controller = vscode.notebooks.createNotebookController(CONTROLLER_ID, "jupyter-notebook", "PTQ (TypeScript)");
    // Python too, though cells run as TypeScript: VS Code skips cells in languages a controller does not list, so a
    // new notebook's Python cells would make Run All do nothing without a word. execute() answers them instead.
    this.controller.supportedLanguages = ["typescript", "python"];
    this.controller.supportsExecutionOrder = true;
    this.controller.description = "TypeScript kernel with the ptq quantization API";
    this.controller.executeHandler = (cells, notebook) => this.execute(cells, notebook);
    this.controller.interruptHandler = (notebook) => this.interrupt(notebook);
    kernels.onDidStart(({ kernel }) => this.wire(kernel));
    this.controller.onDidChangeSelectedNotebooks(({ notebook, selected }) => {
      if (!selected) return;
      this.preStart(notebook);
      void this.adopt(notebook).catch((e) => this.ctx.log.error(`switching ${notebook.uri.toString(true)} to TypeScript: ${String(e)}`));
    });
  }

  /**
   * Starts the notebook's kernel before its first run: creating the TypeScript compiler takes seconds (parsing the
   * standard library and Node's typings), which the user would otherwise wait for on the first cell. Never in an
   * untrusted workspace, and not when the `ptq.kernel.startOnOpen` setting is off.
   */
  preStart(notebook: vscode.NotebookDocument): void {
    if (!vscode.workspace.isTrusted || notebook.isClosed) return;
    if (!vscode.workspace.getConfiguration("ptq.kernel").get<boolean>("startOnOpen", true)) return;
    if (this.kernels.get(notebook)) return;
    this.ctx.log.info(`pre-starting the kernel for ${notebook.uri.toString(true)}`);
    this.kernels.getOrStart(notebook);
  }

  /**
   * With this kernel selected a notebook's code cells must be TypeScript: VS Code hands a controller only cells in
   * its supported languages, so a Python cell would be skipped without a word. Empty cells switch at once; cells
   * with code in another language switch only if the user agrees (that code will not run as TypeScript). The
   * notebook then records our kernelspec, so it reopens with this kernel.
   */
  adopt(notebook: vscode.NotebookDocument): Promise<void> {
    // Selecting the kernel and Run All arrive together: one question per notebook at a time.
    const key = notebook.uri.toString();
    let pending = this.adopting.get(key);
    if (!pending) {
      pending = this.switchToTypeScript(notebook).finally(() => this.adopting.delete(key));
      this.adopting.set(key, pending);
    }
    return pending;
  }

  private async switchToTypeScript(notebook: vscode.NotebookDocument): Promise<void> {
    if (notebook.notebookType !== "jupyter-notebook" || notebook.isClosed) return;
    const foreign = notebook.getCells().filter((c) => c.kind === vscode.NotebookCellKind.Code && c.document.languageId !== "typescript");
    const withCode = foreign.filter((c) => c.document.getText().trim() !== "");
    if (withCode.length) {
      const languages = [...new Set(withCode.map((c) => c.document.languageId))].join(", ");
      const choice = await vscode.window.showWarningMessage(
        `PTQ (TypeScript) runs TypeScript cells; ${withCode.length} cell(s) of this notebook are ${languages} and will not run. Switch them to TypeScript, or select another kernel.`,
        SWITCH,
      );
      if (choice !== SWITCH) return;
    }
    for (const c of foreign) await vscode.languages.setTextDocumentLanguage(c.document, "typescript");
    const meta = (notebook.metadata?.metadata ?? {}) as { kernelspec?: { name?: string } };
    if (meta.kernelspec?.name === KERNELSPEC.name) return;
    const edit = new vscode.WorkspaceEdit();
    edit.set(notebook.uri, [
      vscode.NotebookEdit.updateNotebookMetadata({ ...notebook.metadata, metadata: { ...meta, kernelspec: KERNELSPEC, language_info: { name: "typescript" } } }),
    ]);
    await vscode.workspace.applyEdit(edit);
  }

  /** Whether `cell` ran successfully in its notebook's current kernel (a restart forgets everything). */
  ranInKernel(cell: vscode.NotebookCell): boolean {
    const kernel = this.kernels.get(cell.notebook);
    return kernel !== undefined && (this.ranOk.get(kernel)?.has(cell.document.uri.toString()) ?? false);
  }

  /** Prefer this controller for notebooks saved with our kernelspec. */
  updateAffinity(notebook: vscode.NotebookDocument): void {
    if (notebook.notebookType !== "jupyter-notebook") return;
    const spec = (notebook.metadata?.metadata as { kernelspec?: { name?: string } } | undefined)?.kernelspec
      ?? (notebook.metadata as { kernelspec?: { name?: string } }).kernelspec;
    if (spec?.name !== KERNELSPEC.name) return;
    this.controller.updateNotebookAffinity(notebook, vscode.NotebookControllerAffinity.Preferred);
    // Saved with our kernel: it will run here, so have the kernel ready by the time the user runs a cell.
    this.preStart(notebook);
  }

  private queue(notebook: vscode.NotebookDocument): ExecutionQueue {
    const key = notebook.uri.toString();
    let q = this.queues.get(key);
    if (!q) {
      q = new ExecutionQueue(notebook, this.kernels, {
        attach: (run) => this.runs.set(run.id, run),
        detach: (run) => this.runs.delete(run.id),
        nextOrder: (kernel) => {
          const n = (this.orders.get(kernel) ?? 0) + 1;
          this.orders.set(kernel, n);
          return n;
        },
        finished: (run, kernel, ok) => {
          let cells = this.ranOk.get(kernel);
          if (!cells) this.ranOk.set(kernel, (cells = new Set()));
          if (ok) cells.add(run.cell.document.uri.toString());
          else cells.delete(run.cell.document.uri.toString());
        },
      });
      this.queues.set(key, q);
    }
    return q;
  }

  private async execute(cells: vscode.NotebookCell[], notebook: vscode.NotebookDocument): Promise<void> {
    const runs = cells.map((cell) => new CellRun(cell, this.controller, `run-${this.nextRunId++}`));
    if (!vscode.workspace.isTrusted) {
      for (const run of runs) {
        run.start(0);
        await run.end(false, { name: "UntrustedWorkspace", message: UNTRUSTED });
      }
      return;
    }
    if (cells.some((c) => c.document.languageId !== "typescript")) await this.adopt(notebook);
    const [typescript, other] = [runs.filter((r) => isTypeScript(r.cell)), runs.filter((r) => !isTypeScript(r.cell))];
    for (const run of other) {
      run.start(0);
      await run.end(false, {
        name: "NotTypeScript",
        message: `This cell is ${run.cell.document.languageId}: the PTQ kernel runs TypeScript. Switch the cell's language to TypeScript (bottom right of the cell), or select another kernel.`,
      });
    }
    await this.queue(notebook).enqueue(typescript);
  }

  /** Sends one kernel's cell outputs to the runs they belong to; output of no running cell goes to the log. */
  private wire(kernel: ManagedKernel): void {
    const c = kernel.process.connection;
    const scope = kernel.scope;
    const orphan = (what: string) => this.ctx.log.info(`kernel ${kernel.process.pid} (no running cell): ${what.trimEnd()}`);
    scope.add(c.onNotification(Stream.type, (p) => {
      const run = this.runs.get(p.cellId);
      if (run?.state === "running") run.stream(p.name, p.text);
      else orphan(p.text);
    }));
    scope.add(c.onNotification(Display.type, (p) => {
      const run = this.runs.get(p.cellId);
      if (run?.state === "running") run.display(p.bundle, p.displayId);
      else orphan(JSON.stringify(p.bundle).slice(0, 200));
    }));
    scope.add(c.onNotification(UpdateDisplay.type, (p) => {
      for (const run of this.runs.values()) if (run.updateDisplay(p.displayId, p.bundle)) return;
    }));
    scope.add(c.onNotification(Progress.type, (p) => {
      this.runs.get(p.cellId)?.progress(p);
    }));
    // Native code writes around the kernel's capture: give it to the notebook's running cell.
    scope.add(kernel.process.onRawOutput((o) => {
      const running = [...this.queues.values()].find((q) => q.running && this.kernels.get(q.running.cell.notebook) === kernel)?.running;
      if (running) running.stream(o.name, o.text);
      else orphan(o.text);
    }));
  }

  /** Interrupt: queued cells are cancelled; the running one is interrupted, or its kernel restarted if busy. */
  async interrupt(notebook: vscode.NotebookDocument): Promise<void> {
    const q = this.queue(notebook);
    q.cancelQueued();
    const kernel = this.kernels.get(notebook);
    const run = q.running;
    this.ctx.log.info(`interrupt ${notebook.uri.toString(true)}: ${run ? "a cell is running" : "nothing running"}${kernel ? `, kernel ${kernel.process.pid}` : ""}`);
    if (!kernel || !run) return;
    await kernel.process.interrupt();
    await new Promise((r) => setTimeout(r, INTERRUPT_GRACE_MS));
    if (q.running === run && run.state === "running" && kernel.process.running) {
      const reason = "The kernel was busy and did not respond to the interrupt, so it was restarted. All variables and loaded models were lost.";
      this.kernels.kill(notebook, reason);
      await kernel.process.exited;
      this.kernels.getOrStart(notebook);
      void vscode.window.showWarningMessage(reason);
    }
  }

  /** Restart: cancel what is queued, stop the kernel, start a fresh one. */
  async restart(notebook: vscode.NotebookDocument): Promise<void> {
    this.queue(notebook).cancelQueued();
    await this.kernels.shutdown(notebook);
    if (vscode.workspace.isTrusted) this.kernels.getOrStart(notebook);
  }

  async shutdown(notebook: vscode.NotebookDocument): Promise<void> {
    this.queue(notebook).cancelQueued();
    await this.kernels.shutdown(notebook);
  }

  dispose(): void {
    for (const q of this.queues.values()) q.cancelQueued();
    this.queues.clear();
    this.controller.dispose();
  }
}
