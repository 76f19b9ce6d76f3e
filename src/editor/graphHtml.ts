// The ONNX editor page: the summary's header (title, facts, action buttons) above two views, "Summary | Graph":
// the summary's sections (summaryHtml.ts) and the graph view's frame (toolbar, canvas, details pane, hover card,
// context menu) that media/graph/main.ts fills from the page's JSON data. The page is one viewport high: the views
// take what the header leaves, the summary scrolls inside its tab and the graph pans inside its canvas. No model string is written here: the graph's names travel as JSON (jsonForScript) and are set as
// text by the page script. Pure, for tests.
import type { GraphPageData } from "../../media/graph/types";
import type { ModelGraph } from "./graphModel";

/**
 * Models with at most this many nodes drawn (after folding Q/DQ and Constants, bodies collapsed) open on the graph;
 * larger ones open on the summary, the graph one click away. Measured (docs/graph-view.md, headless chromium on a
 * shared, overloaded 2-vCPU Xeon): first paint 0.9 s for the corpus' largest (416 nodes), 1.4 s at 600 nodes with a
 * 44 ms zoom step, 2.7 s at 1 000 nodes with zoom steps of 160 ms and more.
 */
export const GRAPH_DEFAULT_MAX_NODES = 600;

/**
 * Past this many nodes the graph is not drawn at all: its data alone would add megabytes to the page (about 1 KiB
 * a node) and the layout would take tens of seconds (3.4 s at 1 500 nodes, growing faster than linearly).
 */
export const GRAPH_MAX_NODES = 5000;

export function graphPageData(g: ModelGraph, excluded: readonly string[], sixteenBit: readonly string[] = []): GraphPageData {
  const n = g.graph.nodes.length;
  return {
    graph: n <= GRAPH_MAX_NODES ? g.graph : { name: g.graph.name, nodes: [], edges: [] },
    quantized: g.quantized,
    excluded: [...excluded],
    ...(sixteenBit.length ? { sixteenBit: [...sixteenBit] } : {}),
    initialView: n <= GRAPH_DEFAULT_MAX_NODES ? "graph" : "summary",
    ...(n > GRAPH_MAX_NODES ? { omittedNodes: n } : {}),
  };
}

