// "Open as ONNX text": a read-only virtual document with the model printed by engine/onnx-text, in the `onnx-text`
// language so the TextMate grammar in syntaxes/ highlights it.
import * as vscode from "vscode";
import { printModel } from "../../engine/onnx-text/printer";
import { loadModel, modelUriOfText, ONNX_TEXT_SCHEME, textUriOfModel } from "./modelFile";

export class OnnxTextProvider implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const { model } = await loadModel(modelUriOfText(uri));
    return printModel(model);
  }

  /** Re-prints open text views when their model changes on disk. */
  refresh(model: vscode.Uri): void {
    this.changed.fire(textUriOfModel(model));
  }

  dispose(): void {
    this.changed.dispose();
  }
}

export async function openAsOnnxText(model: vscode.Uri): Promise<vscode.TextEditor> {
  const doc = await vscode.workspace.openTextDocument(textUriOfModel(model));
  const typed = doc.languageId === "onnx-text" ? doc : await vscode.languages.setTextDocumentLanguage(doc, "onnx-text");
  return vscode.window.showTextDocument(typed, { preview: true });
}

export function registerTextView(provider: OnnxTextProvider): vscode.Disposable {
  const watcher = vscode.workspace.createFileSystemWatcher("**/*.onnx");
  return vscode.Disposable.from(
    provider,
    vscode.workspace.registerTextDocumentContentProvider(ONNX_TEXT_SCHEME, provider),
    watcher,
    watcher.onDidChange((u) => provider.refresh(u)),
  );
}
