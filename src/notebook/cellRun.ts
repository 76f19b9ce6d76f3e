// One cell's execution, from queued to ended. It owns the NotebookCellExecution and guarantees `end()` is called
// exactly once whatever happens. Streams append to the cell's last output while the same stream keeps writing
// (one output per run of stdout or stderr, like Jupyter); displays with an id and progress bars are replaced in
// place.
import * as vscode from "vscode";
import { progressText } from "../../client/notebook/outputs";
import type { ErrorInfo, MimeBundle, ProgressState } from "../../kernel/protocol";

export type CellRunState = "queued" | "running" | "ended";

function toItems(bundle: MimeBundle): vscode.NotebookCellOutputItem[] {
  const items: vscode.NotebookCellOutputItem[] = [];
  for (const [mime, data] of Object.entries(bundle)) {
    if (mime.startsWith("image/") && mime !== "image/svg+xml" && typeof data === "string") {
      items.push(new vscode.NotebookCellOutputItem(Buffer.from(data, "base64"), mime));
    } else if (mime === "application/json" || mime.endsWith("+json")) {
      items.push(vscode.NotebookCellOutputItem.json(data, mime));
    } else {
      items.push(vscode.NotebookCellOutputItem.text(typeof data === "string" ? data : JSON.stringify(data), mime));
    }
  }
  return items;
}

export class CellRun {
  state: CellRunState = "queued";
  private readonly execution: vscode.NotebookCellExecution;
  private lastStream: { name: string; output: vscode.NotebookCellOutput; text: string } | undefined;
  private readonly displays = new Map<string, vscode.NotebookCellOutput>();
  /** Output updates are chained so they reach VS Code in the order the kernel sent them. */
  private chain: Thenable<unknown> = Promise.resolve();

  constructor(
    readonly cell: vscode.NotebookCell,
    controller: vscode.NotebookController,
    readonly id: string,
  ) {
    this.execution = controller.createNotebookCellExecution(cell);
  }

  get token(): vscode.CancellationToken {
    return this.execution.token;
  }

  start(order: number): void {
    this.state = "running";
    this.execution.executionOrder = order;
    this.execution.start(Date.now());
    this.enqueue(() => this.execution.clearOutput());
  }

  private enqueue(op: () => Thenable<void>): void {
    this.chain = this.chain.then(op, op);
  }

  stream(name: "stdout" | "stderr", text: string): void {
    if (this.state !== "running") return;
    const mime = name === "stdout" ? "application/vnd.code.notebook.stdout" : "application/vnd.code.notebook.stderr";
    const item = () => (name === "stdout" ? vscode.NotebookCellOutputItem.stdout : vscode.NotebookCellOutputItem.stderr);
    if (this.lastStream?.name === name) {
      const s = this.lastStream;
      s.text += text;
      const all = s.text;
      this.enqueue(() => this.execution.replaceOutputItems(item()(all), s.output));
      return;
    }
    const output = new vscode.NotebookCellOutput([new vscode.NotebookCellOutputItem(Buffer.from(text), mime)]);
    this.lastStream = { name, output, text };
    this.enqueue(() => this.execution.appendOutput(output));
  }

  display(bundle: MimeBundle, displayId?: string): void {
    if (this.state !== "running") return;
    this.lastStream = undefined;
    const output = new vscode.NotebookCellOutput(toItems(bundle), displayId ? { displayId } : undefined);
    if (displayId) this.displays.set(displayId, output);
    this.enqueue(() => this.execution.appendOutput(output));
  }

  /** Replaces a display made by this cell; false when the id is not ours. */
  updateDisplay(displayId: string, bundle: MimeBundle): boolean {
    const output = this.displays.get(displayId);
    if (!output || this.state !== "running") return false;
    this.enqueue(() => this.execution.replaceOutputItems(toItems(bundle), output));
    return true;
  }

  progress(p: ProgressState): void {
    const text = progressText(p);
    if (!this.updateDisplay(p.progressId, { "text/plain": text })) this.display({ "text/plain": text }, p.progressId);
  }

  /** Ends the execution (once): success, an error output, or cancelled (`undefined`: queued and never ran). */
  async end(success: boolean | undefined, error?: ErrorInfo): Promise<void> {
    if (this.state === "ended") return;
    const wasRunning = this.state === "running";
    this.state = "ended";
    if (error && wasRunning) {
      const e = Object.assign(new Error(error.message), { name: error.name, stack: error.stack ?? `${error.name}: ${error.message}` });
      const op = () => this.execution.appendOutput(new vscode.NotebookCellOutput([vscode.NotebookCellOutputItem.error(e)]));
      this.chain = this.chain.then(op, op);
    }
    try {
      await this.chain;
    } catch {
      // An output that could not be written must not keep the cell from ending.
    }
    if (!wasRunning) this.execution.start(Date.now());
    this.execution.end(success, Date.now());
  }
}
