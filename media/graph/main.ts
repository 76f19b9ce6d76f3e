// Script of the ONNX editor page: the Summary | Graph tabs, page buttons (data-command → the extension), and the
// graph view: lays out the model with dagre the first time the graph is shown, draws it as SVG, and handles
// hover, click (details), search (Enter cycles matches), zoom/pan/fit, arrow-key navigation, expanding If/Loop
// bodies, "Keep in float" and "16-bit" (posted to the extension, which writes the model's override file), and what
// the extension sends: the kernel's analysis (nodes coloured by SQNR, a node's rank and histograms), a node picked
// in a tree view, and in a side-by-side compare the twin's selection and scroll.
import type { HistogramDisplay } from "../../kernel/display-types";
import { SQNR_BANDS, sqnrBand } from "./analysis";
import { edgeHover, histogramFigure, nodeDetails, nodeHover } from "./details";
import { layoutGraph, type GraphLayout, type PlacedEdge } from "./layout";
import { anchorOf, navIndex, neighbour, nextMatch, viewAt, type Anchor, type Direction, type NavIndex } from "./nav";
import { drawSvg } from "./render";
import { matchesQuery } from "./text";
import { QUANT_KINDS, type GraphAnalysis, type GraphNodeData, type GraphPageData, type NodeAnalysis } from "./types";

/** What survives the webview being hidden and rebuilt (VS Code keeps it with getState/setState). */
interface SavedState {
  tab: "summary" | "graph";
  selected?: string;
  expanded: string[];
  view?: { x: number; y: number; k: number };
}

declare function acquireVsCodeApi(): { postMessage(msg: unknown): void; getState(): SavedState | undefined; setState(s: SavedState): void };
const vscode = acquireVsCodeApi();

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T | null;

document.addEventListener("click", (e) => {
  const button = (e.target as HTMLElement).closest<HTMLElement>("[data-command]");
  if (button) vscode.postMessage({ command: button.dataset.command, arg: button.dataset.arg });
});

const dataEl = $("ptq-data");
const page = dataEl ? (JSON.parse(dataEl.textContent ?? "{}") as GraphPageData) : undefined;

// ---- state ----
let layout: GraphLayout | undefined;
let ix: NavIndex | undefined;
let viewport: SVGGElement | undefined;
let svg: SVGSVGElement | undefined;
const nodesById = new Map<string, GraphNodeData>();
const edgesByKey = new Map<string, PlacedEdge>();
const expanded = new Set<string>();
const excluded = new Set(page?.excluded ?? []);
const sixteen = new Set(page?.sixteenBit ?? []);
/** The kernel's analysis of this model, by node name (empty when there is none). */
const analysis = new Map<string, NodeAnalysis>();
let warnBelowDb = 20;
let colourBy: "state" | "sqnr" = "sqnr";
/** In a side-by-side compare: the twin's node names (scroll sync anchors on a node both graphs draw). */
let twinNames: Set<string> | undefined;
/** Set while applying the twin's scroll, so it is not sent back. */
let syncing = false;
let selected: string | undefined;
let matches: string[] = [];
let view = { x: 0, y: 0, k: 1 };
let tab: "summary" | "graph" = "summary";
const saved = vscode.getState();

function save(): void {
  vscode.setState({ tab, selected, expanded: [...expanded], view: layout ? view : saved?.view });
}

function indexNodes(nodes: readonly GraphNodeData[]): void {
  for (const n of nodes) {
    nodesById.set(n.id, n);
    for (const s of n.subgraphs ?? []) indexNodes(s.graph.nodes);
  }
}

/** Edges, and the copies of much-read inputs the layout drew (splitHubs): they describe themselves like the input. */
function indexLayout(l: GraphLayout): void {
  for (const e of l.edges) edgesByKey.set(`${e.from}\u0000${e.to}`, e);
  for (const p of l.nodes) {
    if (!nodesById.has(p.node.id)) nodesById.set(p.node.id, p.node);
    for (const b of p.bodies ?? []) indexLayout(b.layout);
  }
}

