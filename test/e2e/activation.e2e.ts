// What a person sees first: the PTQ Studio icon in the activity bar, and, once clicked, the container with its three
// views (welcome text until their providers exist). Screenshots: .test-artifacts/e2e/activation/.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { openWorkbench, type Workbench } from "./helpers";

let wb: Workbench;
before(async () => {
  wb = await openWorkbench({ name: "activation" });
});
after(async () => {
  await wb?.close();
});

test("the PTQ Studio container shows its three views", async () => {
  await wb.screenshot("workbench");
  await wb.openPtqContainer();
  const sidebar = wb.page.locator(".part.sidebar");
  for (const title of ["Model Layers", "Quantization State", "Histograms"]) {
    await sidebar.locator(".pane-header", { hasText: title }).first().waitFor();
  }
  const heading = await sidebar.locator(".composite.title").first().innerText();
  assert.match(heading, /PTQ Studio/i);
  await wb.screenshot("ptq-container");
});

test("a command from the palette reaches the extension", async () => {
  await wb.runCommand("PTQ Studio: Show Version");
  const message = await wb.waitForNotification(/PTQ Studio \d+\.\d+\.\d+ \(VS Code 1\.\d+/);
  assert.match(message, /web\)$/);
  await wb.screenshot("show-version");
});
