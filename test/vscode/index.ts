// The module VS Code loads as `extensionTestsPath` (under code-server or @vscode/test-electron): it runs every suite
// bundled beside it in ./suite with mocha's BDD interface and rejects when a test fails, which VS Code turns into
// exit code 1. scripts/test-vscode.mjs bundles only the suites selected on its command line.
import Mocha from "mocha";
import { readdirSync } from "node:fs";
import path from "node:path";
import { format } from "node:util";

/** Marks the reporter's lines so scripts/test-vscode.mjs can pick them out of the workbench's log stream. */
export const SUITE_LOG_MARK = "[ptq-suite] ";

export async function run(): Promise<void> {
  // Mocha's reporters print through Base.consoleLog; prefix each line (the stream also carries VS Code's own logs).
  Mocha.reporters.Base.consoleLog = (...args: unknown[]) => {
    console.log(format(...args).split("\n").map((l) => SUITE_LOG_MARK + l).join("\n"));
  };
  const mocha = new Mocha({ ui: "bdd", color: false, reporter: "spec", timeout: 60_000 });
  const dir = path.join(__dirname, "suite");
  const files = readdirSync(dir).filter((f) => f.endsWith(".test.js")).sort();
  if (files.length === 0) throw new Error(`no suites in ${dir}`);
  for (const f of files) mocha.addFile(path.join(dir, f));
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures > 0) throw new Error(`${failures} test(s) failed`);
}
