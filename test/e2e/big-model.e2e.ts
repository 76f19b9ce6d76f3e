// Real third-party models in the editor area (issue 14, finding 7), at the default window size: the PP-OCR detector
// (paddle2onnx, 520 nodes, dims named p2o.DynamicDimension.N) and recognizer (732 nodes) from the corpus. The ONNX
// editor's sections never draw over each other; Model Layers lists the nodes; a filter set on one model leaves the
// next model whole, and one that matches nothing says so with a row that clears it; Quantization State of a float
// model is a message, not a row per node; "Open in notebook" shows the model as its summary, not a protobuf dump.
// Screenshots: .test-artifacts/e2e/big-model/.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import type { Frame, Locator } from "playwright-core";
import { byId, ensureFetched, loadCatalog, modelPath } from "../../bench/corpus/catalog";
import { selectPtqKernel } from "./notebook-helpers";
import { openWorkbench, type Workbench } from "./helpers";

const DET = "ppocr-v3-det-en";
const REC = "ppocr-v3-rec-en";

let wb: Workbench;
before(async () => {
  ensureFetched([DET, REC]);
  const catalog = loadCatalog();
  const bytes = (id: string) => readFileSync(modelPath(byId(catalog, id)));
  wb = await openWorkbench({ name: "big-model", files: { "models/det.onnx": bytes(DET), "models/rec.onnx": bytes(REC) } });
});
after(async () => {
  await wb?.close();
});

const pane = (title: string): Locator => wb.page.locator(".pane", { has: wb.page.locator(".pane-header", { hasText: title }) }).first();
const layerRow = (text: string | RegExp): Locator => pane("Model Layers").locator(".monaco-list-row", { hasText: text }).first();

interface Box { name: string; left: number; right: number; top: number; bottom: number; contentRight: number }

/** Each summary section's box and the right edge of what it draws (tables, code); and the page's overflow. */
async function sectionBoxes(frame: Frame): Promise<{ boxes: Box[]; pageOverflow: number }> {
  return frame.evaluate(() => {
    const boxes = Array.from(document.querySelectorAll<HTMLElement>(".grid > section"), (s) => {
      const r = s.getBoundingClientRect();
      const contentRight = Math.max(...Array.from(s.querySelectorAll("table, code, td"), (e) => e.getBoundingClientRect().right));
      return { name: s.querySelector("h2")?.textContent ?? "?", left: r.left, right: r.right, top: r.top, bottom: r.bottom, contentRight };
    });
    return { boxes, pageOverflow: document.documentElement.scrollWidth - document.documentElement.clientWidth };
  });
}

/** Waits for `locator`; on timeout saves a screenshot named after `what` first. */
async function see(locator: Locator, what: string, timeout = 30_000): Promise<void> {
  await locator.waitFor({ timeout }).catch(async (e: unknown) => {
    await wb.screenshot(`no-${what}-failure`);
    throw e;
  });
}

async function setFilter(value: string): Promise<void> {
  const header = pane("Model Layers").locator(".pane-header").first();
  await header.hover();
  await header.locator(".action-label[aria-label^='Filter Layers']").click();
  const input = wb.page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(value);
  await wb.page.keyboard.press("Enter");
}

test("a 520-node paddle2onnx model: the summary's sections never overlap, even on p2o.DynamicDimension dims", { timeout: 180_000 }, async () => {
  await wb.openFile("models/det.onnx");
  // CI once saw no summary here for 90 s, and no Model Layers or filter box after it, while rec.onnx opened fine
  // later (cause unknown; not reproduced in 12 runs of the first two e2e files and 5 clean-clone CIs here). The error
  // now describes the window and the extension host's log; one reopen after it is printed keeps an unexplained
  // hiccup of the workbench from failing the run.
  const frame = await wb.showSummary(60_000).catch(async (e: unknown) => {
    console.error(`big-model: det.onnx showed no summary in 60 s, reopening it once.\n${e instanceof Error ? e.message : String(e)}`);
    await wb.runCommand("View: Close All Editors");
    await wb.openFile("models/det.onnx");
    return wb.showSummary(60_000);
  });
  const text = await frame.evaluate(() => document.body.innerText);
  assert.match(text, /520 nodes/);
  assert.match(text, /float\[p2o\.DynamicDimension\.0,3,p2o\.DynamicDimension\.1,p2o\.DynamicDimension\.2\]/, "the type is whole, only wrapped");
  await wb.screenshot("det-summary");
  const { boxes, pageOverflow } = await sectionBoxes(frame);
  assert.ok(boxes.length >= 4, JSON.stringify(boxes));
  for (const b of boxes) assert.ok(b.contentRight <= b.right + 0.5, `"${b.name}" draws past its column: ${JSON.stringify(b)}`);
  for (const [i, a] of boxes.entries()) {
    for (const b of boxes.slice(i + 1)) {
      const apart = a.right <= b.left + 0.5 || b.right <= a.left + 0.5 || a.bottom <= b.top + 0.5 || b.bottom <= a.top + 0.5;
      assert.ok(apart, `"${a.name}" and "${b.name}" overlap: ${JSON.stringify([a, b])}`);
    }
  }
  assert.ok(pageOverflow <= 0, `the page scrolls sideways by ${pageOverflow}px`);
  const titles = await frame.locator("code[title^='float[p2o']").evaluateAll((els) => els.map((e) => e.getAttribute("title")));
  assert.equal(titles[0], "float[p2o.DynamicDimension.0,3,p2o.DynamicDimension.1,p2o.DynamicDimension.2]", "the full type is the tooltip");
});

