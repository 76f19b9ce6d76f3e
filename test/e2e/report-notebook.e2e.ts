// The quantization report's "Open in notebook": right-click → Quantize Model… (INT8 static, random data, defaults),
// click "Open in notebook" in the report, and a notebook opens whose cells redo the run; Run All writes
// cnn.int8.notebook.onnx byte-identical to the run's cnn.int8.onnx and benchmarks the three models.
// Screenshots: .test-artifacts/e2e/report-notebook/.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { explorerContextMenu } from "./explorer-helpers";
import { selectPtqKernel } from "./notebook-helpers";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "report-notebook", files: { "models/cnn.onnx": readFileSync(path.join(repoRoot, "test/fixtures/models/cnn.onnx")) } });
});
after(async () => {
  await wb?.close();
});

async function quantizeFromExplorer(): Promise<void> {
  await explorerContextMenu(wb, "models", "cnn.onnx", "Quantize Model…");
  for (const text of ["INT8 static", "Random data", "Quantize with default settings"]) {
    const r = wb.page.locator(".quick-input-widget .monaco-list-row", { hasText: text }).first();
    await r.waitFor();
    await r.click();
  }
}

test("Open in notebook reproduces the run: same options, same bytes, benchmark renders", { timeout: 400_000 }, async () => {
  const models = path.join(wb.workspace, "models");
  await quantizeFromExplorer();
  const report = await wb.findTextInFrames(/latency p50/, 180_000);
  assert.ok(existsSync(path.join(models, "cnn.int8.onnx")));
  await wb.screenshot("report");
  await report.locator("button", { hasText: "Open in notebook" }).click();

  // The notebook opens on its own (untitled); its quantization cell names the run's input, samples and options.
  await wb.page.locator(".tabs-container .tab", { hasText: /Untitled-\d+\.ipynb/ }).first().waitFor({ timeout: 60_000 });
  await wb.page.locator(".monaco-editor .view-lines", { hasText: "quantizeStatic" }).first().waitFor({ timeout: 30_000 }).catch(async (e: unknown) => {
    await wb.screenshot("no-notebook-failure");
    throw e;
  });
  const cells = (await wb.page.locator(".cell-editor-container .view-lines").allInnerTexts()).map((t) => t.replace(/\u00a0/g, " "));
  const run = cells.find((c) => c.includes("quantizeStatic"))!;
  assert.ok(run.includes(JSON.stringify(path.join(models, "cnn.onnx"))), run);
  assert.match(run, /cnn\.int8\.random-calib\.npy", model, \{ batchSize: 32 \}/);
  assert.match(run, /calibration: \{ method: "auto" \}/);
  assert.ok(cells.some((c) => /benchmark\(\{ fp32: .*run: .*notebook: /.test(c)), "a benchmark cell compares FP32, the run's and the notebook's models");
  assert.ok(existsSync(path.join(models, "cnn.int8.random-calib.npy")), "the run's random samples are written beside its model");
  await wb.screenshot("notebook-opened-from-report");

  await selectPtqKernel(wb);
  await wb.page.locator(".notebook-toolbar-container").getByText("Run All").first().click();
  await wb.findTextInFrames(/wrote .*cnn\.int8\.notebook\.onnx: \d+ nodes quantized/, 120_000);
  // Outputs render only near the viewport: keep going to the end of the notebook until the benchmark table shows.
  const deadline = Date.now() + 180_000;
  let frame;
  for (;;) {
    await wb.page.keyboard.press("Escape");
    await wb.page.keyboard.press("Control+End");
    try {
      frame = await wb.findTextInFrames(/speed-up/, 10_000);
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        await wb.screenshot("no-benchmark-failure");
        throw e;
      }
    }
  }
  const rows = await frame.locator("table", { has: frame.locator("th", { hasText: "speed-up" }) }).first().locator("tbody tr").allInnerTexts();
  assert.deepEqual(rows.map((r) => r.split(/\s/)[0]), ["fp32", "run", "notebook"]);
  const mine = path.join(models, "cnn.int8.notebook.onnx");
  assert.ok(existsSync(mine), "Run All wrote the notebook's model");
  assert.ok(readFileSync(mine).equals(readFileSync(path.join(models, "cnn.int8.onnx"))), "the notebook's model is byte-identical to the run's");
  await wb.screenshot("notebook-ran");
});
