// Maps runtime error positions in a cell's converted JavaScript back to the cell's TypeScript source. tslab's
// converter emits no source map, and its output differs from the source (types erased, `exports.x = x` lines
// added, blank lines dropped), so we match text: the code at the error column is searched for in the source,
// preferring the source line nearest the output line. Exact for ordinary code; omitted when nothing matches.

export interface CellSource {
  output: string[];
  source: string[];
  /** Characters our wrapper adds before the first output line. */
  prefix: number;
}

export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

const FRAME = /\(?([^\s()]+\.ts):(\d+):(\d+)\)?$/;

/** The 1-based source position for a 1-based output position, or undefined when no source line matches. */
export function mapOutputPosition(cell: CellSource, outLine: number, outColumn: number): { line: number; column: number } | undefined {
  const text = cell.output[outLine - 1];
  if (text === undefined) return undefined;
  const col = outLine === 1 ? outColumn - 1 - cell.prefix : outColumn - 1;
  const rest = text.slice(Math.max(0, col)).replace(/^exports\./, "");
  // Longest prefix of the code at the error that occurs in the source, at least a few characters.
  for (let len = Math.min(rest.length, 40); len >= 3; len = len > 12 ? len - 4 : len - 1) {
    const needle = rest.slice(0, len);
    let best: { line: number; column: number; dist: number } | undefined;
    cell.source.forEach((s, i) => {
      const at = s.indexOf(needle);
      if (at < 0) return;
      const dist = Math.abs(i - (outLine - 1));
      if (!best || dist < best.dist) best = { line: i + 1, column: at + 1, dist };
    });
    if (best) return { line: best.line, column: best.column };
  }
  return undefined;
}

/**
 * A frame inside the kernel's bundle (`ptq`'s own code: out/kernel/main.js, one file of tens of thousands of lines)
 * says `(ptq)` instead of a bundle position no user can open: the function name is what tells them something.
 */
export function libraryFrame(line: string, bundle: string): string {
  const at = line.indexOf(`${bundle}:`);
  if (at < 0) return line;
  return `${line.slice(0, line[at - 1] === "(" ? at - 1 : at)}(ptq)`;
}

/** Drops kernel-internal frames, rewrites cell frames to source positions and library frames to `(ptq)`. */
export function cleanStack(err: Error, cells: Map<string, CellSource>, bundle = __filename): { stack: string; positions: SourcePosition[] } {
  const lines = (err.stack ?? "").split("\n");
  const frames: string[] = [];
  const positions: SourcePosition[] = [];
  for (const line of lines) {
    // V8 puts the throwing source line and a caret above the message for errors thrown in vm scripts: skip those.
    if (!/^\s+at /.test(line)) continue;
    const m = FRAME.exec(line);
    const cell = m ? cells.get(m[1]!) : undefined;
    if (m && cell) {
      const pos = mapOutputPosition(cell, Number(m[2]), Number(m[3]));
      // A cell frame that maps nowhere is our wrapper's call line.
      if (!pos) continue;
      positions.push({ file: m[1]!, ...pos });
      const where = `${m[1]}:${pos.line}:${pos.column}`;
      frames.push(line.replace(FRAME, (all) => (all.startsWith("(") ? `(${where})` : where)));
    } else if (!/\(node:|^\s+at node:|evalmachine|at new Promise \(<anonymous>\)$/.test(line)) {
      frames.push(libraryFrame(line, bundle));
    }
  }
  const head = `${err.name}: ${err.message}`;
  // Below the outermost cell frame is only the kernel's machinery (vm, executor, handlers): drop it.
  const lastCell = frames.findLastIndex((f) => FRAME.test(f) && cells.has(FRAME.exec(f)![1]!));
  if (lastCell >= 0) frames.length = lastCell + 1;
  return { stack: [head, ...frames].join("\n"), positions };
}
