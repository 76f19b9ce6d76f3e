// The sample notebook examples/quickstart.ipynb run end to end in a real VS Code window: load → prepare → calibrate →
// convert → benchmark → evaluate → analyze on the fixture CNN. Its relative fixture paths are pointed at the repo's
// test/fixtures. Screenshots: .test-artifacts/e2e/quickstart/.
import { after, before, test } from "node:test";
import { readFileSync } from "node:fs";
import path from "node:path";
import { runAll, selectPtqKernel } from "./notebook-helpers";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

const fixtures = path.join(repoRoot, "test", "fixtures");
// Saved outputs are dropped, so only a fresh run can show the texts this test waits for.
const source = JSON.parse(readFileSync(path.join(repoRoot, "examples", "quickstart.ipynb"), "utf8"));
for (const cell of source.cells) if (cell.cell_type === "code") Object.assign(cell, { outputs: [], execution_count: null });
const notebook = JSON.stringify(source, null, 1).replaceAll("../test/fixtures", fixtures);

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "quickstart", files: { "examples/quickstart.ipynb": notebook } });
});
after(async () => {
  await wb?.close();
});

test("examples/quickstart.ipynb runs every cell: quantize, benchmark, evaluate, analyze", { timeout: 600_000 }, async () => {
  await wb.openFile("examples/quickstart.ipynb");
  await selectPtqKernel(wb);
  await runAll(wb, "loadModel");
  try {
    await wb.findTextInFrames(/\d+ nodes, opset 13/, 120_000);
    await wb.screenshot("loaded");
    // Outputs render only near the viewport: keep scrolling to the bottom until the last cell's result shows.
    const deadline = Date.now() + 300_000;
    for (;;) {
      await wb.page.keyboard.press("Escape");
      await wb.page.keyboard.press("Control+End");
      try {
        await wb.findTextInFrames(/quickstart finished: worst tensor .+ at -?[\d.]+ dB/, 10_000);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
    }
  } finally {
    await wb.screenshot("last-state");
  }
  // calibrate() in a cell fed the Histograms view: its calibrated activations are listed there.
  await wb.openPtqContainer();
  const histograms = wb.page.locator(".pane", { has: wb.page.locator(".pane-header", { hasText: "Histograms" }) }).first();
  await histograms.getByText(/Relu_output_0/).first().waitFor({ timeout: 60_000 });
  await wb.screenshot("histograms-view");
});
