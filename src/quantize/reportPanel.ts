// The report webview after a quantization: reportHtml's body, the SQNR chart drawn by the page script with plotly,
// and its buttons wired to "Open in notebook" / "Open quantized model".
import * as vscode from "vscode";
import { sqnrFigure } from "../../media/renderer/render";
import { makeNonce, page } from "../webview/html";
import { reportBody, type QuantizeReportView } from "./reportHtml";

export function showReportPanel(extensionUri: vscode.Uri, v: QuantizeReportView, onCommand: (command: string) => void): vscode.WebviewPanel {
  const media = vscode.Uri.joinPath(extensionUri, "out", "media");
  const title = `Quantization report: ${v.output.split(/[\\/]/).pop()}`;
  const panel = vscode.window.createWebviewPanel("ptq.quantizeReport", title, vscode.ViewColumn.Active, { enableScripts: true, localResourceRoots: [media] });
  const w = panel.webview;
  const figures = v.sqnr ? [{ id: "sqnr", figure: sqnrFigure(v.sqnr, { foreground: "#888", accent: "#3794ff", warn: "#d18616", muted: "#999" }) }] : [];
  w.html = page({
    title,
    cspSource: w.cspSource,
    nonce: makeNonce(),
    scriptUri: w.asWebviewUri(vscode.Uri.joinPath(media, "webview.js")).toString(),
    plotlyUri: figures.length ? w.asWebviewUri(vscode.Uri.joinPath(media, "plotly.js")).toString() : undefined,
    body: reportBody(v),
    data: { figures },
  });
  panel.webview.onDidReceiveMessage((m: { command?: string }) => m.command && onCommand(m.command));
  return panel;
}
