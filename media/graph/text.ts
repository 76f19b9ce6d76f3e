// Model-controlled text as the graph view shows it. The page never parses it as HTML (every string goes through
// textContent or an attribute set with setAttribute), so these only keep it readable and honest: bidirectional
// controls and other invisible characters are shown as \u{…} (an RTL override in a node name would otherwise
// display another name), and labels are cut to fit a node with the full text left to the details pane.

// Bidi embeddings/overrides/isolates, marks, zero-width and other format characters, C0/C1 controls.
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

/** The text with invisible and direction-changing characters written out as \u{hex}. */
export function visibleText(s: string): string {
  return s.replace(INVISIBLE, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}

/** A label of at most `max` characters (after visibleText), ending in "…" when cut. */
export function label(s: string, max: number): string {
  const v = visibleText(s);
  if (v.length <= max) return v;
  // Keep the end of long paths such as /backbone/stage3/conv/Conv: the last part tells the node apart.
  const tail = Math.floor((max - 1) / 2);
  return `${v.slice(0, max - 1 - tail)}…${v.slice(v.length - tail)}`;
}

/** Case-insensitive match of a search query against a node's name or op type. */
export function matchesQuery(node: { name: string; op: string }, query: string): boolean {
  const q = query.trim().toLowerCase();
  return q !== "" && (node.name.toLowerCase().includes(q) || node.op.toLowerCase().includes(q));
}
