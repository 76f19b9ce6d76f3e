// One cell's outputs in nbformat 4 form, built from what the kernel sends while the cell runs: the same rules the
// extension's CellRun applies to VS Code outputs (one stream output per run of stdout or stderr, displays with an
// id and progress bars replaced in place), so a notebook executed by `ptq notebook run` saves what VS Code shows.
import type { ErrorInfo, MimeBundle, ProgressState } from "../../kernel/protocol";

export type NbOutput =
  | { output_type: "stream"; name: "stdout" | "stderr"; text: string }
  | { output_type: "display_data"; data: MimeBundle; metadata: Record<string, unknown> }
  | { output_type: "error"; ename: string; evalue: string; traceback: string[] };

/** Seconds as "12 s", "3 min 05 s", "1 h 02 min". */
function formatEta(s: number): string {
  const t = Math.max(0, Math.round(s));
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} min ${String(t % 60).padStart(2, "0")} s`;
  return `${Math.floor(t / 3600)} h ${String(Math.floor((t % 3600) / 60)).padStart(2, "0")} min`;
}

/** ", ETA 1 min 15 s" while something is left (no ETA once the count is complete), else "". Shared with the CLI's line. */
export function etaSuffix(done: number | undefined, total: number | undefined, etaSeconds: number | undefined): string {
  const complete = total !== undefined && done !== undefined && done >= total;
  return !complete && etaSeconds !== undefined && Number.isFinite(etaSeconds) ? `, ETA ${formatEta(etaSeconds)}` : "";
}

/** The text of a progress output: a bar when the total is known, the unit counted, the ETA while it runs. Shared with the extension's cell outputs. */
export function progressText(p: Omit<ProgressState, "progressId">): string {
  const unit = p.unit ? ` ${p.unit}` : "";
  const eta = p.finished ? "" : etaSuffix(p.done, p.total, p.etaSeconds);
  if (p.total === undefined || p.total <= 0) return `${p.label}: ${p.done}${unit}${p.finished ? " (done)" : " …"}`;
  const width = 30;
  const filled = Math.min(width, Math.round((p.done / p.total) * width));
  return `${p.label} [${"█".repeat(filled)}${"░".repeat(width - filled)}] ${p.done}/${p.total}${unit}${p.finished ? " done" : eta}`;
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

  progress(p: ProgressState): void {
    const text = progressText(p);
    if (!this.updateDisplay(p.progressId, { "text/plain": text })) this.display({ "text/plain": text }, p.progressId);
  }

  error(e: ErrorInfo): void {
    this.lastStream = undefined;
    const traceback = (e.stack ?? `${e.name}: ${e.message}`).split("\n");
    this.outputs.push({ output_type: "error", ename: e.name, evalue: e.message, traceback });
  }
}
