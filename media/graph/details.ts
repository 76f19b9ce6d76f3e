// The details pane (a clicked node) and the hover card (the node or edge under the pointer), built with DOM calls:
// model strings only ever become textContent, through visibleText so hidden characters show.
import { formatBytes } from "../renderer/render";
import type { PlacedEdge } from "./layout";
import { visibleText } from "./text";
import type { GraphNodeData, TensorInfo } from "./types";

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}

const t = (s: string) => visibleText(s);

/** "int8[64,3,3,3] · 1,728 values · 1.7 KB" for a weight, the type alone for an activation. */
export function tensorLine(x: TensorInfo): string {
  const size = x.bytes !== undefined ? ` · ${(x.elements ?? 0).toLocaleString("en-US")} values · ${formatBytes(x.bytes)}` : "";
  const kind = x.kind === "edge" ? "" : ` (${x.kind})`;
  return `${t(x.type)}${kind}${size}`;
}

function tensorTable(title: string, xs: readonly TensorInfo[]): HTMLElement[] {
  if (xs.length === 0) return [];
  const rows = xs.map((x) => h("tr", {}, h("td", { class: "tname" }, t(x.name)), h("td", {}, tensorLine(x))));
  return [h("h4", {}, title), h("table", { class: "tensors" }, ...rows)];
}

export interface DetailsActions {
  excluded: boolean;
  expanded: boolean;
}

/** The details pane's content for a node; buttons carry data-action for the page script. */
export function nodeDetails(n: GraphNodeData, a: DetailsActions): HTMLElement {
  const box = h("div", { class: "details-node" });
  box.append(h("h3", {}, t(n.op)), h("p", { class: "dname" }, t(n.name)));
  if (n.state) box.append(h("p", {}, h("span", { class: `swatch q-${n.state}` }), ` ${n.state === "float" ? "float (not quantized)" : n.state}`));
  if (a.excluded) box.append(h("p", { class: "muted" }, "Kept in float by the next quantization (override file beside the model)."));
  const buttons = h("div", { class: "details-actions" });
  if (n.kind === "node") buttons.append(h("button", { "data-action": "keep-float", class: "secondary" }, a.excluded ? "Kept in float" : "Keep in float"));
  if (n.subgraphs?.length) buttons.append(h("button", { "data-action": "toggle-expand", class: "secondary" }, a.expanded ? "Collapse bodies" : `Expand ${n.subgraphs.length} ${n.subgraphs.length === 1 ? "body" : "bodies"}`));
  if (buttons.childElementCount) box.append(buttons);
  if (n.quant?.length) {
    box.append(h("h4", {}, "Quantization"));
    box.append(h("table", { class: "tensors" }, ...n.quant.map((q) => h("tr", {}, h("td", { class: "tname" }, `${t(q.tensor)} (${q.role})`), h("td", {}, t(q.text))))));
  }
  box.append(...tensorTable("Inputs", n.inputs), ...tensorTable("Outputs", n.outputs));
  if (n.attributes.length) {
    box.append(h("h4", {}, "Attributes"), h("table", { class: "tensors" }, ...n.attributes.map((x) => h("tr", {}, h("td", { class: "tname" }, t(x.name)), h("td", {}, t(x.value))))));
  }
  if (n.folded?.length) box.append(h("h4", {}, "Folded into this node"), h("p", { class: "muted" }, t(n.folded.join(", "))));
  if (n.doc) box.append(h("h4", {}, "Doc string"), h("p", {}, t(n.doc)));
  return box;
}

/** The hover card of a node: op, name, every input and output with its shape, the quantization state. */
export function nodeHover(n: GraphNodeData): HTMLElement {
  const box = h("div", {}, h("strong", {}, t(n.op)), " ", t(n.name));
  for (const x of n.inputs) box.append(h("div", { class: "hover-line" }, `in  ${t(x.name)}: ${tensorLine(x)}`));
  for (const x of n.outputs) box.append(h("div", { class: "hover-line" }, `out ${t(x.name)}: ${tensorLine(x)}`));
  if (n.state) box.append(h("div", { class: "hover-line" }, `state: ${n.state}`));
  return box;
}

/** The hover card of an edge: each tensor it carries and its type. */
export function edgeHover(e: PlacedEdge): HTMLElement {
  return h("div", {}, ...e.tensors.map((x) => h("div", { class: "hover-line" }, `${t(x.tensor)}: ${t(x.type ?? "?")}`)));
}
