// The manifest VS Code actually read: the container, its three views, narrow activation events, and every command
// of the table declared (so it shows in the palette) and listed as an activation event.
import * as assert from "node:assert/strict";
import { commands as commandTable } from "../../../src/commands";
import { manifest } from "./util";

describe("manifest", () => {
  const pkg = manifest();

  it("declares the PTQ Studio activity-bar container with its three views", () => {
    const containers = pkg.contributes.viewsContainers.activitybar as { id: string; title: string; icon: string }[];
    const ours = containers.find((c) => c.id === "ptq-studio");
    assert.ok(ours, "no ptq-studio container");
    assert.equal(ours.title, "PTQ Studio");
    const views = (pkg.contributes.views["ptq-studio"] as { id: string; name: string }[]).map((v) => [v.id, v.name]);
    for (const v of [["ptq.layers", "Model Layers"], ["ptq.quantState", "Quantization State"], ["ptq.histograms", "Histograms"]]) {
      assert.ok(views.some(([id, name]) => id === v[0] && name === v[1]), `view ${v[0]} "${v[1]}" not declared`);
    }
  });

  it("activates narrowly: on PTQ notebooks, workspaces with .onnx files, and what VS Code derives from contributes", () => {
    // VS Code >= 1.74 activates on every contributed command, view, custom editor and language by itself: the
    // manifest lists only what it cannot derive.
    const events = pkg.activationEvents as string[];
    assert.deepEqual(events, ["onNotebook:jupyter-notebook", "workspaceContains:**/*.onnx"]);
    assert.ok(/^\^1\.(7[4-9]|[89]\d|1\d\d)\./.test(pkg.engines.vscode), `engines.vscode ${pkg.engines.vscode} must be >= 1.74 for derived events`);
  });

  it("declares every command of the table (VS Code activates on it)", () => {
    const declared = new Set((pkg.contributes.commands as { command: string }[]).map((c) => c.command));
    for (const id of Object.keys(commandTable)) assert.ok(declared.has(id), `${id} missing from contributes.commands`);
  });

  it("supports untrusted workspaces in a limited way, with a reason", () => {
    assert.equal(pkg.capabilities.untrustedWorkspaces.supported, "limited");
    assert.ok(String(pkg.capabilities.untrustedWorkspaces.description).length > 20);
  });
});
