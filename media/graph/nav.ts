// Keyboard navigation over a laid-out graph (pure, for tests): Down/Up go to a consumer/producer of the selected
// node, Left/Right to the nearest node beside it on the same row. Boxes are absolute (nested bodies included).
import type { GraphLayout } from "./layout";

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface NavIndex {
  boxes: Map<string, Box>;
  succ: Map<string, string[]>;
  pred: Map<string, string[]>;
}

/** Absolute boxes and adjacency of a layout and the bodies of its expanded nodes. */
export function navIndex(layout: GraphLayout, ox = 0, oy = 0, into: NavIndex = { boxes: new Map(), succ: new Map(), pred: new Map() }): NavIndex {
  for (const p of layout.nodes) {
    const x = ox + p.x;
    const y = oy + p.y;
    into.boxes.set(p.node.id, { x, y, width: p.width, height: p.height });
    for (const b of p.bodies ?? []) navIndex(b.layout, x + b.x, y + b.y, into);
  }
  for (const e of layout.edges) {
    into.succ.set(e.from, [...(into.succ.get(e.from) ?? []), e.to]);
    into.pred.set(e.to, [...(into.pred.get(e.to) ?? []), e.from]);
  }
  return into;
}

const cx = (b: Box) => b.x + b.width / 2;
const cy = (b: Box) => b.y + b.height / 2;

export type Direction = "up" | "down" | "left" | "right";

/** The node an arrow key moves to from `id`, or undefined when there is none that way. */
export function neighbour(ix: NavIndex, id: string, dir: Direction): string | undefined {
  const from = ix.boxes.get(id);
  if (!from) return undefined;
  const nearest = (ids: Iterable<string>, score: (b: Box) => number | undefined) => {
    let best: string | undefined;
    let bestScore = Infinity;
    for (const other of ids) {
      const b = ix.boxes.get(other);
      const s = b && other !== id ? score(b) : undefined;
      if (s !== undefined && s < bestScore) [best, bestScore] = [other, s];
    }
    return best;
  };
  if (dir === "down") return nearest(ix.succ.get(id) ?? [], (b) => Math.abs(cx(b) - cx(from)));
  if (dir === "up") return nearest(ix.pred.get(id) ?? [], (b) => Math.abs(cx(b) - cx(from)));
  const sign = dir === "right" ? 1 : -1;
  // Same row: vertical overlap with the selected node; then the closest in the arrow's direction.
  return nearest(ix.boxes.keys(), (b) => {
    const dx = (cx(b) - cx(from)) * sign;
    const overlaps = b.y < from.y + from.height && from.y < b.y + b.height;
    return dx > 0 && overlaps ? dx + Math.abs(cy(b) - cy(from)) : undefined;
  });
}

/** The next match after `current` (or the first), cycling; backwards with `back`. */
export function nextMatch(matches: readonly string[], current: string | undefined, back = false): string | undefined {
  if (matches.length === 0) return undefined;
  const i = current === undefined ? -1 : matches.indexOf(current);
  if (i < 0) return back ? matches[matches.length - 1] : matches[0];
  return matches[(i + (back ? matches.length - 1 : 1)) % matches.length];
}

/** Where a view looks, by node: the canvas centre is (dx, dy) from the centre of `node`, at zoom k (graph units). */
export interface Anchor {
  node: string;
  dx: number;
  dy: number;
  k: number;
}

export interface View {
  x: number;
  y: number;
  k: number;
}

/** The node (among those `eligible`) nearest the centre of the canvas, and the centre's offset from it. */
export function anchorOf(ix: NavIndex, view: View, canvas: { w: number; h: number }, eligible: (id: string) => boolean): Anchor | undefined {
  const gx = (canvas.w / 2 - view.x) / view.k;
  const gy = (canvas.h / 2 - view.y) / view.k;
  let best: Anchor | undefined;
  let bestD = Infinity;
  for (const [id, b] of ix.boxes) {
    if (!eligible(id)) continue;
    const dx = gx - cx(b);
    const dy = gy - cy(b);
    const d = dx * dx + dy * dy;
    if (d < bestD) [best, bestD] = [{ node: id, dx, dy, k: view.k }, d];
  }
  return best;
}

/** The view that puts an anchor's node where the anchor says (the other side of anchorOf). */
export function viewAt(ix: NavIndex, a: Anchor, canvas: { w: number; h: number }): View {
  const b = ix.boxes.get(a.node);
  const gx = (b ? cx(b) : 0) + a.dx;
  const gy = (b ? cy(b) : 0) + a.dy;
  return { k: a.k, x: canvas.w / 2 - gx * a.k, y: canvas.h / 2 - gy * a.k };
}
