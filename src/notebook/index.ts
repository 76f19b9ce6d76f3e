// The notebook area: the PTQ kernel controller for .ipynb notebooks, its kernels, completion/hover in cells, and
// the restart/shutdown/interrupt commands. One call from activate().
import * as vscode from "vscode";
import type { Ctx } from "../ctx";
import { KernelManager } from "../kernel/manager";
import { openTemplateNotebook, starterNotebookCells } from "../editor/notebookTemplate";
import { CONTROLLER_ID, PtqController } from "./controller";
import { registerCellProviders } from "./providers";

export interface NotebookKernelApi {
  readonly controller: PtqController;
  readonly kernels: KernelManager;
}

let api: NotebookKernelApi | undefined;

/** The registered kernel controller (for the in-VS-Code tests). */
export function notebookKernelApi(): NotebookKernelApi | undefined {
  return api;
}

function activeNotebook(arg: unknown): vscode.NotebookDocument | undefined {
  const uri = arg instanceof vscode.Uri ? arg : (arg as { notebookEditor?: { notebookUri?: vscode.Uri } } | undefined)?.notebookEditor?.notebookUri;
  if (uri) return vscode.workspace.notebookDocuments.find((nb) => nb.uri.toString() === uri.toString());
  return vscode.window.activeNotebookEditor?.notebook;
}

export function registerNotebookKernel(ctx: Ctx): NotebookKernelApi {
  const scope = ctx.extensionScope;
  const kernels = scope.add(new KernelManager(ctx));
  const controller = scope.add(new PtqController(ctx, kernels));
  for (const d of registerCellProviders(kernels)) scope.add(d);
  for (const nb of vscode.workspace.notebookDocuments) controller.updateAffinity(nb);
  scope.add(vscode.workspace.onDidOpenNotebookDocument((nb) => controller.updateAffinity(nb)));
  // A closed notebook's kernel holds memory and models for nothing; reopening starts a fresh one.
  scope.add(vscode.workspace.onDidCloseNotebookDocument((nb) => void kernels.shutdown(nb)));

  const onNotebook = (what: string, fn: (nb: vscode.NotebookDocument) => Promise<void>) => async (arg: unknown) => {
    const nb = activeNotebook(arg);
    if (!nb) return void vscode.window.showWarningMessage(`${what}: open a notebook first.`);
    await fn(nb);
  };
  const cmd = (id: string, fn: (arg: unknown) => unknown) => scope.add(vscode.commands.registerCommand(id, fn));
  cmd("ptq.kernel.restart", onNotebook("Restart kernel", async (nb) => {
    await controller.restart(nb);
    void vscode.window.showInformationMessage("PTQ kernel restarted: all variables were cleared.");
  }));
  cmd("ptq.kernel.shutdown", onNotebook("Shut down kernel", (nb) => controller.shutdown(nb)));
  cmd("ptq.kernel.interrupt", onNotebook("Interrupt kernel", (nb) => controller.interrupt(nb)));
  cmd("ptq.newNotebook", async () => {
    const editor = await openTemplateNotebook(starterNotebookCells());
    // Our kernelspec makes this controller preferred; selecting it outright spares the user the kernel picker.
    await vscode.commands.executeCommand("notebook.selectKernel", { notebookEditor: editor, id: CONTROLLER_ID, extension: ctx.extension.extension.id });
    return editor;
  });
  api = { controller, kernels };
  return api;
}
