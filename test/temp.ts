// Temp folders for tests: made under the OS temp folder and removed when the test process exits, so a suite run
// leaves nothing behind. PTQ_KEEP_TEST_TEMP=1 keeps them (to read a failing test's files).
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const made: string[] = [];

/** Removes `dir` (a folder the test made or had made) when the process exits; returns it. */
export function removeAtExit(dir: string): string {
  if (made.length === 0 && !process.env.PTQ_KEEP_TEST_TEMP) {
    process.on("exit", () => {
      for (const d of made) rmSync(d, { recursive: true, force: true });
    });
  }
  made.push(dir);
  return dir;
}

/** A fresh folder named `prefix`… in the OS temp folder, removed at exit. */
export function tempDir(prefix: string): string {
  return removeAtExit(mkdtempSync(path.join(os.tmpdir(), prefix)));
}
