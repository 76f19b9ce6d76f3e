// Quantization State tree (view id ptq.quantState): per node, each input quantized or float (and why), its type,
// granularity, scale/zero point, range, method and SQNR. Filled from the current model file (a QDQ model shows its
// Q/DQ pairs; a float model shows a message, not a "float" row per node) until the kernel sends entries (analyze() sends each tensor's SQNR), which replace them. The tensor with
// the worst SQNR is drawn red with a warning icon and its node opened; others below the threshold are orange.
import * as vscode from "vscode";
import type { QuantStateEntry } from "../../kernel/display-types";
import { loadModel } from "../editor/modelFile";
import type { CurrentModel } from "./currentModel";
import { describeEntry, fileQuantState, formatDb, groupByNode, notQuantizedMessage, worstEntry } from "./quantStateModel";

type Group = ReturnType<typeof groupByNode>[number];
type Item = { group: Group } | { entry: QuantStateEntry; parent: { group: Group } };

const STATE_ICON: Record<Group["state"], [string, string]> = {
  quantized: ["pass-filled", "testing.iconPassed"],
  partial: ["circle-large-outline", "charts.yellow"],
  float: ["circle-slash", "disabledForeground"],
};

export class QuantStateProvider implements vscode.TreeDataProvider<Item> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private groups: Group[] = [];
  /** The root items, made once per change: TreeView.reveal needs the same objects getChildren returned. */
  private groupItems: Array<{ group: Group }> = [];
  /** "kernel" once the kernel has sent entries; the model file no longer overrides them until the model changes. */
  source: "file" | "kernel" | "none" = "none";
  /** The model file the entries were derived from (when source is "file"). */
  describes: string | undefined;
  /** The entry with the lowest SQNR, when the entries were analysed. */
  worst: QuantStateEntry | undefined;
  /** Set when the model file has nothing quantized and the kernel has sent nothing: what to do to see a state. */
  notice: string | undefined;
  /** SQNR below this is flagged (analyze's warnBelowDb). */
  warnBelowDb = 20;
  /** Bumped by setEntries: a file refresh that started before the kernel's entries arrived must not replace them. */
  private generation = 0;

  constructor(private readonly current: CurrentModel) {}

  async refreshFromFile(): Promise<void> {
    const uri = this.current.current;
    const generation = this.generation;
    try {
      const model = uri ? (await loadModel(uri)).model : undefined;
      if (this.current.current?.toString() !== uri?.toString() || generation !== this.generation) return; // newer data owns the view
      this.groups = model ? groupByNode(fileQuantState(model)) : [];
      this.notice = uri && model && this.groups.length === 0 ? notQuantizedMessage(uri.path.split("/").pop() ?? "This model") : undefined;
      this.worst = undefined;
      this.describes = uri?.toString();
      this.source = uri ? "file" : "none";
    } catch {
      this.groups = [];
      this.notice = undefined;
      this.worst = undefined;
      this.source = "none";
    }
    this.changed.fire();
  }

  /** Entries from the kernel (quantState notifications). */
  setEntries(entries: QuantStateEntry[], warnBelowDb?: number): void {
    this.generation++;
    this.groups = groupByNode(entries);
    this.notice = undefined;
    this.worst = worstEntry(entries);
    this.warnBelowDb = warnBelowDb ?? 20;
    this.source = "kernel";
    this.changed.fire();
  }

  get nodeGroups(): readonly Group[] {
    return this.groups;
  }

  getChildren(item?: Item): Item[] {
    if (!item) {
      if (this.groupItems.length !== this.groups.length || this.groupItems.some((g, i) => g.group !== this.groups[i])) this.groupItems = this.groups.map((group) => ({ group }));
      return this.groupItems;
    }
    return "group" in item ? item.group.entries.map((entry) => ({ entry, parent: item })) : [];
  }

  getParent(item: Item): Item | undefined {
    return "entry" in item ? item.parent : undefined;
  }

  /** The item of the node named `name`, as getChildren returns it. */
  nodeItem(name: string): Item | undefined {
    return this.getChildren().find((i) => "group" in i && i.group.node === name);
  }

  getTreeItem(item: Item): vscode.TreeItem {
    if ("group" in item) {
      const g = item.group;
      const hasWorst = this.worst !== undefined && g.entries.includes(this.worst);
      const t = new vscode.TreeItem(g.node, hasWorst ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
      const q = g.entries.filter((e) => e.quantized).length;
      const least = worstEntry(g.entries);
      t.description = `${g.op} · ${g.state}${g.state === "partial" ? ` (${q}/${g.entries.length})` : ""}${least ? ` · min SQNR ${formatDb(least.sqnrDb!)}` : ""}`;
      const [icon, color] = hasWorst ? ["warning", "charts.red"] : STATE_ICON[g.state];
      t.iconPath = new vscode.ThemeIcon(icon, new vscode.ThemeColor(color));
      t.contextValue = `ptq.quantNode.${g.state}`;
      return t;
    }
    const e = item.entry;
    const t = new vscode.TreeItem(`${e.role}: ${e.tensor}`, vscode.TreeItemCollapsibleState.None);
    t.description = describeEntry(e);
    t.tooltip = new vscode.MarkdownString().appendCodeblock(JSON.stringify(e, null, 2), "json");
    const low = typeof e.sqnrDb === "number" && e.sqnrDb < this.warnBelowDb;
    if (e === this.worst) {
      t.iconPath = new vscode.ThemeIcon("warning", new vscode.ThemeColor("charts.red"));
      t.contextValue = "ptq.quantTensor.worst";
    } else {
      t.iconPath = new vscode.ThemeIcon(low ? "warning" : e.quantized ? "symbol-numeric" : "symbol-variable", low ? new vscode.ThemeColor("charts.orange") : undefined);
      t.contextValue = low ? "ptq.quantTensor.low" : "ptq.quantTensor";
    }
    return t;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
