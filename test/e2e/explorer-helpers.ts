// Shared by e2e files that start from the Explorer (not an e2e file itself): right-click a file, pick a menu item.
import type { Workbench } from "./helpers";

/** Shows the Explorer, opens `folder` if the file is not visible, right-clicks `file` and clicks the menu `item`. */
export async function explorerContextMenu(wb: Workbench, folder: string, file: string, item: string): Promise<void> {
  const page = wb.page;
  await page.keyboard.press("Control+Shift+E");
  const tree = page.locator(".explorer-folders-view");
  await tree.waitFor();
  const exact = (s: string) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  const row = tree.locator(".monaco-list-row", { hasText: exact(file) }).first();
  // Open the folder only if it is closed (clicking an open one would close it while a new file is still appearing).
  const folderRow = tree.locator(".monaco-list-row", { hasText: exact(folder) }).first();
  if (!(await row.isVisible().catch(() => false)) && (await folderRow.getAttribute("aria-expanded")) !== "true") await folderRow.click();
  await row.click({ button: "right" });
  const action = page.locator(".context-view .action-item", { hasText: item }).first();
  await action.waitFor();
  // Measured: a click right after the menu opens is sometimes dropped; hover first.
  await action.hover();
  await page.waitForTimeout(150);
  await action.click();
}
