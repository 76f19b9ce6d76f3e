// Starts code-server (a real VS Code: web workbench + Node extension host) for tests, the way
// ../shared/notes/real-vscode.md measured it: a fresh RUN dir with a short path (socket names are limited to ~107
// characters), no gallery, the smoke-test driver on so the URL `payload` can load a development extension and an
// extensionTestsPath. Used by scripts/test-vscode.mjs and by test/e2e/helpers.ts.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";

/** Chromium flags for a headless, offline, throwaway browser. */
export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/**
 * User settings for every test window: nothing opens by itself and steals focus (welcome page, chat, tips), so
 * keyboard-driven steps and screenshots are deterministic. `startCodeServer({ settings })` adds to them.
 */
export const testSettings = {
  "workbench.startupEditor": "none",
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "chat.disableAIFeatures": true,
  "telemetry.telemetryLevel": "off",
  "extensions.autoCheckUpdates": false,
  "extensions.ignoreRecommendations": true,
  "update.mode": "none",
};

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url, child, deadlineMs, logFile) {
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode} before it was ready; see ${logFile}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {}
    if (Date.now() - t0 > deadlineMs) throw new Error(`code-server did not answer ${url}/healthz in ${deadlineMs} ms; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/**
 * Starts code-server in its own process group. `extraArgs` go on its command line, `settings` into the user settings;
 * `workspaceTrust: true` keeps VS Code's workspace trust on. Returns its URL and an idempotent, synchronous `stop()` that kills the
 * whole group (so the extension host and the kernel processes it forked go too).
 */
export async function startCodeServer({ node24, codeServerEntry, runDir, extraArgs = [], env = {}, settings = {}, workspaceTrust = false }) {
  runDir ??= mkdtempSync("/tmp/ptqvs-");
  for (const d of ["ud/User", "ext", "tmp", "xdg-config", "xdg-data"]) mkdirSync(path.join(runDir, d), { recursive: true });
  writeFileSync(path.join(runDir, "ud", "User", "settings.json"), JSON.stringify({ ...testSettings, ...settings }, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = path.join(runDir, "config.yaml");
  writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const logFile = path.join(runDir, "code-server.log");
  const log = openSync(logFile, "a");
  const args = [
    codeServerEntry,
    "--config", config,
    "--auth", "none",
    "--bind-addr", `127.0.0.1:${port}`,
    "--disable-telemetry",
    "--disable-update-check",
    // Trust is off for every test window, except a server started to test Restricted Mode (workspaceTrust: true).
    ...(workspaceTrust ? [] : ["--disable-workspace-trust"]),
    "--disable-getting-started-override",
    "--reconnection-grace-time", "5",
    "--vscode-option", "enable-smoke-test-driver",
    "--user-data-dir", path.join(runDir, "ud"),
    "--extensions-dir", path.join(runDir, "ext"),
    ...extraArgs,
  ];
  const child = spawn(node24, args, {
    detached: true, // its own process group, killed as a whole in stop()
    stdio: ["ignore", log, log],
    env: {
      ...process.env,
      TMPDIR: path.join(runDir, "tmp"),
      XDG_CONFIG_HOME: path.join(runDir, "xdg-config"),
      XDG_DATA_HOME: path.join(runDir, "xdg-data"),
      EXTENSIONS_GALLERY: "{}",
      ...env,
    },
  });
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    // code-server exits on SIGTERM within a second; make sure nothing of the group is left behind.
    setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, 3000).unref();
  };
  process.once("exit", stop);
  try {
    await waitHealthy(url, child, 30_000, logFile);
  } catch (e) {
    stop();
    throw e;
  }
  return { url, port, runDir, logFile, pid: child.pid, stop };
}

/** Installs a .vsix (or an extension id) into an extensions dir with code-server's CLI; returns its output. */
export function installExtension({ node24, codeServerEntry, runDir, vsix }) {
  return new Promise((resolve, reject) => {
    const args = [codeServerEntry, "--user-data-dir", path.join(runDir, "ud"), "--extensions-dir", path.join(runDir, "ext"), "--install-extension", vsix];
    const child = spawn(node24, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, EXTENSIONS_GALLERY: "{}" } });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`--install-extension ${vsix} failed (${code}):\n${out}`))));
  });
}

/**
 * The workbench URL for a folder, optionally loading development extensions and an extension test module. Paths are
 * absolute paths on this machine (code-server's remote side is this machine).
 */
export function workbenchUrl(url, { folder, extensionDevelopmentPath, extensionTestsPath }) {
  const remote = (p) => `vscode-remote://${new URL(url).host}${p}`;
  const payload = [];
  if (extensionDevelopmentPath) payload.push(["extensionDevelopmentPath", remote(extensionDevelopmentPath)]);
  if (extensionTestsPath) payload.push(["extensionTestsPath", remote(extensionTestsPath)]);
  const q = new URLSearchParams({ folder });
  if (payload.length) q.set("payload", JSON.stringify(payload));
  return `${url}/?${q}`;
}

// --- Driving the workbench page (playwright Page); used by test/e2e/helpers.ts and scripts/test-package.mjs ---------

/** The activity-bar entry of our container (VS Code labels it with the container's title). */
export const PTQ_ACTIVITY_ITEM = '.part.activitybar .action-item a[aria-label^="PTQ Studio"]';

/** Runs a command by its exact palette title through F1, and waits for the palette to close. */
export async function runPaletteCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(`>${title}`);
  // Wait until the list shows this command, so Enter never runs a neighbour.
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor();
  await page.keyboard.press("Enter");
  await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
}

/**
 * Waits for a notification whose message matches, as a toast or in the notification center, which it opens after
 * 1.5 s because a headless window does not always show toasts. Returns the message text.
 */
export async function waitForNotification(page, text, timeoutMs = 30_000) {
  const t0 = Date.now();
  const matches = (s) => (typeof text === "string" ? s.includes(text) : text.test(s));
  let centerOpen = false;
  for (;;) {
    const items = page.locator(".notification-toast .notification-list-item-message, .notifications-center .notification-list-item-message");
    for (const s of await items.allInnerTexts()) if (matches(s)) return s;
    if (Date.now() - t0 > timeoutMs) throw new Error(`no notification shows ${String(text)} after ${timeoutMs} ms`);
    if (!centerOpen && Date.now() - t0 > 1500) {
      await runPaletteCommand(page, "Notifications: Show Notifications");
      centerOpen = true;
    }
    await page.waitForTimeout(250);
  }
}