// ---- tabs ----
function showView(which: "summary" | "graph"): void {
  tab = which;
  save();
  for (const v of ["summary", "graph"] as const) {
    $(`view-${v}`)?.toggleAttribute("hidden", v !== which);
    $(`tab-${v}`)?.setAttribute("aria-selected", String(v === which));
  }
  if (which === "graph" && !layout) {
    // Let the "Laying out…" status paint before the (synchronous) layout runs.
    requestAnimationFrame(() => setTimeout(() => paint(true), 0));
  }
}

document.getElementById("view-tabs")?.addEventListener("click", (e) => {
  const v = (e.target as HTMLElement).closest<HTMLElement>("[data-view]")?.dataset.view;
  if (v === "summary" || v === "graph") showView(v);
});

// ---- drawing ----
let saveTimer: ReturnType<typeof setTimeout> | undefined;
function applyView(): void {
  // Panning moves the view on every mouse move: it is saved once the movement pauses.
  clearTimeout(saveTimer);
  saveTimer = setTimeout(save, 250);
  viewport?.setAttribute("transform", `translate(${view.x.toFixed(1)},${view.y.toFixed(1)}) scale(${view.k.toFixed(4)})`);
  svg?.classList.toggle("zoomed-out", view.k < 0.45);
  if (twinNames && !syncing) postScroll();
}

let scrollFrame = 0;
/** Tells the twin (through the extension) which node is at the centre of the canvas, once per frame. */
function postScroll(): void {
  if (scrollFrame) return;
  scrollFrame = requestAnimationFrame(() => {
    scrollFrame = 0;
    const a = ix && anchorOf(ix, view, canvasSize(), (id) => { const n = nodesById.get(id); return !!n && n.kind === "node" && !!twinNames?.has(n.name); });
    if (a) vscode.postMessage({ command: "graph.scroll", anchor: { ...a, node: nodesById.get(a.node)!.name } });
  });
}

function canvasSize(): { w: number; h: number } {
  const c = $("graph-canvas");
  return { w: c?.clientWidth || 800, h: c?.clientHeight || 600 };
}

/** The smallest zoom Fit goes to: node labels are still readable. */
const MIN_FIT = 0.35;

function fit(): void {
  if (!layout) return;
  const { w, h } = canvasSize();
  const fw = (w - 16) / Math.max(1, layout.width);
  const whole = Math.min(1, fw, (h - 16) / Math.max(1, layout.height));
  // A tall model fitted whole is unreadable: below this zoom, fit the width (at least this zoom) from the top.
  const k = whole >= MIN_FIT ? whole : Math.min(1, Math.max(fw, MIN_FIT));
  view = { k, x: Math.max(8, (w - layout.width * k) / 2), y: k === whole ? (h - layout.height * k) / 2 : 8 };
  applyView();
}

function zoomAt(factor: number, px: number, py: number): void {
  const k = Math.min(4, Math.max(0.02, view.k * factor));
  view = { k, x: px - ((px - view.x) * k) / view.k, y: py - ((py - view.y) * k) / view.k };
  applyView();
}

function paint(first: boolean): void {
  if (!page) return;
  const status = $("graph-status");
  if (page.omittedNodes) {
    if (status) status.textContent = `This model has ${page.omittedNodes.toLocaleString("en-US")} nodes: the graph view draws models of up to 5,000. The Summary tab and the Model Layers view list its nodes.`;
    return;
  }
  const t0 = performance.now();
  try {
    layout = layoutGraph(page.graph, expanded);
  } catch (e) {
    if (status) status.textContent = `The graph could not be laid out: ${String(e)}`;
    vscode.postMessage({ command: "graph.error", arg: String(e) });
    return;
  }
  const t1 = performance.now();
  ix = navIndex(layout);
  edgesByKey.clear();
  indexLayout(layout);
  const drawn = drawSvg(layout, { excluded });
  svg = drawn.svg;
  viewport = drawn.viewport;
  const canvas = $("graph-canvas")!;
  canvas.querySelector("svg")?.remove();
  canvas.append(svg);
  status?.remove();
  if (first && saved?.view) view = saved.view;
  else if (first) fit();
  applyView();
  if (selected) markSelected(selected, false);
  markMatches();
  applyAnalysis();
  requestAnimationFrame(() => {
    const t2 = performance.now();
    svg!.dataset.layoutMs = (t1 - t0).toFixed(0);
    svg!.dataset.paintMs = (t2 - t0).toFixed(0);
    svg!.dataset.nodes = String(ix!.boxes.size);
    if (first) vscode.postMessage({ command: "graph.painted", layoutMs: Math.round(t1 - t0), paintMs: Math.round(t2 - t0), nodes: ix!.boxes.size });
  });
}

