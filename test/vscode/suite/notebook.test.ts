// The notebook kernel inside a real VS Code: a .ipynb runs on the PTQ controller in its own kernel process — a
// cell loads the fixture CNN and quantizes it, tables and plots come out with their MIME types, errors become
// error outputs with the cell's line, an error cancels what was queued, interrupt stops an awaiting cell and
// restarts a busy kernel, restart clears state, and process.abort() fails only its cell.
import * as assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as vscode from "vscode";
import { activateExtension, EXTENSION_ID, waitFor } from "./util";

const ERROR_MIME = "application/vnd.code.notebook.error";

function cellData(code: string): vscode.NotebookCellData {
  return new vscode.NotebookCellData(vscode.NotebookCellKind.Code, code, "typescript");
}

function fixture(rel: string): string {
  return vscode.Uri.joinPath(vscode.extensions.getExtension(EXTENSION_ID)!.extensionUri, "test", "fixtures", rel).fsPath;
}

function mimes(cell: vscode.NotebookCell): string[] {
  return cell.outputs.flatMap((o) => o.items.map((i) => i.mime));
}

function text(cell: vscode.NotebookCell, mime?: string): string {
  return cell.outputs.flatMap((o) => o.items).filter((i) => !mime || i.mime === mime).map((i) => Buffer.from(i.data).toString("utf8")).join("\n");
}