const GRAPH_CSS = `<style>
html, body { height: 100%; }
body { margin: 0; padding-bottom: 8px; box-sizing: border-box; display: flex; flex-direction: column; overflow: hidden; }
#page-header h1 { margin: 10px 0 4px; }
#page-header p { margin: 4px 0; }
#page-header #actions { margin-top: 6px; }
#view-tabs { display: flex; gap: 2px; padding: 4px 0; border-bottom: 1px solid var(--vscode-panel-border, #8884); }
#view-tabs button { margin: 0; background: transparent; color: var(--vscode-foreground); border-bottom: 2px solid transparent; }
#view-tabs button[aria-selected="true"] { border-bottom-color: var(--vscode-focusBorder); font-weight: 600; }
#view-summary { flex: 1; min-height: 0; overflow: auto; }
#view-graph { flex: 1; min-height: 0; display: flex; flex-direction: column; }
#view-summary[hidden] { display: none; }
#view-graph[hidden] { display: none; }
#graph-toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; padding: 6px 0; }
#graph-toolbar button { margin: 0; padding: 3px 9px; }
#graph-search { background: var(--vscode-input-background); color: var(--vscode-input-foreground); border: 1px solid var(--vscode-input-border, transparent); padding: 3px 6px; min-width: 320px; }
#graph-search:focus { outline: 1px solid var(--vscode-focusBorder); }
#graph-legend { display: flex; gap: 10px; margin-left: auto; }
#graph-main { flex: 1; display: flex; min-height: 0; border: 1px solid var(--vscode-panel-border, #8884); }
#graph-canvas { flex: 1; position: relative; overflow: hidden; cursor: grab; background: var(--vscode-editor-background); }
#graph-canvas:focus { outline: 1px solid var(--vscode-focusBorder); outline-offset: -1px; }
#graph-svg { width: 100%; height: 100%; display: block; user-select: none; }
#graph-details { width: min(340px, 38%); flex: none; overflow: auto; padding: 0 10px; border-left: 1px solid var(--vscode-panel-border, #8884); overflow-wrap: anywhere; }
#graph-details table.tensors td { vertical-align: top; font-family: var(--vscode-editor-font-family, monospace); font-size: 0.92em; }
#graph-details .dname { font-family: var(--vscode-editor-font-family, monospace); }
#graph-hover { position: fixed; z-index: 5; max-width: 520px; padding: 6px 8px; pointer-events: none; overflow-wrap: anywhere;
  background: var(--vscode-editorHoverWidget-background); color: var(--vscode-editorHoverWidget-foreground, var(--vscode-foreground));
  border: 1px solid var(--vscode-editorHoverWidget-border, #8884); font-family: var(--vscode-editor-font-family, monospace); font-size: 0.92em; }
.hover-line { white-space: pre-wrap; }
#graph-menu { position: fixed; z-index: 6; display: flex; flex-direction: column; padding: 4px;
  background: var(--vscode-menu-background); color: var(--vscode-menu-foreground); border: 1px solid var(--vscode-menu-border, #8884); }
#graph-menu[hidden] { display: none; }
#graph-menu button { margin: 0; text-align: left; background: transparent; color: inherit; }
#graph-menu button:hover, #graph-menu button:focus { background: var(--vscode-menu-selectionBackground); color: var(--vscode-menu-selectionForeground); }
.node-box { fill: var(--vscode-editorWidget-background, #8882); stroke: var(--vscode-editorWidget-border, #888); stroke-width: 1; }
.node text { fill: var(--vscode-foreground); font-family: var(--vscode-editor-font-family, monospace); font-size: 11px; }
.node .node-op { font-weight: 600; }
.node .node-name { fill: var(--vscode-descriptionForeground); }
.node.kind-input .node-box, .node.kind-output .node-box { fill: var(--vscode-badge-background, #616161); }
.node.kind-input text, .node.kind-output text { fill: var(--vscode-badge-foreground, #fff); }
.node.match > .node-box { stroke: var(--vscode-editor-findMatchBorder, var(--vscode-charts-orange, #d18616)); stroke-width: 3; stroke-dasharray: 5 2; }
.node.kept-float > .node-box { stroke-dasharray: 2 2; }
.node.selected > .node-box { stroke: var(--vscode-focusBorder, #0090f1); stroke-width: 3; stroke-dasharray: none; }
.body-box { fill: none; stroke: var(--vscode-panel-border, #8886); stroke-dasharray: 4 3; }
.body-label { fill: var(--vscode-descriptionForeground); font-size: 10px; }
.edge-line { fill: none; stroke: var(--vscode-editorLineNumber-foreground, #888); stroke-width: 1.2; }
.edge-hit { fill: none; stroke: transparent; stroke-width: 9; }
.edge:hover .edge-line { stroke: var(--vscode-focusBorder); stroke-width: 2; }
.arrow-head { fill: var(--vscode-editorLineNumber-foreground, #888); }
.edge-label { fill: var(--vscode-descriptionForeground); font-family: var(--vscode-editor-font-family, monospace); font-size: 9px; }
.zoomed-out .edge-label, .zoomed-out .node-name { display: none; }
.q-int8 > .node-box, .swatch.q-int8 { fill: var(--vscode-charts-blue, #3794ff); background: var(--vscode-charts-blue, #3794ff); fill-opacity: 0.35; }
.q-int16 > .node-box, .swatch.q-int16 { fill: var(--vscode-charts-purple, #b180d7); background: var(--vscode-charts-purple, #b180d7); fill-opacity: 0.35; }
.q-int4 > .node-box, .swatch.q-int4 { fill: var(--vscode-charts-orange, #d18616); background: var(--vscode-charts-orange, #d18616); fill-opacity: 0.35; }
.q-fp4 > .node-box, .swatch.q-fp4 { fill: var(--vscode-charts-yellow, #cca700); background: var(--vscode-charts-yellow, #cca700); fill-opacity: 0.35; }
.q-float > .node-box, .swatch.q-float { fill: var(--vscode-editorWidget-background, #8882); background: var(--vscode-editorWidget-background, #8882); }
.by-sqnr .node.kind-node > .node-box { fill: var(--vscode-editorWidget-background, #8882); fill-opacity: 1; }
.by-sqnr .node.sqnr-0 > .node-box, .swatch.sqnr-0 { fill: var(--vscode-charts-red, #f14c4c); background: var(--vscode-charts-red, #f14c4c); fill-opacity: 0.55; }
.by-sqnr .node.sqnr-1 > .node-box, .swatch.sqnr-1 { fill: var(--vscode-charts-orange, #d18616); background: var(--vscode-charts-orange, #d18616); fill-opacity: 0.5; }
.by-sqnr .node.sqnr-2 > .node-box, .swatch.sqnr-2 { fill: var(--vscode-charts-yellow, #cca700); background: var(--vscode-charts-yellow, #cca700); fill-opacity: 0.45; }
.by-sqnr .node.sqnr-3 > .node-box, .swatch.sqnr-3 { fill: var(--vscode-charts-green, #89d185); background: var(--vscode-charts-green, #89d185); fill-opacity: 0.3; }
.by-sqnr .node.sqnr-4 > .node-box, .swatch.sqnr-4 { fill: var(--vscode-charts-green, #89d185); background: var(--vscode-charts-green, #89d185); fill-opacity: 0.6; }
.node.sixteen-bit > .node-box { stroke-width: 2.5; }
#graph-colour { background: var(--vscode-dropdown-background); color: var(--vscode-dropdown-foreground); border: 1px solid var(--vscode-dropdown-border, transparent); }
#graph-colour[hidden] { display: none; }
.details-histogram svg { display: block; margin: 2px 0 8px; max-width: 100%; height: auto; }
.hist-bars { fill: var(--vscode-charts-blue, #3794ff); }
.hist-clipped { fill: var(--vscode-charts-red, #f14c4c); fill-opacity: 0.12; }
.hist-clip { stroke: var(--vscode-charts-red, #f14c4c); stroke-width: 1.5; }
.hist-axis { fill: var(--vscode-descriptionForeground); font-size: 9px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: middle; border: 1px solid var(--vscode-editorWidget-border, #888); opacity: 0.8; }
</style>`;

