// Shared by the notebook e2e files (not an e2e file itself): a .ipynb with the PTQ kernelspec, picking our kernel,
// and Run All from the notebook toolbar.
import type { Workbench } from "./helpers";

export function notebookJson(cells: string[]): string {
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

/** Makes sure the notebook runs on our controller (the kernelspec usually has it preselected). */
export async function selectPtqKernel(wb: Workbench): Promise<void> {
  const page = wb.page;
  await wb.screenshot("notebook-opened");
  // "Detecting Kernels" while the extension activates, then our label or "Select Kernel".
  // Visible matches only: a closed kernel picker can leave a hidden "PTQ (TypeScript)" row first in the DOM.
  const label = page.getByText(/^(PTQ \(TypeScript\)|Select Kernel)$/).filter({ visible: true }).first();
  await label.waitFor({ timeout: 120_000 });
  if ((await label.innerText()).startsWith("PTQ")) return;
  await label.click();
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: "PTQ (TypeScript)" }).first();
  await row.waitFor({ timeout: 30_000 });
  await row.click();
  await page.getByText("PTQ (TypeScript)", { exact: true }).filter({ visible: true }).first().waitFor({ timeout: 30_000 });
}

/** Clicks the notebook toolbar's Run All (the palette's notebook commands need the editor focused). */
export async function runAll(wb: Workbench, firstCellText: string): Promise<void> {
  await wb.page.locator(".monaco-editor .view-lines", { hasText: firstCellText }).first().waitFor({ timeout: 60_000 });
  await wb.page.locator(".notebook-toolbar-container").getByText("Run All").first().click();
}
