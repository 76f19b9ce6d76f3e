// Restricted Mode in a real window: a code-server of this file's own with workspace trust on (the shared one runs
// with --disable-workspace-trust), a folder opened untrusted. Running a notebook cell is stopped by VS Code's trust
// dialog (why, Manage, Trust Folder); declined, no kernel process starts and the cell's code never runs. The ONNX
// editor shows the model but no run buttons; Quantize Model… refuses, writes nothing and offers Manage Workspace Trust. Screenshots: .test-artifacts/e2e/untrusted/.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { startCodeServer, type CodeServer } from "../../scripts/vscode-server.mjs";
import { ensureTools } from "../../scripts/vscode-tools.mjs";
import { explorerContextMenu } from "./explorer-helpers";
import { notebookJson, selectPtqKernel } from "./notebook-helpers";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

const cell = `import { writeFileSync } from "node:fs";\nwriteFileSync("cell-ran.txt", "a kernel ran this cell");\n"ran"`;

let server: CodeServer | undefined;
let wb: Workbench;
before(async () => {
  server = await startCodeServer({
    ...ensureTools(),
    runDir: mkdtempSync("/tmp/ptqvs-u-"),
    workspaceTrust: true,
    // No startup dialog: an untrusted folder opens straight in Restricted Mode.
    settings: { "security.workspace.trust.startupPrompt": "never" },
  });
  process.env.PTQ_E2E_SERVER = server.url; // openWorkbench opens its window on this server
  wb = await openWorkbench({
    name: "untrusted",
    files: { "models/cnn.onnx": readFileSync(path.join(repoRoot, "test/fixtures/models/cnn.onnx")), "run.ipynb": notebookJson([cell]) },
  });
});
after(async () => {
  await wb?.close();
  server?.stop();
  if (server) rmSync(server.runDir, { recursive: true, force: true, maxRetries: 3 });
});

/** Kernel processes (out/kernel/main.js) running in this workspace, found through /proc. */
function kernelsIn(dir: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmd.includes(path.join("out", "kernel", "main.js")) && readlinkSync(`/proc/${pid}/cwd`) === dir) pids.push(Number(pid));
    } catch {} // gone, or not ours to read
  }
  return pids;
}

test("Restricted Mode: running a notebook cell asks for trust first; declined, no kernel starts and nothing runs", { timeout: 240_000 }, async () => {
  await wb.page.locator(".statusbar-item", { hasText: "Restricted Mode" }).first().waitFor({ timeout: 60_000 });
  await wb.openFile("run.ipynb");
  await selectPtqKernel(wb);
  await wb.page.locator(".monaco-editor .view-lines", { hasText: "writeFileSync" }).first().waitFor({ timeout: 60_000 });
  await wb.page.locator(".notebook-toolbar-container").getByText("Run All").first().click();
  // VS Code's own gate for notebook execution in Restricted Mode: why, and the way to trust (Manage / Trust Folder).
  const dialog = wb.page.locator(".monaco-dialog-box").first();
  await dialog.waitFor({ timeout: 30_000 }).catch(async (e: unknown) => {
    await wb.screenshot("no-trust-dialog-failure");
    throw e;
  });
  assert.match(await dialog.innerText(), /Executing a notebook cell will run code from this workspace/);
  for (const b of ["Manage", "Trust Folder & Continue", "Cancel"]) assert.equal(await dialog.locator(".monaco-button", { hasText: b }).count(), 1, `the dialog offers ${b}`);
  await wb.screenshot("notebook-asks-for-trust");
  await dialog.locator(".monaco-button", { hasText: "Cancel" }).first().click();
  await dialog.waitFor({ state: "hidden" });
  // A barrier instead of a guessed delay: the extension host handles requests in order, so once a command sent
  // now has answered, a kernel fork asked for by the run would have happened.
  await wb.runCommand("PTQ Studio: Show Version");
  await wb.waitForNotification(/PTQ Studio \d+\.\d+\.\d+/);
  assert.deepEqual(kernelsIn(wb.workspace), [], "no kernel process runs in the untrusted workspace");
  assert.ok(!existsSync(path.join(wb.workspace, "cell-ran.txt")), "the cell's code never ran");
  assert.equal(await wb.page.locator(".cell-output-toolbar, .output-element").count(), 0, "the cell has no output");
  await wb.screenshot("notebook-declined");
});

test("the ONNX editor shows the model but no run buttons: the reason and Manage workspace trust instead", async () => {
  await wb.openFile("models/cnn.onnx");
  const frame = await wb.showSummary(60_000);
  const text = await frame.evaluate(() => document.body.innerText);
  assert.match(text, /This workspace is not trusted, so PTQ Studio will not run models or start a kernel here/);
  assert.match(text, /Conv\s+3/, "the summary itself is shown");
  assert.equal(await frame.locator("button", { hasText: "Quantize model…" }).count(), 0);
  assert.equal(await frame.locator("button", { hasText: "Benchmark this model" }).count(), 0);
  assert.equal(await frame.locator("button", { hasText: "Manage workspace trust…" }).count(), 1);
  await wb.screenshot("onnx-editor-restricted");
});

test("Quantize Model… refuses in Restricted Mode, writes nothing, and offers Manage Workspace Trust", async () => {
  const page = wb.page;
  await explorerContextMenu(wb, "models", "cnn.onnx", "Quantize Model…");
  const message = await wb.waitForNotification(/Quantizing runs the model/, 30_000);
  assert.match(message, /only in a trusted workspace/);
  assert.equal(await page.locator(".quick-input-widget .monaco-list-row", { hasText: "INT8 static" }).count(), 0, "no wizard opens");
  await wb.screenshot("quantize-refused");
  const notification = page.locator(".notification-list-item:visible", { hasText: "Quantizing runs the model" }).first();
  await notification.locator(".monaco-button", { hasText: "Manage Workspace Trust" }).first().click();
  // The Workspace Trust editor (a modal editor in VS Code 1.139), where the folder can be trusted.
  await page.getByText("You are in Restricted Mode").first().waitFor({ timeout: 30_000 }).catch(async (e: unknown) => {
    await wb.screenshot("no-trust-editor-failure");
    throw e;
  });
  assert.deepEqual(readdirSync(path.join(wb.workspace, "models")), ["cnn.onnx"], "nothing was written beside the model");
  await wb.screenshot("manage-workspace-trust");
});
