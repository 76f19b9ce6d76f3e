// The editor area inside a real VS Code: the views populate for a real model (the fixture CNN), the text view opens
// in the onnx-text language, the ONNX custom editor opens, code lenses appear on a benchmark cell, and
// "Quantize model…" writes its output beside the input (when this build's CLI has a quantize command).
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as vscode from "vscode";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { DataType } from "../../../engine/onnx/dtype";
import { makeValueInfo } from "../../../engine/onnx/proto";
import { activateExtension, EXTENSION_ID, waitFor } from "./util";

interface Snapshot {
  model?: string;
  layers: Array<{ label: string; description: string; children: string[] }>;
  quantState: { source: string; model?: string; nodes: Array<{ node: string; op: string; state: string; tensors: number }> };
  quantStateMessage?: string;
  histograms: string[];
}

async function fixtureCopy(name: string, fixture = "cnn.onnx"): Promise<vscode.Uri> {
  const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
  const src = vscode.Uri.joinPath(ext.extensionUri, "test", "fixtures", "models", fixture);
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri;
  assert.ok(ws, "the test window has a workspace folder");
  const dst = vscode.Uri.joinPath(ws, name);
  await vscode.workspace.fs.copy(src, dst, { overwrite: true });
  return dst;
}

/** The fixture calibration samples (a folder of .npy) shipped with the extension. */
const calibSamples = () => vscode.Uri.joinPath(vscode.extensions.getExtension(EXTENSION_ID)!.extensionUri, "test", "fixtures", "data", "calib", "npy").fsPath;

/** A JSON file written beside `input` (a run's .ptq.json config), parsed. */
async function besideJson(input: vscode.Uri, name: string) {
  return JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(input, "..", name))));
}

const snapshot = () => vscode.commands.executeCommand<Snapshot>("ptq.views.snapshot");

