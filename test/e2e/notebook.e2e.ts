// What a person sees running a PTQ notebook in a real VS Code window: pick the "PTQ (TypeScript)" kernel, Run All,
// and the fixture CNN is loaded and quantized, a table and a plot appear; an awaiting cell is interrupted; Restart
// Kernel says state was cleared; a cell calling process.abort() fails with the reason and the next Run All works.
// Screenshots: .test-artifacts/e2e/notebook/.
import { after, before, test } from "node:test";
import path from "node:path";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

const fixture = (rel: string) => JSON.stringify(path.join(repoRoot, "test", "fixtures", rel));

function notebook(cells: string[]): string {
  return JSON.stringify({
    cells: cells.map((source) => ({ cell_type: "code", execution_count: null, metadata: {}, outputs: [], source })),
    metadata: {
      kernelspec: { name: "ptq", display_name: "PTQ (TypeScript)", language: "typescript" },
      language_info: { name: "typescript", file_extension: ".ts" },
    },
    nbformat: 4,
    nbformat_minor: 5,
  }, null, 1);
}

const quickstart = notebook([
  `import { loadModel, prepare, calibrate, convert, openData, display } from "ptq";\nconst model = await loadModel(${fixture("models/cnn.onnx")});\nconst prepared = await prepare(model);\nawait calibrate(prepared, openData(${fixture("data/calib/npy")}, model));\nconst int8 = await convert(prepared);\n\`quantized: \${int8.proto.graph!.node.filter((n) => n.opType === "QuantizeLinear").length} QuantizeLinear nodes\``,
  `display.table([{ model: "fp32", nodes: model.proto.graph!.node.length }, { model: "int8", nodes: int8.proto.graph!.node.length }], "node counts");\ndisplay.plotly({ data: [{ x: ["fp32", "int8"], y: [model.proto.graph!.node.length, int8.proto.graph!.node.length], type: "bar" }] });`,
  `console.log("waiting for ever");\nawait new Promise(() => {});`,
]);

const abort = notebook([
  `import fs from "node:fs";\nif (!fs.existsSync("aborted.flag")) {\n  fs.writeFileSync("aborted.flag", "");\n  process.abort();\n}`,
  "`alive after abort: ${6 * 7}`",
]);

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "notebook", files: { "quickstart.ipynb": quickstart, "abort.ipynb": abort } });
});
after(async () => {
  await wb?.close();
});

async function selectPtqKernel(): Promise<void> {
  await wb.runCommand("Notebook: Select Notebook Kernel");
  const row = wb.page.locator(".quick-input-list .monaco-list-row", { hasText: "PTQ (TypeScript)" }).first();
  await row.waitFor({ timeout: 30_000 });
  await row.click();
  await wb.page.locator(".notebook-toolbar-container, .notebookOverlay", { hasText: "PTQ (TypeScript)" }).first().waitFor({ timeout: 30_000 });
}

test("Run All loads and quantizes the CNN, shows a table and a plot; interrupt and restart", { timeout: 600_000 }, async () => {
  await wb.openFile("quickstart.ipynb");
  await selectPtqKernel();
  await wb.runCommand("Notebook: Run All");
  await wb.findTextInFrames(/quantized: \d+ QuantizeLinear nodes/, 300_000);
  await wb.findTextInFrames("node counts", 60_000);
  await wb.findTextInFrames("waiting for ever", 60_000);
  await wb.screenshot("quantized-table-plot");
  await wb.runCommand("PTQ: Interrupt Kernel");
  await wb.findTextInFrames("Interrupted", 60_000);
  await wb.screenshot("interrupted");
  await wb.runCommand("PTQ: Restart Kernel");
  await wb.waitForNotification(/PTQ kernel restarted/, 60_000);
  await wb.screenshot("restarted");
});

test("process.abort() fails its cell with the reason; the next Run All works", { timeout: 600_000 }, async () => {
  await wb.openFile("abort.ipynb");
  await selectPtqKernel();
  await wb.runCommand("Notebook: Run All");
  await wb.findTextInFrames(/SIGABRT/, 300_000);
  await wb.screenshot("aborted");
  await wb.runCommand("Notebook: Run All");
  await wb.findTextInFrames("alive after abort: 42", 300_000);
  await wb.screenshot("alive-after-abort");
});
