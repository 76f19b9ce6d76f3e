// Helpers for the browser-driven tests in test/e2e: a real VS Code workbench (code-server, started once per run by
// scripts/test-vscode.mjs) in Debian chromium through playwright-core, with the extension loaded from the repo as a
// development extension. Each test opens its own window on a fresh copy of its workspace. See docs/testing.md.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Frame, type Page } from "playwright-core";
import { chromiumArgs, PTQ_ACTIVITY_ITEM, runPaletteCommand, waitForNotification, workbenchUrl } from "../../scripts/vscode-server.mjs";

export { PTQ_ACTIVITY_ITEM };

export const repoRoot = path.resolve(__dirname, "..", "..");

export interface OpenOptions {
  /** Names the screenshot folder (.test-artifacts/e2e/<name>/) and the workspace copy. */
  name: string;
  /** A folder copied fresh as the workspace (default test/vscode/workspace). */
  workspace?: string;
  /** Extra files written into the workspace copy, by relative path. */
  files?: Record<string, string | Uint8Array>;
  /** Load the repo as a development extension (default true); false when testing an installed .vsix. */
  loadExtension?: boolean;
  /** Wait for the PTQ Studio activity-bar item before returning (default true: .ipynb opens as JSON before it). */
  waitForExtension?: boolean;
}

