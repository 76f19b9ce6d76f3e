// Read-only custom editor for .onnx: "Summary | Graph" in a webview (CSP nonce, asWebviewUri, localResourceRoots
// limited to out/media) with buttons that run our commands on this file. The graph's "Keep in float" and "16-bit"
// write the model's override file (graphOverrides.ts) atomically: a temporary file beside it, then a rename. The
// graph's selection, scroll and analysis go through the registry of open graphs (graphPanels.ts).
import * as vscode from "vscode";
import { summarizeModel } from "../../engine/onnx-text/summary";
import { currentModel } from "../views/currentModel";
import { escapeHtml, makeNonce, page } from "../webview/html";
import { editorBody, graphPageData } from "./graphHtml";
import { modelGraph, nodesByName } from "./graphModel";
import { activationTensors, addExclude, addSixteenBit, excludedNames, overridePath, parseOverrides, sixteenBitNodes, type Overrides } from "./graphOverrides";
import { graphPanels } from "./graphPanels";
import { loadModel } from "./modelFile";
import { summaryParts } from "./summaryHtml";

export const ONNX_EDITOR_VIEW_TYPE = "ptq.onnxEditor";

/** Commands a page button may run; anything else from the webview is ignored. */
const PAGE_COMMANDS = new Set(["ptq.quantizeModel", "ptq.benchmarkModel", "ptq.openModelInNotebook", "ptq.openAsOnnxText", "workbench.trust.manage"]);

export class OnnxEditorProvider implements vscode.CustomReadonlyEditorProvider {
  /** Writes to one override file run one after another. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly extensionUri: vscode.Uri) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  async resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): Promise<void> {
    const media = vscode.Uri.joinPath(this.extensionUri, "out", "media");
    panel.webview.options = { enableScripts: true, localResourceRoots: [media] };
    const disposables: vscode.Disposable[] = [
      panel.webview.onDidReceiveMessage((m: { command?: string; node?: unknown }) => {
        if (m.command && PAGE_COMMANDS.has(m.command)) {
          void vscode.commands.executeCommand(m.command, m.command === "workbench.trust.manage" ? undefined : document.uri);
        } else if ((m.command === "graph.keepFloat" || m.command === "graph.sixteenBit") && typeof m.node === "string") {
          void this.override(m.command, document.uri, m.node, panel);
        } else {
          graphPanels().onPageMessage(panel, m);
        }
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => void this.render(document.uri, panel, media)),
      panel.onDidChangeViewState(() => panel.active && currentModel().set(document.uri)),
    ];
    panel.onDidDispose(() => {
      graphPanels().delete(panel);
      disposables.forEach((d) => d.dispose());
    });
    currentModel().set(document.uri);
    await this.render(document.uri, panel, media);
  }

  private async render(uri: vscode.Uri, panel: vscode.WebviewPanel, media: vscode.Uri): Promise<void> {
    const webview = panel.webview;
    const parts = {
      title: uri.path.split("/").pop() ?? "model.onnx",
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, "webview.js")).toString(),
    };
    try {
      const loaded = await loadModel(uri);
      const summary = summaryParts({ fileName: parts.title, fileBytes: loaded.bytes, summary: summarizeModel(loaded.model), trusted: vscode.workspace.isTrusted });
      const graph = modelGraph(loaded.model);
      const nodes = nodesByName(graph.graph);
      // A broken override file does not stop the page: "Keep in float" reports it when used.
      const overrides = await readOverrides(uri).catch(() => undefined);
      const data = graphPageData(graph, overrides ? excludedNames(overrides) : [], overrides ? sixteenBitNodes(nodes.values(), overrides) : []);
      graphPanels().add(panel, uri, nodes);
      webview.html = page({ ...parts, scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, "graph.js")).toString(), body: editorBody(summary, data), data });
    } catch (e) {
      webview.html = page({ ...parts, body: `<h1>${escapeHtml(parts.title)}</h1><p class="warn">${escapeHtml(e instanceof Error ? e.message : String(e))}</p>` });
    }
  }

  /**
   * "Keep in float" adds a node to the model's override file's "exclude" list; "16-bit" sets its activations'
   * override type to uint16. Then the page gets the new lists.
   */
  private async override(command: "graph.keepFloat" | "graph.sixteenBit", uri: vscode.Uri, node: string, panel: vscode.WebviewPanel): Promise<void> {
    const nodes = graphPanels().nodesOf(panel);
    const n = nodes?.get(node);
    if (!nodes || !n) return;
    const keep = command === "graph.keepFloat";
    const target = uri.with({ path: overridePath(uri.path) });
    const write = async (): Promise<Overrides> => {
      const old = await readText(target);
      const next = keep ? addExclude(old, node, target.fsPath) : addSixteenBit(old, activationTensors(n), target.fsPath);
      const tmp = target.with({ path: `${target.path}.${process.pid}.${Date.now()}.tmp` });
      await vscode.workspace.fs.writeFile(tmp, new TextEncoder().encode(next.text));
      await vscode.workspace.fs.rename(tmp, target, { overwrite: true });
      return next.overrides;
    };
    const job = this.writing.then(write);
    this.writing = job.catch(() => undefined);
    const model = uri.path.split("/").pop();
    const file = target.path.split("/").pop();
    try {
      const o = await job;
      await panel.webview.postMessage({ type: "excluded", excluded: excludedNames(o), sixteenBit: sixteenBitNodes(nodes.values(), o) });
      void vscode.window.showInformationMessage(keep
        ? `"${node}" stays in float the next time ${model} is quantized (${file}).`
        : `"${node}" gets 16-bit activations (uint16) the next time ${model} is quantized (${file}).`);
    } catch (e) {
      void vscode.window.showErrorMessage(`${keep ? "Keep in float" : "16-bit"}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

async function readText(uri: vscode.Uri): Promise<string | undefined> {
  try {
    return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  } catch (e) {
    if (e instanceof vscode.FileSystemError && e.code === "FileNotFound") return undefined;
    throw new Error(`Cannot read ${uri.fsPath}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The model's override file, parsed (an empty one when there is none). */
export async function readOverrides(model: vscode.Uri): Promise<ReturnType<typeof parseOverrides>> {
  const file = model.with({ path: overridePath(model.path) });
  return parseOverrides(await readText(file), file.fsPath);
}
