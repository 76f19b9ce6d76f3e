// The TypeScript cell executor: tslab's converter (type checking across cells, top-level await, the last
// expression's value) behind our own small interface. Only this file and kernel/ts-position.ts know tslab exists.
// We run the converted code ourselves instead of using tslab's executor because that one prints results and
// errors to a console; we need them as values, with positions in the cell's own source.
import Module from "node:module";
import path from "node:path";
import vm from "node:vm";
import { interruptCell, startCell } from "./cell-signal";
import { LocalModules, type SideOutput } from "./local-modules";
import type { Complete, ErrorInfo, Inspect } from "./protocol";
import { cleanStack } from "./ts-position";

/** A module a cell can import by bare name with nothing installed in the user's folder. */
export interface VirtualModule {
  name: string;
  /** A folder holding package.json + index.d.ts, read by the type checker as node_modules/<name>. */
  typingsDir: string;
  load(): unknown;
}

export interface ExecutorOptions {
  modules: VirtualModule[];
  /** Messages from the compiler itself (never the cell's stdout). */
  log(message: string): void;
}

export type ExecuteOutcome =
  | { status: "ok"; hasValue: boolean; value?: unknown }
  | { status: "error" | "interrupted"; error: ErrorInfo };

export interface Executor {
  execute(code: string, cellName: string): Promise<ExecuteOutcome>;
  complete(code: string, offset: number): Complete.Result;
  inspect(code: string, offset: number): Inspect.Result | null;
  /**
   * Settles an awaiting cell as interrupted now and aborts its signal (kernel/cell-signal): the notebook API's long
   * calls stop at their next step; other work it started keeps running unobserved.
   */
  interrupt(): void;
  close(): void;
}

interface Diagnostic {
  start: { line: number; character: number };
  messageText: string;
  category: number;
}
interface Converted {
  output?: string;
  declOutput?: string;
  diagnostics: Diagnostic[];
  lastExpressionVar?: string;
  hasToplevelAwait?: boolean;
  /** Local .ts files the cell imports, emitted as CommonJS. */
  sideOutputs?: SideOutput[];
}
interface TslabConverter {
  convert(prevDecl: string, src: string): Converted;
  inspect(prevDecl: string, src: string, position: number): { textSpan: { start: number; length: number } } | undefined;
  complete(prevDecl: string, src: string, position: number): { start: number; end: number; candidates: string[] };
  close(): void;
}
interface TsSys {
  watchFile?(file: string, callback: (file: string, kind: number) => void): { close(): void };
  watchDirectory?(...args: unknown[]): { close(): void };
  fileExists(p: string): boolean;
  directoryExists(p: string): boolean;
  readFile(p: string, encoding?: string): string | undefined;
  realpath?(p: string): string;
}

const nodeRequire = Module.createRequire(__filename);
const CELL_GLOBAL = "__ptqCell__";
const WRAP_SYNC = `(function (exports, require) { `;
const WRAP_ASYNC = `(async function (exports, require) { `;

/** Makes `<cwd>/node_modules/<name>/…` resolve to each virtual module's typings folder for the type checker. */
function redirectTypings(sys: TsSys, cwd: string, modules: VirtualModule[], local: LocalModules): void {
  const map = (p: string): string => {
    for (const m of modules) {
      const root = path.join(cwd, "node_modules", m.name);
      if (p === root || p.startsWith(root + "/")) return path.join(m.typingsDir, p.slice(root.length));
    }
    return p;
  };
  const { fileExists, directoryExists, readFile, realpath } = sys;
  sys.fileExists = (p) => fileExists.call(sys, map(p));
  sys.directoryExists = (p) => directoryExists.call(sys, map(p));
  sys.readFile = (p, enc) => readFile.call(sys, map(p), enc);
  // No file-system watching: tslab's converter rebuilds synchronously per cell, and a watcher firing between
  // cells (a typings folder regenerated, a file saved) makes it throw "Unexpected pending rebuildTimer". Edits
  // to the user's own files are found by LocalModules before each cell instead.
  sys.watchFile = (file, callback) => local.watchFile(file, callback);
  sys.watchDirectory = () => ({ close() {} });
  // The real path makes imports inside the typings resolve from where they really live (like a symlinked package).
  if (realpath) sys.realpath = (p) => realpath.call(sys, map(p));
}

interface TsAst {
  createSourceFile(name: string, text: string, target: number, setParents: boolean, kind: number): TsNode;
  forEachChild(node: TsNode, visit: (n: TsNode) => void): void;
  isShorthandPropertyAssignment(node: TsNode): node is TsNode & { name: TsNode & { text: string } };
  ScriptTarget: { Latest: number };
  ScriptKind: { TS: number };
}
interface TsNode {
  end: number;
}

/**
 * `{ name }` → `{ name: name }`. tslab rewrites a previous cell's variable `x` to `exports.x` everywhere but in a
 * shorthand property, which then fails at run time ("x is not defined"): `benchmark({ fp32, int8 })` after a cell
 * that declared fp32. Spelling the property out is the same JavaScript and gets rewritten like any reference.
 */
export function expandShorthandProperties(ts: TsAst, code: string): string {
  if (!code.includes("{")) return code;
  const inserts: { at: number; text: string }[] = [];
  const visit = (n: TsNode) => {
    if (ts.isShorthandPropertyAssignment(n)) inserts.push({ at: n.name.end, text: `: ${n.name.text}` });
    ts.forEachChild(n, visit);
  };
  visit(ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS));
  let out = code;
  for (const { at, text } of inserts.sort((a, b) => b.at - a.at)) out = out.slice(0, at) + text + out.slice(at);
  return out;
}

