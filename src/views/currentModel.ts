// Which model the views describe: the one last opened in the ONNX editor, picked with "Show in Model Layers", or
// last loaded by the notebook's kernel. One instance per extension; the editor and the kernel client set it.
import * as vscode from "vscode";

export class CurrentModel implements vscode.Disposable {
  private uri: vscode.Uri | undefined;
  private readonly emitter = new vscode.EventEmitter<vscode.Uri | undefined>();
  readonly onDidChange = this.emitter.event;

  get current(): vscode.Uri | undefined {
    return this.uri;
  }

  set(uri: vscode.Uri | undefined): void {
    if (uri?.toString() === this.uri?.toString()) return;
    this.uri = uri;
    this.emitter.fire(uri);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

let shared: CurrentModel | undefined;

/** The extension's one CurrentModel (created on first use, disposed with the scope that registered it). */
export function currentModel(): CurrentModel {
  shared ??= new CurrentModel();
  return shared;
}
