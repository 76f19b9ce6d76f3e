// Positions for the graph view, with @dagrejs/dagre (layered layout of directed graphs; chosen over elkjs for being
// ~2-3× faster on the corpus' largest models and 49 KB against 1.6 MB: docs/graph-view.md). Pure (no DOM), so it
// runs in node for tests and the benchmark. An expanded If/Loop node is laid out from the inside out: each body
// first, then the node is as big as its bodies stacked, and the outer graph is laid out around it.
import dagre from "@dagrejs/dagre";
import type { GraphData, GraphEdgeData, GraphNodeData } from "./types";

export const NODE_HEIGHT = 38;
/** Header of an expanded node above its bodies, and the gap around each body. */
const HEADER = 40;
const PAD = 12;
const CHAR_W = 7;
/** Characters of a node's name its label shows (the details pane has the rest). */
export const LABEL_CHARS = 30;

export interface Point {
  x: number;
  y: number;
}

export interface PlacedNode {
  node: GraphNodeData;
  /** Top-left corner, relative to the layout it belongs to. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** The laid-out bodies of an expanded node, each placed relative to the node's corner. */
  bodies?: Array<{ attribute: string; x: number; y: number; layout: GraphLayout }>;
}

export interface PlacedEdge {
  from: string;
  to: string;
  /** Every tensor that runs between the two nodes (usually one). */
  tensors: Array<Pick<GraphEdgeData, "tensor" | "type">>;
  points: Point[];
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

/** A collapsed node's size: wide enough for its op type and (cut) name. */
export function nodeSize(n: GraphNodeData): { width: number; height: number } {
  const chars = Math.max(n.op.length + (n.subgraphs?.length ? 2 : 0), Math.min(n.name.length, LABEL_CHARS));
  return { width: Math.max(72, Math.min(260, chars * CHAR_W + 20)), height: NODE_HEIGHT };
}

/** Edges merged by (from, to): two tensors between the same nodes are drawn as one line listing both. */
export function mergeEdges(edges: readonly GraphEdgeData[]): Array<Omit<PlacedEdge, "points">> {
  const byPair = new Map<string, Omit<PlacedEdge, "points">>();
  for (const e of edges) {
    const key = `${e.from}\u0000${e.to}`;
    const m = byPair.get(key);
    if (m) m.tensors.push({ tensor: e.tensor, type: e.type });
    else byPair.set(key, { from: e.from, to: e.to, tensors: [{ tensor: e.tensor, type: e.type }] });
  }
  return [...byPair.values()];
}

/** A graph input read by more nodes than this is drawn once beside each reader (see splitHubs). */
export const HUB_FANOUT = 8;

/**
 * The graph with each input (graph input or outer value) that feeds more than HUB_FANOUT nodes drawn as one copy
 * per reader (ids `<id>~<n>`, same data otherwise). One box wired to readers at every depth makes dagre route as
 * many edges through every rank between: layout time grows with nodes × readers (a 400-node chain whose every Conv
 * read one input: 55 s, split: under 2 s), and the picture is a fan of long lines anyway.
 */
export function splitHubs(g: GraphData): GraphData {
  const readers = new Map<string, number>();
  for (const e of g.edges) readers.set(e.from, (readers.get(e.from) ?? 0) + 1);
  const hubs = new Set(g.nodes.filter((n) => n.kind === "input" && (readers.get(n.id) ?? 0) > HUB_FANOUT).map((n) => n.id));
  if (hubs.size === 0) return g;
  const copies: GraphNodeData[] = [];
  const count = new Map<string, number>();
  const edges = g.edges.map((e) => {
    if (!hubs.has(e.from)) return e;
    const k = count.get(e.from) ?? 0;
    count.set(e.from, k + 1);
    copies.push({ ...g.nodes.find((n) => n.id === e.from)!, id: `${e.from}~${k}` });
    return { ...e, from: `${e.from}~${k}` };
  });
  return { ...g, nodes: [...g.nodes.filter((n) => !hubs.has(n.id)), ...copies], edges };
}

/** Lays out a graph; nodes whose id is in `expanded` show their bodies. */
export function layoutGraph(whole: GraphData, expanded: ReadonlySet<string> = new Set()): GraphLayout {
  const g = splitHubs(whole);
  const dg = new dagre.graphlib.Graph();
  dg.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 40, edgesep: 10, marginx: 16, marginy: 16 });
  dg.setDefaultEdgeLabel(() => ({}));
  const placed = new Map<string, PlacedNode>();
  for (const n of g.nodes) {
    let size = nodeSize(n);
    let bodies: PlacedNode["bodies"];
    if (n.subgraphs?.length && expanded.has(n.id)) {
      bodies = [];
      let y = HEADER;
      let width = size.width;
      for (const s of n.subgraphs) {
        const layout = layoutGraph(s.graph, expanded);
        bodies.push({ attribute: s.attribute, x: PAD, y: y + 16, layout });
        y += 16 + layout.height + PAD;
        width = Math.max(width, layout.width + 2 * PAD);
      }
      size = { width, height: y };
    }
    placed.set(n.id, { node: n, x: 0, y: 0, ...size, ...(bodies ? { bodies } : {}) });
    dg.setNode(n.id, { ...size });
  }
  const merged = mergeEdges(g.edges).filter((e) => placed.has(e.from) && placed.has(e.to));
  for (const e of merged) dg.setEdge(e.from, e.to, {});
  dagre.layout(dg);
  for (const p of placed.values()) {
    const d = dg.node(p.node.id);
    p.x = (d.x ?? 0) - p.width / 2;
    p.y = (d.y ?? 0) - p.height / 2;
  }
  const graph = dg.graph();
  return {
    width: graph.width ?? 0,
    height: graph.height ?? 0,
    nodes: [...placed.values()],
    edges: merged.map((e) => ({ ...e, points: dg.edge(e.from, e.to)?.points ?? [] })),
  };
}
