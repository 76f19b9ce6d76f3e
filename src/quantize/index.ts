// "Quantize model…" (explorer context menu, ONNX editor, palette): wizard → a config beside the output
// (OUT.ptq.json) → `ptq quantize --config` in a child process with a cancellable progress notification → atomic
// rename beside the input → `ptq report` → report webview, which shows the command that runs the config again.
import { existsSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import path from "node:path";
import * as vscode from "vscode";
import type { Ctx } from "../ctx";
import { requireTrust } from "../editor";
import { targetModel } from "../editor/modelFile";
import { openTemplateNotebook } from "../editor/notebookTemplate";
import { ONNX_EDITOR_VIEW_TYPE } from "../editor/onnxEditor";
import { viewsApi } from "../views";
import { defaultOptions, quantizeArgs, reportArgs, reproduceCommand, type QuantizeOptions } from "./options";
import { writeRandomCalibrationFile } from "./randomCalib";
import { prepareReportData, removeReportData, type ReportData } from "./reportData";
import { randomCalibrationFile, reproduceCells } from "./reproduce";
import { writeRunConfig, type RunConfig } from "./runConfig";
import { quantizerNotes, type QuantizeReportView, type QuantizeSummarySubset, type ReportSubset } from "./reportHtml";
import { showReportPanel } from "./reportPanel";
import { parseJsonOutput, runCli } from "./runner";
import { RANDOM_DATA_WARNING, runWizard } from "./wizard";

/** What the command resolves to (the in-VS-Code tests read it). */
export interface QuantizeOutcome {
  output?: string;
  panel?: vscode.WebviewPanel;
  error?: string;
  cancelled?: boolean;
}

function tail(s: string, lines = 6): string {
  return s.trim().split("\n").slice(-lines).join("\n");
}

export async function quantizeWithProgress(ctx: Ctx, o: QuantizeOptions): Promise<QuantizeOutcome> {
  const cli = vscode.Uri.joinPath(ctx.extension.extensionUri, "out", "cli.js").fsPath;
  const cwd = path.dirname(o.input);
  // The CLI writes a hidden temp file; only a complete model is renamed onto the chosen name.
  const tmp = path.join(cwd, `.${path.basename(o.output)}.${process.pid}.tmp`);
  const t0 = Date.now();
  // Calibration and report data are disjoint: held-out samples, or a note on the page saying why there are none.
  let data: ReportData;
  let config: RunConfig;
  try {
    const model = fromBinary(ModelProtoSchema, readFileSync(o.input));
    data = prepareReportData(o, model);
    try {
      config = writeRunConfig(o, model, data);
    } catch (e) {
      removeReportData(data);
      throw e;
    }
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
  const args = quantizeArgs(o, tmp, config.file, config.calib);
  let succeeded = false;
  try {
    return await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Quantizing ${path.basename(o.input)}`, cancellable: true },
    async (progress, token): Promise<QuantizeOutcome> => {
      progress.report({ message: `${o.scheme}…` });
      ctx.log.info(`quantize: node ${cli} ${args.join(" ")}`);
      const q = await runCli(cli, args, cwd, token, (l) => progress.report({ message: l.slice(0, 120) }));
      if (q.cancelled || q.code !== 0) {
        rmSync(tmp, { force: true });
        if (q.cancelled) return { cancelled: true };
        const missing = /unknown command "quantize"/.test(q.stderr);
        const error = missing ? "this build's ptq CLI has no quantize command yet" : `ptq quantize failed (exit ${q.code}):\n${tail(q.stderr)}`;
        return { error };
      }
      renameSync(tmp, o.output);
      succeeded = true;
      const quantJson = safeJson<QuantizeSummarySubset>(q.stdout);
      const seconds = (Date.now() - t0) / 1000;
      progress.report({ message: "measuring FP32 vs quantized (size, latency, agreement)…" });
      const r = await runCli(cli, reportArgs(o, data), cwd, token);
      const view: QuantizeReportView = {
        input: o.input, output: o.output, scheme: o.scheme, seconds,
        inputBytes: statSync(o.input).size, outputBytes: statSync(o.output).size,
        warnings: o.randomData ? [RANDOM_DATA_WARNING] : [],
        notes: quantizerNotes(quantJson),
        sqnr: quantJson?.sqnr,
        dataNote: data.note,
        reproduce: reproduceCommand(o),
      };
      if (r.cancelled) view.reportError = "measurement cancelled";
      else if (r.code !== 0) view.reportError = `ptq report failed (exit ${r.code}): ${tail(r.stderr, 3)}`;
      else view.report = safeJson<ReportSubset>(r.stdout);
      const panel = showReportPanel(ctx.extension.extensionUri, view, (command) => {
        if (command === "ptq.openReportInNotebook") void openReproduction(o).then(undefined, (e: unknown) => ctx.log.error(`open in notebook: ${String(e)}`));
        if (command === "ptq.openQuantized") void vscode.commands.executeCommand("vscode.openWith", vscode.Uri.file(o.output), ONNX_EDITOR_VIEW_TYPE);
      });
      viewsApi()?.setModel(vscode.Uri.file(o.output));
      return { output: o.output, panel };
    },
  );
  } finally {
    removeReportData(data);
    if (!succeeded) for (const f of config.created) rmSync(f, { force: true });
  }
}

/** "Open in notebook": a random-data run's samples are written beside its model first, so the notebook reuses them. */
async function openReproduction(o: QuantizeOptions): Promise<vscode.NotebookEditor> {
  const random = o.scheme === "int8-static" && o.randomData
    ? writeRandomCalibrationFile(fromBinary(ModelProtoSchema, readFileSync(o.input)), o.input, randomCalibrationFile(o), o.shapes)
    : undefined;
  return openTemplateNotebook(reproduceCells(o, random));
}

function safeJson<T>(stdout: string): T | undefined {
  try {
    return parseJsonOutput<T>(stdout, "ptq");
  } catch {
    return undefined;
  }
}

export function registerQuantize(ctx: Ctx): void {
  ctx.extensionScope.add(
    vscode.commands.registerCommand("ptq.quantizeModel", async (arg?: unknown, preset?: Partial<QuantizeOptions>): Promise<QuantizeOutcome> => {
      const uri = targetModel(arg);
      if (!uri) {
        void vscode.window.showWarningMessage("Quantize model: right-click an .onnx file in the Explorer, or open one first.");
        return { error: "no model" };
      }
      if (!vscode.workspace.isTrusted) {
        await requireTrust("Quantizing runs the model");
        return { error: "untrusted workspace" };
      }
      // A preset (tests, notebooks) skips the wizard; it still never overwrites an existing file. The Explorer passes
      // the selected URIs as the second argument: that is not a preset.
      if (Array.isArray(preset) || preset instanceof vscode.Uri || typeof preset !== "object") preset = undefined;
      const o = preset ? { ...defaultOptions(uri.fsPath, preset.scheme), ...preset } : await runWizard(uri);
      if (!o) return { cancelled: true };
      if (preset && existsSync(o.output) && !preset.output) return { error: `${o.output} exists; pass output to replace it` };
      const result = await quantizeWithProgress(ctx, o);
      if (result.error) {
        ctx.log.error(`quantize ${uri.fsPath}: ${result.error}`);
        void vscode.window.showErrorMessage(`Quantize ${path.basename(uri.fsPath)}: ${result.error}`, "Show Log").then((c) => c && ctx.log.show());
      }
      return result;
    }),
  );
}
