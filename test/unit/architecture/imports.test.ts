// The layout in one look (docs/architecture.md): which top-level folder may import which, engine/'s own layers in
// order, and no import cycles anywhere. Read from the sources' import statements (type-only imports included:
// a type from a higher layer is a dependency too).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

const root = path.join(__dirname, "..", "..", "..");
const rel = (p: string) => path.relative(root, p).split(path.sep).join("/");

function sources(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = path.join(dir, n);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (/\.(ts|mts)$/.test(n) && !n.endsWith(".d.ts") && !n.endsWith(".d.mts")) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const src = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of src.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*)["'](\.{1,2}\/[^"']+)["']/g)) {
    const base = path.join(path.dirname(file), m[1]!);
    const hit = [base, `${base}.ts`, `${base}.mts`, path.join(base, "index.ts")].find((c) => existsSync(c) && statSync(c).isFile());
    if (hit) out.push(rel(hit));
  }
  return out;
}

const TOP = ["engine", "kernel", "cli", "client", "src", "media"] as const;
type Top = (typeof TOP)[number];
/**
 * Who may import whom (besides itself). Of kernel/, client/ and src/ may import only the protocol and the display
 * types both processes share; src/ renders HTML with media/'s pure render functions.
 */
const MAY: Record<Top, Top[]> = {
  engine: [],
  kernel: ["engine"],
  client: ["kernel"],
  cli: ["engine", "client", "kernel"],
  src: ["client", "kernel", "engine", "media"],
  media: ["kernel"],
};
/** engine/'s layers, lowest first: a folder imports only folders at its level or below. */
const ENGINE_ORDER = [["onnx", "onnx-text"], ["runtime"], ["data"], ["quant", "calibrate"], ["lowbit", "recovery"], ["analysis"]];
/** A file's layer; engine/index.ts (the library's entry) sits above them all. */
const level = (file: string) => {
  const folder = file.split("/")[1]!;
  return folder.endsWith(".ts") ? ENGINE_ORDER.length : ENGINE_ORDER.findIndex((l) => l.includes(folder));
};

const files = TOP.flatMap((t) => (existsSync(path.join(root, t)) ? sources(path.join(root, t)) : []));
const graph = new Map(files.map((f) => [rel(f), imports(f)]));
const topOf = (r: string) => r.split("/")[0] as Top;

test("top-level folders import only the layers below them", () => {
  const bad: string[] = [];
  for (const [from, tos] of graph) {
    for (const to of tos) {
      const [a, b] = [topOf(from), topOf(to)];
      if (a === b || !TOP.includes(b)) continue;
      const allowed = MAY[a].includes(b) && (a === "engine" || b !== "kernel" || a === "cli" || /^kernel\/(protocol|display-types)\.ts$/.test(to));
      if (!allowed) bad.push(`${from} → ${to}`);
    }
  }
  assert.deepEqual(bad, []);
});

test("engine's folders import only their own level or lower (onnx → runtime → data → quant/calibrate → lowbit/recovery → analysis)", () => {
  const bad: string[] = [];
  for (const [from, tos] of graph) {
    if (topOf(from) !== "engine") continue;
    const a = level(from);
    for (const to of tos) if (topOf(to) === "engine" && level(to) > a) bad.push(`${from} → ${to}`);
  }
  assert.deepEqual(bad, []);
});

test("no import cycles", () => {
  const cycles: string[] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 1);
    stack.push(f);
    for (const t of graph.get(f) ?? []) {
      if (state.get(t) === 1) cycles.push([...stack.slice(stack.indexOf(t)), t].join(" → "));
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});
