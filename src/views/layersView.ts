// Model Layers tree (view id ptq.layers): the current model's inputs, outputs and nodes from layerModel.ts.
// Clicking a node reveals it in the ONNX text view; a filter and a group-by toggle live in the view's title bar.
import * as vscode from "vscode";
import { loadModel, textUriOfModel } from "../editor/modelFile";
import { openAsOnnxText } from "../editor/textView";
import type { CurrentModel } from "./currentModel";
import { buildLayerTree, type LayerItem, type LayerOptions } from "./layerModel";

const ICONS: Record<LayerItem["kind"], string> = { group: "folder", value: "symbol-variable", node: "symbol-method", graph: "type-hierarchy" };

export class LayersProvider implements vscode.TreeDataProvider<LayerItem> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots: LayerItem[] = [];
  readonly options: LayerOptions = { groupBy: "op", filter: "" };
  error: string | undefined;

  constructor(private readonly current: CurrentModel) {}

  async refresh(): Promise<void> {
    const uri = this.current.current;
    this.error = undefined;
    try {
      const model = uri ? (await loadModel(uri)).model : undefined;
      if (this.current.current?.toString() !== uri?.toString()) return; // a newer refresh owns the view
      this.roots = model ? buildLayerTree(model, this.options) : [];
    } catch (e) {
      this.roots = [];
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

  getTreeItem(item: LayerItem): vscode.TreeItem {
    const collapsible = item.children.length === 0 ? vscode.TreeItemCollapsibleState.None
      : item.kind === "group" && (item.label === "Inputs" || item.label === "Outputs" || this.options.filter) ? vscode.TreeItemCollapsibleState.Expanded
      : vscode.TreeItemCollapsibleState.Collapsed;
    const t = new vscode.TreeItem(item.label, collapsible);
    t.description = item.description;
    t.iconPath = new vscode.ThemeIcon(ICONS[item.kind]);
    t.contextValue = `ptq.layer.${item.kind}`;
    if (item.details.length) {
      t.tooltip = new vscode.MarkdownString().appendCodeblock(item.details.join("\n"), "text");
    }
    if (item.kind === "node" && this.current.current) {
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
