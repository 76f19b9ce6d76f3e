// Generates the typings of the `ptq` module that notebook cells import (kernel/api.ts and what it re-exports) into
// out/ptq as a tiny package, which the kernel's type checker reads as node_modules/ptq. Uses the project's
// TypeScript 5.9 (not tslab's 5.0, which only reads the result).
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

export function buildPtqTypes(root = process.cwd()) {
  const outDir = path.join(root, "out", "ptq");
  const tmp = `${outDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  // kernel/api.ts for notebook cells; engine/index.ts for the library entry (package.json "exports": ./engine).
  const program = ts.createProgram([path.join(root, "kernel", "api.ts"), path.join(root, "engine", "index.ts")], {
    declaration: true,
    emitDeclarationOnly: true,
    outDir: tmp,
    // The repository root: kernel/api.ts re-exports engine/, and a narrower root would emit engine's typings
    // beside its sources.
    rootDir: root,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Preserve,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    resolveJsonModule: true,
    types: ["node"],
  });
  const result = program.emit();
  if (result.emitSkipped) throw new Error("ptq typings: declaration emit was skipped");
  mkdirSync(tmp, { recursive: true });
  writeFileSync(path.join(tmp, "package.json"), JSON.stringify({ name: "ptq", version: "0.0.0", types: "kernel/api.d.ts", main: "api.js" }, null, 2));
  // Replace the folder whole so a running kernel never sees half of it.
  rmSync(outDir, { recursive: true, force: true });
  renameSync(tmp, outDir);
  return outDir;
}

function newestTs(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestTs(p));
    else if (e.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Rebuilds only when a kernel or engine source is newer than the typings (or they are missing). */
export function buildPtqTypesIfStale(root = process.cwd()) {
  const stamp = path.join(root, "out", "ptq", "package.json");
  const newest = Math.max(newestTs(path.join(root, "kernel")), newestTs(path.join(root, "engine")));
  if (existsSync(stamp) && statSync(stamp).mtimeMs > newest) return undefined;
  return buildPtqTypes(root);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = Date.now();
  const dir = buildPtqTypes();
  console.log(`ptq typings → ${path.relative(process.cwd(), dir)} (${Date.now() - t0} ms)`);
}
