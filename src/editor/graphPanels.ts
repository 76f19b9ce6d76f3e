// The open graph views, one registry for the extension: what the kernel's analysis shows on each (the views feed
// it: setAnalysis, setHistograms), which node a tree view picked (reveal) and which one a graph picked
// (onDidSelectNode, for the trees), and side-by-side compares (a float model and its quantized twin: selection and
// scroll follow each other by node name; the error is shown on the quantized side only).
import * as vscode from "vscode";
import type { HistogramDisplay, QuantStateEntry } from "../../kernel/display-types";
import type { Anchor } from "../../media/graph/nav";
import type { GraphNodeData } from "../../media/graph/types";
import { graphAnalysis, nodeHistograms } from "./graphAnalysis";

interface Panel {
  uri: vscode.Uri;
  /** The page's nodes by name (bodies included). */
  nodes: Map<string, GraphNodeData>;
  webview: vscode.Webview;
  panel: vscode.WebviewPanel;
  /** A tree's pick made while the page was hidden (a hidden page gets no messages): sent when it is shown again. */
  pending?: string;
}

/** What a page may send about selection and scroll (src/editor/onnxEditor.ts hands these on). */
export type PageMessage =
  | { command: "graph.ready" }
  | { command: "graph.selected"; node: string }
  | { command: "graph.histograms"; node: string }
  | { command: "graph.scroll"; anchor: Anchor };

export class GraphPanels implements vscode.Disposable {
  private readonly panels = new Map<vscode.WebviewPanel, Panel>();
  /** Compares by model URI: the twin's URI and whether this side is the quantized one. */
  private readonly pairs = new Map<string, { twin: string; quantized: boolean }>();
  private entries: readonly QuantStateEntry[] = [];
  private warnBelowDb = 20;
  private histograms: readonly HistogramDisplay[] = [];
  private readonly selected = new vscode.EventEmitter<{ uri: vscode.Uri; node: string }>();
  /** A user picked a node in a graph (click, search, arrow keys): the trees follow. */
  readonly onDidSelectNode = this.selected.event;

  add(panel: vscode.WebviewPanel, uri: vscode.Uri, nodes: Map<string, GraphNodeData>): void {
    const p: Panel = { uri, nodes, webview: panel.webview, panel };
    this.panels.set(panel, p);
    // An open twin learns this side's names (its scroll anchors on nodes both draw).
    for (const t of this.twins(p)) this.sendState(t);
  }

  delete(panel: vscode.WebviewPanel): void {
    this.panels.delete(panel);
  }

  /** The node names of the graph drawn for `panel` (undefined before it is drawn). */
  nodesOf(panel: vscode.WebviewPanel): Map<string, GraphNodeData> | undefined {
    return this.panels.get(panel)?.nodes;
  }

  /** The kernel's per-tensor state (the Quantization State view's entries, with SQNR after analyze()). */
  setAnalysis(entries: readonly QuantStateEntry[], warnBelowDb: number): void {
    this.entries = entries;
    this.warnBelowDb = warnBelowDb;
    for (const p of this.panels.values()) this.sendAnalysis(p);
  }

  /** Calibration histograms (the Histograms view's list); pages ask for a node's when it is selected. */
  setHistograms(list: readonly HistogramDisplay[]): void {
    this.histograms = list;
  }

  /** Selects a node in every open graph of `uri` (every open graph when undefined) that draws it: a tree view's pick. */
  reveal(uri: vscode.Uri | undefined, node: string): void {
    for (const p of this.panels.values()) {
      if ((uri && !same(p.uri, uri)) || !p.nodes.has(node)) continue;
      if (p.panel.visible) void p.webview.postMessage({ type: "select", node });
      else p.pending = node;
    }
  }

  /** Pairs a float model with its quantized twin; their open graphs follow each other from now on. */
  compare(float: vscode.Uri, quantized: vscode.Uri): void {
    this.pairs.set(float.toString(), { twin: quantized.toString(), quantized: false });
    this.pairs.set(quantized.toString(), { twin: float.toString(), quantized: true });
    for (const p of this.panels.values()) if (same(p.uri, float) || same(p.uri, quantized)) this.sendState(p);
  }

  /** A page's message about selection, scroll, histograms or its readiness; false when it is none of these. */
  onPageMessage(panel: vscode.WebviewPanel, m: { command?: unknown; node?: unknown; anchor?: unknown }): boolean {
    const p = this.panels.get(panel);
    if (!p) return false;
    switch (m.command) {
      case "graph.ready":
        this.sendState(p);
        if (p.pending) void p.webview.postMessage({ type: "select", node: p.pending });
        p.pending = undefined;
        return true;
      case "graph.histograms": {
        const n = typeof m.node === "string" ? p.nodes.get(m.node) : undefined;
        if (n) void p.webview.postMessage({ type: "histograms", node: n.name, histograms: nodeHistograms(n, this.histograms) });
        return true;
      }
      case "graph.selected":
        if (typeof m.node !== "string" || !p.nodes.has(m.node)) return true;
        this.selected.fire({ uri: p.uri, node: m.node });
        for (const t of this.twins(p)) if (t.nodes.has(m.node)) void t.webview.postMessage({ type: "select", node: m.node });
        return true;
      case "graph.scroll":
        if (!isAnchor(m.anchor)) return true;
        for (const t of this.twins(p)) void t.webview.postMessage({ type: "scroll", anchor: m.anchor });
        return true;
      default:
        return false;
    }
  }

  private twins(p: Panel): Panel[] {
    const pair = this.pairs.get(p.uri.toString());
    return pair ? [...this.panels.values()].filter((t) => t.uri.toString() === pair.twin) : [];
  }

  /** The analysis and the compare state a page shows. */
  private sendState(p: Panel): void {
    this.sendAnalysis(p);
    const twin = this.twins(p)[0];
    void p.webview.postMessage({ type: "compare", twin: twin ? [...twin.nodes.keys()] : null });
  }

  private sendAnalysis(p: Panel): void {
    // In a compare the error belongs to the quantized side; the float side stays coloured by state.
    const floatSide = this.pairs.get(p.uri.toString())?.quantized === false;
    const analysis = floatSide ? undefined : graphAnalysis(this.entries, this.warnBelowDb, new Set(p.nodes.keys()));
    void p.webview.postMessage({ type: "analysis", analysis: analysis ?? null });
  }

  dispose(): void {
    this.selected.dispose();
    this.panels.clear();
  }
}

const same = (a: vscode.Uri, b: vscode.Uri) => a.toString() === b.toString();

function isAnchor(a: unknown): a is Anchor {
  const x = a as Partial<Anchor> | undefined;
  return typeof x === "object" && x !== null && typeof x.node === "string" && [x.dx, x.dy, x.k].every((v) => typeof v === "number" && Number.isFinite(v)) && x.k! > 0;
}

let shared: GraphPanels | undefined;

/** The extension's one registry of graph views. */
export function graphPanels(): GraphPanels {
  shared ??= new GraphPanels();
  return shared;
}
