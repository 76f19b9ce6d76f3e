// Read-only custom editor for .onnx: the model summary in a webview (CSP nonce, asWebviewUri, localResourceRoots
// limited to out/media) with buttons that run our commands on this file.
import * as vscode from "vscode";
import { summarizeModel } from "../../engine/onnx-text/summary";
import { currentModel } from "../views/currentModel";
import { escapeHtml, makeNonce, page } from "../webview/html";
import { loadModel } from "./modelFile";
import { summaryBody } from "./summaryHtml";

export const ONNX_EDITOR_VIEW_TYPE = "ptq.onnxEditor";

/** Commands a page button may run; anything else from the webview is ignored. */
const PAGE_COMMANDS = new Set(["ptq.quantizeModel", "ptq.benchmarkModel", "ptq.openModelInNotebook", "ptq.openAsOnnxText", "workbench.trust.manage"]);

export class OnnxEditorProvider implements vscode.CustomReadonlyEditorProvider {
  constructor(private readonly extensionUri: vscode.Uri) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  async resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): Promise<void> {
    const media = vscode.Uri.joinPath(this.extensionUri, "out", "media");
    panel.webview.options = { enableScripts: true, localResourceRoots: [media] };
    const disposables: vscode.Disposable[] = [
      panel.webview.onDidReceiveMessage((m: { command?: string }) => {
        if (m.command && PAGE_COMMANDS.has(m.command)) {
          void vscode.commands.executeCommand(m.command, m.command === "workbench.trust.manage" ? undefined : document.uri);
        }
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => void this.render(document.uri, panel, media)),
      panel.onDidChangeViewState(() => panel.active && currentModel().set(document.uri)),
    ];
    panel.onDidDispose(() => disposables.forEach((d) => d.dispose()));
    currentModel().set(document.uri);
    await this.render(document.uri, panel, media);
  }

  private async render(uri: vscode.Uri, panel: vscode.WebviewPanel, media: vscode.Uri): Promise<void> {
    const webview = panel.webview;
    const parts = {
      title: uri.path.split("/").pop() ?? "model.onnx",
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, "webview.js")).toString(),
    };
    try {
      const loaded = await loadModel(uri);
      const body = summaryBody({ fileName: parts.title, fileBytes: loaded.bytes, summary: summarizeModel(loaded.model), trusted: vscode.workspace.isTrusted });
      webview.html = page({ ...parts, body });
    } catch (e) {
      webview.html = page({ ...parts, body: `<h1>${escapeHtml(parts.title)}</h1><p class="warn">${escapeHtml(e instanceof Error ? e.message : String(e))}</p>` });
    }
  }
}
