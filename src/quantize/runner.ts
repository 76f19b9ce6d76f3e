// Runs a `ptq` CLI command (out/cli.js) in a child Node process, never in the extension host: quantization loads
// onnxruntime-node. Cancellation kills the child; stdout is the command's JSON, stderr its error text; its progress
// ("progress: " lines, PTQ_PROGRESS=lines) goes to onLine only.
import { spawn } from "node:child_process";
import type * as vscode from "vscode";

/** cli/progress's PROGRESS_PREFIX (src/ does not import cli/; test/unit/cli checks they agree). */
export const PROGRESS_PREFIX = "progress: ";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  cancelled: boolean;
}

export function runCli(cliPath: string, args: string[], cwd: string, token: vscode.CancellationToken, onLine?: (line: string) => void): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // In desktop VS Code process.execPath is Electron: ELECTRON_RUN_AS_NODE makes it a plain Node.
    // PTQ_PROGRESS=lines: the CLI prints its progress as "progress: …" lines on stderr, --json or not.
    const child = spawn(process.execPath, [cliPath, ...args], { cwd, env: { ...process.env, ELECTRON_RUN_AS_NODE: "1", PTQ_PROGRESS: "lines" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let cancelled = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    let partial = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      const lines = (partial + d).split("\n");
      partial = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith(PROGRESS_PREFIX)) onLine?.(l.slice(PROGRESS_PREFIX.length));
        else if (l) {
          stderr += l + "\n";
          onLine?.(l);
        }
      }
    });
    const sub = token.onCancellationRequested(() => {
      cancelled = true;
      child.kill("SIGTERM");
    });
    child.on("error", (e) => {
      sub.dispose();
      reject(new Error(`could not start ${cliPath}: ${e.message}`));
    });
    child.on("close", (code) => {
      sub.dispose();
      if (partial && !partial.startsWith(PROGRESS_PREFIX)) stderr += partial;
      resolve({ code, stdout, stderr, cancelled });
    });
  });
}

/** The last JSON object a command printed (commands print exactly one with --json). */
export function parseJsonOutput<T>(stdout: string, what: string): T {
  const start = stdout.indexOf("{");
  if (start < 0) throw new Error(`${what} printed no JSON: ${stdout.slice(0, 200) || "(nothing)"}`);
  return JSON.parse(stdout.slice(start)) as T;
}
