// The benchmark code lens on a live kernel: a notebook cell that calls `benchmark(` shows "▶ Run FP32 vs INT8
// benchmark"; clicking it (and nothing else: the notebook is never run otherwise) runs the cell in the PTQ kernel and
// the benchmark table renders in the cell's output through our renderer. Screenshots: .test-artifacts/e2e/lens/.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import { notebookJson, selectPtqKernel } from "./notebook-helpers";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

const cnn = JSON.stringify(path.join(repoRoot, "test", "fixtures", "models", "cnn.onnx"));
const cell = [
  `import { benchmark, quantizeDynamic } from "ptq";`,
  `await quantizeDynamic(${cnn}, "cnn.int8.onnx");`,
  `await benchmark({ fp32: ${cnn}, int8: "cnn.int8.onnx" }, { batchSizes: [1], seconds: 1 })`,
].join("\n");

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "lens", files: { "bench.ipynb": notebookJson([cell]) } });
});
after(async () => {
  await wb?.close();
});

test("clicking the benchmark code lens runs the cell and the FP32 vs INT8 table renders", { timeout: 300_000 }, async () => {
  await wb.openFile("bench.ipynb");
  await selectPtqKernel(wb);
  const lens = wb.page.locator(".codelens-decoration a", { hasText: "Run FP32 vs INT8 benchmark" }).first();
  await lens.waitFor({ timeout: 60_000 });
  await wb.page.locator(".codelens-decoration a", { hasText: "Compare accuracy" }).first().waitFor();
  await wb.screenshot("lenses");
  await lens.click();
  // The renderer's table: a sortable header with the speed-up column, one row per model.
  const frame = await wb.findTextInFrames(/speed-up/, 180_000).catch(async (e: unknown) => {
    await wb.screenshot("no-table-failure");
    throw e;
  });
  const table = frame.locator("table", { has: frame.locator("th", { hasText: "speed-up" }) }).first();
  await table.waitFor({ timeout: 30_000 });
  const rows = await table.locator("tbody tr").allInnerTexts();
  assert.equal(rows.length, 2, `one row per model: ${rows.join(" | ")}`);
  assert.match(rows[0]!, /^fp32\b/);
  assert.match(rows[1]!, /^int8\b[\s\S]*\d+(\.\d+)?×/, "the int8 row carries its speed-up against fp32");
  await wb.screenshot("benchmark-table");
});