function legendItem(swatch: string, text: string): HTMLElement {
  const item = document.createElement("span");
  item.className = "legend-item";
  const sw = document.createElement("span");
  sw.className = `swatch ${swatch}`;
  item.append(sw, ` ${text}`);
  return item;
}

/** The legend of what the nodes are coloured by: SQNR bands (with an analysis) or quantization states. */
function legend(): void {
  const el = $("graph-legend");
  if (!el) return;
  el.replaceChildren();
  const bySqnr = colourBy === "sqnr" && analysis.size > 0;
  el.setAttribute("aria-label", bySqnr ? "SQNR colours" : "Quantization state colours");
  if (bySqnr) {
    const counts = new Array<number>(SQNR_BANDS.length).fill(0);
    for (const a of analysis.values()) counts[sqnrBand(a.sqnrDb)]!++;
    el.append(document.createTextNode("SQNR"));
    SQNR_BANDS.forEach((b, i) => el.append(legendItem(`sqnr-${i}`, `${b.label} ${counts[i]}`)));
    return;
  }
  if (!page?.quantized) return;
  const counts = new Map<string, number>();
  for (const n of nodesById.values()) if (n.state && n.kind === "node") counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
  for (const k of QUANT_KINDS) el.append(legendItem(`q-${k}`, `${k} ${counts.get(k) ?? 0}`));
}

/** Colours the drawn nodes by SQNR (when there is an analysis and SQNR is the chosen colouring) and redraws the legend. */
function applyAnalysis(): void {
  const colour = $("graph-colour") as HTMLSelectElement | null;
  if (colour) {
    colour.hidden = analysis.size === 0;
    colour.value = colourBy;
  }
  svg?.classList.toggle("by-sqnr", colourBy === "sqnr" && analysis.size > 0);
  svg?.querySelectorAll<SVGGElement>("g.node").forEach((g) => {
    SQNR_BANDS.forEach((_, i) => g.classList.remove(`sqnr-${i}`));
    const n = g.dataset.id ? nodesById.get(g.dataset.id) : undefined;
    const a = n?.kind === "node" ? analysis.get(n.name) : undefined;
    if (a) g.classList.add(`sqnr-${sqnrBand(a.sqnrDb)}`);
    g.classList.toggle("sixteen-bit", n?.kind === "node" && sixteen.has(n.name));
  });
  legend();
}

// ---- selection, details, hover ----
function nodeEl(id: string): Element | null {
  return svg?.querySelector(`g.node[data-id="${CSS.escape(id)}"]`) ?? null;
}

function centerOn(id: string): void {
  const b = ix?.boxes.get(id);
  if (!b) return;
  const { w, h } = canvasSize();
  const k = Math.max(view.k, 0.8);
  view = { k, x: w / 2 - (b.x + b.width / 2) * k, y: h / 2 - (b.y + b.height / 2) * k };
  applyView();
}

function showDetails(id: string): void {
  const pane = $("graph-details");
  const n = nodesById.get(id);
  if (!pane || !n) return;
  const a = n.kind === "node" ? analysis.get(n.name) : undefined;
  pane.replaceChildren(nodeDetails(n, {
    excluded: excluded.has(n.name), expanded: expanded.has(id), sixteenBit: sixteen.has(n.name),
    ...(a ? { analysis: { node: a, of: analysis.size, warnBelowDb } } : {}),
  }));
  // The extension answers with the histograms of the node's tensors that calibration collected (message "histograms").
  if (n.kind === "node") vscode.postMessage({ command: "graph.histograms", node: n.name });
}

