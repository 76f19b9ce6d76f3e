// The three PTQ Studio tree views (ids declared by the foundation in package.json): Model Layers, Quantization
// State, Histograms. One call from activate(). The kernel client feeds them through `viewsApi()` (or the internal
// commands ptq.views.setQuantState / ptq.views.setHistograms, which the in-VS-Code tests use too).
import * as vscode from "vscode";
import type { HistogramDisplay, QuantStateEntry } from "../../kernel/display-types";
import type { Ctx } from "../ctx";
import { graphPanels } from "../editor/graphPanels";
import { targetModel } from "../editor/modelFile";
import { currentModel } from "./currentModel";
import { HistogramsProvider, showHistogramPanel } from "./histogramsView";
import type { LayerItem } from "./layerModel";
import { LayersProvider, revealLayer } from "./layersView";
import { formatDb } from "./quantStateModel";
import { QuantStateProvider } from "./quantStateView";

export interface ViewsApi {
  /** The model the views describe (e.g. the one the kernel just loaded). */
  setModel(uri: vscode.Uri | undefined): void;
  setQuantState(entries: QuantStateEntry[], warnBelowDb?: number): void;
  setHistograms(list: HistogramDisplay[]): void;
  readonly layers: LayersProvider;
  readonly quantState: QuantStateProvider;
  readonly histograms: HistogramsProvider;
}

let api: ViewsApi | undefined;

/** The registered views, once registerViews has run. */
export function viewsApi(): ViewsApi | undefined {
  return api;
}

