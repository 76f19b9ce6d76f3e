// One cell's outputs in nbformat 4 form, built from what the kernel sends while the cell runs: the same rules the
// extension's CellRun applies to VS Code outputs (one stream output per run of stdout or stderr, displays with an
// id and progress bars replaced in place), so a notebook executed by `ptq notebook run` saves what VS Code shows.
import type { ErrorInfo, MimeBundle } from "../../kernel/protocol";

export type NbOutput =
  | { output_type: "stream"; name: "stdout" | "stderr"; text: string }
  | { output_type: "display_data"; data: MimeBundle; metadata: Record<string, unknown> }
  | { output_type: "error"; ename: string; evalue: string; traceback: string[] };

/** The text of a progress output: a bar when the total is known. Shared with the extension's cell outputs. */
export function progressText(label: string, done: number, total: number | undefined, finished: boolean): string {
  if (total === undefined || total <= 0) return `${label}: ${done}${finished ? " (done)" : " …"}`;
  const width = 30;
  const filled = Math.min(width, Math.round((done / total) * width));
  return `${label} [${"█".repeat(filled)}${"░".repeat(width - filled)}] ${done}/${total}${finished ? " done" : ""}`;
}

export class CellOutputs {
  readonly outputs: NbOutput[] = [];
  private lastStream: Extract<NbOutput, { output_type: "stream" }> | undefined;
  private readonly displays = new Map<string, Extract<NbOutput, { output_type: "display_data" }>>();

  stream(name: "stdout" | "stderr", text: string): void {
    if (this.lastStream?.name === name) {
      this.lastStream.text += text;
      return;
    }
    this.lastStream = { output_type: "stream", name, text };
    this.outputs.push(this.lastStream);
  }

  display(bundle: MimeBundle, displayId?: string): void {
    this.lastStream = undefined;
    const output = { output_type: "display_data" as const, data: bundle, metadata: {} };
    if (displayId) this.displays.set(displayId, output);
    this.outputs.push(output);
  }

  /** Replaces a display this cell made; false when the id is not one of its displays. */
  updateDisplay(displayId: string, bundle: MimeBundle): boolean {
    const output = this.displays.get(displayId);
    if (!output) return false;
    output.data = bundle;
    return true;
  }

  progress(progressId: string, label: string, done: number, total: number | undefined, finished: boolean): void {
    const text = progressText(label, done, total, finished);
    if (!this.updateDisplay(progressId, { "text/plain": text })) this.display({ "text/plain": text }, progressId);
  }

  error(e: ErrorInfo): void {
    this.lastStream = undefined;
    const traceback = (e.stack ?? `${e.name}: ${e.message}`).split("\n");
    this.outputs.push({ output_type: "error", ename: e.name, evalue: e.message, traceback });
  }
}