function showHistograms(node: string, list: HistogramDisplay[]): void {
  const box = $("details-histograms");
  const n = selected ? nodesById.get(selected) : undefined;
  if (!box || n?.name !== node || list.length === 0) return;
  box.replaceChildren(Object.assign(document.createElement("h4"), { textContent: "Histograms (calibration, log counts)" }), ...list.map((h) => histogramFigure(h)));
}

/** Selects a node; `tell` says the extension (tree views, a compare twin) should follow: a user's pick, not theirs. */
function markSelected(id: string, center: boolean, tell = false): void {
  svg?.querySelectorAll("g.node.selected").forEach((e) => e.classList.remove("selected"));
  selected = id;
  save();
  nodeEl(id)?.classList.add("selected");
  showDetails(id);
  if (center) centerOn(id);
  const n = nodesById.get(id);
  if (tell && n?.kind === "node") vscode.postMessage({ command: "graph.selected", node: n.name });
}

function markMatches(): void {
  svg?.querySelectorAll("g.node.match").forEach((e) => e.classList.remove("match"));
  for (const id of matches) nodeEl(id)?.classList.add("match");
}

function search(query: string): void {
  matches = [...nodesById.values()].filter((n) => ix?.boxes.has(n.id) && matchesQuery(n, query)).map((n) => n.id);
  markMatches();
  const s = $("graph-search-status");
  if (s) s.textContent = query.trim() ? `${matches.length} match${matches.length === 1 ? "" : "es"}` : "";
}

function toggleExpand(id: string): void {
  if (!nodesById.get(id)?.subgraphs?.length) return;
  if (expanded.has(id)) expanded.delete(id);
  else expanded.add(id);
  paint(false);
  markSelected(id, true);
  search(($("graph-search") as HTMLInputElement | null)?.value ?? "");
}

const hover = $("graph-hover");
function showHover(content: HTMLElement | undefined, ev: MouseEvent): void {
  if (!hover) return;
  if (!content) {
    hover.hidden = true;
    return;
  }
  hover.replaceChildren(content);
  hover.hidden = false;
  hover.style.left = `${ev.clientX + 14}px`;
  hover.style.top = `${ev.clientY + 14}px`;
}

/** "Keep in float" / "16-bit": the extension writes the override file and answers with the new lists. */
function override(command: "graph.keepFloat" | "graph.sixteenBit", id: string | undefined): void {
  const n = id ? nodesById.get(id) : undefined;
  if (n?.kind === "node") vscode.postMessage({ command, node: n.name });
}

