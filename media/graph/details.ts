// The details pane (a clicked node) and the hover card (the node or edge under the pointer), built with DOM calls:
// model strings only ever become textContent, through visibleText so hidden characters show.
import type { HistogramDisplay } from "../../kernel/display-types";
import { formatBytes } from "../renderer/render";
import { histogramGeometry, sqnrBand } from "./analysis";
import type { PlacedEdge } from "./layout";
import { visibleText } from "./text";
import type { GraphNodeData, NodeAnalysis, TensorInfo } from "./types";

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
  /** The override file makes this node's activations 16-bit. */
  sixteenBit?: boolean;
  /** The kernel's analysis of this node, and how many nodes it ranked. */
  analysis?: { node: NodeAnalysis; of: number; warnBelowDb: number };
}

/** The details pane's content for a node; buttons carry data-action for the page script. */
export function nodeDetails(n: GraphNodeData, a: DetailsActions): HTMLElement {
  const box = h("div", { class: "details-node" });
  box.append(h("h3", {}, t(n.op)), h("p", { class: "dname" }, t(n.name)));
  if (n.state) box.append(h("p", {}, h("span", { class: `swatch q-${n.state}` }), ` ${n.state === "float" ? "float (not quantized)" : n.state}`));
  if (a.excluded) box.append(h("p", { class: "muted" }, "Kept in float by the next quantization (override file beside the model)."));
  if (a.sixteenBit) box.append(h("p", { class: "muted" }, "16-bit activations in the next quantization (override file beside the model)."));
  const buttons = h("div", { class: "details-actions" });
  if (n.kind === "node") buttons.append(h("button", { "data-action": "keep-float", class: "secondary" }, a.excluded ? "Kept in float" : "Keep in float"));
  if (n.kind === "node") buttons.append(h("button", { "data-action": "sixteen-bit", class: "secondary" }, a.sixteenBit ? "16-bit" : "Make 16-bit"));
  if (n.subgraphs?.length) buttons.append(h("button", { "data-action": "toggle-expand", class: "secondary" }, a.expanded ? "Collapse bodies" : `Expand ${n.subgraphs.length} ${n.subgraphs.length === 1 ? "body" : "bodies"}`));
  if (buttons.childElementCount) box.append(buttons);
  if (a.analysis) box.append(...analysisSection(a.analysis));
  // Filled when the extension answers with the node's histograms.
  if (n.kind === "node") box.append(h("div", { id: "details-histograms" }));
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

function analysisSection(a: NonNullable<DetailsActions["analysis"]>): HTMLElement[] {
  const x = a.node;
  const low = x.sqnrDb < a.warnBelowDb ? ` (below ${a.warnBelowDb} dB)` : "";
  return [
    h("h4", {}, "Analysis"),
    h("p", { class: "details-sqnr" }, h("span", { class: `swatch sqnr-${sqnrBand(x.sqnrDb)}` }), ` SQNR ${x.text}${low} at ${t(x.tensor)}`),
    h("p", { class: "details-rank" }, `Sensitivity rank ${x.rank} of ${a.of} (1 = largest error)`),
  ];
}

const SVG = "http://www.w3.org/2000/svg";
function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const num = (v: number) => String(Number(v.toPrecision(3)));

/** A tensor's histogram (log counts) with its clipping range marked: the part outside it is shaded. */
export function histogramFigure(hist: HistogramDisplay, width = 300, height = 70): HTMLElement {
  const g = histogramGeometry(hist, width, height);
  const svg = s("svg", { class: "histogram", width, height: height + 14, viewBox: `0 0 ${width} ${height + 14}`, role: "img", "aria-label": `Histogram of ${visibleText(hist.tensor)}` });
  if (g.clip) {
    svg.append(s("rect", { class: "hist-clipped", x: 0, y: 0, width: g.clip[0], height }), s("rect", { class: "hist-clipped", x: g.clip[1], y: 0, width: width - g.clip[1], height }));
  }
  svg.append(s("path", { class: "hist-bars", d: g.bars }));
  if (g.clip) for (const cx of g.clip) svg.append(s("line", { class: "hist-clip", x1: cx, x2: cx, y1: 0, y2: height }));
  svg.append(s("text", { class: "hist-axis", x: 0, y: height + 11 }, num(g.domain[0])), s("text", { class: "hist-axis", x: width, y: height + 11, "text-anchor": "end" }, num(g.domain[1])));
  const clip = hist.clipRange ? ` · clipped to [${num(hist.clipRange[0])}, ${num(hist.clipRange[1])}]` : "";
  return h("div", { class: "details-histogram" },
    h("p", { class: "tname" }, t(hist.tensor)),
    h("p", { class: "muted" }, `range [${num(hist.floatRange[0])}, ${num(hist.floatRange[1])}]${clip}${hist.method ? ` · ${t(hist.method)}` : ""}`),
    svg);
}