describe("notebook kernel", function () {
  // Each kernel start type-checks the Node typings once (~1.5 s idle, much more on a loaded machine).
  this.timeout(300_000);
  let nb: vscode.NotebookDocument;

  /** Appends cells and starts running them (as one request, like Run All); `ended` resolves when each has ended. */
  async function start(...codes: string[]): Promise<{ cells: vscode.NotebookCell[]; ended: Promise<vscode.NotebookCell[]> }> {
    const first = nb.cellCount;
    const edit = new vscode.WorkspaceEdit();
    edit.set(nb.uri, [vscode.NotebookEdit.insertCells(first, codes.map(cellData))]);
    assert.ok(await vscode.workspace.applyEdit(edit));
    const cells = nb.getCells(new vscode.NotebookRange(first, first + codes.length));
    const done = vscode.commands.executeCommand("notebook.cell.execute", { ranges: [{ start: first, end: first + codes.length }], document: nb.uri });
    const ended = Promise.resolve(done).then(() =>
      waitFor("cells to end", () => cells.every((c) => c.executionSummary?.success !== undefined || c.executionSummary?.timing?.endTime) && cells, 240_000));
    return { cells, ended };
  }
  const run = async (...codes: string[]) => (await start(...codes)).ended;
  /** Starts a cell and waits until it has printed `marker` (so it is really running in the kernel). */
  // Returns the promise inside an object: an async function returning a promise would wait for it.
  async function startUntil(code: string, marker: string): Promise<{ ended: Promise<vscode.NotebookCell[]> }> {
    const { cells, ended } = await start(code);
    await waitFor(`"${marker}" from the running cell`, () => text(cells[0]!).includes(marker), 120_000);
    return { ended };
  }

  before(async () => {
    await activateExtension();
    nb = await vscode.workspace.openNotebookDocument("jupyter-notebook", new vscode.NotebookData([]));
    await vscode.window.showNotebookDocument(nb);
    await vscode.commands.executeCommand("notebook.selectKernel", { id: "ptq-kernel", extension: EXTENSION_ID });
  });
  after(async () => {
    await vscode.commands.executeCommand("ptq.kernel.shutdown", nb.uri);
  });

  it("loads the fixture CNN and quantizes it in cells", async () => {
    const [load, quant] = await run(
      `import { loadModel, prepare, calibrate, convert, openData } from "ptq";\nconst model = await loadModel(${JSON.stringify(fixture("models/cnn.onnx"))});\nmodel.proto.graph!.node.length`,
      `const prepared = await prepare(model);\nawait calibrate(prepared, openData(${JSON.stringify(fixture("data/calib/npy"))}, model));\nconst int8 = await convert(prepared);\nint8.proto.graph!.node.filter((n) => n.opType === "QuantizeLinear").length > 0`,
    );
    assert.equal(load!.executionSummary?.success, true, text(load!));
    assert.match(text(load!, "text/plain"), /^\d+$/);
    assert.equal(quant!.executionSummary?.success, true, text(quant!));
    // calibrate() shows its batches and measurements as progress outputs first, then the cell's value.
    assert.match(text(quant!, "text/plain"), /^calibrating: \d+ batches \(done\)\n(.+ done\n)*true$/);
  });

  it("quantizeStatic shows each phase as a progress output updated in place, finished when it ends", async () => {
    const out = path.join(os.tmpdir(), `ptq-suite-progress-${process.pid}.onnx`);
    const [cell] = await run(
      `import { loadModel as load, openData as open, quantizeStatic } from "ptq";\nconst cnn = await load(${JSON.stringify(fixture("models/cnn.onnx"))});\nconst written = await quantizeStatic(cnn.path!, ${JSON.stringify(out)}, open(${JSON.stringify(fixture("data/calib/npy"))}, cnn), {}, { overwrite: true });\nwritten.quantized.length > 0`,
    );
    assert.equal(cell!.executionSummary?.success, true, text(cell!));
    const shown = text(cell!, "text/plain");
    assert.match(shown, /^calibrating: \d+ batches \(done\)$/m);
    // The weight type's runs stop once its shares are settled: the finished phase counts what it ran.
    assert.match(shown, /^measuring the weight type \[█{30}\] (\d+)\/\1 runs done$/m);
    assert.match(shown, /^checking the outputs against the float model \[█{30}\] 1\/1 steps done$/m);
    assert.equal(shown.match(/^measuring the weight type /gm)?.length, 1, "one output per phase, updated in place");
    assert.match(shown, /^true$/m);
  });

  it("shows a table and a plot with standard MIME types; execution order counts up", async () => {
    const [cell] = await run('import { display } from "ptq";\ndisplay.table([{ layer: "conv1", sqnr: 31.2 }]);\ndisplay.plotly({ data: [{ y: [1, 3, 2], type: "scatter" }] });\nconsole.log("done");');
    assert.equal(cell!.executionSummary?.success, true, text(cell!));
    for (const m of ["text/html", "application/vnd.plotly.v1+json", "application/vnd.code.notebook.stdout"]) assert.ok(mimes(cell!).includes(m), `${m} in ${mimes(cell!).join(", ")}`);
    assert.match(text(cell!, "text/html"), /<td>conv1<\/td>/);
    assert.ok((cell!.executionSummary?.executionOrder ?? 0) >= 3);
  });

  it("a type error is an error output with the cell's line; it cancels the queued cells", async () => {
    const [bad, queued] = await run("const ok = 1;\nconst s: string = ok;", "'never runs'");
    assert.equal(bad!.executionSummary?.success, false);
    assert.ok(mimes(bad!).includes(ERROR_MIME));
    assert.match(text(bad!, ERROR_MIME), /cell\d+:2:7/);
    assert.notEqual(queued!.executionSummary?.success, true);
    assert.equal(queued!.outputs.length, 0);
  });

  it("interrupt stops an awaiting cell; a busy kernel is restarted within 5 s", async () => {
    const { ended: waiting } = await startUntil('console.log("waiting");\nawait new Promise(() => {});', "waiting");
    await vscode.commands.executeCommand("ptq.kernel.interrupt", nb.uri);
    const [w] = await waiting;
    assert.equal(w!.executionSummary?.success, false);
    assert.match(text(w!, ERROR_MIME), /Interrupted/);

    await run("const kept = 41;");
    // Busy in a timer callback: neither the interrupt message nor SIGINT can get in. The callback writes a marker
    // file before it spins, so the test knows the kernel is busy without guessing a delay.
    const spinning = path.join(os.tmpdir(), `ptq-busy-${process.pid}-${Date.now()}`);
    const { ended: busy } = await startUntil(
      `import { writeFileSync } from "node:fs";\nconsole.log("busy");\nawait new Promise((r) => setTimeout(() => { writeFileSync(${JSON.stringify(spinning)}, ""); for (;;) {} }, 0));`,
      "busy",
    );
    await waitFor("the cell's busy loop to start", () => existsSync(spinning), 60_000);
    const t0 = Date.now();
    await vscode.commands.executeCommand("ptq.kernel.interrupt", nb.uri);
    const [b] = await busy;
    assert.ok(Date.now() - t0 <= 5000, `busy kernel stopped in ${Date.now() - t0} ms`);
    assert.match(text(b!, ERROR_MIME), /restarted/);
    const [after] = await run("typeof kept");
    assert.equal(after!.executionSummary?.success, false, "state was lost with the restarted kernel");
  });

  it("restart clears state", async () => {
    await run("const before = 1;");
    await vscode.commands.executeCommand("ptq.kernel.restart", nb.uri);
    const [c] = await run("before");
    assert.equal(c!.executionSummary?.success, false);
    assert.match(text(c!, ERROR_MIME), /Cannot find name 'before'/);
  });

  it("process.abort() fails its cell with the reason; the next cell runs in a fresh kernel", async () => {
    const [abort] = await run("process.abort();");
    assert.equal(abort!.executionSummary?.success, false);
    assert.match(text(abort!, ERROR_MIME), /SIGABRT/);
    const [next] = await run("6 * 7");
    assert.equal(next!.executionSummary?.success, true, text(next!));
    assert.equal(text(next!, "text/plain"), "42");
  });

  it("a cell imports a .ts file from the notebook's folder, type-checked", async () => {
    const dir = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    writeFileSync(path.join(dir, "ptq_helper.ts"), "export const double = (n: number): number => 2 * n;\n");
    const [ok, bad] = await run('import { double } from "./ptq_helper";\ndouble(21)', 'double("x")');
    assert.equal(ok!.executionSummary?.success, true, text(ok!));
    assert.equal(text(ok!, "text/plain"), "42");
    assert.equal(bad!.executionSummary?.success, false);
    assert.match(text(bad!, ERROR_MIME), /not assignable to parameter of type 'number'/);
  });

  it("starts the kernel as a notebook saved with the PTQ kernelspec opens, and stops it when the notebook closes", async () => {
    const { api } = await activateExtension();
    const file = path.join(os.tmpdir(), `ptq-prestart-${process.pid}-${Date.now()}.ipynb`);
    const kernelspec = { name: "ptq", display_name: "PTQ (TypeScript)", language: "typescript" };
    writeFileSync(file, JSON.stringify({ cells: [], metadata: { kernelspec }, nbformat: 4, nbformat_minor: 5 }));
    // Opened as a user would (not through openNotebookDocument, whose reference keeps the document open).
    await vscode.commands.executeCommand("vscode.open", vscode.Uri.file(file));
    const doc = await waitFor("the notebook to open", () => vscode.workspace.notebookDocuments.find((d) => d.uri.fsPath === file), 30_000);
    // No cell has run: the kernel is there because the notebook opened.
    const k = await waitFor("a pre-started kernel", () => api.notebook.kernels.get(doc), 30_000);
    assert.ok(k.process.running, "the pre-started kernel process is alive");
    await vscode.commands.executeCommand("workbench.action.closeActiveEditor");
    await waitFor("the kernel to stop when its notebook closed", () => !k.process.running && !api.notebook.kernels.get(doc), 60_000);
  });
});
