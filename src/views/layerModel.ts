// The Model Layers tree as plain data: inputs and outputs, nodes grouped by op type or in graph order, each with
// its tensors' types, parameter count and bytes, subgraphs nested under their node. Pure (no vscode) for tests.
import type { GraphProto, ModelProto, NodeProto } from "onnx-buf";
import { elementCount, tensorBytes, typeText, elemTypeName } from "../../engine/onnx-text/types";

export type GroupBy = "op" | "order";

export interface LayerItem {
  /** "none": the one row shown when a filter matches nothing; clicking it clears the filter. */
  kind: "group" | "value" | "node" | "graph" | "none";
  label: string;
  /** Short right-hand text: a type, an op, a parameter count. */
  description: string;
  /** Longer details (markdown-free plain lines) for the tooltip and the details view. */
  details: string[];
  children: LayerItem[];
  /** For nodes: the op type and the first output, used to reveal it in the text view. */
  op?: string;
  output?: string;
}

export interface LayerOptions {
  groupBy: GroupBy;
  /** Case-insensitive substring over node names, op types and tensor names; empty shows everything. */
  filter: string;
}

function typesOf(g: GraphProto): Map<string, string> {
  const m = new Map<string, string>();
  for (const v of [...g.input, ...g.output, ...g.valueInfo]) m.set(v.name, typeText(v.type));
  for (const t of g.initializer) m.set(t.name, `${elemTypeName(t.dataType)}[${t.dims.join(",")}]`);
  return m;
}

function fmtCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

function nodeItem(n: NodeProto, g: GraphProto, types: Map<string, string>, opts: LayerOptions): LayerItem {
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const weights = n.input.map((i) => inits.get(i)).filter((t) => t !== undefined);
  const params = weights.reduce((s, t) => s + elementCount(t), 0);
  const bytes = weights.reduce((s, t) => s + tensorBytes(t), 0);
  const op = n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${n.opType}` : n.opType;
  const io = (names: string[]) => names.map((x) => `${x || "(none)"}: ${types.get(x) ?? "?"}${inits.has(x) ? " (initializer)" : ""}`);
  const children: LayerItem[] = [];
  for (const a of n.attribute) {
    for (const sub of a.g ? [a.g] : a.graphs) children.push(graphItem(sub, `${a.name}: ${sub.name || "graph"}`, opts));
  }
  return {
    kind: "node",
    label: n.name || n.output[0] || op,
    description: `${op}${params ? ` · ${fmtCount(params)} params` : ""}`,
    details: [
      `op: ${op}`,
      ...io(n.input).map((s) => `in  ${s}`),
      ...io(n.output).map((s) => `out ${s}`),
      ...(params ? [`parameters: ${params} (${bytes} bytes)`] : []),
      ...n.attribute.filter((a) => !a.g && a.graphs.length === 0).map((a) => `attr ${a.name}`),
    ],
    children,
    op: n.opType,
    output: n.output[0],
  };
}

function matches(item: LayerItem, f: string): boolean {
  return !f || item.label.toLowerCase().includes(f) || item.description.toLowerCase().includes(f) || item.details.some((d) => d.toLowerCase().includes(f));
}

function graphItem(g: GraphProto, label: string, opts: LayerOptions): LayerItem {
  const items = graphChildren(g, opts);
  return { kind: "graph", label, description: `${g.node.length} nodes`, details: [`subgraph ${g.name}`], children: items };
}

function graphChildren(g: GraphProto, opts: LayerOptions): LayerItem[] {
  const types = typesOf(g);
  const f = opts.filter.toLowerCase();
  const inits = new Set(g.initializer.map((t) => t.name));
  const value = (name: string): LayerItem => ({ kind: "value", label: name, description: types.get(name) ?? "?", details: [`${name}: ${types.get(name) ?? "?"}`], children: [] });
  const nodes = g.node.map((n) => nodeItem(n, g, types, opts)).filter((n) => matches(n, f) || n.children.some((c) => c.children.length > 0));
  const out: LayerItem[] = [];
  const inputs = g.input.filter((v) => !inits.has(v.name)).map((v) => value(v.name)).filter((v) => matches(v, f));
  const outputs = g.output.map((v) => value(v.name)).filter((v) => matches(v, f));
  if (inputs.length) out.push({ kind: "group", label: "Inputs", description: String(inputs.length), details: [], children: inputs });
  if (outputs.length) out.push({ kind: "group", label: "Outputs", description: String(outputs.length), details: [], children: outputs });
  if (opts.groupBy === "order") {
    out.push({ kind: "group", label: "Nodes", description: `${nodes.length}`, details: [], children: nodes });
  } else {
    const byOp = new Map<string, LayerItem[]>();
    for (const n of nodes) {
      const op = n.description.split(" · ")[0]!;
      byOp.set(op, [...(byOp.get(op) ?? []), n]);
    }
    for (const [op, list] of [...byOp].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))) {
      out.push({ kind: "group", label: op, description: `${list.length}`, details: [], children: list });
    }
  }
  return out;
}

export function buildLayerTree(model: ModelProto, opts: LayerOptions): LayerItem[] {
  return model.graph ? graphChildren(model.graph, opts) : [];
}

function countGraphNodes(g: GraphProto): number {
  let n = g.node.length;
  for (const node of g.node) for (const a of node.attribute) for (const sub of a.g ? [a.g] : a.graphs) n += countGraphNodes(sub);
  return n;
}

function countNodeItems(items: readonly LayerItem[]): number {
  return items.reduce((s, i) => s + (i.kind === "node" ? 1 : 0) + countNodeItems(i.children), 0);
}

export interface LayerView {
  roots: LayerItem[];
  /** Shown above the tree while a filter is set: what it is and how much of the model it leaves. */
  message: string | undefined;
}

/**
 * What the Model Layers view shows. A filter that matches nothing gives one row saying so, which clears the filter
 * when clicked: an empty tree would read as an empty model (the view's welcome text would even say "open a model").
 */
export function layerView(model: ModelProto, opts: LayerOptions): LayerView {
  const roots = buildLayerTree(model, opts);
  if (!opts.filter) return { roots, message: undefined };
  const total = model.graph ? countGraphNodes(model.graph) : 0;
  const message = `Filter "${opts.filter}": ${countNodeItems(roots)} of ${total} nodes match`;
  if (roots.length) return { roots, message };
  const none: LayerItem = { kind: "none", label: `No node matches "${opts.filter}"`, description: "Clear filter", details: [`No node name, op type or tensor name contains "${opts.filter}". Click to clear the filter.`], children: [] };
  return { roots: [none], message };
}

/** Each item's parent (roots have none): what TreeView.reveal asks for through getParent. */
export function layerParents(roots: readonly LayerItem[], into = new Map<LayerItem, LayerItem>()): Map<LayerItem, LayerItem> {
  for (const r of roots) {
    for (const c of r.children) into.set(c, r);
    layerParents(r.children, into);
  }
  return into;
}

/** The first node item named `name` (depth first: a body's node after the outer ones before it), or undefined. */
export function findLayerNode(roots: readonly LayerItem[], name: string): LayerItem | undefined {
  for (const r of roots) {
    if (r.kind === "node" && r.label === name) return r;
    const inner = findLayerNode(r.children, name);
    if (inner) return inner;
  }
  return undefined;
}
