// Temp folders the engine makes while it works (ptq-pre-*: onnxruntime's optimized copy of a model, as large as
// the model). Each is registered while it exists, so that whoever owns the process (the `ptq` CLI on Ctrl-C or
// SIGTERM, or at exit) can remove what a run interrupted mid-way would otherwise leave in the temp directory.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const live = new Set<string>();

/** A new folder `<tmpdir>/<prefix>XXXXXX`, registered until removeTempDir() (or removeAllTempDirs()). */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  live.add(dir);
  return dir;
}

/** Removes a folder made by makeTempDir, with its contents. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
}

/** Registers a temp file or folder made elsewhere (an atomic write's temp file), to be removed if the run stops. */
export function trackTemp(p: string): void {
  live.add(p);
}

/** Forgets a registered path (it was renamed into place, or became an output): it is no longer removed. */
export function untrackTemp(p: string): void {
  live.delete(p);
}

/** Removes every registered path; synchronous, so it can run in an 'exit' or signal handler. Never throws. */
export function removeAllTempDirs(): void {
  for (const dir of [...live]) {
    try {
      removeTempDir(dir);
    } catch {
      // Best effort at exit: a folder that cannot be removed must not hide the reason the process is ending.
    }
  }
}
