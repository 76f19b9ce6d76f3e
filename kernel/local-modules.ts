// Local TypeScript files a cell imports (`import { f } from "./helpers"`): tslab's converter type-checks them with
// the cell and emits each as CommonJS ("side outputs"); this runs those outputs when the cell requires them, and
// tells the compiler when one of them changed on disk so the next cell sees the edit (a change is checked by
// modification time before each cell, instead of file-system watchers, which fire between cells and break the
// converter's single rebuild timer).
import { statSync } from "node:fs";
import Module from "node:module";
import path from "node:path";

const CHANGED = 1; // ts.FileWatcherEventKind
const DELETED = 2;

const SOURCE = /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;

type WatchCallback = (fileName: string, kind: number) => void;

export interface SideOutput {
  /** The emitted file's path: the source's, with .js for .ts. */
  path: string;
  data: string;
}

const mtime = (file: string): number | undefined => {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
};

export class LocalModules {
  private readonly watched = new Map<string, { callback: WatchCallback; mtime: number | undefined }>();
  private readonly outputs = new Map<string, string>();
  private readonly loaded = new Map<string, Module>();

  /**
   * The compiler's watchFile: remembers the callback for the user's own source files (library files never change).
   * Only those are ever notified: a source file's change schedules the same program update the converter runs
   * for every cell, while other watched files (package.json lookups) may schedule other kinds of update, and
   * tslab's converter holds a single pending one ("Unexpected pending rebuildTimer").
   */
  watchFile(file: string, callback: WatchCallback): { close(): void } {
    if (!SOURCE.test(file) || file.endsWith(".d.ts") || file.includes(`${path.sep}node_modules${path.sep}`)) return { close() {} };
    this.watched.set(file, { callback, mtime: mtime(file) });
    return { close: () => this.watched.delete(file) };
  }

  /** Before a cell is converted: tells the compiler about local files edited since the last cell. */
  notifyChanges(): void {
    for (const [file, w] of [...this.watched]) {
      const now = mtime(file);
      if (now === w.mtime) continue;
      w.mtime = now;
      w.callback(file, now === undefined ? DELETED : CHANGED);
    }
  }

  /** After a conversion: new code for the files it emitted; a module already loaded runs again when next required. */
  update(outputs: SideOutput[] | undefined): void {
    for (const o of outputs ?? []) {
      this.outputs.set(o.path, o.data);
      this.loaded.delete(o.path);
    }
  }

  /**
   * A `require` for code in `dir` that serves the emitted local modules and defers everything else to `fallback`
   * (Node's own resolution, the virtual `ptq` module).
   */
  require(dir: string, fallback: (id: string) => unknown): (id: string) => unknown {
    return (id: string) => {
      if (id.startsWith("./") || id.startsWith("../") || path.isAbsolute(id)) {
        let file = path.resolve(dir, id);
        if (path.extname(file) === ".ts") file = file.slice(0, -3) + ".js";
        else if (path.extname(file) === "") file += ".js";
        if (!this.outputs.has(file) && path.extname(id) === "" && this.outputs.has(path.join(file.slice(0, -3), "index.js"))) {
          file = path.join(file.slice(0, -3), "index.js");
        }
        if (this.outputs.has(file)) return this.load(file, fallback);
      }
      return fallback(id);
    };
  }

  private load(file: string, fallback: (id: string) => unknown): unknown {
    const cached = this.loaded.get(file);
    if (cached) return cached.exports;
    const mod = new Module(file);
    mod.filename = file;
    mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(file));
    const base = Module.createRequire(file);
    const req = this.require(path.dirname(file), (id) => fallback(id.startsWith(".") ? base.resolve(id) : id));
    mod.require = Object.assign(req, { resolve: base.resolve, cache: base.cache }) as NodeJS.Require;
    // Registered before it runs, so an import cycle gets the partial exports as in Node.
    this.loaded.set(file, mod);
    try {
      (mod as unknown as { _compile(code: string, file: string): void })._compile(this.outputs.get(file)!, file);
    } catch (e) {
      this.loaded.delete(file);
      throw e;
    }
    return mod.exports;
  }
}
