// Extension entry. It stays light: no native module is loaded here (onnxruntime-node runs in the kernel process
// only), which test/vscode/suite/activation.test.ts asserts.
import type * as vscode from "vscode";
import { commands, registerCommands } from "./commands";
import { Ctx } from "./ctx";
import { registerEditor } from "./editor";
import { registerNotebookKernel, type NotebookKernelApi } from "./notebook";
import { registerQuantize } from "./quantize";
import { registerViews } from "./views";

/** What `vscode.extensions.getExtension("ptq-studio.ptq-studio").exports` gives (used by the in-VS-Code tests). */
export interface PtqStudioApi {
  readonly ctx: Ctx;
  readonly notebook: NotebookKernelApi;
}

export function activate(context: vscode.ExtensionContext): PtqStudioApi {
  const ctx = new Ctx(context);
  registerCommands(ctx, commands);
  // Feature areas register here, one line each, putting what they create into ctx's scopes:
  registerViews(ctx); registerEditor(ctx); registerQuantize(ctx); // editor area: tree views, ONNX editor/text view, code lenses, Quantize model…

  const notebook = registerNotebookKernel(ctx); // notebook area: PTQ kernel controller for .ipynb, kernel processes, cell completion/hover

  ctx.log.info(`PTQ Studio ${ctx.version} activated`);
  return { ctx, notebook };
}

// Everything is disposed through context.subscriptions (see Ctx).
export function deactivate(): void {}
