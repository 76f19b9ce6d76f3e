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
