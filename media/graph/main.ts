// Script of the ONNX editor page: the Summary | Graph tabs, page buttons (data-command → the extension), and the
// graph view: lays out the model with dagre the first time the graph is shown, draws it as SVG, and handles
// hover, click (details), search (Enter cycles matches), zoom/pan/fit, arrow-key navigation, expanding If/Loop
// bodies, and "Keep in float" (posted to the extension, which writes the model's override file).
import { edgeHover, nodeDetails, nodeHover } from "./details";
import { layoutGraph, type GraphLayout, type PlacedEdge } from "./layout";
import { navIndex, neighbour, nextMatch, type Direction, type NavIndex } from "./nav";
import { drawSvg } from "./render";
import { matchesQuery } from "./text";
import { QUANT_KINDS, type GraphNodeData, type GraphPageData } from "./types";

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
  requestAnimationFrame(() => {
    const t2 = performance.now();
    svg!.dataset.layoutMs = (t1 - t0).toFixed(0);
    svg!.dataset.paintMs = (t2 - t0).toFixed(0);
    svg!.dataset.nodes = String(ix!.boxes.size);
    if (first) vscode.postMessage({ command: "graph.painted", layoutMs: Math.round(t1 - t0), paintMs: Math.round(t2 - t0), nodes: ix!.boxes.size });
  });
}

function legend(): void {
  const el = $("graph-legend");
  if (!el || !page?.quantized) return;
  const counts = new Map<string, number>();
  for (const n of nodesById.values()) if (n.state && n.kind === "node") counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
  for (const k of QUANT_KINDS) {
    const item = document.createElement("span");
    item.className = "legend-item";
    const sw = document.createElement("span");
    sw.className = `swatch q-${k}`;
    item.append(sw, ` ${k} ${counts.get(k) ?? 0}`);
    el.append(item);
  }
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
  pane.replaceChildren(nodeDetails(n, { excluded: excluded.has(n.name), expanded: expanded.has(id) }));
}

function markSelected(id: string, center: boolean): void {
  svg?.querySelectorAll("g.node.selected").forEach((e) => e.classList.remove("selected"));
  selected = id;
  save();
  nodeEl(id)?.classList.add("selected");
  showDetails(id);
  if (center) centerOn(id);
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

function keepInFloat(id: string | undefined): void {
  const n = id ? nodesById.get(id) : undefined;
  if (n?.kind === "node") vscode.postMessage({ command: "graph.keepFloat", node: n.name });
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
    markSelected(id, false);
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
    markSelected(id, false);
    const keep = menu.querySelector<HTMLButtonElement>('[data-action="keep-float"]');
    if (keep) keep.textContent = excluded.has(nodesById.get(id)!.name) ? "Kept in float (next quantize)" : "Keep in float (next quantize)";
    menu.hidden = false;
    menu.style.left = `${e.clientX}px`;
    menu.style.top = `${e.clientY}px`;
    keep?.focus();
  });
  document.addEventListener("click", (e) => {
    const action = (e.target as HTMLElement).closest<HTMLElement>("[data-action]")?.dataset.action;
    if (action === "keep-float") keepInFloat(menu && !menu.hidden ? menuFor : selected);
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
        markSelected(id, true);
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
      if (to) markSelected(to, true);
    } else if (e.key === "Enter" && selected) toggleExpand(selected);
    else if (e.key === "+" || e.key === "=") zoomAt(1.25, canvasSize().w / 2, canvasSize().h / 2);
    else if (e.key === "-") zoomAt(0.8, canvasSize().w / 2, canvasSize().h / 2);
    else if (e.key === "0") fit();
  });

  window.addEventListener("message", (e: MessageEvent<{ type?: string; excluded?: string[]; message?: string }>) => {
    if (e.data?.type !== "excluded" || !Array.isArray(e.data.excluded)) return;
    excluded.clear();
    for (const name of e.data.excluded) excluded.add(name);
    svg?.querySelectorAll<SVGGElement>("g.node").forEach((g) => {
      const n = g.dataset.id ? nodesById.get(g.dataset.id) : undefined;
      g.classList.toggle("kept-float", n?.kind === "node" && excluded.has(n.name));
    });
    if (selected) showDetails(selected);
  });
}

if (page) {
  indexNodes(page.graph.nodes);
  for (const id of saved?.expanded ?? []) if (nodesById.has(id)) expanded.add(id);
  if (saved?.selected && nodesById.has(saved.selected)) selected = saved.selected;
  legend();
  wire();
  showView(saved?.tab ?? page.initialView);
}
