// Draws a laid-out graph as SVG. Every model-controlled string goes in through textContent or setAttribute (never
// innerHTML), and through label()/visibleText() so invisible and direction-changing characters show as escapes.
import type { GraphLayout, PlacedEdge, PlacedNode } from "./layout";
import { LABEL_CHARS } from "./layout";
import { label } from "./text";

const SVG = "http://www.w3.org/2000/svg";

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Shortest label of an edge: the tensor's type and shape when known, else nothing (the hover names the tensor). */
function edgeLabel(e: PlacedEdge): string {
  const t = e.tensors[0];
  if (!t?.type || t.type === "?") return "";
  return label(t.type, 32) + (e.tensors.length > 1 ? ` +${e.tensors.length - 1}` : "");
}

function pathOf(e: PlacedEdge): string {
  const [first, ...rest] = e.points;
  if (!first) return "";
  return `M${first.x.toFixed(1)},${first.y.toFixed(1)}` + rest.map((p) => `L${p.x.toFixed(1)},${p.y.toFixed(1)}`).join("");
}

function drawEdge(e: PlacedEdge, parent: SVGGElement): void {
  const g = el("g", { class: "edge", "data-from": e.from, "data-to": e.to });
  const d = pathOf(e);
  // A wide transparent path under the visible one makes a thin edge easy to hover.
  g.append(el("path", { d, class: "edge-hit" }), el("path", { d, class: "edge-line", "marker-end": "url(#arrow)" }));
  const text = edgeLabel(e);
  const mid = e.points[Math.floor(e.points.length / 2)];
  if (text && mid) g.append(el("text", { x: mid.x + 4, y: mid.y - 2, class: "edge-label" }, text));
  parent.append(g);
}

function drawNode(p: PlacedNode, parent: SVGGElement, opts: DrawOptions): void {
  const n = p.node;
  const cls = ["node", `kind-${n.kind}`];
  if (n.state) cls.push(`q-${n.state}`);
  if (n.kind === "node" && opts.excluded.has(n.name)) cls.push("kept-float");
  if (p.bodies) cls.push("expanded");
  const g = el("g", { class: cls.join(" "), transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`, "data-id": n.id });
  g.append(el("rect", { width: p.width, height: p.height, rx: n.kind === "node" ? 4 : 14, class: "node-box" }));
  const more = n.subgraphs?.length ? (p.bodies ? " ⊟" : " ⊞") : "";
  g.append(el("text", { x: 8, y: 15, class: "node-op" }, label(n.op, LABEL_CHARS) + more));
  g.append(el("text", { x: 8, y: 30, class: "node-name" }, label(n.name, LABEL_CHARS)));
  for (const b of p.bodies ?? []) {
    const inner = el("g", { transform: `translate(${b.x},${b.y})`, class: "body" });
    inner.append(el("rect", { x: -4, y: -14, width: b.layout.width + 8, height: b.layout.height + 16, class: "body-box" }));
    inner.append(el("text", { x: 0, y: -3, class: "body-label" }, label(b.attribute, LABEL_CHARS)));
    drawLayout(b.layout, inner, opts);
    g.append(inner);
  }
  parent.append(g);
}

export interface DrawOptions {
  /** Node names kept in float by the override file. */
  excluded: ReadonlySet<string>;
}

/** Draws edges under nodes into `parent`. */
export function drawLayout(layout: GraphLayout, parent: SVGGElement, opts: DrawOptions): void {
  const edges = el("g", { class: "edges" });
  for (const e of layout.edges) drawEdge(e, edges);
  const nodes = el("g", { class: "nodes" });
  for (const p of layout.nodes) drawNode(p, nodes, opts);
  parent.append(edges, nodes);
}

/** A fresh SVG for a layout: the arrow marker and a viewport group that pan and zoom transform. */
export function drawSvg(layout: GraphLayout, opts: DrawOptions): { svg: SVGSVGElement; viewport: SVGGElement } {
  const svg = el("svg", { id: "graph-svg", role: "img", "aria-label": "Model graph" });
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M0,0L10,5L0,10z", class: "arrow-head" }));
  defs.append(marker);
  const viewport = el("g", { id: "graph-viewport" });
  drawLayout(layout, viewport, opts);
  svg.append(defs, viewport);
  return { svg, viewport };
}
