// Histograms tree (view id ptq.histograms): one item per observed activation, sent by the kernel after a
// calibration run. Opening one shows its histogram in a webview panel (plotly, log-scale toggle, float range and
// clipping range marked).
import * as vscode from "vscode";
import type { HistogramDisplay } from "../../kernel/display-types";
import { histogramFigure } from "../../media/renderer/render";
import { escapeHtml, makeNonce, page } from "../webview/html";

export class HistogramsProvider implements vscode.TreeDataProvider<HistogramDisplay> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private list: HistogramDisplay[] = [];

  set(list: HistogramDisplay[]): void {
    this.list = list;
    this.changed.fire();
  }

  get histograms(): readonly HistogramDisplay[] {
    return this.list;
  }

  getChildren(item?: HistogramDisplay): HistogramDisplay[] {
    return item ? [] : this.list;
  }

  getTreeItem(h: HistogramDisplay): vscode.TreeItem {
    const t = new vscode.TreeItem(h.tensor, vscode.TreeItemCollapsibleState.None);
    const g = (x: number) => Number(x.toPrecision(3));
    t.description = `[${g(h.floatRange[0])}, ${g(h.floatRange[1])}]${h.clipRange ? ` → [${g(h.clipRange[0])}, ${g(h.clipRange[1])}]` : ""}${h.method ? ` ${h.method}` : ""}`;
    t.iconPath = new vscode.ThemeIcon("graph");
    t.command = { command: "ptq.histograms.open", title: "Show histogram", arguments: [h] };
    return t;
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** A webview panel with the histogram; returns it so tests can wait for the page's "rendered" message. */
export function showHistogramPanel(extensionUri: vscode.Uri, h: HistogramDisplay): vscode.WebviewPanel {
  const media = vscode.Uri.joinPath(extensionUri, "out", "media");
  const panel = vscode.window.createWebviewPanel("ptq.histogram", `Histogram: ${h.tensor}`, vscode.ViewColumn.Active, {
    enableScripts: true,
    localResourceRoots: [media],
  });
  const w = panel.webview;
  // Colours are filled in by the page from the theme; the figure carries neutral ones as fallbacks.
  const figure = histogramFigure(h, { foreground: "#888", accent: "#3794ff", warn: "#d18616", muted: "#999" });
  w.html = page({
    title: `Histogram ${h.tensor}`,
    cspSource: w.cspSource,
    nonce: makeNonce(),
    scriptUri: w.asWebviewUri(vscode.Uri.joinPath(media, "webview.js")).toString(),
    plotlyUri: w.asWebviewUri(vscode.Uri.joinPath(media, "plotly.js")).toString(),
    body: `<h1>${escapeHtml(h.tensor)}</h1><label><input type="checkbox" id="log" ${h.logScale ? "checked" : ""}> log scale</label><div id="hist" class="ptq-plot"></div>`,
    data: { figures: [{ id: "hist", figure, logToggle: "log" }] },
  });
  return panel;
}
