// Checks the packaged .vsix the way a user gets it: installs it with code-server's `--install-extension` into a fresh
// extensions dir, opens a window with NO development extension, and checks that the extension activates (its
// container opens, a palette command answers) and that the installed tree holds only what runs.
//   node scripts/test-package.mjs [file.vsix]      (default: the newest ptq-studio-*.vsix in the repo root)
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromiumArgs, installExtension, PTQ_ACTIVITY_ITEM, runPaletteCommand, startCodeServer, waitForNotification, workbenchUrl } from "./vscode-server.mjs";
import { CHROMIUM, ensureTools } from "./vscode-tools.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const shots = path.join(repo, ".test-artifacts", "package");
let passed = 0;
let failed = 0;

function newestVsix() {
  const all = readdirSync(repo).filter((f) => /^ptq-studio-.*\.vsix$/.test(f)).map((f) => path.join(repo, f));
  all.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return all[0];
}

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`  ✔ ${name}`);
  } catch (e) {
    failed++;
    console.log(`  ✖ ${name}\n    ${String(e?.stack ?? e).split("\n").join("\n    ")}`);
  }
}

function walk(dir, out = []) {
  for (const n of readdirSync(dir)) {
    const p = path.join(dir, n);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const vsix = process.argv[2] ? path.resolve(process.argv[2]) : newestVsix();
if (!vsix || !existsSync(vsix)) {
  console.error("test-package: no .vsix found; run `npm run package` first");
  process.exit(1);
}
const tools = ensureTools();
const runDir = mkdtempSync("/tmp/ptqpk-");
let server;
let browser;
const timer = setTimeout(() => {
  console.error("test-package: timed out after 240 s");
  server?.stop();
  process.exit(124);
}, 240_000);
try {
  for (const d of ["ud", "ext"]) mkdirSync(path.join(runDir, d), { recursive: true });
  console.log(`test-package: ${path.basename(vsix)} (${(statSync(vsix).size / 2 ** 20).toFixed(1)} MB)`);
  await check("installs with --install-extension", async () => {
    const out = await installExtension({ ...tools, runDir, vsix });
    if (!/successfully installed/i.test(out)) throw new Error(`unexpected output:\n${out}`);
  });
  const installed = readdirSync(path.join(runDir, "ext")).find((d) => d.startsWith("ptq-studio.ptq-studio-"));
  const extDir = installed && path.join(runDir, "ext", installed);
  await check("ships only what runs", () => {
    if (!extDir) throw new Error("no ptq-studio.ptq-studio-* folder in the extensions dir");
    const files = walk(extDir).map((f) => path.relative(extDir, f));
    const bad = files.filter(
      (f) =>
        f.endsWith(".map") || f.endsWith(".ts") && !f.endsWith(".d.ts") || f.startsWith("src/") || f.startsWith("test/") ||
        f.includes("zeromq") || /napi-v6\/(?!linux\/x64\/)/.test(f) || f.startsWith("node_modules/"),
    );
    if (bad.length) throw new Error(`unexpected files:\n${bad.slice(0, 20).join("\n")}`);
    // out/media: the webviews' scripts (the ONNX editor, its graph). out/ptq: the `ptq` typings a cell's `import … from "ptq"` is type-checked against (missing, every such cell
    // failed with "Cannot find module 'ptq'" in the installed extension).
    for (const need of ["out/extension.js", "out/media/graph.js", "out/media/webview.js", "package.json", "out/ptq/package.json", "out/ptq/kernel/api.d.ts", "out/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node", "out/node_modules/@tslab/typescript-for-tslab/lib/typescript.js"]) {
      if (!files.includes(need)) throw new Error(`missing ${need}`);
    }
  });
  await check("the packaged runtime resolves from the kernel bundle's folder", () => {
    // out/kernel/main.js and out/cli.js resolve their externals through out/node_modules.
    const req = createRequire(path.join(extDir, "out", "cli.js"));
    for (const m of ["onnxruntime-node", "tslab"]) {
      const p = req.resolve(m);
      if (!p.startsWith(extDir)) throw new Error(`${m} resolved outside the extension: ${p}`);
    }
  });

  server = await startCodeServer({ ...tools, runDir });
  const ws = path.join(runDir, "ws");
  cpSync(path.join(repo, "test", "vscode", "workspace"), ws, { recursive: true });
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: chromiumArgs });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  mkdirSync(shots, { recursive: true });
  await page.goto(workbenchUrl(server.url, { folder: ws }));
  await check("the installed extension activates: container, views, a palette command", async () => {
    const item = page.locator(PTQ_ACTIVITY_ITEM).first();
    await item.waitFor({ timeout: 60_000 });
    await item.click();
    for (const title of ["Model Layers", "Quantization State", "Histograms"]) {
      await page.locator(".part.sidebar .pane-header", { hasText: title }).first().waitFor({ timeout: 20_000 });
    }
    await runPaletteCommand(page, "PTQ Studio: Show Version");
    const version = JSON.parse(readFileSync(path.join(repo, "package.json"), "utf8")).version;
    await waitForNotification(page, `PTQ Studio ${version} (VS Code`);
    await page.screenshot({ path: path.join(shots, "installed-vsix.png") });
  });
} catch (e) {
  failed++;
  console.error(`test-package: ${e?.stack ?? e}`);
} finally {
  clearTimeout(timer);
  await browser?.close().catch(() => {});
  server?.stop();
  rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
}
console.log(`test-package: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
