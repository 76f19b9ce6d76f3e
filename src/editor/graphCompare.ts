// "Compare with Quantized Model": a float model's graph and its quantized twin's side by side (the float on the
// left), paired in the graph registry so selection and scroll follow each other by node name and the kernel's
// per-node error shows on the quantized side. The twin is `<name>.int8.onnx` beside the model when it exists
// (what the Quantize wizard writes), else a file the user picks; run on a twin, the float model is its pair.
import * as vscode from "vscode";
import { floatTwinPath, quantizedTwinPath } from "./graphOverrides";
import { graphPanels } from "./graphPanels";
import { targetModel } from "./modelFile";
import { ONNX_EDITOR_VIEW_TYPE } from "./onnxEditor";

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}

/** The command: `arg` is the model (Explorer, editor title) or a [float, quantized] pair (tests, keybindings). */
export async function compareWithQuantized(arg?: unknown, quantizedArg?: unknown): Promise<void> {
  const model = targetModel(arg);
  if (!model) return void vscode.window.showWarningMessage("Compare with Quantized Model: open a float .onnx model first, or right-click one in the Explorer.");
  let float = model;
  // Only a URI: targetModel would fall back to the active editor, the float model itself.
  let quantized = quantizedArg instanceof vscode.Uri ? quantizedArg : undefined;
  if (!quantized) {
    const asFloat = floatTwinPath(model.path);
    const twin = asFloat ? model.with({ path: asFloat }) : model.with({ path: quantizedTwinPath(model.path) ?? `${model.path}.int8.onnx` });
    if (asFloat && (await exists(twin))) [float, quantized] = [twin, model];
    else if (!asFloat && (await exists(twin))) quantized = twin;
    else {
      const picked = await vscode.window.showOpenDialog({
        title: `The quantized model to compare ${model.path.split("/").pop()} with`,
        defaultUri: model.with({ path: model.path.replace(/[^/]*$/, "") }),
        filters: { "ONNX model": ["onnx"] },
        canSelectMany: false,
      });
      if (!picked?.[0]) return;
      quantized = picked[0];
    }
  }
  if (float.toString() === quantized.toString()) return void vscode.window.showWarningMessage(`Compare with Quantized Model: pick a model other than ${float.path.split("/").pop()}.`);
  graphPanels().compare(float, quantized);
  await vscode.commands.executeCommand("vscode.openWith", float, ONNX_EDITOR_VIEW_TYPE, vscode.ViewColumn.One);
  await vscode.commands.executeCommand("vscode.openWith", quantized, ONNX_EDITOR_VIEW_TYPE, vscode.ViewColumn.Two);
}
