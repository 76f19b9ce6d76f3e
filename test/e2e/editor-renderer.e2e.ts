// The notebook renderer in a real VS Code: a saved .ipynb whose outputs carry our MIME types renders a sortable
// benchmark table with the speed-up highlighted, and a histogram through the lazily loaded plotly bundle. No kernel
// runs: VS Code renders stored outputs. Screenshots: .test-artifacts/e2e/editor-renderer/.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { openWorkbench, type Workbench } from "./helpers";

const bench = {
  kind: "ptq.benchmark",
  models: [
    { name: "cnn.onnx", fileBytes: 120917, batches: [{ batch: 1, latencyMs: { p50: 0.4, p90: 0.5, p99: 0.7 }, throughput: 2500 }] },
    { name: "cnn.int8.onnx", fileBytes: 41554, sizeRatio: 0.34, batches: [{ batch: 1, latencyMs: { p50: 0.2, p90: 0.25, p99: 0.3 }, throughput: 5000, vsFirst: { speedup: 2, verdict: { trustworthy: true, reason: "" } } }] },
    { name: "cnn.int4.onnx", fileBytes: 30000, batches: [{ batch: 1, latencyMs: { p50: 0.9, p90: 1.5, p99: 3 }, throughput: 1100, vsFirst: { speedup: 0.44, verdict: { trustworthy: false, reason: "spread too wide" } } }] },
  ],
  notes: [],
};
const hist = { kind: "ptq.histogram", tensor: "relu_out", edges: [0, 1, 2, 3, 4], counts: [50, 20, 5, 1], floatRange: [0, 4], clipRange: [0, 2.5], method: "entropy" };

const output = (mime: string, data: unknown, text: string) => ({ output_type: "display_data", metadata: {}, data: { [mime]: data, "text/plain": [text] } });
const notebook = JSON.stringify({
  nbformat: 4, nbformat_minor: 5,
  metadata: { kernelspec: { name: "ptq", display_name: "PTQ (TypeScript)", language: "typescript" }, language_info: { name: "typescript" } },
  cells: [
    { cell_type: "code", id: "a", metadata: {}, execution_count: 1, source: ["await benchmark(models)"], outputs: [output("application/vnd.ptq.benchmark+json", bench, "benchmark (text)")] },
    { cell_type: "code", id: "b", metadata: {}, execution_count: 2, source: ["histogram"], outputs: [output("application/vnd.ptq.histogram+json", hist, "histogram (text)")] },
  ],
});

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "editor-renderer", files: { "results.ipynb": notebook } });
});
after(async () => {
  await wb?.close();
});

test("stored benchmark and histogram outputs render with the PTQ renderer", async () => {
  await wb.openFile("results.ipynb");
  const frame = await wb.findTextInFrames("speed-up", 90_000);
  const table = frame.locator("table.ptq-table").first();
  await table.waitFor();
  assert.equal(await table.locator("td.ptq-good").first().innerText(), "2.00×");
  assert.match(await table.locator("td.ptq-noisy").first().innerText(), /0\.44× \(noisy\)/);
  await wb.screenshot("benchmark-table");
  // Sorting by p50 (header 3) puts the fastest model first, clicking again the slowest.
  const firstModel = () => table.locator("tbody tr td").first().innerText();
  await table.locator('th[data-col="3"]').click();
  assert.equal(await firstModel(), "cnn.int8.onnx");
  await table.locator('th[data-col="3"]').click();
  assert.equal(await firstModel(), "cnn.int4.onnx");
  await wb.screenshot("benchmark-sorted");
  // The histogram's plot is drawn by plotly, loaded on demand from out/media/plotly.js.
  await frame.locator(".ptq-plot .main-svg").first().waitFor({ timeout: 60_000 });
  assert.ok((await frame.locator(".ptq-plot .shapelayer path").count()) >= 4, "float and clipping range lines");
  await wb.screenshot("histogram");
});
