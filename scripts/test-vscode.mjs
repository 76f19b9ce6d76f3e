// Runs the tests that need a real VS Code: the mocha suites in test/vscode/suite (inside the extension host) and the
// browser-driven tests in test/e2e (playwright + Debian chromium against the same code-server).
//
//   node scripts/test-vscode.mjs                      suites, then e2e
//   node scripts/test-vscode.mjs --suites | --e2e     one layer only
//   node scripts/test-vscode.mjs test/vscode/suite/activation.test.ts test/e2e/views.e2e.ts   just those files
//
// Suites run under code-server by default (offline). PTQ_VSCODE_RUNNER=electron runs them with @vscode/test-electron
// (test/vscode/runTests.ts: downloads VS Code), and PTQ_VSCODE_RUNNER=auto picks electron when a download probe
// succeeds. PTQ_TEST_TIMEOUT_S bounds the run after the tools are installed (default 1800 s). Artifacts (logs, screenshots): .test-artifacts/.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { format } from "node:util";
import * as esbuild from "esbuild";
import { chromiumArgs, startCodeServer, workbenchUrl } from "./vscode-server.mjs";
import { CHROMIUM, ensureTools } from "./vscode-tools.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const artifacts = path.join(repo, ".test-artifacts");
const suiteDir = path.join(repo, "test", "vscode", "suite");
const e2eDir = path.join(repo, "test", "e2e");
// Per run: engineers share one checkout, and one run must not delete the suites another VS Code is loading.
const suiteOut = path.join(repo, "out", "test", "vscode", `run-${process.pid}`);
const timeoutS = Number(process.env.PTQ_TEST_TIMEOUT_S ?? 1800);

const argv = process.argv.slice(2);
if (argv.includes("--help")) {
  console.log(readHeader());
  process.exit(0);
}
const files = argv.filter((a) => !a.startsWith("--")).map((f) => path.resolve(f));
for (const f of files) if (!existsSync(f)) fail(`no such test file: ${f}`);
const only = (dir) => files.filter((f) => f.startsWith(dir + path.sep));
const onlySuites = argv.includes("--suites");
const onlyE2e = argv.includes("--e2e");
const suiteFiles = files.length ? only(suiteDir) : onlyE2e ? [] : list(suiteDir, ".test.ts");
const e2eFiles = files.length ? only(e2eDir) : onlySuites ? [] : list(e2eDir, ".e2e.ts");
if (files.length && suiteFiles.length + e2eFiles.length !== files.length) {
  fail("test files must be test/vscode/suite/*.test.ts or test/e2e/*.e2e.ts");
}

function readHeader() {
  const src = spawnSync("sed", ["-n", "2,13p", fileURLToPath(import.meta.url)], { encoding: "utf8" }).stdout;
  return src.replace(/^\/\/ ?/gm, "");
}

function list(dir, suffix) {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(suffix)).sort().map((f) => path.join(dir, f)) : [];
}

function fail(msg) {
  console.error(`test-vscode: ${msg}`);
  process.exit(2);
}

const SUITE_LOG_MARK = "[ptq-suite] "; // as in test/vscode/index.ts
const log = (msg) => console.log(`[test-vscode] ${msg}`);

// --- cleanup: whatever happens, the code-server group and any child runner are killed -------------------------------
const cleanups = [];
function cleanup() {
  while (cleanups.length) {
    try {
      cleanups.pop()();
    } catch {}
  }
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    log(`${sig}: stopping`);
    cleanup();
    process.exit(130);
  });
}
/** The run's time limit, started once the tools are installed (a first install can take many minutes). */
function startClock() {
  setTimeout(() => {
    console.error(`test-vscode: timed out after ${timeoutS} s (PTQ_TEST_TIMEOUT_S; the tool install is not counted)`);
    cleanup();
    process.exit(124);
  }, timeoutS * 1000).unref();
}

/** Spawns a child in its own process group, killed with the group on cleanup; resolves to its exit code. */
function runChild(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: "inherit", detached: true, ...opts });
    const kill = () => {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
    };
    cleanups.push(kill);
    child.on("exit", (code, signal) => {
      cleanups.splice(cleanups.indexOf(kill) >>> 0, 1);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

// --- build -----------------------------------------------------------------------------------------------------------
async function buildSuites() {
  rmSync(suiteOut, { recursive: true, force: true });
  cleanups.push(() => rmSync(suiteOut, { recursive: true, force: true }));
  await esbuild.build({
    entryPoints: [path.join(repo, "test", "vscode", "index.ts"), ...suiteFiles],
    outdir: suiteOut,
    outbase: path.join(repo, "test", "vscode"),
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    sourcemap: "inline",
    external: ["vscode", "mocha"],
    logLevel: "warning",
  });
}

async function probeDownload() {
  try {
    const r = await fetch("https://update.code.visualstudio.com/api/releases/stable", { signal: AbortSignal.timeout(5000) });
    return r.ok;
  } catch {
    return false;
  }
}

// --- suites under code-server -------------------------------------------------------------------------------------
async function runSuitesInCodeServer(server, workspace) {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: chromiumArgs });
  cleanups.push(() => void browser.close().catch(() => {}));
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const exitCode = new Promise((resolve) => {
      void page.exposeFunction("codeAutomationExit", (code) => resolve(Number(code)));
    });
    // The workbench forwards every log line here as (level, args); the suites' reporter lines carry SUITE_LOG_MARK
    // and are printed, the rest goes to a log file kept with the other logs on failure.
    const workbenchLog = createWriteStream(path.join(server.runDir, "workbench.log"));
    await page.exposeFunction("codeAutomationLog", (level, args) => {
      const text = format(...(Array.isArray(args) ? args : [args]));
      workbenchLog.write(`${level} ${text}\n`);
      for (const line of text.split("\n")) if (line.startsWith(SUITE_LOG_MARK)) console.log(line.slice(SUITE_LOG_MARK.length));
    });
    const url = workbenchUrl(server.url, {
      folder: workspace,
      extensionDevelopmentPath: repo,
      extensionTestsPath: path.join(suiteOut, "index.js"),
    });
    await page.goto(url);
    const limit = Number(process.env.PTQ_SUITE_TIMEOUT_S ?? 300);
    const code = await Promise.race([exitCode, new Promise((r) => setTimeout(() => r("timeout"), limit * 1000).unref())]);
    if (code === "timeout") {
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: path.join(artifacts, "suites-timeout.png") }).catch(() => {});
      console.error(`test-vscode: the suites gave no exit code in ${limit} s (PTQ_SUITE_TIMEOUT_S); screenshot in .test-artifacts/`);
      return 1;
    }
    return code;
  } finally {
    await browser.close().catch(() => {});
  }
}