// ---- events ----
function wire(): void {
  const canvas = $("graph-canvas");
  if (!canvas) return;
  let drag: { x: number; y: number; moved: boolean } | undefined;
  canvas.addEventListener("mousedown", (e) => {
    if (e.button === 0) drag = { x: e.clientX, y: e.clientY, moved: false };
  });
  window.addEventListener("mousemove", (e) => {
    if (drag && (e.buttons & 1)) {
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
      view = { ...view, x: view.x + dx, y: view.y + dy };
      drag.x = e.clientX;
      drag.y = e.clientY;
      applyView();
    }
  });
  window.addEventListener("mouseup", () => setTimeout(() => (drag = undefined), 0));
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    if (e.ctrlKey || e.metaKey) zoomAt(Math.exp(-e.deltaY / 300), e.clientX - r.left, e.clientY - r.top);
    else {
      view = { ...view, x: view.x - e.deltaX, y: view.y - e.deltaY };
      applyView();
    }
  }, { passive: false });
  canvas.addEventListener("click", (e) => {
    if (drag?.moved) return;
    const g = (e.target as Element).closest<SVGGElement>("g.node");
    if (!g?.dataset.id) return;
    const id = g.dataset.id;
    // The ⊞ / ⊟ on an If/Loop node's op line toggles its bodies; a click elsewhere selects.
    if (selected === id && nodesById.get(id)?.subgraphs?.length && (e.target as Element).classList.contains("node-op")) toggleExpand(id);
    markSelected(id, false, true);
    canvas.focus();
  });
  canvas.addEventListener("dblclick", (e) => {
    const id = (e.target as Element).closest<SVGGElement>("g.node")?.dataset.id;
    if (id) toggleExpand(id);
  });
  canvas.addEventListener("mousemove", (e) => {
    if (drag?.moved) return showHover(undefined, e);
    const target = e.target as Element;
    const nodeG = target.closest<SVGGElement>("g.node");
    // closest() finds the innermost node: inside an expanded node, the body's node under the pointer.
    const n = nodeG?.dataset.id ? nodesById.get(nodeG.dataset.id) : undefined;
    if (n && !target.closest(".edge")) return showHover(nodeHover(n), e);
    const edgeG = target.closest<SVGGElement>("g.edge");
    const edge = edgeG ? edgesByKey.get(`${edgeG.dataset.from}\u0000${edgeG.dataset.to}`) : undefined;
    showHover(edge && edgeHover(edge), e);
  });
  canvas.addEventListener("mouseleave", (e) => showHover(undefined, e));

  const menu = $("graph-menu");
  let menuFor: string | undefined;
  canvas.addEventListener("contextmenu", (e) => {
    const id = (e.target as Element).closest<SVGGElement>("g.node")?.dataset.id;
    if (!menu || !id || nodesById.get(id)?.kind !== "node") return;
    e.preventDefault();
    e.stopPropagation();
    menuFor = id;
    markSelected(id, false, true);
    const name = nodesById.get(id)!.name;
    const keep = menu.querySelector<HTMLButtonElement>('[data-action="keep-float"]');
    if (keep) keep.textContent = excluded.has(name) ? "Kept in float (next quantize)" : "Keep in float (next quantize)";
    const wide = menu.querySelector<HTMLButtonElement>('[data-action="sixteen-bit"]');
    if (wide) wide.textContent = sixteen.has(name) ? "16-bit (next quantize)" : "16-bit activations (next quantize)";
    menu.hidden = false;
    menu.style.left = `${e.clientX}px`;
    menu.style.top = `${e.clientY}px`;
    keep?.focus();
  });
  document.addEventListener("click", (e) => {
    const action = (e.target as HTMLElement).closest<HTMLElement>("[data-action]")?.dataset.action;
    if (action === "keep-float") override("graph.keepFloat", menu && !menu.hidden ? menuFor : selected);
    if (action === "sixteen-bit") override("graph.sixteenBit", menu && !menu.hidden ? menuFor : selected);
    if (action === "toggle-expand" && selected) toggleExpand(selected);
    if (menu) menu.hidden = true;
  });

  const input = $("graph-search") as HTMLInputElement | null;
  input?.addEventListener("input", () => search(input.value));
  input?.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      const id = nextMatch(matches, selected, e.shiftKey);
      const s = $("graph-search-status");
      if (id) {
        markSelected(id, true, true);
        if (s) s.textContent = `${matches.indexOf(id) + 1} of ${matches.length}`;
      }
    } else if (e.key === "Escape") {
      input.blur();
      canvas.focus();
    }
  });
  $("graph-fit")?.addEventListener("click", fit);
  $("graph-zoom-in")?.addEventListener("click", () => zoomAt(1.25, canvasSize().w / 2, canvasSize().h / 2));
  $("graph-zoom-out")?.addEventListener("click", () => zoomAt(0.8, canvasSize().w / 2, canvasSize().h / 2));

  const ARROWS: Record<string, Direction> = { ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right" };
  document.addEventListener("keydown", (e) => {
    if ($("view-graph")?.hidden) return;
    const typing = (e.target as HTMLElement).closest("input, textarea");
    if (e.key === "/" && !typing) {
      e.preventDefault();
      input?.focus();
      input?.select();
      return;
    }
    if (typing) return;
    if (e.key === "Escape" && menu) menu.hidden = true;
    const dir = ARROWS[e.key];
    if (dir && ix) {
      e.preventDefault();
      const start = selected ?? ix.boxes.keys().next().value;
      const to = start && (selected ? neighbour(ix, start, dir) : start);
      if (to) markSelected(to, true, true);
    } else if (e.key === "Enter" && selected) toggleExpand(selected);
    else if (e.key === "+" || e.key === "=") zoomAt(1.25, canvasSize().w / 2, canvasSize().h / 2);
    else if (e.key === "-") zoomAt(0.8, canvasSize().w / 2, canvasSize().h / 2);
    else if (e.key === "0") fit();
  });

  const colour = $("graph-colour") as HTMLSelectElement | null;
  colour?.addEventListener("change", () => {
    colourBy = colour.value === "state" ? "state" : "sqnr";
    applyAnalysis();
  });

  window.addEventListener("message", (e: MessageEvent<HostMessage>) => onHostMessage(e.data));
}

