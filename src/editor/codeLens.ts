// Code lenses: on notebook cells that benchmark ("▶ Run FP32 vs INT8 benchmark", "Compare accuracy") and at the top
// of an ONNX text view ("Benchmark this model"). The lenses only run cells or open notebooks; the kernel does the work.
import * as vscode from "vscode";
import { accuracyCellSource, benchmarkSite } from "./benchmarkLens";
import { modelUriOfText, ONNX_TEXT_SCHEME } from "./modelFile";
import { notebookKernelApi } from "../notebook/index";
import { requireTrust } from "./trust";

class NotebookBenchmarkLenses implements vscode.CodeLensProvider {
  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const site = benchmarkSite(doc.getText());
    if (!site) return [];
    const range = doc.lineAt(site.line).range;
    return [
      new vscode.CodeLens(range, { title: "▶ Run FP32 vs INT8 benchmark", command: "ptq.runBenchmarkCell", arguments: [doc.uri] }),
      new vscode.CodeLens(range, { title: "Compare accuracy", command: "ptq.compareAccuracyCell", arguments: [doc.uri, site.models] }),
    ];
  }
}

class TextViewLens implements vscode.CodeLensProvider {
  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const model = modelUriOfText(doc.uri);
    return [new vscode.CodeLens(new vscode.Range(0, 0, 0, 0), { title: "Benchmark this model", command: "ptq.benchmarkModel", arguments: [model] })];
  }
}

function cellOf(uri: vscode.Uri): { notebook: vscode.NotebookDocument; cell: vscode.NotebookCell } | undefined {
  for (const notebook of vscode.workspace.notebookDocuments) {
    const cell = notebook.getCells().find((c) => c.document.uri.toString() === uri.toString());
    if (cell) return { notebook, cell };
  }
  return undefined;
}

/**
 * Runs the benchmark cell and, first, every TypeScript cell above it that has not run in the current kernel: the
 * imports and paths it uses come from those (a fresh "Benchmark this model" notebook, or after a restart).
 */
async function runCell(uri: vscode.Uri): Promise<void> {
  const found = cellOf(uri);
  if (!found) return;
  const controller = notebookKernelApi()?.controller;
  const before = found.notebook
    .getCells()
    .slice(0, found.cell.index)
    .filter((c) => c.kind === vscode.NotebookCellKind.Code && c.document.languageId === "typescript" && !controller?.ranInKernel(c));
  const ranges = [...before, found.cell].map((c) => ({ start: c.index, end: c.index + 1 }));
  await vscode.commands.executeCommand("notebook.cell.execute", { ranges, document: found.notebook.uri });
}

async function compareAccuracy(uri: vscode.Uri, models: string[]): Promise<void> {
  const found = cellOf(uri);
  if (!found) return;
  const at = found.cell.index + 1;
  const edit = new vscode.WorkspaceEdit();
  edit.set(found.notebook.uri, [vscode.NotebookEdit.insertCells(at, [new vscode.NotebookCellData(vscode.NotebookCellKind.Code, accuracyCellSource(models), "typescript")])]);
  await vscode.workspace.applyEdit(edit);
  await vscode.commands.executeCommand("notebook.cell.execute", { ranges: [{ start: at, end: at + 1 }], document: found.notebook.uri });
}

export function registerCodeLenses(): vscode.Disposable {
  return vscode.Disposable.from(
    vscode.languages.registerCodeLensProvider([{ notebookType: "jupyter-notebook", language: "typescript" }, { notebookType: "*", language: "typescript", scheme: "vscode-notebook-cell" }], new NotebookBenchmarkLenses()),
    vscode.languages.registerCodeLensProvider({ scheme: ONNX_TEXT_SCHEME }, new TextViewLens()),
    vscode.commands.registerCommand("ptq.runBenchmarkCell", (uri: vscode.Uri) => {
      if (!vscode.workspace.isTrusted) return requireTrust("Running the benchmark cell runs its models");
      return runCell(uri);
    }),
    vscode.commands.registerCommand("ptq.compareAccuracyCell", (uri: vscode.Uri, models: string[]) => {
      if (!vscode.workspace.isTrusted) return requireTrust("Comparing accuracy runs the models");
      return compareAccuracy(uri, models);
    }),
  );
}