export function registerViews(ctx: Ctx): ViewsApi {
  const scope = ctx.extensionScope;
  const current = scope.add(currentModel());
  const layers = scope.add(new LayersProvider(current));
  const quantState = scope.add(new QuantStateProvider(current));
  const histograms = scope.add(new HistogramsProvider());
  const layersView = scope.add(vscode.window.createTreeView("ptq.layers", { treeDataProvider: layers, showCollapseAll: true }));
  const quantStateView = scope.add(vscode.window.createTreeView("ptq.quantState", { treeDataProvider: quantState, showCollapseAll: true }));
  // After an analysis the view's message names the worst tensor, so it is seen without opening any node.
  // A float model before any run has no state: the message says how to get one (a message also hides the welcome).
  scope.add(quantState.onDidChangeTreeData(() => {
    const w = quantState.worst;
    quantStateView.message = w ? `Worst SQNR: ${w.tensor} (${w.node}) ${formatDb(w.sqnrDb!)}` : quantState.notice;
  }));
  scope.add(vscode.window.createTreeView("ptq.histograms", { treeDataProvider: histograms }));

  // The open graph views show what the kernel sent these views: nodes coloured by SQNR, a node's rank and histograms.
  // The kernel's entries stay the graphs' until it sends others: opening a graph changes the current model, and the
  // Quantization State view then shows that file's state, which has no SQNR.
  const graphs = scope.add(graphPanels());
  scope.add(quantState.onDidChangeTreeData(() => {
    if (quantState.source === "kernel") graphs.setAnalysis(quantState.nodeGroups.flatMap((g) => g.entries), quantState.warnBelowDb);
  }));
  scope.add(histograms.onDidChangeTreeData(() => graphs.setHistograms(histograms.histograms)));
  // Selection follows between the trees and the open graphs: a node picked in a tree is selected in the graphs that
  // draw it; one picked in a graph of the model the trees describe is revealed in the trees that are visible (a
  // hidden view is not opened for it).
  scope.add(layersView.onDidChangeSelection((e) => {
    const item = e.selection[0];
    if (item?.kind === "node" && current.current) graphs.reveal(current.current, item.label);
  }));
  scope.add(quantStateView.onDidChangeSelection((e) => {
    const item = e.selection[0];
    const node = item && ("group" in item ? item.group.node : item.entry.node);
    if (node) graphs.reveal(undefined, node);
  }));
  scope.add(graphs.onDidSelectNode(({ uri, node }) => {
    if (uri.toString() !== current.current?.toString()) return;
    const layer = layersView.visible && layers.describes === uri.toString() ? layers.nodeItem(node) : undefined;
    if (layer && layersView.selection[0] !== layer) void layersView.reveal(layer, { select: true, focus: false, expand: true }).then(undefined, (e: unknown) => ctx.log.error(`views: ${String(e)}`));
    const state = quantStateView.visible ? quantState.nodeItem(node) : undefined;
    if (state && quantStateView.selection[0] !== state) void quantStateView.reveal(state, { select: true, focus: false }).then(undefined, (e: unknown) => ctx.log.error(`views: ${String(e)}`));
  }));

  // Set with the items, so the view never shows one model's nodes under another model's filter message.
  scope.add(layers.onDidChangeTreeData(() => {
    layersView.description = layers.describes && vscode.Uri.parse(layers.describes).path.split("/").pop();
    layersView.message = layers.error ?? layers.filterMessage;
  }));
  const refresh = async () => {
    await Promise.all([layers.refresh(), quantState.refreshFromFile()]);
  };
  scope.add(current.onDidChange(() => void refresh().catch((e: unknown) => ctx.log.error(`views: ${String(e)}`))));

  const cmd = (id: string, fn: (...args: never[]) => unknown) => scope.add(vscode.commands.registerCommand(id, fn as (...args: unknown[]) => unknown));
  cmd("ptq.showInLayers", (arg: unknown) => {
    const uri = targetModel(arg);
    if (!uri) return void vscode.window.showWarningMessage("Show in Model Layers: pick an .onnx file.");
    current.set(uri);
    return vscode.commands.executeCommand("ptq.layers.focus");
  });
  // The filter is the current model's (a string argument sets it without asking: tests, keybindings).
  cmd("ptq.layers.filter", async (value?: unknown) => {
    if (!current.current) return void vscode.window.showInformationMessage("Filter Layers: open an .onnx model first.");
    const name = current.current.path.split("/").pop();
    const f = typeof value === "string" ? value
      : await vscode.window.showInputBox({ prompt: `Filter the layers of ${name} by node name, op type or tensor name (empty clears)`, value: layers.filter });
    if (f === undefined) return;
    layers.setFilter(f.trim());
    await refresh();
  });
  cmd("ptq.layers.clearFilter", async () => {
    layers.setFilter("");
    await refresh();
  });
  cmd("ptq.layers.groupBy", async (mode?: "op" | "order") => {
    layers.groupBy = mode ?? (layers.groupBy === "op" ? "order" : "op");
    await refresh();
  });
  cmd("ptq.layers.refresh", refresh);
  cmd("ptq.layers.reveal", (item: LayerItem) => current.current && revealLayer(current.current, item));
  cmd("ptq.histograms.open", (h: HistogramDisplay) => showHistogramPanel(ctx.extension.extensionUri, h));
  cmd("ptq.views.setQuantState", (entries: QuantStateEntry[], warnBelowDb?: number) => quantState.setEntries(entries, warnBelowDb));
  cmd("ptq.views.setHistograms", (list: HistogramDisplay[]) => histograms.set(list));
  // What the views show, as data: for the in-VS-Code tests and for bug reports.
  cmd("ptq.views.snapshot", () => ({
    model: current.current?.toString(),
    layersModel: layers.describes,
    layersMessage: layersView.message,
    quantStateMessage: quantStateView.message,
    layers: layers.items.map((g) => ({ label: g.label, description: g.description, children: g.children.map((c) => `${c.label} · ${c.description}`) })),
    quantState: { source: quantState.source, model: quantState.describes, nodes: quantState.nodeGroups.map((g) => ({ node: g.node, op: g.op, state: g.state, tensors: g.entries.length })), worst: quantState.worst && { tensor: quantState.worst.tensor, node: quantState.worst.node, sqnrDb: quantState.worst.sqnrDb } },
    histograms: histograms.histograms.map((h) => h.tensor),
  }));

  api = {
    setModel: (uri) => current.set(uri),
    setQuantState: (e, warn) => quantState.setEntries(e, warn),
    setHistograms: (l) => histograms.set(l),
    layers,
    quantState,
    histograms,
  };
  scope.add({ dispose: () => (api = undefined) });
  return api;
}
