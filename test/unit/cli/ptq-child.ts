// `ptq ARGS` as a user's shell runs it: the CLI's source (cli/main.ts through tsx) in a child process, its exit code,
// stdout and stderr. CLI tests run it this way rather than call a command's run() with process.stdout mocked: the
// test runner's child process writes its own reports to stdout, and a mock swallows them (a test then goes
// uncounted, as adaround's did until the thirtieth session).
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import path from "node:path";

export const PTQ_MAIN = path.join(__dirname, "..", "..", "..", "cli", "main.ts");

export function ptq(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ["--import", "tsx", PTQ_MAIN, ...args], { encoding: "utf8" });
}

/** What the command printed, stdout then stderr. */
export const said = (r: SpawnSyncReturns<string>): string => r.stdout + r.stderr;
