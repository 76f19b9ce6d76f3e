// The three PTQ Studio tree views (ids declared by the foundation in package.json): Model Layers, Quantization
// State, Histograms. One call from activate(). The kernel client feeds them through `viewsApi()` (or the internal
// commands ptq.views.setQuantState / ptq.views.setHistograms, which the in-VS-Code tests use too).
import * as vscode from "vscode";
import type { HistogramDisplay, QuantStateEntry } from "../../kernel/display-types";
import type { Ctx } from "../ctx";
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
  scope.add(quantState.onDidChangeTreeData(() => {
    const w = quantState.worst;
    quantStateView.message = w ? `Worst SQNR: ${w.tensor} (${w.node}) ${formatDb(w.sqnrDb!)}` : undefined;
  }));
  scope.add(vscode.window.createTreeView("ptq.histograms", { treeDataProvider: histograms }));

  const refresh = async () => {
    await Promise.all([layers.refresh(), quantState.refreshFromFile()]);
    const uri = current.current;
    layersView.description = uri ? uri.path.split("/").pop() : undefined;
    layersView.message = layers.error ?? (layers.options.filter ? `filter: "${layers.options.filter}"` : undefined);
  };
  scope.add(current.onDidChange(() => void refresh().catch((e: unknown) => ctx.log.error(`views: ${String(e)}`))));

  const cmd = (id: string, fn: (...args: never[]) => unknown) => scope.add(vscode.commands.registerCommand(id, fn as (...args: unknown[]) => unknown));
  cmd("ptq.showInLayers", (arg: unknown) => {
    const uri = targetModel(arg);
    if (!uri) return void vscode.window.showWarningMessage("Show in Model Layers: pick an .onnx file.");
    current.set(uri);
    return vscode.commands.executeCommand("ptq.layers.focus");
  });
  cmd("ptq.layers.filter", async () => {
    const f = await vscode.window.showInputBox({ prompt: "Filter layers by node name, op type or tensor name", value: layers.options.filter });
    if (f === undefined) return;
    layers.options.filter = f.trim();
    await refresh();
  });
  cmd("ptq.layers.groupBy", async (mode?: "op" | "order") => {
    layers.options.groupBy = mode ?? (layers.options.groupBy === "op" ? "order" : "op");
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