function freshWorkspace(runDir, name) {
  const ws = path.join(runDir, name);
  cpSync(path.join(repo, "test", "vscode", "workspace"), ws, { recursive: true });
  return ws;
}

function keepLogs(runDir) {
  const dest = path.join(artifacts, "vscode-logs");
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  for (const p of ["code-server.log", "workbench.log", "ud/logs"]) {
    const src = path.join(runDir, p);
    if (existsSync(src)) cpSync(src, path.join(dest, path.basename(p)), { recursive: true });
  }
  log(`logs kept in ${path.relative(repo, dest)}`);
}

// --- main --------------------------------------------------------------------------------------------------------------
async function main() {
  if (suiteFiles.length + e2eFiles.length === 0) fail("nothing to run");
  let t0 = Date.now();
  if (!existsSync(path.join(repo, "out", "extension.js")) || !process.env.PTQ_SKIP_BUILD) {
    const b = spawnSync(process.execPath, [path.join(repo, "scripts", "build.mjs")], { stdio: "inherit", cwd: repo });
    if (b.status !== 0) fail("build failed");
  }
  let results = { suites: 0, e2e: 0 };

  const needTools = (suiteFiles.length && (process.env.PTQ_VSCODE_RUNNER ?? "code-server") === "code-server") || e2eFiles.length;
  if (needTools) ensureTools(); // before the clock starts
  startClock();
  let runner = process.env.PTQ_VSCODE_RUNNER ?? "code-server";
  if (runner === "auto") runner = (await probeDownload()) ? "electron" : "code-server";
  if (!["electron", "code-server"].includes(runner)) fail(`PTQ_VSCODE_RUNNER must be code-server, electron or auto, not ${runner}`);

  if (suiteFiles.length) await buildSuites();
  if (suiteFiles.length && runner === "electron") {
    log(`suites (${suiteFiles.length} files) under @vscode/test-electron`);
    const env = { ...process.env, PTQ_SUITE_INDEX: path.join(suiteOut, "index.js") };
    results.suites = await runChild(process.execPath, ["--import", "tsx", path.join(repo, "test", "vscode", "runTests.ts")], { cwd: repo, env });
  }
  const needServer = (suiteFiles.length && runner === "code-server") || e2eFiles.length;
  if (needServer) {
    const tools = ensureTools();
    t0 = Date.now();
    const runDir = mkdtempSync("/tmp/ptqvs-");
    const server = await startCodeServer({ ...tools, runDir });
    cleanups.push(server.stop);
    log(`code-server ${server.url} (run dir ${runDir}) up after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    try {
      if (suiteFiles.length && runner === "code-server") {
        log(`suites: ${suiteFiles.map((f) => path.basename(f)).join(", ")}`);
        results.suites = await runSuitesInCodeServer(server, freshWorkspace(runDir, "ws-suites"));
        log(`suites exit code ${results.suites}`);
      }
      if (e2eFiles.length) {
        log(`e2e: ${e2eFiles.map((f) => path.basename(f)).join(", ")}`);
        const env = {
          ...process.env,
          PTQ_E2E_SERVER: server.url,
          PTQ_E2E_RUN_DIR: runDir,
          PTQ_E2E_ARTIFACTS: path.join(artifacts, "e2e"),
        };
        const args = ["--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=spec", "--test-timeout=420000", ...e2eFiles];
        results.e2e = await runChild(process.execPath, args, { cwd: repo, env });
      }
    } finally {
      if (results.suites || results.e2e) keepLogs(runDir);
      server.stop();
      rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
    }
  }
  const failed = Object.entries(results).filter(([, c]) => c !== 0);
  log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${failed.length ? `FAILED (${failed.map(([k, c]) => `${k}: exit ${c}`).join(", ")})` : "all passed"}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => {
    cleanup();
    process.exit(code);
  },
  (e) => {
    console.error(`test-vscode: ${e?.stack ?? e}`);
    cleanup();
    process.exit(1);
  },
);
