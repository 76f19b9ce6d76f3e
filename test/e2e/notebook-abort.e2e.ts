// A cell calling process.abort() in a real VS Code window: it fails with the reason (SIGABRT), the window and the
// extension keep working, and the next Run All starts a fresh kernel. Screenshots: .test-artifacts/e2e/notebook-abort/.
import { after, before, test } from "node:test";
import { notebookJson, runAll, selectPtqKernel } from "./notebook-helpers";
import { openWorkbench, type Workbench } from "./helpers";

const abort = notebookJson([
  `import fs from "node:fs";\nif (!fs.existsSync("aborted.flag")) {\n  fs.writeFileSync("aborted.flag", "");\n  process.abort();\n}`,
  "`alive after abort: ${6 * 7}`",
]);

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "notebook-abort", files: { "abort.ipynb": abort } });
});
after(async () => {
  await wb?.close();
});

test("process.abort() fails its cell with the reason; the next Run All works", { timeout: 600_000 }, async () => {
  await wb.openFile("abort.ipynb");
  await selectPtqKernel(wb);
  await runAll(wb, "aborted.flag");
  await wb.findTextInFrames(/SIGABRT/, 300_000);
  await wb.screenshot("aborted");
  await runAll(wb, "aborted.flag");
  await wb.findTextInFrames("alive after abort: 42", 300_000);
  await wb.screenshot("alive-after-abort");
});