/** The editor page body: the summary's header, the tabs, its sections (already-escaped HTML), the graph's frame. */
export function editorBody(summary: { header: string; sections: string }, data: GraphPageData): string {
  const n = data.graph.nodes.length;
  const graphFirst = data.initialView === "graph";
  return `${GRAPH_CSS}
<header id="page-header">${summary.header}</header>
<div id="view-tabs" role="tablist" aria-label="Model views">
<button id="tab-summary" role="tab" data-view="summary" aria-selected="${!graphFirst}">Summary</button>
<button id="tab-graph" role="tab" data-view="graph" aria-selected="${graphFirst}">Graph</button>
</div>
<section id="view-summary" role="tabpanel" aria-labelledby="tab-summary"${graphFirst ? " hidden" : ""}>
${summary.sections}
</section>
<section id="view-graph" role="tabpanel" aria-labelledby="tab-graph"${graphFirst ? "" : " hidden"}>
<div id="graph-toolbar">
<input id="graph-search" type="search" placeholder="Find node by name or op (/), Enter: next" aria-label="Find node by name or op type">
<span id="graph-search-status" class="muted" aria-live="polite"></span>
<button id="graph-zoom-in" class="secondary" title="Zoom in (+)">+</button>
<button id="graph-zoom-out" class="secondary" title="Zoom out (-)">−</button>
<button id="graph-fit" class="secondary" title="Fit (0)">Fit</button>
<select id="graph-colour" aria-label="Colour nodes by" hidden><option value="sqnr">Colour: SQNR</option><option value="state">Colour: state</option></select>
<span id="graph-legend" aria-label="Quantization state colours"></span>
</div>
<div id="graph-main">
<div id="graph-canvas" tabindex="0" aria-label="Graph: arrows move between connected nodes, / searches, Enter expands If/Loop bodies">
<p id="graph-status" class="muted">Laying out ${n.toLocaleString("en-US")} nodes…</p>
</div>
<aside id="graph-details" aria-live="polite"><p class="muted">Click a node to see its tensors, attributes${data.quantized ? ", scales and zero points" : ""}. Hover shows shapes. Right-click: keep in float, 16-bit.</p></aside>
</div>
<div id="graph-hover" hidden></div>
<div id="graph-menu" role="menu" hidden><button role="menuitem" data-action="keep-float">Keep in float (next quantize)</button><button role="menuitem" data-action="sixteen-bit">16-bit activations (next quantize)</button></div>
</section>`;
}
