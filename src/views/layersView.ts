// Model Layers tree (view id ptq.layers): the current model's inputs, outputs and nodes from layerModel.ts.
// Clicking a node reveals it in the ONNX text view; a filter and a group-by toggle live in the view's title bar. A
// filter belongs to the model it was set on: opening another model shows all of that model's nodes.
import * as vscode from "vscode";
import { loadModel, textUriOfModel } from "../editor/modelFile";
import { openAsOnnxText } from "../editor/textView";
import type { CurrentModel } from "./currentModel";
import { findLayerNode, layerParents, layerView, type GroupBy, type LayerItem } from "./layerModel";

const ICONS: Record<LayerItem["kind"], string> = { group: "folder", value: "symbol-variable", node: "symbol-method", graph: "type-hierarchy", none: "filter" };

export class LayersProvider implements vscode.TreeDataProvider<LayerItem> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots: LayerItem[] = [];
  private parents = new Map<LayerItem, LayerItem>();
  /** Filters by model URI. */
  private readonly filters = new Map<string, string>();
  groupBy: GroupBy = "op";
  error: string | undefined;
  /** What the filter leaves of the model, while one is set. */
  filterMessage: string | undefined;
  /** The model the items describe (the current one once its refresh has finished). */
  describes: string | undefined;

  constructor(private readonly current: CurrentModel) {}

  /** The current model's filter ("" when none). */
  get filter(): string {
    const uri = this.current.current;
    return (uri && this.filters.get(uri.toString())) ?? "";
  }

  /** Sets the current model's filter; "" clears it. Call refresh() after. */
  setFilter(filter: string): void {
    const uri = this.current.current;
    if (!uri) return;
    if (filter) this.filters.set(uri.toString(), filter);
    else this.filters.delete(uri.toString());
  }

  async refresh(): Promise<void> {
    const uri = this.current.current;
    this.error = undefined;
    this.filterMessage = undefined;
    // Shows the title bar's "Clear Filter" button while this model has a filter.
    void vscode.commands.executeCommand("setContext", "ptq.layers.filtered", this.filter !== "");
    try {
      const model = uri ? (await loadModel(uri)).model : undefined;
      if (this.current.current?.toString() !== uri?.toString()) return; // a newer refresh owns the view
      const view = model ? layerView(model, { groupBy: this.groupBy, filter: this.filter }) : undefined;
      this.roots = view?.roots ?? [];
      this.parents = layerParents(this.roots);
      this.filterMessage = view?.message;
      this.describes = uri?.toString();
    } catch (e) {
      this.roots = [];
      this.parents = new Map();
      this.describes = uri?.toString();
      this.error = e instanceof Error ? e.message : String(e);
    }
    this.changed.fire();
  }

  get items(): readonly LayerItem[] {
    return this.roots;
  }

  getChildren(item?: LayerItem): LayerItem[] {
    return item ? item.children : this.roots;
  }

  getParent(item: LayerItem): LayerItem | undefined {
    return this.parents.get(item);
  }

  /** The item of the node named `name` in the tree shown now (a filter may hide it). */
  nodeItem(name: string): LayerItem | undefined {
    return findLayerNode(this.roots, name);
  }

  getTreeItem(item: LayerItem): vscode.TreeItem {
    const collapsible = item.children.length === 0 ? vscode.TreeItemCollapsibleState.None
      : item.kind === "group" && (item.label === "Inputs" || item.label === "Outputs" || this.filter) ? vscode.TreeItemCollapsibleState.Expanded
      : vscode.TreeItemCollapsibleState.Collapsed;
    const t = new vscode.TreeItem(item.label, collapsible);
    t.description = item.description;
    t.iconPath = new vscode.ThemeIcon(ICONS[item.kind]);
    t.contextValue = `ptq.layer.${item.kind}`;
    if (item.details.length) {
      t.tooltip = new vscode.MarkdownString().appendCodeblock(item.details.join("\n"), "text");
    }
    if (item.kind === "none") {
      t.command = { command: "ptq.layers.clearFilter", title: "Clear filter" };
    } else if (item.kind === "node" && this.current.current) {
      t.command = { command: "ptq.layers.reveal", title: "Reveal in ONNX text", arguments: [item] };
    }
    return t;
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** Opens the text view and selects the node's line (found by its output name and op). */
export async function revealLayer(model: vscode.Uri, item: LayerItem): Promise<void> {
  const editor = await openAsOnnxText(model);
  const doc = editor.document;
  if (doc.uri.toString() !== textUriOfModel(model).toString()) return;
  const out = item.output ?? "";
  for (let i = 0; i < doc.lineCount; i++) {
    const text = doc.lineAt(i).text;
    if (item.op && text.includes(` = `) && text.includes(item.op) && (text.includes(`${out} =`) || text.includes(`${JSON.stringify(out)} =`) || text.includes(`${out},`))) {
      const range = doc.lineAt(i).range;
      editor.selection = new vscode.Selection(range.start, range.end);
      editor.revealRange(range, vscode.TextEditorRevealType.InCenter);
      return;
    }
  }
}
