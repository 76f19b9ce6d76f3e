// Notebooks from nothing, as a new user meets them: "PTQ Studio: New Notebook" opens a TypeScript notebook already
// on the PTQ kernel; a notebook whose cells are Python asks before switching them to TypeScript when our kernel is
// selected (VS Code would skip them without a word); the benchmark lens on a cell whose imports sit in a cell above
// that never ran runs that cell first. Screenshots: .test-artifacts/e2e/{new-notebook,python-notebook,lens-deps}/.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { readFileSync } from "node:fs";
import { byId, ensureFetched, loadCatalog, modelPath } from "../../bench/corpus/catalog";
import { notebookJson, selectPtqKernel } from "./notebook-helpers";
import { openWorkbench, type Workbench } from "./helpers";


const pythonNotebook = JSON.stringify({
  cells: [{ cell_type: "code", execution_count: null, metadata: {}, outputs: [], source: "6 * 7" }],
  metadata: { kernelspec: { name: "python3", display_name: "Python 3", language: "python" }, language_info: { name: "python" } },
  nbformat: 4,
  nbformat_minor: 5,
});

// A real third-party model from the corpus (BlazeFace, tf2onnx from TFLite, NHWC input), copied into the workspace.
const FACE = "blazeface-front";
const dependsOnAbove = notebookJson([
  `import { benchmark, quantizeDynamic } from "ptq";\nconst fp32 = "face.onnx";\nawait quantizeDynamic(fp32, "face.dyn.onnx");`,
  `// @benchmark\nawait benchmark({ fp32, int8: "face.dyn.onnx" }, { batchSizes: [1], seconds: 1 })`,
]);

// A window per test: each starts from one notebook, so the toolbar and notifications are that notebook's.
let wb: Workbench | undefined;
afterEach(async () => {
  await wb?.close();
  wb = undefined;
});
const open = async (name: string, files: Record<string, string | Uint8Array> = {}) => (wb = await openWorkbench({ name, files }));

test("PTQ Studio: New Notebook opens TypeScript cells on the PTQ kernel, and its starter cell runs", { timeout: 180_000 }, async () => {
  const wb = await open("new-notebook");
  await wb.runCommand("PTQ Studio: New Notebook");
  await wb.page.locator(".monaco-editor .view-lines", { hasText: "from \"ptq\"" }).first().waitFor({ timeout: 60_000 });
  // No kernel picker: the toolbar names our kernel straight away.
  await wb.page.getByText("PTQ (TypeScript)", { exact: true }).filter({ visible: true }).first().waitFor({ timeout: 60_000 });
  await wb.page.locator(".notebook-toolbar-container").getByText("Run All").first().click();
  await wb.findTextInFrames("ptq ready", 120_000);
  await wb.screenshot("new-notebook-ran");
});

test("selecting the PTQ kernel on a Python notebook asks, then switches its cells to TypeScript and runs them", { timeout: 180_000 }, async () => {
  const wb = await open("python-notebook", { "python.ipynb": pythonNotebook });
  await wb.openFile("python.ipynb");
  await selectPtqKernel(wb);
  // Run All on Python cells used to do nothing at all; now the kernel asks (once, also when it is selected).
  await wb.page.locator(".notebook-toolbar-container").getByText("Run All").first().click();
  await wb.waitForNotification(/1 cell\(s\) of this notebook are python and will not run/, 60_000);
  await wb.screenshot("asked");
  await wb.page.getByRole("button", { name: "Switch to TypeScript" }).first().click();
  const frame = await wb.findTextInFrames(/^42$/m, 120_000);
  // The cell's language label (bottom right of the cell) now says TypeScript.
  await wb.page.getByText("TypeScript", { exact: true }).filter({ visible: true }).first().waitFor({ timeout: 30_000 });
  assert.equal(await wb.page.getByText("Python", { exact: true }).filter({ visible: true }).count(), 0, "no cell is Python any more");
  assert.ok(frame);
  await wb.screenshot("python-switched-and-ran");
});

test("the benchmark lens on a real model runs the cell above it that holds its imports (never run before), then renders the table", { timeout: 300_000 }, async () => {
  ensureFetched([FACE]);
  const wb = await open("lens-deps", { "lens-deps.ipynb": dependsOnAbove, "face.onnx": readFileSync(modelPath(byId(loadCatalog(), FACE))) });
  await wb.openFile("lens-deps.ipynb");
  await selectPtqKernel(wb);
  const lens = wb.page.locator(".codelens-decoration a", { hasText: "Run FP32 vs INT8 benchmark" }).first();
  await lens.waitFor({ timeout: 60_000 });
  await lens.click();
  await wb.findTextInFrames(/quantized: \[/, 120_000); // the cell above ran first: its summary is shown
  await wb.screenshot("lens-clicked");
  // Without the cell above, the lens cell fails with "Cannot find name 'benchmark'".
  const frame = await wb.findTextInFrames(/speed-up/, 180_000).catch(async (e: unknown) => {
    await wb.screenshot("no-table-failure");
    throw e;
  });
  const rows = await frame.locator("table", { has: frame.locator("th", { hasText: "speed-up" }) }).first().locator("tbody tr").allInnerTexts();
  assert.equal(rows.length, 2, rows.join(" | "));
  await wb.screenshot("lens-ran-dependencies");
});
