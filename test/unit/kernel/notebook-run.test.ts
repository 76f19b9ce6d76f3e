// `ptq notebook run`'s engine on a real forked kernel: a notebook's cells run in order in the notebook's folder,
// and it is saved with nbformat outputs (streams merged per run, displays, progress replaced in place, errors),
// execution counts, and the cells after a failure cleared; --allow-errors keeps going.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { readNotebook, runNotebook, serializeNotebook, type Notebook } from "../../../client/notebook/run";
import { buildTestKernel } from "./kernel-bundle";
import { tempDir } from "../../temp";

const kernelMain = buildTestKernel("kernel-test-notebook");

function notebookFile(cells: string[], stale = true): string {
  const dir = tempDir("ptq-nbrun-");
  writeFileSync(path.join(dir, "data.txt"), "from the notebook's folder");
  const nb: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "ptq" } },
    cells: [
      { cell_type: "markdown", source: ["# title\n"], metadata: {} },
      // Saved outputs from an earlier run: they must be replaced or cleared, never kept beside new ones.
      ...cells.map((source) => ({ cell_type: "code" as const, source, metadata: {}, execution_count: stale ? 7 : null, outputs: stale ? [{ output_type: "stream", name: "stdout", text: ["stale\n"] }] : [] })),
    ],
  };
  const file = path.join(dir, "nb.ipynb");
  writeFileSync(file, serializeNotebook(nb));
  return file;
}

type Out = Record<string, unknown> & { output_type: string };
const outputs = (nb: Notebook, i: number) => (nb.cells[i]!.outputs ?? []) as Out[];

describe("notebook run", { timeout: 120_000 }, () => {
  test("outputs of every kind, in order, with execution counts; cwd is the notebook's folder", async () => {
    const file = notebookFile([
      'import { readFileSync } from "node:fs";\nconsole.log("a");\nconsole.log("b");\nconsole.error("warn");\nconsole.log("c");',
      'readFileSync("data.txt", "utf8")',
      'import { display } from "ptq";\nconst p = display.progress("steps", 3);\nfor (let i = 1; i <= 3; i++) p.report(i);\np.finish();\ndisplay.html("<b>x</b>");\ndisplay.json({ k: [1, 2] });',
    ]);
    const r = await runNotebook(file, { kernelMain });
    assert.equal(r.executed, 3);
    assert.deepEqual(r.failures, []);
    const nb = r.notebook;
    assert.equal(nb.cells[0]!.cell_type, "markdown");
    assert.deepEqual(nb.cells.slice(1).map((c) => c.execution_count), [1, 2, 3]);
    // Consecutive writes to one stream are one output, split into lines as nbformat stores them.
    assert.deepEqual(outputs(nb, 1), [
      { output_type: "stream", name: "stdout", text: ["a\n", "b\n"] },
      { output_type: "stream", name: "stderr", text: ["warn\n"] },
      { output_type: "stream", name: "stdout", text: ["c\n"] },
    ]);
    assert.deepEqual(outputs(nb, 2), [{ output_type: "display_data", data: { "text/plain": [`"from the notebook's folder"`] }, metadata: {} }]);
    const [progress, html, json] = outputs(nb, 3);
    assert.match(((progress!.data as Record<string, string[]>)["text/plain"] ?? []).join(""), /steps .* 3\/3 done/);
    assert.deepEqual((html!.data as Record<string, unknown>)["text/html"], ["<b>x</b>"]);
    assert.deepEqual((json!.data as Record<string, unknown>)["application/json"], { k: [1, 2] });
    assert.equal(outputs(nb, 3).length, 3, "the progress bar was updated in place, not appended");
  });

  test("stops at a failing cell with an error output and clears the cells after it; --allow-errors goes on", async () => {
    const cells = ["const x: number = 1;\nx", 'throw new RangeError("bad value")', "x + 1"];
    const stop = await runNotebook(notebookFile(cells), { kernelMain });
    assert.equal(stop.executed, 2);
    assert.deepEqual(stop.failures.map((f) => [f.cell, f.name, f.message]), [[2, "RangeError", "bad value"]]);
    const [err] = outputs(stop.notebook, 2);
    assert.equal(err!.output_type, "error");
    assert.equal(err!.ename, "RangeError");
    assert.deepEqual(outputs(stop.notebook, 3), [], "the stale output after the failure is gone");
    assert.equal(stop.notebook.cells[3]!.execution_count, null);

    const go = await runNotebook(notebookFile(cells), { kernelMain, allowErrors: true });
    assert.equal(go.executed, 3);
    assert.deepEqual(outputs(go.notebook, 3), [{ output_type: "display_data", data: { "text/plain": ["2"] }, metadata: {} }]);
  });

  test("a type error names the cell's line; a crashed kernel fails its cell with the reason", async () => {
    const r = await runNotebook(notebookFile(['const s: string = 1;', "process.abort();", "1"], false), { kernelMain, allowErrors: true });
    assert.match(String(outputs(r.notebook, 1)[0]!.evalue), /1:7 - Type 'number' is not assignable to type 'string'/);
    // What the dying process wrote to stderr may come before the error.
    const crash = outputs(r.notebook, 2).find((o) => o.output_type === "error");
    assert.equal(crash!.ename, "KernelDied");
    assert.match(String(crash!.evalue), /SIGABRT/);
    // The kernel is gone: nothing after it can run, even with allowErrors.
    assert.equal(r.executed, 2);
  });

  test("a cell past --timeout stops its kernel and fails with that reason", async () => {
    // 10 s, not less: the first cell's type-check warms the compiler up, which took over 4 s on 2 loaded cores (CI).
    const r = await runNotebook(notebookFile(["1", "for (;;) {}", "2"], false), { kernelMain, cellTimeoutMs: 10_000 });
    assert.equal(r.executed, 2);
    const err = outputs(r.notebook, 2).find((o) => o.output_type === "error");
    assert.equal(err?.ename, "KernelDied");
    assert.match(String(err?.evalue), /ran longer than 10 s/);
    assert.equal(r.notebook.cells[3]!.execution_count, null);
  });

  test("a bad file is an error naming it", () => {
    const dir = tempDir("ptq-nbrun-");
    const file = path.join(dir, "broken.ipynb");
    writeFileSync(file, "{ not json");
    assert.throws(() => readNotebook(file), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not a readable .ipynb`));
    writeFileSync(file, JSON.stringify({ cells: [], nbformat: 3 }));
    assert.throws(() => readNotebook(file), /nbformat 3 is too old/);
  });
});
