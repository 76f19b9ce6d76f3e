// Runs a TypeScript entry point of this repo (the `ptq` CLI, or bench/corpus/evaluate.ts) as a child process with a
// time limit, measuring its wall time and peak resident set (GNU time's %M when /usr/bin/time exists). A crash,
// an abort inside onnxruntime or a timeout is a result with a reason, never an exception.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO } from "./catalog";

export interface ChildResult {
  /** Exit code; null when killed. */
  code: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak RSS of the child in bytes, when measurable. */
  peakRssBytes: number | undefined;
}

const TIME = "/usr/bin/time";
const TIMEOUT = "timeout";

/** `node --import tsx ENTRY ...args` in the repo root; `limitS` seconds at most. */
export function runTs(entry: string, args: readonly string[], limitS: number): Promise<ChildResult> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "ptq-corpus-time-"));
  const timeFile = path.join(tmp, "rss");
  const node = [process.execPath, "--import", "tsx", entry, ...args];
  // timeout(1) kills the child and exits 124; GNU time reports the peak RSS of what it waited for.
  const cmd = existsSync(TIME) ? [TIME, "-f", "%M", "-o", timeFile, TIMEOUT, "-k", "5", String(limitS), ...node] : [TIMEOUT, "-k", "5", String(limitS), ...node];
  const t0 = performance.now();
  return new Promise((resolve) => {
    const p = spawn(cmd[0]!, cmd.slice(1), { cwd: REPO, env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const done = (code: number | null) => {
      const ms = performance.now() - t0;
      let peakRssBytes: number | undefined;
      try {
        const kb = Number(readFileSync(timeFile, "utf8").trim().split("\n").pop());
        if (Number.isFinite(kb) && kb > 0) peakRssBytes = kb * 1024;
      } catch {
        // no /usr/bin/time, or it was killed: RSS unknown
      }
      rmSync(tmp, { recursive: true, force: true });
      resolve({ code, timedOut: code === 124 || code === 137, stdout, stderr, ms, peakRssBytes });
    };
    p.on("error", (e) => {
      stderr += String(e);
      done(null);
    });
    p.on("close", (code) => done(code));
  });
}

/** The CLI's own error line(s), without onnxruntime's log noise and stack frames: what a user would read. */
export function reasonOf(r: ChildResult, limitS: number): string {
  if (r.timedOut) return `timed out after ${limitS} s`;
  const lines = r.stderr
    .split("\n")
    .map((l) => l.replace(/\x1b\[[0-9;]*m/g, "").trim())
    .filter((l) => l && !/^\d{4}-\d\d-\d\d .*\[W:onnxruntime/.test(l) && !/^at /.test(l) && !/^\(Use `node --trace/.test(l) && !/PTQRandomData|ExperimentalWarning/.test(l));
  const err = lines.find((l) => /error|fail|cannot|refuse|not |unsupported|invalid/i.test(l)) ?? lines[lines.length - 1];
  const text = err ?? (r.code === null ? "killed (no exit code)" : `exit ${r.code}, no message`);
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}
