// A new user's first try on a real third-party model (issue 14): right-click the PP-OCR text detector (paddle2onnx,
// opset 12, input x[-1,3,?,?]) → Quantize Model…. Before any question the wizard says what will happen (the opset
// upgrade) and leaves out the scheme that would quantize nothing (INT4: no MatMul); with random data it asks for the
// symbolic height and width it cannot infer; the report measures on held-out samples, never the calibration ones.
// Screenshots: .test-artifacts/e2e/corpus-wizard/.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { byId, ensureFetched, loadCatalog, modelPath } from "../../bench/corpus/catalog";
import { explorerContextMenu } from "./explorer-helpers";
import { openWorkbench, type Workbench } from "./helpers";

const DET = "ppocr-v3-det-ch";

let wb: Workbench;
before(async () => {
  ensureFetched([DET]);
  wb = await openWorkbench({ name: "corpus-wizard", files: { "models/det.onnx": readFileSync(modelPath(byId(loadCatalog(), DET))) } });
});
after(async () => {
  await wb?.close();
});

test("Quantize Model… on a real opset-12 model with symbolic dims: said up front, asks for the shape, reports on held-out data", { timeout: 300_000 }, async () => {
  await explorerContextMenu(wb, "models", "det.onnx", "Quantize Model…");
  const quick = wb.page.locator(".quick-input-widget");
  const row = (text: string) => quick.locator(".monaco-list-row", { hasText: text }).first();
  await row("INT8 static").waitFor({ timeout: 60_000 });
  const placeholder = (await quick.locator("input").first().getAttribute("placeholder")) ?? "";
  assert.match(placeholder, /opset 12: upgraded to 13 on the way/);
  assert.doesNotMatch(placeholder, /not offered/, "INT4 and FP4 both cover a convolutional detector's Conv weights");
  assert.equal(await row("INT4 weights").count(), 1, "INT4 offered: it quantizes Conv weights");
  await wb.screenshot("scheme-with-notes");
  await row("INT8 static").click();
  await row("Random data").click();
  // The shape question: the model leaves height and width open.
  const box = quick.locator("input").first();
  await wb.page.locator(".quick-input-widget", { hasText: 'shape of input "x"' }).first().waitFor({ timeout: 30_000 });
  await box.fill("1x3x64");
  await quick.getByText("give 4 sizes").first().waitFor({ timeout: 10_000 }); // checked as typed
  await box.fill("1x3x64x64");
  await wb.screenshot("shape-question");
  await box.press("Enter");
  await row("Quantize with default settings").click();
  const frame = await wb.findTextInFrames("Quantized det.onnx", 180_000).catch(async (e: unknown) => {
    await wb.screenshot("no-report-failure");
    throw e;
  });
  await wb.findTextInFrames(/latency p50/, 180_000);
  const text = await frame.evaluate(() => document.body.innerText);
  assert.match(text, /held out from calibration/, "measured on samples calibration never saw");
  assert.doesNotMatch(text, /ptq report failed/);
  assert.ok(existsSync(path.join(wb.workspace, "models", "det.int8.onnx")));
  await wb.screenshot("report");
});
