// The editor area: the .onnx custom editor, the ONNX text view, and the commands its buttons run. One call from
// activate(); everything lands in the extension scope.
import * as vscode from "vscode";
import type { Ctx } from "../ctx";
import { OnnxEditorProvider, ONNX_EDITOR_VIEW_TYPE } from "./onnxEditor";
import { registerCodeLenses } from "./codeLens";
import { requireTrust } from "./trust";

export { requireTrust } from "./trust";
import { targetModel } from "./modelFile";
import { benchmarkCells, modelNotebookCells, openTemplateNotebook } from "./notebookTemplate";
import { openAsOnnxText, OnnxTextProvider, registerTextView } from "./textView";

/** Runs `fn` on the command's model, or says how to pick one; failures become error messages, never throws. */
function onModel(ctx: Ctx, what: string, fn: (uri: vscode.Uri) => Thenable<unknown>): (arg?: unknown) => Promise<void> {
  return async (arg) => {
    const uri = targetModel(arg);
    if (!uri) {
      void vscode.window.showWarningMessage(`${what}: open an .onnx file first, or right-click one in the Explorer.`);
      return;
    }
    try {
      await fn(uri);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      ctx.log.error(`${what} ${uri.fsPath}: ${msg}`);
      void vscode.window.showErrorMessage(`${what}: ${msg}`);
    }
  };
}

export function registerEditor(ctx: Ctx): void {
  const scope = ctx.extensionScope;
  scope.add(
    vscode.window.registerCustomEditorProvider(ONNX_EDITOR_VIEW_TYPE, new OnnxEditorProvider(ctx.extension.extensionUri), {
      webviewOptions: { retainContextWhenHidden: false },
      supportsMultipleEditorsPerDocument: true,
    }),
  );
  scope.add(registerTextView(new OnnxTextProvider()));
  scope.add(registerCodeLenses());
  scope.add(vscode.commands.registerCommand("ptq.openAsOnnxText", onModel(ctx, "Open as ONNX text", openAsOnnxText)));
  scope.add(
    vscode.commands.registerCommand("ptq.openModelInNotebook", onModel(ctx, "Open in notebook", (uri) => openTemplateNotebook(modelNotebookCells(uri.fsPath)))),
  );
  scope.add(
    vscode.commands.registerCommand(
      "ptq.benchmarkModel",
      onModel(ctx, "Benchmark", async (uri) => {
        if (!vscode.workspace.isTrusted) return requireTrust("Benchmarking runs the model");
        return openTemplateNotebook(benchmarkCells(uri.fsPath, undefined));
      }),
    ),
  );
}
