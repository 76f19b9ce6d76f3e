// The extension activates in a real VS Code, registers its commands, contributes its views, and loads no native
// module into the extension host (onnxruntime-node belongs to the kernel process only).
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import * as vscode from "vscode";
import { commands as commandTable } from "../../../src/commands";
import { activateExtension, manifest } from "./util";

describe("activation", () => {
  it("activates and returns its API", async () => {
    const { ext, api } = await activateExtension();
    assert.equal(ext.isActive, true);
    assert.equal(api.ctx.version, manifest().version);
  });

  it("registers every command of the commands table", async () => {
    await activateExtension();
    const all = new Set(await vscode.commands.getCommands(true));
    for (const id of Object.keys(commandTable)) assert.ok(all.has(id), `command ${id} not registered`);
  });

  it("ptq.showVersion answers with the manifest's version", async () => {
    await activateExtension();
    const message = await vscode.commands.executeCommand<string>("ptq.showVersion");
    assert.match(message, new RegExp(`^PTQ Studio ${manifest().version.replace(/\./g, "\\.")} \\(VS Code `));
  });

  it("opens the PTQ Studio container through ptq.focusViews", async () => {
    await activateExtension();
    await vscode.commands.executeCommand("ptq.focusViews");
    // Each contributed view has a generated focus command once the container is registered.
    const all = new Set(await vscode.commands.getCommands(true));
    for (const view of ["ptq.layers", "ptq.quantState", "ptq.histograms"]) {
      assert.ok(all.has(`${view}.focus`), `view ${view} has no focus command: not contributed?`);
    }
  });

  it("kernel scope: begin/end dispose what was added, and disposal is idempotent", async () => {
    const { api } = await activateExtension();
    let disposed = 0;
    const scope = api.ctx.beginKernelScope();
    scope.add({ dispose: () => disposed++ });
    const next = api.ctx.beginKernelScope(); // a kernel restart replaces the scope
    assert.equal(disposed, 1);
    assert.equal(scope.isDisposed, true);
    scope.dispose();
    assert.equal(disposed, 1);
    scope.add({ dispose: () => disposed++ }); // too late: disposed at once
    assert.equal(disposed, 2);
    assert.equal(api.ctx.kernelScope, next);
    api.ctx.endKernelScope();
    assert.equal(api.ctx.kernelScope, undefined);
  });

  it("loads no native module in the extension host", async () => {
    const { ext } = await activateExtension();
    const bundle = readFileSync(path.join(ext.extensionPath, "out", "extension.js"), "utf8");
    assert.doesNotMatch(bundle, /require\(["']onnxruntime-node/, "out/extension.js requires onnxruntime-node");
    assert.doesNotMatch(bundle, /require\([^)]*\.node["']\)/, "out/extension.js requires a .node addon");
    const ours = Object.keys(require.cache).filter((k) => k.startsWith(ext.extensionPath + path.sep));
    assert.deepEqual(ours.filter((k) => k.includes("onnxruntime") || k.endsWith(".node")), []);
    // The strongest check: no onnxruntime shared object is mapped into this process at all.
    const report = process.report?.getReport() as { sharedObjects?: string[] } | undefined;
    const shared = report?.sharedObjects ?? [];
    assert.ok(shared.length > 0, "process.report gave no shared objects to check");
    assert.deepEqual(shared.filter((s) => /onnxruntime/i.test(s)), []);
  });
});