/** What the extension sends the page (src/editor/onnxEditor.ts). */
type HostMessage =
  | { type: "excluded"; excluded: string[]; sixteenBit: string[] }
  | { type: "analysis"; analysis: GraphAnalysis | null }
  | { type: "histograms"; node: string; histograms: HistogramDisplay[] }
  | { type: "select"; node: string }
  | { type: "compare"; twin: string[] | null }
  | { type: "scroll"; anchor: Anchor };

/** The id of the node with this name: a drawn one first (a body's node is drawn only when expanded). */
function idOfName(name: string): string | undefined {
  let any: string | undefined;
  for (const n of nodesById.values()) {
    if (n.kind !== "node" || n.name !== name) continue;
    if (ix?.boxes.has(n.id)) return n.id;
    any ??= n.id;
  }
  return any;
}

function onHostMessage(m: HostMessage | undefined): void {
  switch (m?.type) {
    case "excluded":
      excluded.clear();
      for (const name of m.excluded) excluded.add(name);
      sixteen.clear();
      for (const name of m.sixteenBit) sixteen.add(name);
      svg?.querySelectorAll<SVGGElement>("g.node").forEach((g) => {
        const n = g.dataset.id ? nodesById.get(g.dataset.id) : undefined;
        g.classList.toggle("kept-float", n?.kind === "node" && excluded.has(n.name));
      });
      applyAnalysis();
      if (selected) showDetails(selected);
      return;
    case "analysis":
      analysis.clear();
      for (const a of m.analysis?.nodes ?? []) analysis.set(a.node, a);
      warnBelowDb = m.analysis?.warnBelowDb ?? 20;
      applyAnalysis();
      if (selected) showDetails(selected);
      return;
    case "histograms":
      return showHistograms(m.node, m.histograms);
    case "select": {
      const id = idOfName(m.node);
      if (id && id !== selected) markSelected(id, !!ix?.boxes.has(id));
      return;
    }
    case "compare":
      twinNames = m.twin ? new Set(m.twin) : undefined;
      document.body.classList.toggle("comparing", !!twinNames);
      return;
    case "scroll": {
      const id = idOfName(m.anchor.node);
      if (!ix || !id || !ix.boxes.has(id)) return;
      syncing = true;
      view = viewAt(ix, { ...m.anchor, node: id }, canvasSize());
      applyView();
      syncing = false;
      return;
    }
  }
}

if (page) {
  indexNodes(page.graph.nodes);
  for (const id of saved?.expanded ?? []) if (nodesById.has(id)) expanded.add(id);
  if (saved?.selected && nodesById.has(saved.selected)) selected = saved.selected;
  legend();
  wire();
  showView(saved?.tab ?? page.initialView);
  // The extension answers with what it holds for this page: the analysis, a compare twin.
  vscode.postMessage({ command: "graph.ready" });
}
