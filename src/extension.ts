import * as vscode from "vscode";

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.commands.registerCommand("ptq.showVersion", () => {
      void vscode.window.showInformationMessage(`PTQ Studio ${context.extension.packageJSON.version}`);
    }),
  );
}

export function deactivate(): void {}
