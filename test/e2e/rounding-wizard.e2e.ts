// Quantize Model… → INT8 static, random data, Advanced options… → Weight rounding (the default, "By the model's size",
// listed first): "Learned where it measures better"
// (QConfig.rounding "auto"): the run's config asks for it, and the report says what the measurement chose and on
// which rows. Screenshots: .test-artifacts/e2e/rounding-wizard/.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { explorerContextMenu } from "./explorer-helpers";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "rounding-wizard", files: { "models/cnn.onnx": readFileSync(path.join(repoRoot, "test/fixtures/models/cnn.onnx")) } });
});
after(async () => {
  await wb?.close();
});

test("Advanced options… offers weight rounding; learned-where-better is written to the config and reported", { timeout: 300_000 }, async () => {
  await explorerContextMenu(wb, "models", "cnn.onnx", "Quantize Model…");
  const quick = wb.page.locator(".quick-input-widget");
  const row = (text: string) => quick.locator(".monaco-list-row", { hasText: text }).first();
  const titled = (title: string) => wb.page.locator(".quick-input-widget", { hasText: title }).first().waitFor({ timeout: 30_000 });
  await row("INT8 static").waitFor({ timeout: 60_000 });
  await row("INT8 static").click();
  await row("Random data").click();
  await row("Advanced options…").click();
  await row("Per-channel").click();
  await titled("Calibration method");
  await quick.locator(".monaco-list-row", { hasText: "default" }).first().click();
  await titled("Weight rounding");
  assert.equal(await row("Nearest").count(), 1);
  // INT8's default is its own item, first and marked default: auto on light models, nearest on heavy ones.
  assert.match(await quick.locator(".monaco-list-row").first().innerText(), /By the model's size[\s\S]*default/);
  await wb.screenshot("weight-rounding");
  await row("Learned where it measures better").click();
  await titled("Nodes to keep in float");
  await quick.locator("input").first().press("Enter");
  const frame = await wb.findTextInFrames("Quantized cnn.onnx", 180_000).catch(async (e: unknown) => {
    await wb.screenshot("no-report-failure");
    throw e;
  });
  const text = await wb.findTextInFrames(/rounding auto (chose learned|kept nearest) rounding/, 60_000).then((f) => f.evaluate(() => document.body.innerText));
  assert.match(text, /rounding auto (chose learned|kept nearest) rounding: learned codes fitted on every other of \d+ calibration rows and judged on the rows between/);
  assert.ok(frame);
  const config = path.join(wb.workspace, "models", "cnn.int8.ptq.json");
  assert.ok(existsSync(config));
  assert.equal((JSON.parse(readFileSync(config, "utf8")) as { rounding?: string }).rounding, "auto");
  await wb.screenshot("report");
});
