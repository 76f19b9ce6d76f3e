// One kernel process per notebook: started on first run, replaced on restart, forgotten when it dies (the next run
// starts a fresh one). Each kernel gets a scope of its own for its listeners, disposed when it exits. Notifications
// that are not a cell's outputs (model and quantization state, the kernel's own log) are handled here.
import path from "node:path";
import * as vscode from "vscode";
import { Histograms, Log, ModelState, QuantState } from "../../kernel/protocol";
import { Scope, type Ctx } from "../ctx";
import { viewsApi } from "../views";
import { KernelProcess, type ExecutionProvider, type KernelExit } from "../../client/kernelProcess";

export interface KernelExitEvent {
  notebook: vscode.NotebookDocument;
  kernel: KernelProcess;
  exit: KernelExit;
}

export interface ManagedKernel {
  process: KernelProcess;
  /** Lives as long as this kernel process. */
  scope: Scope;
}

export function executionProvider(): ExecutionProvider {
  return vscode.workspace.getConfiguration("ptq.kernel").get<ExecutionProvider>("executionProvider", "cpu") === "cuda" ? "cuda" : "cpu";
}

function notebookDir(notebook: vscode.NotebookDocument): string {
  if (notebook.uri.scheme === "file") return path.dirname(notebook.uri.fsPath);
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
}

export class KernelManager implements vscode.Disposable {
  private readonly kernels = new Map<string, ManagedKernel>();
  private readonly exitEmitter = new vscode.EventEmitter<KernelExitEvent>();
  private readonly startEmitter = new vscode.EventEmitter<{ notebook: vscode.NotebookDocument; kernel: ManagedKernel }>();
  /** A kernel exited on its own or was shut down. */
  readonly onDidExit = this.exitEmitter.event;
  /** A kernel started; subscribe to its notifications here. */
  readonly onDidStart = this.startEmitter.event;

  constructor(private readonly ctx: Ctx) {}

  get(notebook: vscode.NotebookDocument): ManagedKernel | undefined {
    return this.kernels.get(notebook.uri.toString());
  }

  getOrStart(notebook: vscode.NotebookDocument): ManagedKernel {
    return this.get(notebook) ?? this.start(notebook);
  }

  private start(notebook: vscode.NotebookDocument): ManagedKernel {
    const key = notebook.uri.toString();
    const ep = executionProvider();
    const process = new KernelProcess({
      mainPath: vscode.Uri.joinPath(this.ctx.extension.extensionUri, "out", "kernel", "main.js").fsPath,
      cwd: notebookDir(notebook),
      executionProvider: ep,
    });
    const scope = new Scope(`kernel ${path.basename(notebook.uri.path)}`, this.ctx.log);
    const kernel: ManagedKernel = { process, scope };
    this.kernels.set(key, kernel);
    this.ctx.log.info(`kernel started for ${notebook.uri.toString(true)} (pid ${process.pid}, ${ep})`);

    const c = process.connection;
    scope.add(c.onNotification(Log.type, (p) => this.ctx.log[p.level](`kernel ${process.pid}: ${p.message}`)));
    scope.add(c.onNotification(ModelState.type, (m) => {
      if (m.source.startsWith("/") || /^[A-Za-z]:[\\/]/.test(m.source)) viewsApi()?.setModel(vscode.Uri.file(m.source));
    }));
    scope.add(c.onNotification(QuantState.type, (q) => viewsApi()?.setQuantState(q.tensors, q.warnBelowDb)));
    scope.add(c.onNotification(Histograms.type, (h) => viewsApi()?.setHistograms(h.histograms)));
    void process.exited.then((exit) => {
      if (this.kernels.get(key) === kernel) this.kernels.delete(key);
      this.ctx.log.info(`kernel ${process.pid} exited: ${exit.reason}`);
      this.exitEmitter.fire({ notebook, kernel: process, exit });
      scope.dispose();
    });
    this.startEmitter.fire({ notebook, kernel });
    return kernel;
  }

  /** Shuts the notebook's kernel down (gracefully, then killed); the next run starts a fresh one. */
  async shutdown(notebook: vscode.NotebookDocument): Promise<void> {
    const k = this.get(notebook);
    if (!k) return;
    this.kernels.delete(notebook.uri.toString());
    await k.process.shutdown();
  }

  /** Kills the kernel at once with a reason (a busy kernel that ignored an interrupt). */
  kill(notebook: vscode.NotebookDocument, reason: string): void {
    const k = this.get(notebook);
    if (!k) return;
    this.kernels.delete(notebook.uri.toString());
    k.process.kill(reason);
  }

  dispose(): void {
    for (const k of this.kernels.values()) void k.process.shutdown(300);
    this.kernels.clear();
    this.exitEmitter.dispose();
    this.startEmitter.dispose();
  }
}