test("Model Layers lists the nodes; Quantization State says what to run instead of a 'float' row per node", { timeout: 120_000 }, async () => {
  await wb.openPtqContainer();
  // Groups by op, largest first (the tree draws only the rows in view).
  await see(layerRow(/^Constant\s*300$/), "det-layers", 60_000);
  await see(layerRow(/^Conv\s*72$/), "det-conv");
  const quant = pane("Quantization State");
  await see(quant.getByText(/det\.onnx has no quantized tensors\. Quantize this model or run analyze\(\)/).first(), "quant-state-message");
  assert.equal(await quant.locator(".monaco-list-row").count(), 0, "no rows before any quantization or analysis");
  await wb.screenshot("det-layers-and-quant-state");
});

test("a filter set on one model leaves the next model whole; a filter that matches nothing says so and clears", { timeout: 180_000 }, async () => {
  await setFilter("ConvTranspose");
  await see(pane("Model Layers").getByText('Filter "ConvTranspose": 4 of 520 nodes match').first(), "filter-message");
  await see(layerRow(/^ConvTranspose\s*2$/), "filtered-row"); // and the 2 Adds that read their outputs
  assert.equal(await layerRow(/^Conv\s*72$/).count(), 0, "the filter applies to det.onnx");
  await wb.screenshot("det-filtered");

  // rec.onnx has no ConvTranspose: with the filter carried over its tree was empty, without a word.
  await wb.openFile("models/rec.onnx");
  await wb.findTextInFrames("732 nodes", 90_000);
  await see(layerRow(/^Constant\s*377$/), "rec-layers", 60_000);
  await see(layerRow(/^Add\s*56$/), "rec-add");
  // The view's message follows the tree by a moment: wait for det.onnx's filter line to go, then check none is left.
  await pane("Model Layers").getByText(/^Filter "/).first().waitFor({ state: "detached", timeout: 30_000 });
  assert.equal(await pane("Model Layers").getByText(/^Filter "/).count(), 0, "no filter on rec.onnx");
  await wb.screenshot("rec-layers-unfiltered");

  await setFilter("no-such-node");
  const none = layerRow('No node matches "no-such-node"');
  await see(none, "no-match-row");
  await see(pane("Model Layers").getByText('Filter "no-such-node": 0 of 732 nodes match').first(), "no-match-message");
  await wb.screenshot("rec-no-match");
  await none.click();
  await see(layerRow(/^Constant\s*377$/), "cleared");
  await wb.screenshot("rec-filter-cleared");
});

test("Open in notebook: the model cell's output is the model's summary, not a protobuf dump", { timeout: 300_000 }, async () => {
  await wb.openFile("models/rec.onnx");
  // The editor's frame: its button with the count. "732 nodes" alone also matched the workbench's own frame while the
  // last test's Model Layers message ("… of 732 nodes match") was still going (CI, once), which has no such button.
  const editor = await wb.findTextInFrames(/732 nodes[\s\S]*Open in notebook|Open in notebook[\s\S]*732 nodes/, 90_000);
  await editor.locator("button", { hasText: "Open in notebook" }).click();
  await wb.page.locator(".tabs-container .tab", { hasText: /Untitled-\d+\.ipynb/ }).first().waitFor({ timeout: 60_000 });
  await selectPtqKernel(wb);
  // Run the first code cell only (the next ones quantize and benchmark a 9 MB model).
  const cell = wb.page.locator(".cell-editor-container .view-lines", { hasText: "loadModel" }).first();
  await cell.click();
  // The cell's own run button (Ctrl+Enter in a cell editor may insert a line instead): the first visible is this one's.
  await wb.page.locator(".run-button-container .action-label").filter({ visible: true }).first().click();
  const out = await wb.findTextInFrames(/^Inputs:$/m, 180_000).catch(async (e: unknown) => {
    await wb.screenshot("no-model-output-failure");
    throw e;
  });
  const text = await out.evaluate(() => document.body.innerText);
  assert.match(text, /^Inputs:\n {2}x: float \[/m);
  assert.doesNotMatch(text, /\$typeName|rawData/);
  await wb.screenshot("notebook-model-summary");
});
