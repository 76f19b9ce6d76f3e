// Completion and hover in notebook cells, from the kernel's type checker (tslab's completer and inspector), which
// knows everything the notebook's earlier cells declared. Only a running kernel answers: asking for a completion
// never starts one.
import * as vscode from "vscode";
import { Complete, Inspect } from "../../kernel/protocol";
import type { KernelManager } from "../kernel/manager";

const SELECTOR: vscode.DocumentSelector = { notebookType: "jupyter-notebook", language: "typescript" };

function notebookOf(doc: vscode.TextDocument): vscode.NotebookDocument | undefined {
  return vscode.workspace.notebookDocuments.find((nb) => nb.getCells().some((c) => c.document === doc));
}

export function registerCellProviders(kernels: KernelManager): vscode.Disposable[] {
  const kernelFor = (doc: vscode.TextDocument) => {
    const nb = notebookOf(doc);
    const k = nb ? kernels.get(nb) : undefined;
    return k?.process.running ? k.process : undefined;
  };
  const completion = vscode.languages.registerCompletionItemProvider(SELECTOR, {
    async provideCompletionItems(doc, position) {
      const k = kernelFor(doc);
      if (!k) return undefined;
      const r = await k.connection.sendRequest(Complete.type, { code: doc.getText(), offset: doc.offsetAt(position) });
      const range = new vscode.Range(doc.positionAt(r.start), doc.positionAt(r.end));
      return r.items.map((label) => Object.assign(new vscode.CompletionItem(label), { range }));
    },
  }, ".");
  const hover = vscode.languages.registerHoverProvider(SELECTOR, {
    async provideHover(doc, position) {
      const k = kernelFor(doc);
      if (!k) return undefined;
      const r = await k.connection.sendRequest(Inspect.type, { code: doc.getText(), offset: doc.offsetAt(position) });
      if (!r) return undefined;
      const md = new vscode.MarkdownString().appendCodeblock(r.markdown, "typescript");
      return new vscode.Hover(md, new vscode.Range(doc.positionAt(r.start), doc.positionAt(r.start + r.length)));
    },
  });
  return [completion, hover];
}
