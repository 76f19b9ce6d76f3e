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

  it("activates narrowly (never on '*' or on startup)", () => {
    const events = pkg.activationEvents as string[];
    assert.ok(!events.includes("*") && !events.includes("onStartupFinished"), `too broad: ${events.join(", ")}`);
    for (const e of ["onView:ptq.layers", "onNotebook:jupyter-notebook", "workspaceContains:**/*.onnx"]) {
      assert.ok(events.includes(e), `missing activation event ${e}`);
    }
  });

  it("declares every command of the table and activates on it", () => {
    const declared = new Set((pkg.contributes.commands as { command: string }[]).map((c) => c.command));
    for (const id of Object.keys(commandTable)) {
      assert.ok(declared.has(id), `${id} missing from contributes.commands`);
      assert.ok((pkg.activationEvents as string[]).includes(`onCommand:${id}`), `${id} missing from activationEvents`);
    }
  });

  it("supports untrusted workspaces in a limited way, with a reason", () => {
    assert.equal(pkg.capabilities.untrustedWorkspaces.supported, "limited");
    assert.ok(String(pkg.capabilities.untrustedWorkspaces.description).length > 20);
  });
});
