// Runs the same suites with @vscode/test-electron, for machines that can download VS Code (here they cannot:
// scripts/test-vscode.mjs uses code-server instead). It runs them on the oldest VS Code the manifest allows and on
// stable, as rust-analyzer does. Called by scripts/test-vscode.mjs with PTQ_VSCODE_RUNNER=electron, after it has
// bundled the suites (it passes their index in PTQ_SUITE_INDEX).
import { runTests } from "@vscode/test-electron";
import { cpSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pkg from "../../package.json";

async function main(): Promise<number> {
  const repo = path.resolve(__dirname, "..", "..");
  const minimum = pkg.engines.vscode.replace(/^\^/, "");
  const versions = (process.env.PTQ_VSCODE_VERSIONS ?? `${minimum},stable`).split(",");
  for (const version of versions) {
    const workspace = mkdtempSync(path.join(os.tmpdir(), "ptq-ws-"));
    cpSync(path.join(repo, "test", "vscode", "workspace"), workspace, { recursive: true });
    console.log(`[runTests] VS Code ${version}`);
    await runTests({
      version,
      extensionDevelopmentPath: repo,
      extensionTestsPath: process.env.PTQ_SUITE_INDEX ?? path.join(repo, "out", "test", "vscode", "index.js"),
      launchArgs: [workspace, "--disable-extensions", "--disable-workspace-trust"],
    });
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`runTests: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
