// The one refusal every model-running action gives in an untrusted workspace: what it would do, why not, and the
// way to trust the folder.
import * as vscode from "vscode";

/** Untrusted workspaces run no models: say why and offer to manage trust. */
export async function requireTrust(what: string): Promise<void> {
  const pick = await vscode.window.showWarningMessage(
    `${what}, which executes native code from onnxruntime on this machine; PTQ Studio does that only in a trusted workspace.`,
    "Manage Workspace Trust",
  );
  if (pick) await vscode.commands.executeCommand("workbench.trust.manage");
}
