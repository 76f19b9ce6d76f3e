// What a person sees running a PTQ notebook in a real VS Code window: pick the "PTQ (TypeScript)" kernel, Run All,
// and the fixture CNN is loaded and quantized, a table and a plot appear; an awaiting cell is interrupted; Restart
// Kernel says state was cleared (process.abort(): notebook-abort.e2e.ts). Screenshots: .test-artifacts/e2e/notebook/.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import path from "node:path";
import { notebookJson, runAll, selectPtqKernel } from "./notebook-helpers";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

const fixture = (rel: string) => JSON.stringify(path.join(repoRoot, "test", "fixtures", rel));

const quickstart = notebookJson([
  `import { loadModel, prepare, calibrate, convert, openData, display } from "ptq";\nconst model = await loadModel(${fixture("models/cnn.onnx")});\nconst prepared = await prepare(model);\nawait calibrate(prepared, openData(${fixture("data/calib/npy")}, model));\nconst int8 = await convert(prepared);\n\`quantized: \${int8.proto.graph!.node.filter((n) => n.opType === "QuantizeLinear").length} QuantizeLinear nodes\``,
  `display.table([{ model: "fp32", nodes: model.proto.graph!.node.length }, { model: "int8", nodes: int8.proto.graph!.node.length }], "node counts");\ndisplay.plotly({ data: [{ x: ["fp32", "int8"], y: [model.proto.graph!.node.length, int8.proto.graph!.node.length], type: "bar" }] });`,
  `console.log("waiting for ever");\nawait new Promise(() => {});`,
]);

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "notebook", files: { "quickstart.ipynb": quickstart } });
});
after(async () => {
  await wb?.close();
});

test("Run All loads and quantizes the CNN, shows a table and a plot; interrupt and restart", { timeout: 600_000 }, async () => {
  await wb.openFile("quickstart.ipynb");
  await selectPtqKernel(wb);
  await runAll(wb, "loadModel");
  await wb.findTextInFrames(/quantized: \d+ QuantizeLinear nodes/, 300_000);
  const frame = await wb.findTextInFrames("node counts", 60_000);
  // display.table is drawn by our renderer (its own MIME type is preferred to the HTML fallback): sortable headers.
  const table = frame.locator("table.ptq-table", { has: frame.locator("caption", { hasText: "node counts" }) });
  await table.waitFor({ timeout: 30_000 });
  assert.deepEqual(await table.locator("th[data-col]").allInnerTexts(), ["model", "nodes"]);
  await wb.findTextInFrames("waiting for ever", 60_000);
  await wb.screenshot("quantized-table-plot");
  await wb.runCommand("PTQ: Interrupt Kernel");
  // The palette hands focus back to the first cell, which scrolls the notebook to the top; VS Code does not render
  // the output of a cell out of view (twice in CI the interrupted cell's output never appeared). Leave the cell
  // editor and go to the last cell, then look (in the DOM too, in case it is rendered but hidden).
  await wb.page.keyboard.press("Escape");
  await wb.page.keyboard.press("Control+End");
  try {
    await wb.findTextInFrames("Interrupted", 90_000, { offscreen: true });
  } catch (e) {
    // Once seen under heavy load (the interrupt reached the kernel, the text never showed): keep the window's state.
    await wb.screenshot("interrupt-failure");
    throw e;
  }
  await wb.screenshot("interrupted");
  await wb.runCommand("PTQ: Restart Kernel");
  await wb.waitForNotification(/PTQ kernel restarted/, 60_000);
  await wb.screenshot("restarted");
});