/** Locals live on a plain object; TypeScript's CommonJS output defines them, we let later cells redefine them. */
function createLocals(): Record<string, unknown> {
  const locals: Record<string, unknown> = {};
  return new Proxy(locals, {
    defineProperty: (_t, prop, attrs) => {
      if (prop === "__esModule") return true;
      locals[prop as string] = attrs.get ? attrs.get() : attrs.value;
      return true;
    },
  });
}

export function createExecutor(options: ExecutorOptions): Executor {
  const cwd = process.cwd();
  const ts = nodeRequire("@tslab/typescript-for-tslab") as TsAst & { sys: TsSys };
  const local = new LocalModules();
  redirectTypings(ts.sys, cwd, options.modules, local);
  const { createConverter } = nodeRequire("tslab/dist/converter") as { createConverter(): TslabConverter };
  const { printQuickInfo } = nodeRequire("tslab/dist/inspect") as { printQuickInfo(info: unknown): string };
  const converter = createConverter();
  // One throwaway conversion runs the checker and emitter once, so the user's first cell does not pay for their
  // first-call compilation (~100–200 ms); it happens while the kernel waits for that cell anyway.
  converter.convert("", "0");

  const virtual = new Map(options.modules.map((m) => [m.name, m]));
  const baseRequire = Module.createRequire(path.join(cwd, "__cell__.js"));
  const fallback = (id: string) => (virtual.has(id) ? virtual.get(id)!.load() : baseRequire(id));
  const cellRequire = local.require(cwd, fallback) as NodeJS.Require;
  Object.assign(cellRequire, { resolve: baseRequire.resolve, cache: baseRequire.cache });
  const locals = createLocals();
  vm.runInThisContext(`(x) => { globalThis.${CELL_GLOBAL} = x; }`)({ exports: locals, require: cellRequire });

  /** Per executed cell file: its converted output and source, so stack frames from any cell map back. */
  const sources = new Map<string, { output: string[]; source: string[]; prefix: number }>();
  let prevDecl = "";
  let interruptCurrent: (() => void) | undefined;

  function toError(e: unknown, fileName: string): ErrorInfo {
    const err = e instanceof Error ? e : new Error(String(e));
    const cleaned = cleanStack(err, sources);
    const here = cleaned.positions.find((p) => p.file === fileName) ?? cleaned.positions[0];
    return { name: err.name, message: err.message, stack: cleaned.stack, line: here?.line, column: here?.column };
  }

  async function execute(code: string, cellName: string): Promise<ExecuteOutcome> {
    startCell();
    local.notifyChanges();
    const converted = converter.convert(prevDecl, expandShorthandProperties(ts, code));
    local.update(converted.sideOutputs);
    const errors = converted.diagnostics.filter((d) => d.category === 1);
    if (errors.length > 0) {
      const lines = errors.map((d) => `${cellName}:${d.start.line + 1}:${d.start.character + 1} - ${d.messageText}`);
      const first = errors[0]!.start;
      return {
        status: "error",
        error: { name: "TSError", message: lines.join("\n"), line: first.line + 1, column: first.character + 1 },
      };
    }
    for (const d of converted.diagnostics) options.log(`${cellName}: ${d.messageText}`);
    if (!converted.output) {
      prevDecl = converted.declOutput ?? "";
      return { status: "ok", hasValue: false };
    }
    const fileName = `${cellName}.ts`;
    const prefix = converted.hasToplevelAwait ? WRAP_ASYNC : WRAP_SYNC;
    sources.set(fileName, { output: converted.output.split("\n"), source: code.split("\n"), prefix: prefix.length });
    const wrapped = `${prefix}${converted.output}\n})(${CELL_GLOBAL}.exports, ${CELL_GLOBAL}.require)`;
    try {
      const ret: unknown = vm.runInThisContext(wrapped, { filename: fileName, breakOnSigint: true });
      if (converted.hasToplevelAwait) {
        const interrupted = new Promise<"interrupted">((resolve) => (interruptCurrent = () => resolve("interrupted")));
        if ((await Promise.race([ret as Promise<unknown>, interrupted])) === "interrupted") {
          return { status: "interrupted", error: { name: "Interrupted", message: "Interrupted while awaiting." } };
        }
      }
    } catch (e) {
      if (e instanceof Error && /Script execution was interrupted/.test(e.message)) {
        return { status: "interrupted", error: { name: "Interrupted", message: "Interrupted (SIGINT)." } };
      }
      // The cell type-checked and ran up to the throw: its imports and the names it declared exist now, as in a
      // Python kernel, so later cells may use them (a failed `import …; await loadModel(bad)` keeps `loadModel`).
      prevDecl = converted.declOutput ?? prevDecl;
      return { status: "error", error: toError(e, fileName) };
    } finally {
      interruptCurrent = undefined;
    }
    prevDecl = converted.declOutput ?? "";
    const key = converted.lastExpressionVar;
    if (key === undefined || !(key in locals)) return { status: "ok", hasValue: false };
    const value = locals[key];
    delete locals[key];
    return { status: "ok", hasValue: value !== undefined, value };
  }

  return {
    execute,
    complete(code, offset) {
      const c = converter.complete(prevDecl, code, offset);
      return { start: c.start, end: c.end, items: c.candidates };
    },
    inspect(code, offset) {
      const info = converter.inspect(prevDecl, code, offset);
      if (!info) return null;
      return { markdown: printQuickInfo(info), start: info.textSpan.start, length: info.textSpan.length };
    },
    interrupt: () => {
      interruptCell();
      interruptCurrent?.();
    },
    close: () => converter.close(),
  };
}
