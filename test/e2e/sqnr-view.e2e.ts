// SQNR in the Quantization State view on a live kernel: analyze() in a cell sends each tensor's SQNR; the view names
// the worst tensor in its message, opens its node, and draws that tensor with a red warning icon. The tensor is the
// one the cell itself reports as worst. Screenshots: .test-artifacts/e2e/sqnr-view/.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import { notebookJson, runAll, selectPtqKernel } from "./notebook-helpers";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

const fixture = (rel: string) => JSON.stringify(path.join(repoRoot, "test", "fixtures", rel));
const cell = [
  `import { loadModel, prepare, calibrate, analyze, openData } from "ptq";`,
  `const model = await loadModel(${fixture("models/cnn.onnx")});`,
  `const prepared = await prepare(model, { calibration: { method: "minmax" } });`,
  `await calibrate(prepared, openData(${fixture("data/calib/npy")}, model));`,
  `const report = await analyze(prepared, openData(${fixture("data/calib/npy")}, model), { maxBatches: 4 });`,
  `const worst = report.worst(1)[0]!;`,
  `\`analysed; worst=\${worst.tensor}; node=\${worst.node}\``,
].join("\n");

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "sqnr-view", files: { "analyze.ipynb": notebookJson([cell]) } });
});
after(async () => {
  await wb?.close();
});

test("analyze() in a cell fills Quantization State with SQNR per tensor, the worst in red", { timeout: 300_000 }, async () => {
  await wb.openFile("analyze.ipynb");
  await selectPtqKernel(wb);
  await runAll(wb, "loadModel");
  const frame = await wb.findTextInFrames(/analysed; worst=\S+; node=\S*/, 240_000);
  const [, tensor] = /analysed; worst=(\S+);/.exec(await frame.evaluate(() => document.body.innerText))!;
  await wb.openPtqContainer();
  // Give Quantization State the side bar's height (the tree renders only the rows in view): collapse the other two.
  for (const other of ["Model Layers", "Histograms"]) {
    const header = wb.page.locator(".part.sidebar .pane-header", { hasText: other }).first();
    if ((await header.getAttribute("aria-expanded")) === "true") await header.click();
  }
  const pane = wb.page.locator(".pane", { has: wb.page.locator(".pane-header", { hasText: "Quantization State" }) }).first();
  await pane.getByText(`Worst SQNR: ${tensor!} `, { exact: false }).first().waitFor({ timeout: 60_000 });
  // The worst tensor's row: its SQNR in the description, a warning icon coloured charts.red.
  const row = pane.locator(".monaco-list-row", { hasText: `: ${tensor!}` }).filter({ has: wb.page.locator(".codicon-warning") }).first();
  await row.waitFor({ timeout: 30_000 });
  assert.match(await row.innerText(), /SQNR -?\d+\.\d dB/);
  // VS Code resolves the ThemeColor to the theme's value (charts.red: #f14c4c dark, measured rgb(173,7,7) in this light theme) on the icon.
  const color = await row.locator(".codicon-warning").first().evaluate((el) => getComputedStyle(el).color);
  const [r, g, b] = (color.match(/\d+/g) ?? []).map(Number);
  assert.ok(r! >= 150 && g! <= 110 && b! <= 110, `the worst tensor's icon is red, not ${color}`);
  // Other analysed tensors show their SQNR too, without the red mark.
  const others = pane.locator(".monaco-list-row", { hasText: /SQNR -?\d+\.\d dB|SQNR exact/ });
  assert.ok((await others.count()) >= 2, "more than the worst tensor shows an SQNR");
  await wb.screenshot("quant-state-sqnr");
});
