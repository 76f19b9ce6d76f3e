// The extension's context: its log and its two disposal scopes, as rust-analyzer's ctx.ts does it. Whatever lives as
// long as the extension goes into `ctx.extensionScope`; whatever lives as long as one kernel process (its client,
// listeners, status items) goes into the scope returned by `beginKernelScope()`, which a kernel restart replaces.
import * as vscode from "vscode";

/** A bag of disposables. `dispose()` is idempotent, runs in reverse order and survives a throwing item. */
export class Scope implements vscode.Disposable {
  private items: vscode.Disposable[] = [];
  private disposed = false;

  constructor(
    readonly name: string,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Adds a disposable; adding to a disposed scope disposes it at once, so nothing outlives its scope. */
  add<T extends vscode.Disposable>(item: T): T {
    if (this.disposed) {
      this.disposeOne(item);
    } else {
      this.items.push(item);
    }
    return item;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const items = this.items.reverse();
    this.items = [];
    for (const item of items) this.disposeOne(item);
  }

  private disposeOne(item: vscode.Disposable): void {
    try {
      item.dispose();
    } catch (e) {
      this.log.error(`scope '${this.name}': dispose failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    }
  }
}

export class Ctx implements vscode.Disposable {
  readonly log: vscode.LogOutputChannel;
  /** Lives until the extension deactivates (tied to `context.subscriptions`). */
  readonly extensionScope: Scope;
  private kernel: Scope | undefined;

  constructor(readonly extension: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel("PTQ Studio", { log: true });
    this.extensionScope = new Scope("extension", this.log);
    // context.subscriptions disposes in order; ours disposes the kernel scope first, then the extension scope, then
    // the log, so late log lines from disposal still have somewhere to go.
    extension.subscriptions.push(this, this.log);
  }

  get version(): string {
    return String(this.extension.extension.packageJSON.version);
  }

  /** The current kernel's scope, if a kernel is running. */
  get kernelScope(): Scope | undefined {
    return this.kernel?.isDisposed ? undefined : this.kernel;
  }

  /** Starts a new kernel-life scope; the previous one (a kernel being replaced) is disposed first. */
  beginKernelScope(): Scope {
    this.endKernelScope();
    this.kernel = new Scope("kernel", this.log);
    return this.kernel;
  }

  endKernelScope(): void {
    this.kernel?.dispose();
    this.kernel = undefined;
  }

  dispose(): void {
    this.endKernelScope();
    this.extensionScope.dispose();
  }
}
