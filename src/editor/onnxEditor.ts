// Read-only custom editor for .onnx: "Summary | Graph" in a webview (CSP nonce, asWebviewUri, localResourceRoots
// limited to out/media) with buttons that run our commands on this file. The graph's "Keep in float" writes the
// model's override file (graphOverrides.ts) atomically: a temporary file beside it, then a rename.
import * as vscode from "vscode";
import { summarizeModel } from "../../engine/onnx-text/summary";
import { currentModel } from "../views/currentModel";
import { escapeHtml, makeNonce, page } from "../webview/html";
import { editorBody, graphPageData } from "./graphHtml";
import { modelGraph, type ModelGraph } from "./graphModel";
import { addExclude, excludedNames, overridePath, parseOverrides } from "./graphOverrides";
import { loadModel } from "./modelFile";
import { summaryParts } from "./summaryHtml";

export const ONNX_EDITOR_VIEW_TYPE = "ptq.onnxEditor";

/** Commands a page button may run; anything else from the webview is ignored. */
const PAGE_COMMANDS = new Set(["ptq.quantizeModel", "ptq.benchmarkModel", "ptq.openModelInNotebook", "ptq.openAsOnnxText", "workbench.trust.manage"]);

export class OnnxEditorProvider implements vscode.CustomReadonlyEditorProvider {
  /** The graph each editor panel drew: "Keep in float" accepts only its node names. */
  private readonly graphs = new WeakMap<vscode.WebviewPanel, ModelGraph>();
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
        } else if (m.command === "graph.keepFloat" && typeof m.node === "string") {
          void this.keepInFloat(document.uri, m.node, panel);
        }
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => void this.render(document.uri, panel, media)),
      panel.onDidChangeViewState(() => panel.active && currentModel().set(document.uri)),
    ];
    panel.onDidDispose(() => disposables.forEach((d) => d.dispose()));
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
      this.graphs.set(panel, graph);
      // A broken override file does not stop the page: "Keep in float" reports it when used.
      const excluded = await readOverrides(uri).then(excludedNames, () => []);
      const data = graphPageData(graph, excluded);
      webview.html = page({ ...parts, scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, "graph.js")).toString(), body: editorBody(summary, data), data });
    } catch (e) {
      webview.html = page({ ...parts, body: `<h1>${escapeHtml(parts.title)}</h1><p class="warn">${escapeHtml(e instanceof Error ? e.message : String(e))}</p>` });
    }
  }

  /** Adds a node to the model's override file's "exclude" list, then tells the page the new list. */
  private async keepInFloat(uri: vscode.Uri, node: string, panel: vscode.WebviewPanel): Promise<void> {
    if (!hasNode(this.graphs.get(panel)?.graph.nodes ?? [], node)) return;
    const target = uri.with({ path: overridePath(uri.path) });
    const write = async () => {
      const old = await readText(target);
      const next = addExclude(old, node, target.fsPath);
      const tmp = target.with({ path: `${target.path}.${process.pid}.${Date.now()}.tmp` });
      await vscode.workspace.fs.writeFile(tmp, new TextEncoder().encode(next.text));
      await vscode.workspace.fs.rename(tmp, target, { overwrite: true });
      return excludedNames({ exclude: next.exclude, rest: {} });
    };
    const job = this.writing.then(write);
    this.writing = job.catch(() => undefined);
    try {
      const exclude = await job;
      await panel.webview.postMessage({ type: "excluded", excluded: exclude });
      void vscode.window.showInformationMessage(`"${node}" stays in float the next time ${uri.path.split("/").pop()} is quantized (${target.path.split("/").pop()}).`);
    } catch (e) {
      void vscode.window.showErrorMessage(`Keep in float: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

function hasNode(nodes: ModelGraph["graph"]["nodes"], name: string): boolean {
  return nodes.some((n) => (n.kind === "node" && n.name === name) || n.subgraphs?.some((s) => hasNode(s.graph.nodes, name)));
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
