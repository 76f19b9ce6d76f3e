// Notebooks the editor creates ("Open in notebook", "Benchmark this model", the quantization report's "Open in
// notebook"): TypeScript cells for the PTQ kernel that reproduce what the button did. Cell sources are pure.
import * as vscode from "vscode";
import { defaultConfigSource } from "../../engine/quant/options";
import { KERNELSPEC } from "../notebook/controller";

export interface TemplateCell {
  kind: "markdown" | "code";
  source: string;
}

const q = (s: string) => JSON.stringify(s);

export function modelNotebookCells(modelPath: string): TemplateCell[] {
  const int8 = modelPath.replace(/\.onnx$/i, "") + ".int8-dynamic.onnx";
  return [
    { kind: "markdown", source: `# ${modelPath.split(/[\\/]/).pop()}\nLoad the model, quantize it, compare. INT8 dynamic needs no data; for INT8 static use \`quantizeStatic(fp32, out, openData(folder, model))\`.` },
    { kind: "code", source: `import { loadModel, quantizeDynamic } from "ptq";\nconst fp32 = ${q(modelPath)};\nconst model = await loadModel(fp32);\nmodel` },
    { kind: "code", source: `// Fails rather than overwrite an existing file. The QConfig at the engine's defaults: change what you need.\nconst int8 = ${q(int8)};\nawait quantizeDynamic(fp32, int8, ${defaultConfigSource()})` },
    ...benchmarkCells(modelPath, int8),
  ];
}

/** "PTQ Studio: New Notebook": the imports a PTQ notebook starts from, and the steps as comments. */
export function starterNotebookCells(): TemplateCell[] {
  return [
    { kind: "markdown", source: "# Quantize a model\nTypeScript cells run in the PTQ kernel: `loadModel`, `prepare`, `calibrate`, `convert`, `benchmark`, `evaluate` need nothing installed." },
    {
      kind: "code",
      source: [
        `import { loadModel, prepare, calibrate, convert, benchmark, evaluate, openData } from "ptq";`,
        `// const model = await loadModel("model.onnx");`,
        `// const prepared = await prepare(model, ${defaultConfigSource()});   // QConfig at its defaults`,
        `// await calibrate(prepared, openData("calib/", model));   // a folder of .npy/.npz, test_data_set_* or images`,
        `// await (await convert(prepared)).save("model.int8.onnx");`,
        `"ptq ready"`,
      ].join("\n"),
    },
  ];
}

export function benchmarkCells(modelPath: string, quantizedPath: string | undefined): TemplateCell[] {
  const models = quantizedPath ? `{ fp32: ${q(modelPath)}, quantized: ${q(quantizedPath)} }` : `{ fp32: ${q(modelPath)} }`;
  return [
    { kind: "code", source: `import { benchmark } from "ptq";` },
    { kind: "code", source: `// @benchmark\nawait benchmark(${models}, { batchSizes: [1], seconds: 5 })` },
  ];
}

/** Opens an untitled Jupyter notebook (VS Code's built-in ipynb support) with the cells, for the PTQ kernel. */
export async function openTemplateNotebook(cells: TemplateCell[]): Promise<vscode.NotebookEditor> {
  const data = new vscode.NotebookData(
    cells.map((c) =>
      c.kind === "markdown"
        ? new vscode.NotebookCellData(vscode.NotebookCellKind.Markup, c.source, "markdown")
        : new vscode.NotebookCellData(vscode.NotebookCellKind.Code, c.source, "typescript"),
    ),
  );
  data.metadata = { metadata: { kernelspec: KERNELSPEC, language_info: { name: "typescript" } } };
  const doc = await vscode.workspace.openNotebookDocument("jupyter-notebook", data);
  return vscode.window.showNotebookDocument(doc);
}
