// Reads an .onnx file in the extension host with pure JS (onnx-buf): never onnxruntime-node here. Errors name the
// file and say what to do.
import * as vscode from "vscode";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, type ModelProto } from "onnx-buf";

export interface LoadedModel {
  uri: vscode.Uri;
  bytes: number;
  model: ModelProto;
}

export async function loadModel(uri: vscode.Uri): Promise<LoadedModel> {
  let data: Uint8Array;
  try {
    data = await vscode.workspace.fs.readFile(uri);
  } catch (e) {
    throw new Error(`Cannot read ${uri.fsPath}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return { uri, bytes: data.byteLength, model: fromBinary(ModelProtoSchema, data) };
  } catch (e) {
    throw new Error(`${uri.fsPath} is not a valid ONNX model (protobuf decoding failed: ${e instanceof Error ? e.message : String(e)}). Check that the file is complete and really .onnx.`);
  }
}

/** The .onnx a command should act on: its argument, else the active ONNX editor's or text view's, else the one selected. */
export function targetModel(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (tab instanceof vscode.TabInputCustom && tab.uri.path.endsWith(".onnx")) return tab.uri;
  const doc = vscode.window.activeTextEditor?.document.uri;
  if (doc?.scheme === ONNX_TEXT_SCHEME) return modelUriOfText(doc);
  return undefined;
}

export const ONNX_TEXT_SCHEME = "ptq-onnx-text";

/** ptq-onnx-text:/dir/model.onnx.onnxtxt?<model uri>: the path gives the tab a readable title, the query the source. */
export function textUriOfModel(model: vscode.Uri): vscode.Uri {
  return vscode.Uri.from({ scheme: ONNX_TEXT_SCHEME, path: `${model.path}.onnxtxt`, query: model.toString() });
}

export function modelUriOfText(text: vscode.Uri): vscode.Uri {
  return vscode.Uri.parse(text.query);
}
