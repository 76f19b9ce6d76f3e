// What a person sees first: the PTQ Studio icon in the activity bar, and, once clicked, the container with its three
// views. Screenshots: .test-artifacts/e2e/activation/.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

let wb: Workbench;
before(async () => {
  // An .onnx in the workspace also exercises the workspaceContains activation event a user hits first.
  const model = readFileSync(path.join(repoRoot, "test", "fixtures", "models", "cnn.onnx"));
  wb = await openWorkbench({ name: "activation", files: { "cnn.onnx": model } });
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

// The README's screenshot (copied by hand to docs/images/ptq-studio-views.png): a model open beside the container.
test("a model opens beside the container (README screenshot)", async () => {
  await wb.openFile("cnn.onnx");
  await wb.openPtqContainer();
  await wb.page.keyboard.press("Escape"); // closes the notification center opened by the previous test
  // The picture shows the views filled: the layer tree and the editor's summary must be there.
  const layers = wb.page.locator(".pane", { has: wb.page.locator(".pane-header", { hasText: "Model Layers" }) }).first();
  await layers.locator(".monaco-list-row").first().waitFor({ timeout: 60_000 });
  await wb.showSummary(30_000);
  await wb.page.mouse.move(800, 600); // no tooltip over the picture
  await wb.page.locator(".monaco-hover").first().waitFor({ state: "hidden", timeout: 10_000 });
  await wb.screenshot("readme");
});
