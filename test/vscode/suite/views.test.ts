// The PTQ views across models, inside a real VS Code: a Model Layers filter belongs to the model it was set on (the
// next model shows all its nodes), a filter that matches nothing says so with a row that clears it, and a float
// model's Quantization State is a message on what to run, not a "float" row per node.
import * as assert from "node:assert/strict";
import * as vscode from "vscode";
import { activateExtension, EXTENSION_ID, waitFor } from "./util";

interface Snapshot {
  model?: string;
  layersModel?: string;
  layersMessage?: string;
  quantStateMessage?: string;
  layers: Array<{ label: string; description: string; children: string[] }>;
  quantState: { source: string; model?: string; nodes: Array<{ node: string; state: string }> };
}

const snapshot = () => vscode.commands.executeCommand<Snapshot>("ptq.views.snapshot");

async function fixtureCopy(name: string): Promise<vscode.Uri> {
  const src = vscode.Uri.joinPath(vscode.extensions.getExtension(EXTENSION_ID)!.extensionUri, "test", "fixtures", "models", "cnn.onnx");
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri;
  assert.ok(ws, "the test window has a workspace folder");
  const dst = vscode.Uri.joinPath(ws, name);
  await vscode.workspace.fs.copy(src, dst, { overwrite: true });
  return dst;
}

/** Shows `uri` in the views and waits until Model Layers describes it. */
async function show(uri: vscode.Uri): Promise<Snapshot> {
  await vscode.commands.executeCommand("ptq.showInLayers", uri);
  return waitFor(`layers of ${uri.path}`, async () => {
    const s = await snapshot();
    const u = uri.toString();
    return s.layersModel === u && s.quantState.model === u && s.quantState.source === "file" ? s : undefined;
  });
}

const labels = (s: Snapshot) => s.layers.map((g) => `${g.label} ${g.description}`);

describe("views across models", () => {
  let a: vscode.Uri;
  let b: vscode.Uri;
  before(async () => {
    await activateExtension();
    a = await fixtureCopy("views-a.onnx");
    b = await fixtureCopy("views-b.onnx");
  });
  after(async () => {
    await vscode.commands.executeCommand("ptq.showInLayers", a);
    await vscode.commands.executeCommand("ptq.layers.clearFilter");
  });

  it("a filter set on one model does not empty the next: it stays with its model and is shown while set", async () => {
    const full = labels(await show(a));
    assert.ok(full.includes("Conv 3") && full.includes("Gemm 1"), full.join(", "));
    await vscode.commands.executeCommand("ptq.layers.filter", "Gemm");
    const filtered = await snapshot();
    assert.deepEqual(labels(filtered), ["Gemm 1"]);
    assert.equal(filtered.layersMessage, 'Filter "Gemm": 1 of 14 nodes match');

    const other = await show(b);
    assert.deepEqual(labels(other), full, "the other model shows all its nodes");
    assert.equal(other.layersMessage, undefined, "and no filter");

    const back = await show(a);
    assert.deepEqual(labels(back), ["Gemm 1"], "the filter comes back with its model");
    assert.match(back.layersMessage ?? "", /^Filter "Gemm"/);
  });

  it("a filter that matches nothing shows 'No node matches' with a way to clear it", async () => {
    await show(a);
    await vscode.commands.executeCommand("ptq.layers.filter", "no-such-node");
    const none = await snapshot();
    assert.deepEqual(none.layers.map((g) => [g.label, g.description]), [['No node matches "no-such-node"', "Clear filter"]]);
    assert.equal(none.layersMessage, 'Filter "no-such-node": 0 of 14 nodes match');
    await vscode.commands.executeCommand("ptq.layers.clearFilter");
    const cleared = await snapshot();
    assert.ok(labels(cleared).includes("Conv 3"), labels(cleared).join(", "));
    assert.equal(cleared.layersMessage, undefined);
  });

  it("Quantization State of a float model: no rows, a message saying what to run; the kernel's entries replace it", async () => {
    const s = await show(b);
    assert.deepEqual(s.quantState.nodes, [], "no 'float' row per node before any run");
    assert.match(s.quantStateMessage ?? "", /^views-b\.onnx has no quantized tensors\. Quantize this model or run analyze\(\)/);
    await vscode.commands.executeCommand("ptq.views.setQuantState", [
      { node: "conv1", op: "Conv", tensor: "x", role: "input", quantized: true, type: "uint8", granularity: "per-tensor", sqnrDb: 31.5 },
    ]);
    const fromKernel = await snapshot();
    assert.deepEqual(fromKernel.quantState.nodes.map((n) => [n.node, n.state]), [["conv1", "quantized"]]);
    assert.match(fromKernel.quantStateMessage ?? "", /^Worst SQNR: x \(conv1\) 31\.5 dB$/);
  });
});