describe("editor area", () => {
  let model: vscode.Uri;
  before(async () => {
    await activateExtension();
    model = await fixtureCopy("cnn.onnx");
  });

  it("Model Layers and Quantization State show the real model", async () => {
    await vscode.commands.executeCommand("ptq.showInLayers", model);
    // The two views load the model apart (Quantization State reads its own state), so wait for both.
    const s = await waitFor("layers and quantization state", async () => {
      const now = await snapshot();
      return now.layers.length && now.quantStateMessage ? now : undefined;
    });
    assert.equal(s.model, model.toString());
    const labels = s.layers.map((g) => `${g.label} ${g.description}`);
    for (const want of ["Inputs 1", "Outputs 1", "Conv 3", "Relu 3", "MaxPool 3", "Gemm 1"]) assert.ok(labels.includes(want), `${want} in ${labels.join(", ")}`);
    assert.match(s.layers[0]!.children[0]!, /^input · float\[batch,1,28,28\]$/);
    // A float model has no quantization state yet: a message on what to run, not a "float" row per node.
    assert.deepEqual(s.quantState.nodes, []);
    assert.match(s.quantStateMessage ?? "", /Quantize this model or run analyze\(\)/);
    await vscode.commands.executeCommand("ptq.layers.groupBy", "order");
    const ordered = await snapshot();
    assert.deepEqual(ordered.layers.map((g) => g.label), ["Inputs", "Outputs", "Nodes"]);
    await vscode.commands.executeCommand("ptq.layers.groupBy", "op");
  });

  it("Histograms take entries from the kernel and open a panel", async () => {
    await vscode.commands.executeCommand("ptq.views.setHistograms", [
      { kind: "ptq.histogram", tensor: "relu_out", edges: [0, 1, 2, 3], counts: [5, 3, 1], floatRange: [0, 3], clipRange: [0, 2] },
    ]);
    assert.deepEqual((await snapshot()).histograms, ["relu_out"]);
    const panel = await vscode.commands.executeCommand<vscode.WebviewPanel>("ptq.histograms.open", { kind: "ptq.histogram", tensor: "relu_out", edges: [0, 1], counts: [1], floatRange: [0, 1] });
    assert.equal(panel.title, "Histogram: relu_out");
    panel.dispose();
  });

  it("Open as ONNX text shows the model in the onnx-text language", async () => {
    await vscode.commands.executeCommand("ptq.openAsOnnxText", model);
    const editor = await waitFor("text editor", () => vscode.window.activeTextEditor?.document.languageId === "onnx-text" && vscode.window.activeTextEditor);
    const text = editor.document.getText();
    assert.match(text, /^<\n   ir_version: \d+,\n   opset_import: \["" : 13\]/);
    assert.match(text, /= Conv <.*kernel_shape: ints = \[3, 3\]/);
    assert.match(text, /bytes elided/);
    await vscode.commands.executeCommand("workbench.action.closeActiveEditor");
  });

  it("clicking a layer reveals its node in the ONNX text view", async () => {
    await vscode.commands.executeCommand("ptq.showInLayers", model);
    await vscode.commands.executeCommand("ptq.layers.reveal", { kind: "node", label: "/features/features.4/Conv", description: "Conv", details: [], children: [], op: "Conv", output: "/features/features.4/Conv_output_0" });
    const editor = await waitFor("text editor", () => vscode.window.activeTextEditor?.document.languageId === "onnx-text" && vscode.window.activeTextEditor);
    const line = editor.document.lineAt(editor.selection.start.line).text;
    assert.match(line, /"\/features\/features\.4\/Conv_output_0" = Conv </);
    await vscode.commands.executeCommand("workbench.action.closeActiveEditor");
  });

  it("the .onnx custom editor opens the model", async () => {
    await vscode.commands.executeCommand("vscode.openWith", model, "ptq.onnxEditor");
    const tab = await waitFor("custom editor tab", () => {
      const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      return input instanceof vscode.TabInputCustom && input.viewType === "ptq.onnxEditor" && input;
    });
    assert.equal(tab.uri.toString(), model.toString());
    await vscode.commands.executeCommand("workbench.action.closeActiveEditor");
  });

  it("code lenses appear on a notebook cell that benchmarks", async () => {
    const data = new vscode.NotebookData([new vscode.NotebookCellData(vscode.NotebookCellKind.Code, `// @benchmark\nawait benchmark({ fp32: "cnn.onnx", int8: "cnn.int8.onnx" })`, "typescript")]);
    const nb = await vscode.workspace.openNotebookDocument("jupyter-notebook", data);
    // The cell's text model exists in the workbench only once the notebook is shown.
    await vscode.window.showNotebookDocument(nb);
    const cell = nb.cellAt(0).document;
    const lenses = await waitFor("lenses", async () => {
      const l = await vscode.commands.executeCommand<vscode.CodeLens[]>("vscode.executeCodeLensProvider", cell.uri);
      return l.some((x) => x.command?.command === "ptq.runBenchmarkCell") ? l : undefined;
    });
    const titles = lenses.map((l) => l.command?.title);
    assert.ok(titles.includes("▶ Run FP32 vs INT8 benchmark") && titles.includes("Compare accuracy"), titles.join(", "));
    assert.deepEqual(lenses.find((l) => l.command?.command === "ptq.compareAccuracyCell")!.command!.arguments![1], ["cnn.onnx", "cnn.int8.onnx"]);
  });

  it("Quantize model… writes <name>.int8.onnx beside the input and opens the report", async function () {
    const cli = vscode.Uri.joinPath(vscode.extensions.getExtension(EXTENSION_ID)!.extensionUri, "out", "cli.js").fsPath;
    const help = execFileSync(process.execPath, [cli, "--help"], { encoding: "utf8", env: { ...process.env, ELECTRON_RUN_AS_NODE: "1" } });
    assert.match(help, /\bquantize\b/, "out/cli.js has a quantize command");
    this.timeout(180_000);
    const input = await fixtureCopy("q.onnx");
    const out = await vscode.commands.executeCommand<{ output?: string; error?: string; panel?: vscode.WebviewPanel }>("ptq.quantizeModel", input, { scheme: "int8-static", randomData: true });
    assert.equal(out.error, undefined);
    assert.equal(out.output, vscode.Uri.joinPath(input, "..", "q.int8.onnx").fsPath);
    const stat = await vscode.workspace.fs.stat(vscode.Uri.file(out.output!));
    assert.ok(stat.size > 1000 && stat.size < 120_917, `int8 file size ${stat.size}`);
    assert.match(out.panel!.title, /Quantization report: q\.int8\.onnx/);
    // What the quantizer said (ptq quantize's summary) is on the page: at least the weight type for the target CPU.
    assert.match(out.panel!.webview.html, /<ul id="quantizer-notes" class="muted"><li>weights u?int8( \(7 bits\))? for target CPU &quot;any&quot;/);
    // …and what the written file does to each output against the float model, on the calibration rows.
    assert.match(out.panel!.webview.html, /<li>outputs against the float model on \d+ calibration row\(s\), SQNR: &quot;[^&]+&quot; (-?[\d.]+ dB|identical)/);
    out.panel!.dispose();
    // The views now describe the quantized model: its Conv nodes are quantized.
    const s = await waitFor("quant state of the output", async () => {
      const snap = await snapshot();
      return snap.quantState.model?.endsWith("q.int8.onnx") && snap.quantState.nodes.length ? snap : undefined;
    });
    assert.ok(s.quantState.nodes.some((n) => n.op === "Conv" && n.state === "quantized"), JSON.stringify(s.quantState.nodes).slice(0, 400));
    // A second run never overwrites unasked.
    const again = await vscode.commands.executeCommand<{ error?: string }>("ptq.quantizeModel", input, { scheme: "int8-static", randomData: true });
    assert.match(again.error ?? "", /exists/);
  });

  it("Quantize model… FP4 weights with a folder of samples measures the outputs and protects them; the report says so", async function () {
    this.timeout(180_000);
    const input = await fixtureCopy("f.onnx");
    const samples = calibSamples();
    const out = await vscode.commands.executeCommand<{ output?: string; error?: string; panel?: vscode.WebviewPanel }>("ptq.quantizeModel", input, { scheme: "fp4-weights", calibrationDir: samples });
    assert.equal(out.error, undefined);
    assert.equal(out.output, vscode.Uri.joinPath(input, "..", "f.fp4.onnx").fsPath);
    const html = out.panel!.webview.html;
    assert.match(html, /outputs vs float on [0-9]+ calibration batch\(es\): worst output SQNR -?[0-9.]+ dB, target 20 dB/);
    assert.match(html, /held out from calibration/, "the report measures on the part of the folder the run did not calibrate on");
    out.panel!.dispose();
  });

  it("Quantize model… FP4 weights with samples: weight rounding auto by default, the report says what it wrote; Nearest is written to the config", async function () {
    this.timeout(180_000);
    const input = await fixtureCopy("r.onnx");
    const samples = calibSamples();
    const output = vscode.Uri.joinPath(input, "..", "r.nearest.onnx").fsPath;
    const run = (rounding?: "nearest") =>
      vscode.commands.executeCommand<{ output?: string; error?: string; panel?: vscode.WebviewPanel }>("ptq.quantizeModel", input, { scheme: "fp4-weights", calibrationDir: samples, ...(rounding && { rounding, output }) });
    const config = (name: string) => besideJson(input, name);
    const out = await run();
    assert.equal(out.error, undefined);
    const auto = await config("r.fp4.ptq.json");
    assert.deepEqual([auto.mode, auto.rounding], ["fp4", undefined], "the engine's default, not written");
    assert.match(out.panel!.webview.html, /rounding auto (chose learned|kept nearest|wrote nearest) FP4 (rounding|codes)/);
    assert.match(out.panel!.webview.html, /Rounding auto is the low-bit modes.{1,6} default with calibration data/);
    out.panel!.dispose();
    const near = await run("nearest");
    assert.equal(near.error, undefined);
    assert.equal((await config("r.nearest.ptq.json")).rounding, "nearest");
    assert.doesNotMatch(near.panel!.webview.html, /rounding auto/);
    near.panel!.dispose();
  });

  it("Quantize model… int4 weights with samples: rounding auto by default (not written to the config), the report says what it wrote", async function () {
    this.timeout(180_000);
    const input = await fixtureCopy("g.onnx");
    const samples = calibSamples();
    const out = await vscode.commands.executeCommand<{ output?: string; error?: string; panel?: vscode.WebviewPanel }>("ptq.quantizeModel", input, { scheme: "int4-weights", calibrationDir: samples });
    assert.equal(out.error, undefined);
    const config = await besideJson(input, "g.int4.ptq.json");
    assert.deepEqual([config.mode, config.rounding], ["int4", undefined], "the engine's default, not written");
    assert.match(out.panel!.webview.html, /rounding auto (chose GPTQ|kept nearest) int4 rounding: GPTQ codes fitted on every other of/);
    assert.match(out.panel!.webview.html, /Rounding auto is the low-bit modes.{1,6} default with calibration data/);
    out.panel!.dispose();
  });

  it("Quantize model… INT8 static judged on the outputs the application reads: the config names them, the report tags them", async function () {
    this.timeout(180_000);
    // The fixture CNN exporting one of its Relu outputs too (a feature map beside the logits).
    const m = fromBinary(ModelProtoSchema, await vscode.workspace.fs.readFile(await fixtureCopy("two.src.onnx")));
    const feature = m.graph!.node.find((n) => n.opType === "Relu")!.output[0]!;
    m.graph!.output.push(makeValueInfo(feature, DataType.FLOAT));
    const input = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0]!.uri, "two.onnx");
    await vscode.workspace.fs.writeFile(input, toBinary(ModelProtoSchema, m));
    const out = await vscode.commands.executeCommand<{ output?: string; error?: string; panel?: vscode.WebviewPanel }>("ptq.quantizeModel", input, { scheme: "int8-static", randomData: true, judgeOutputs: ["logits"] });
    assert.equal(out.error, undefined);
    const config = await besideJson(input, "two.int8.ptq.json");
    assert.deepEqual(config.calibration.outputs, ["logits"]);
    // The output check lists both outputs, the judged one tagged so.
    const html = out.panel!.webview.html;
    assert.match(html, /calibration row\(s\), SQNR: [^<]*&quot;logits&quot; (-?[\d.]+ dB|identical) \((worst, )?judged\)/);
    assert.ok(html.includes(`&quot;${feature.replace(/&/g, "&amp;").replace(/"/g, "&quot;")}&quot;`), `the feature map ${feature} is listed too`);
    out.panel!.dispose();
  });

  it("Quantize model… INT8 dynamic with a folder of samples measures protection on part of it; the report measures on the rest", async function () {
    this.timeout(180_000);
    const input = await fixtureCopy("d.onnx");
    const samples = calibSamples();
    const out = await vscode.commands.executeCommand<{ output?: string; error?: string; panel?: vscode.WebviewPanel }>("ptq.quantizeModel", input, { scheme: "int8-dynamic", calibrationDir: samples });
    assert.equal(out.error, undefined);
    assert.equal(out.output, vscode.Uri.joinPath(input, "..", "d.int8-dynamic.onnx").fsPath);
    // The run's config names the samples: the CLI measured protection on them.
    const config = await besideJson(input, "d.int8-dynamic.ptq.json");
    assert.deepEqual([config.mode, config.calib], ["dynamic", samples]);
    assert.match(out.panel!.webview.html, /held out from calibration/, "the report measures on the part of the folder the run did not use");
    out.panel!.dispose();
  });

  it("Quantize model… INT8 static on a folder of images normalized as the model's training did: the run and its report read them so, and say how", async function () {
    this.timeout(180_000);
    const input = await fixtureCopy("g.onnx");
    const images = vscode.Uri.joinPath(vscode.extensions.getExtension(EXTENSION_ID)!.extensionUri, "test", "unit", "data", "files", "images", "gray").fsPath;
    const out = await vscode.commands.executeCommand<{ output?: string; error?: string; panel?: vscode.WebviewPanel }>("ptq.quantizeModel", input, { scheme: "int8-static", calibrationDir: images, images: { mean: [0.5], std: [0.5] } });
    assert.equal(out.error, undefined);
    assert.equal(out.output, vscode.Uri.joinPath(input, "..", "g.int8.onnx").fsPath);
    const config = await besideJson(input, "g.int8.ptq.json");
    assert.deepEqual([config.calib, config.images], [images, { mean: [0.5], std: [0.5] }]);
    const html = out.panel!.webview.html;
    assert.match(html, /calibration images in [^:]+: input &quot;input&quot; = \(pixel × 1\/255 − 0\.5\) \/ 0\.5, gray, NCHW 28×28 \(bilinear resize\)/);
    assert.match(html, /held out from calibration/, "the report measures on the images the run did not calibrate on, read the same way");
    out.panel!.dispose();
  });

  it("Quantize model… INT4 weights on a model whose Gemms sit inside If branches quantizes them with its Convs; the report says where", async function () {
    this.timeout(180_000);
    const input = await fixtureCopy("branches.onnx", "if_model.onnx");
    const samples = calibSamples();
    const out = await vscode.commands.executeCommand<{ output?: string; error?: string; panel?: vscode.WebviewPanel }>("ptq.quantizeModel", input, { scheme: "int4-weights", calibrationDir: samples });
    assert.equal(out.error, undefined);
    assert.equal(out.output, vscode.Uri.joinPath(input, "..", "branches.int4.onnx").fsPath);
    const html = out.panel!.webview.html;
    assert.match(html, /3 of the 4 weights quantized sit inside If\/Loop\/Scan bodies/, "the Gemms in the branches, beside one Conv (the smaller, among the model's smallest, stays float)");
    assert.match(html, /outputs vs float on [0-9]+ calibration batch\(es\): worst output SQNR -?[0-9.]+ dB, target 20 dB/);
    out.panel!.dispose();
  });
});