export interface Workbench {
  browser: Browser;
  page: Page;
  /** Absolute path of the workspace copy the window has open. */
  workspace: string;
  /** Saves a PNG of the whole window as .test-artifacts/e2e/<name>/<NN>-<step>.png and returns its path. */
  screenshot(step: string): Promise<string>;
  /** Runs a command by its palette title (e.g. "PTQ Studio: Show Version") through F1. */
  runCommand(title: string): Promise<void>;
  /** Opens a workspace file through Quick Open (relative path) and waits for its editor tab. */
  openFile(relPath: string): Promise<void>;
  /**
   * Finds the frame (page, webview, notebook output iframe) whose text contains `text`; throws after the timeout.
   * `offscreen`: also text the notebook keeps in the DOM but hides while its cell is scrolled out of view.
   */
  findTextInFrames(text: string | RegExp, timeoutMs?: number, options?: { offscreen?: boolean }): Promise<Frame>;
  /** The ONNX editor's frame with its Summary tab shown (the Graph tab opens first on models up to its size limit). */
  showSummary(timeoutMs?: number): Promise<Frame>;
  /**
   * Waits for a notification whose text matches, as a toast or (toasts are not always shown in a headless window) in
   * the notification center, which it opens; returns the notification's text.
   */
  waitForNotification(text: string | RegExp, timeoutMs?: number): Promise<string>;
  /**
   * What the window shows, for an error message: the active tab and what its editor holds (a webview, a text editor,
   * VS Code's "binary file" notice), the notifications, and the frames with their text's start.
   */
  describe(): Promise<string>;
  /** Shows the PTQ Studio container (clicks its activity-bar icon unless it is already shown). */
  openPtqContainer(): Promise<void>;
  close(): Promise<void>;
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run e2e files through 'npm run test:e2e -- test/e2e/<file>.e2e.ts'`);
  return v;
}

let windows = 0;

/**
 * The last lines of the newest extension host's own log and of PTQ Studio's log (code-server writes them under the
 * run's user-data folder): whether the extension activated, what it or the host reported.
 */
function extensionHostLogTails(runDir: string, count = 12): string[] {
  const found: { file: string; mtime: number }[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 4) walk(p, depth + 1);
      else if (e.name === "remoteexthost.log" || e.name === "PTQ Studio.log") found.push({ file: p, mtime: statSync(p).mtimeMs });
    }
  };
  try {
    walk(path.join(runDir, "ud", "logs"), 0);
  } catch {
    return ["extension host logs: none found"];
  }
  const newest = (name: string) => found.filter((f) => path.basename(f.file) === name).sort((a, b) => b.mtime - a.mtime)[0];
  return [newest("remoteexthost.log"), newest("PTQ Studio.log")].flatMap((f) => {
    if (!f) return [];
    const tail = readFileSync(f.file, "utf8").trimEnd().split("\n").slice(-count);
    return [`${path.relative(runDir, f.file)}, last lines:`, ...tail.map((l) => `  ${l.slice(0, 240)}`)];
  });
}

export async function openWorkbench(opts: OpenOptions): Promise<Workbench> {
  const server = env("PTQ_E2E_SERVER");
  const runDir = env("PTQ_E2E_RUN_DIR");
  const shots = path.join(env("PTQ_E2E_ARTIFACTS"), opts.name);
  mkdirSync(shots, { recursive: true });
  const workspace = mkdtempSync(path.join(runDir, `ws${++windows}-`));
  cpSync(opts.workspace ?? path.join(repoRoot, "test", "vscode", "workspace"), workspace, { recursive: true });
  for (const [rel, data] of Object.entries(opts.files ?? {})) {
    mkdirSync(path.dirname(path.join(workspace, rel)), { recursive: true });
    writeFileSync(path.join(workspace, rel), data);
  }
  const browser = await chromium.launch({ executablePath: process.env.PTQ_CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const url = workbenchUrl(server, {
    folder: workspace,
    extensionDevelopmentPath: opts.loadExtension === false ? undefined : repoRoot,
  });
  await page.goto(url);
  await page.locator(".monaco-workbench").waitFor({ timeout: 60_000 });
  if (opts.waitForExtension !== false) await page.locator(PTQ_ACTIVITY_ITEM).first().waitFor({ timeout: 60_000 });
  let step = 0;

  const wb: Workbench = {
    browser,
    page,
    workspace,
    async screenshot(name) {
      const file = path.join(shots, `${String(++step).padStart(2, "0")}-${name.replace(/[^\w.-]+/g, "-")}.png`);
      await page.screenshot({ path: file });
      return file;
    },
    runCommand: (title) => runPaletteCommand(page, title),
    async openFile(relPath) {
      const base = path.basename(relPath);
      // The tab of this file by its exact label (cnn.onnx, not cnn.int8.onnx; det.onnx, not ppocr-det.onnx).
      const tabs = page.locator(".tabs-container .tab");
      const tabIndex = () => tabs.evaluateAll((all, name) => all.findIndex((t) => (t.textContent ?? "").trim() === name), base);
      const open = await tabIndex();
      if (open >= 0) {
        // Already open: click its tab. Quick Open's keys go nowhere while a webview has the focus.
        await tabs.nth(open).click();
      } else {
        await page.keyboard.press("Control+P");
        const input = page.locator(".quick-input-widget input");
        await input.waitFor();
        await input.fill(relPath);
        // Click the row of this file: Enter opens the first row, which is the most recently opened match.
        const exact = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
        const row = page.locator(".quick-input-list .monaco-list-row").filter({ has: page.locator(".label-name", { hasText: exact }) }).first();
        await row.waitFor();
        await row.click();
      }
      for (let i = 0; ; i++) {
        const at = await tabIndex();
        if (at >= 0 && (await tabs.nth(at).getAttribute("aria-selected")) === "true") break;
        if (i > 120) throw new Error(`${relPath}: its editor tab did not become the active one`);
        await page.waitForTimeout(250);
      }
    },
    async findTextInFrames(text, timeoutMs = 30_000, options = {}) {
      const t0 = Date.now();
      for (;;) {
        for (const frame of page.frames()) {
          const body = await frame.evaluate((all) => (all ? document.body?.textContent : document.body?.innerText) ?? "", options.offscreen === true).catch(() => "");
          if (typeof text === "string" ? body.includes(text) : text.test(body)) return frame;
        }
        if (Date.now() - t0 > timeoutMs) {
          const shot = await this.screenshot("no-frame-shows-text").catch(() => "none");
          throw new Error(`no frame shows ${String(text)} after ${timeoutMs} ms; screenshot ${shot}\n${await this.describe()}`);
        }
        await page.waitForTimeout(250);
      }
    },
    async showSummary(timeoutMs = 60_000) {
      const frame = await this.findTextInFrames("Op counts", timeoutMs, { offscreen: true });
      const tab = frame.locator("#tab-summary");
      if ((await tab.count()) > 0 && (await tab.getAttribute("aria-selected")) !== "true") await tab.click();
      await frame.getByText("Op counts").waitFor({ timeout: 10_000 });
      return frame;
    },
    waitForNotification: (text, timeoutMs) => waitForNotification(page, text, timeoutMs),
    async describe() {
      const clip = (t: string | null | undefined, n = 160) => JSON.stringify((t ?? "").replace(/\s+/g, " ").trim().slice(0, n));
      const lines: string[] = [];
      const active = page.locator(".editor-group-container.active");
      const tab = await active.locator(".tab.active").first().textContent({ timeout: 1000 }).catch(() => null);
      lines.push(`active tab: ${clip(tab, 80)}`);
      const editor = active.locator(".editor-container").first();
      const kinds = await editor.evaluate((el) => ({
        text: el.querySelector(".monaco-editor") !== null,
        placeholder: (el.querySelector(".monaco-editor-pane-placeholder, .editor-placeholder") as HTMLElement | null)?.innerText ?? null,
        body: (el as HTMLElement).innerText,
      }), undefined, { timeout: 1000 }).catch(() => undefined);
      if (kinds) lines.push(`its editor: ${kinds.text ? "a text editor" : "no text editor"}; placeholder ${clip(kinds.placeholder)}; text ${clip(kinds.body)}`);
      const toasts = await page.locator(".notification-list-item").allInnerTexts().catch(() => []);
      lines.push(`notifications: ${toasts.length ? toasts.map((t) => clip(t, 200)).join(" | ") : "none"}`);
      for (const f of page.frames()) {
        const body = await f.evaluate(() => document.body?.innerText ?? "").catch(() => "(unreadable)");
        lines.push(`frame ${clip(f.url().replace(/\?.*$/, ""), 100)}: ${clip(body, 120)}`);
      }
      lines.push(...extensionHostLogTails(runDir));
      return lines.join("\n");
    },
    async openPtqContainer() {
      // Clicking the icon of the container already shown would hide the side bar: click only when it is not shown.
      const header = page.locator(".part.sidebar .pane-header", { hasText: "Model Layers" }).first();
      if (!(await header.isVisible().catch(() => false))) await page.locator(PTQ_ACTIVITY_ITEM).first().click();
      await page.locator(".pane-header", { hasText: "Model Layers" }).first().waitFor();
    },
    async close() {
      await browser.close().catch(() => {});
    },
  };
  return wb;
}
