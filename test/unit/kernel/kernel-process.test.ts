// The kernel process forked for real (bundled from kernel/main.ts the way the build does it) and driven through
// client/kernelProcess.ts: results, streaming order, type and runtime error positions, the ptq module and
// its typings, interrupt of awaiting and busy cells, and survival of process.abort() / process.exit().
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Display, ModelState, Progress, Stream, type Execute } from "../../../kernel/protocol";
import { KernelDiedError, KernelProcess } from "../../../client/kernelProcess";
import { buildTestKernel, root } from "./kernel-bundle";
import { tempDir } from "../../temp";

const mainPath = buildTestKernel("kernel-test");
const ws = tempDir("ptq-kernel-");

interface Seen { t: number; kind: string; text: string }

/** Polls a condition the test waits on (a process's output, a file), failing after `ms`. */
async function until(check: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`condition not met after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function start() {
  const k = new KernelProcess({ mainPath, cwd: ws, executionProvider: "cpu" });
  const seen: Seen[] = [];
  k.connection.onNotification(Stream.type, (p) => seen.push({ t: Date.now(), kind: p.name, text: p.text }));
  k.connection.onNotification(Display.type, (p) => seen.push({ t: Date.now(), kind: "display", text: JSON.stringify(p.bundle) }));
  const progress: Progress.Params[] = [];
  k.connection.onNotification(Progress.type, (p) => {
    progress.push(p);
    seen.push({ t: Date.now(), kind: "progress", text: `${p.done}/${p.total}${p.finished ? " done" : ""}` });
  });
  let n = 0;
  const run = (code: string): Promise<Execute.Result> => k.execute({ cellId: `c${++n}`, code, executionCount: n });
  return { k, seen, progress, run };
}

describe("kernel process", { timeout: 120_000 }, () => {
  const { k, seen, progress, run } = start();
  after(() => k.shutdown());

  test("last expression value, state across cells", async () => {
    assert.equal((await run("const x: number = 20;")).status, "ok");
    seen.length = 0;
    assert.equal((await run("x * 2 + 2")).status, "ok");
    assert.deepEqual(seen.map((s) => s.text), [JSON.stringify({ "text/plain": "42" })]);
  });

  test("stdout streams while the cell runs, in order with displays", async () => {
    seen.length = 0;
    const r = await run("console.log('a');\nawait new Promise((r) => setTimeout(r, 400));\nconsole.error('b');\n7");
    const end = Date.now();
    assert.equal(r.status, "ok");
    assert.deepEqual(seen.map((s) => `${s.kind}:${s.text}`), ["stdout:a\n", "stderr:b\n", `display:${JSON.stringify({ "text/plain": "7" })}`]);
    assert.ok(end - seen[0]!.t >= 300, "the first line arrived before the cell ended");
  });

  test("type errors carry the cell's line and column", async () => {
    const r = await run("const a = 1;\nconst b: string = a;");
    assert.equal(r.status, "error");
    assert.equal(r.error?.name, "TSError");
    assert.deepEqual([r.error?.line, r.error?.column], [2, 7]);
    assert.match(r.error!.message, /not assignable to type 'string'/);
  });

  test("runtime errors carry the cell's line and column and no kernel frames", async () => {
    const r = await run("// a comment\n\nfunction fails(n: number): never {\n  throw new RangeError('bad ' + n);\n}\nfails(3);");
    assert.equal(r.status, "error");
    assert.equal(r.error?.name, "RangeError");
    assert.deepEqual([r.error?.line, r.error?.column], [4, 9]);
    assert.doesNotMatch(r.error!.stack!, /node:vm|kernel-test/);
    assert.match(r.error!.stack!, /cell\d+\.ts:4:9/);
  });

  test("a cell that throws keeps its imports and what it declared for later cells", async () => {
    const r = await run('import { readFileSync as readIt } from "node:fs";\nconst before = 5;\nreadIt("/nonexistent/ptq-cell");');
    assert.equal(r.status, "error");
    assert.match(r.error!.message, /ENOENT/);
    seen.length = 0;
    const next = await run("typeof readIt + before");
    assert.equal(next.status, "ok", next.error?.message);
    assert.deepEqual(seen.map((s) => s.text), [JSON.stringify({ "text/plain": "'function5'" })]);
  });

  test("a shorthand property names an earlier cell's variable ({ fp32 } after const fp32)", async () => {
    assert.equal((await run("const shortA = 4;\nlet shortB = 'b';")).status, "ok");
    seen.length = 0;
    const r = await run("({ shortA, shortB })");
    assert.equal(r.status, "ok", r.error?.message); // "shortA is not defined" before
    assert.deepEqual(seen.map((s) => s.text), [JSON.stringify({ "text/plain": "{ shortA: 4, shortB: 'b' }" })]);
  });

  test("local .ts files import with their types; an edit is seen by the next cell", async () => {
    const lib = path.join(ws, "lib");
    mkdirSync(lib, { recursive: true });
    writeFileSync(path.join(ws, "helper.ts"), 'import { twice } from "./lib/math";\nexport const greet = (n: string): string => "hi " + n;\nexport const version: number = twice(1) - 1;\n');
    writeFileSync(path.join(lib, "math.ts"), "export function twice(x: number): number { return 2 * x; }\n");
    seen.length = 0;
    const ok = await run('import { greet, version } from "./helper";\ngreet("a") + version');
    assert.equal(ok.status, "ok", JSON.stringify(ok.error));
    assert.deepEqual(seen.map((s) => s.text), [JSON.stringify({ "text/plain": "'hi a1'" })]);
    const bad = await run("greet(1)");
    assert.equal(bad.status, "error");
    assert.match(bad.error!.message, /'number' is not assignable to parameter of type 'string'/);
    // Edited on disk (mtime moved on, as an editor's save does): the next cell gets the new code and types.
    const file = path.join(ws, "helper.ts");
    writeFileSync(file, 'export const greet = (n: string): string => "hello " + n;\nexport const version: string = "two";\n');
    const later = new Date(Date.now() + 5000);
    utimesSync(file, later, later);
    seen.length = 0;
    const edited = await run('import { greet as g2, version as v2 } from "./helper";\ng2("b") + v2.toUpperCase()');
    assert.equal(edited.status, "ok", JSON.stringify(edited.error));
    assert.deepEqual(seen.map((s) => s.text), [JSON.stringify({ "text/plain": "'hello bTWO'" })]);
  });

  test("ptq resolves with typings: display.table renders, misuse is a type error", async () => {
    seen.length = 0;
    const ok = await run('import { display } from "ptq";\ndisplay.table([{ layer: "conv1", sqnr: 31.5 }]);\nconst p = display.progress("calib", 3); p.report(3); p.finish();');
    assert.equal(ok.status, "ok", JSON.stringify(ok.error));
    const bundle = JSON.parse(seen.find((s) => s.kind === "display")!.text);
    assert.deepEqual(bundle["application/vnd.ptq.table+json"], { columns: ["layer", "sqnr"], rows: [["conv1", 31.5]] });
    assert.match(bundle["text/html"], /<td>conv1<\/td>/);
    assert.ok(seen.some((s) => s.kind === "progress" && s.text === "3/3 done"));
    const bad = await run("const h: number = display.table([]);");
    assert.equal(bad.status, "error");
    assert.match(bad.error!.message, /DisplayHandle/);
  });

  test("loadModel from ptq loads the fixture CNN and publishes its summary for the views", async () => {
    const models: { source: string; nodes: number; convParams: number }[] = [];
    k.connection.onNotification(ModelState.type, (m) =>
      models.push({ source: m.source, nodes: m.nodes.length, convParams: m.nodes.find((n) => n.op === "Conv")?.params ?? 0 }));
    seen.length = 0;
    const cnn = path.join(root, "test/fixtures/models/cnn.onnx");
    const r = await run(`import { loadModel, type Model } from "ptq";\nconst m: Model = await loadModel(${JSON.stringify(cnn)});\nm.proto.graph!.node.length`);
    assert.equal(r.status, "ok", JSON.stringify(r.error));
    assert.equal(models.length, 1);
    assert.equal(models[0]!.source, cnn);
    assert.ok(models[0]!.convParams > 0);
    assert.deepEqual(seen.map((s) => s.text), [JSON.stringify({ "text/plain": String(models[0]!.nodes) })]);
  });

  test("quantizeStatic shows each phase as a progress output with its unit and ETA; interrupting the cell stops the work", async () => {
    const q = (s: string) => JSON.stringify(s);
    const [cnn, calib] = [path.join(root, "test/fixtures/models/cnn.onnx"), path.join(root, "test/fixtures/data/calib/npy")];
    const [out, stopped] = [path.join(ws, "cnn.int8.onnx"), path.join(ws, "cnn.stopped.onnx")];
    progress.length = 0;
    const r = await run(`import { loadModel, openData, quantizeStatic } from "ptq";\nconst fp32 = await loadModel(${q(cnn)});\nconst summary = await quantizeStatic(${q(cnn)}, ${q(out)}, openData(${q(calib)}, fp32));\nsummary.quantized.length > 0`);
    assert.equal(r.status, "ok", JSON.stringify(r.error));
    assert.ok(existsSync(out));
    const byOutput = new Map<string, Progress.Params[]>();
    for (const p of progress) byOutput.set(p.progressId, [...(byOutput.get(p.progressId) ?? []), p]);
    const labels = [...byOutput.values()].map((states) => states[0]!.label);
    assert.equal(labels[0], "calibrating");
    assert.ok(labels.includes("measuring the weight type") && labels.includes("checking the outputs against the float model"), labels.join(" | "));
    assert.equal(new Set(labels).size, labels.length, `one output per phase: ${labels.join(" | ")}`);
    for (const states of byOutput.values()) assert.equal(states.at(-1)!.finished, true, `${states[0]!.label} finished`);
    assert.ok(progress.some((p) => p.unit === "runs" && p.etaSeconds !== undefined), "a measurement phase with its unit and ETA");

    // Interrupted while calibrating: the cell settles at once and the quantization it started stops (without the
    // cell's signal it would run on and write its file).
    progress.length = 0;
    const shared = "globalThis as { job?: Promise<unknown> }";
    const waiting = run(`const started = ${shared};\nstarted.job = quantizeStatic(${q(cnn)}, ${q(stopped)}, openData(${q(calib)}, fp32));\nawait started.job;`);
    let early: Execute.Result | undefined;
    void waiting.then((r) => (early = r));
    await until(() => progress.some((p) => p.label === "calibrating") || early !== undefined);
    assert.equal(early, undefined, "the cell was still running");
    assert.equal(await k.interrupt(), "message");
    assert.equal((await waiting).status, "interrupted");
    seen.length = 0;
    const outcome = await run(`const ran = ${shared};\nawait ran.job!.then(() => "finished", (e: Error) => \`stopped: \${e.message}\`)`);
    assert.equal(outcome.status, "ok", JSON.stringify(outcome.error));
    // (A batch the interrupted job had under way may still report its progress: only the displays are this cell's.)
    assert.deepEqual(seen.filter((s) => s.kind === "display").map((s) => s.text), [JSON.stringify({ "text/plain": "'stopped: interrupted: the cell was stopped'" })]);
    assert.ok(!existsSync(stopped), "nothing written");
  });

  test("quantizeDynamic with data shows its measurements as progress outputs; without data it shows none", async () => {
    const q = (s: string) => JSON.stringify(s);
    const [cnn, calib] = [path.join(root, "test/fixtures/models/cnn.onnx"), path.join(root, "test/fixtures/data/calib/npy")];
    progress.length = 0;
    const r = await run(`import { loadModel, openData, quantizeDynamic } from "ptq";\nconst dyn = await loadModel(${q(cnn)});\nconst measured = await quantizeDynamic(${q(cnn)}, ${q(path.join(ws, "cnn.dyn.onnx"))}, {}, { data: openData(${q(calib)}, dyn) });\nmeasured.outputCheck !== undefined`);
    assert.equal(r.status, "ok", JSON.stringify(r.error));
    const last = new Map(progress.map((p) => [p.progressId, p]));
    const shown = [...last.values()].map((p) => `${p.label}: ${p.done}/${p.total} ${p.unit}${p.finished ? " done" : ""}`);
    assert.ok(shown.includes("checking the outputs against the float model: 1/1 steps done"), shown.join(" | "));
    progress.length = 0;
    const plain = await run(`await quantizeDynamic(${q(cnn)}, ${q(path.join(ws, "cnn.dyn2.onnx"))});`);
    assert.equal(plain.status, "ok", JSON.stringify(plain.error));
    assert.deepEqual(progress, []);
  });

  test("quantizeLowBit with data shows FP4's rounding as a progress output", async () => {
    const q = (s: string) => JSON.stringify(s);
    const [cnn, calib, out] = [path.join(root, "test/fixtures/models/cnn.onnx"), path.join(root, "test/fixtures/data/calib/npy"), path.join(ws, "cnn.fp4.onnx")];
    progress.length = 0;
    const r = await run(`import { loadModel, openData, quantizeLowBit } from "ptq";\nconst float = await loadModel(${q(cnn)});\nconst report = await quantizeLowBit(${q(cnn)}, ${q(out)}, { mode: "fp4" }, openData(${q(calib)}, float));\nreport.layers.length > 0`);
    assert.equal(r.status, "ok", JSON.stringify(r.error));
    const last = new Map(progress.map((p) => [p.progressId, p]));
    const shown = [...last.values()].map((p) => `${p.label}: ${p.done}/${p.total} ${p.unit}${p.finished ? " done" : ""}`);
    assert.ok(shown.includes("learned FP4 rounding (rounding auto: fitted on half the rows, judged on the others): 4/4 steps done"), shown.join(" | "));
  });

  test("searchMixedPrecision shows one progress output for the whole search, with its ETA, finished", async () => {
    const q = (s: string) => JSON.stringify(s);
    const [cnn, calib] = [path.join(root, "test/fixtures/models/cnn.onnx"), path.join(root, "test/fixtures/data/calib/npy")];
    const r = await run(`import { calibrate, loadData, loadModel, openData, prepare } from "ptq";\nconst searched = await loadModel(${q(cnn)});\nconst prepared = await prepare(searched);\nawait calibrate(prepared, openData(${q(calib)}, searched));`);
    assert.equal(r.status, "ok", JSON.stringify(r.error));
    progress.length = 0;
    const found = await run(`import { searchMixedPrecision } from "ptq";\nconst found = await searchMixedPrecision(prepared, [loadData(${q(calib)}, searched).inputs], { kind: "sqnr", minDb: 30 }, { remedy: "float" });\nfound.chosen.metric`);
    assert.equal(found.status, "ok", JSON.stringify(found.error));
    assert.deepEqual([...new Set(progress.map((p) => p.progressId))].length, 1, "one output");
    assert.ok(progress.every((p) => p.label === "mixed-precision search" && p.unit === "measurements"));
    assert.ok(progress.every((p) => p.etaSeconds !== undefined && p.total! >= p.done), "counts and an ETA on every update");
    const last = progress.at(-1)!;
    assert.ok(last.finished && last.done === last.total, JSON.stringify(last));
  });

  test("a value with a rich form renders as its bundle", async () => {
    seen.length = 0;
    await run('({ [Symbol.for("ptq.display")]: () => ({ "text/markdown": "**hi**" }) })');
    assert.deepEqual(seen.map((s) => s.text), [JSON.stringify({ "text/markdown": "**hi**" })]);
  });

  test("interrupt stops an awaiting cell by message and a busy loop by SIGINT; the kernel keeps its state", async () => {
    // Each cell signals that it is where the interrupt must find it (stdout for the awaiting one, a file written
    // synchronously for the busy loop, whose stdout cannot leave a blocked event loop): no guessed delays. The
    // awaiting cell is interrupted as its script ends, where a SIGINT would be kept by Node and stop the busy cell
    // after it (seen in CI): several rounds, and the busy cell must get as far as its file.
    assert.equal((await run("const keptBeforeInterrupt = 20;")).status, "ok");
    for (let round = 0; round < 5; round++) {
      seen.length = 0;
      const waiting = run(`console.log("awaiting ${round}");\nawait new Promise(() => {});`);
      await until(() => seen.some((s) => s.text.includes(`awaiting ${round}`)));
      assert.equal(await k.interrupt(), "message");
      assert.equal((await waiting).status, "interrupted");
      const spinning = path.join(ws, `spinning-${round}`);
      let ended: Execute.Result | undefined;
      const busy = run(`require("node:fs").writeFileSync(${JSON.stringify(spinning)}, "");\nwhile (true) {}`).then((r) => (ended = r));
      await until(() => existsSync(spinning) || ended !== undefined);
      assert.ok(existsSync(spinning), `round ${round}: the busy cell ended before it ran: ${JSON.stringify(ended)}`);
      assert.equal(await k.interrupt(), "signal");
      assert.equal((await busy).status, "interrupted");
    }
    seen.length = 0;
    assert.equal((await run("keptBeforeInterrupt")).status, "ok");
    assert.equal(seen[0]?.text, JSON.stringify({ "text/plain": "20" }));
  });
});

describe("kernel death", { timeout: 120_000 }, () => {
  test("process.abort() fails the cell with the reason; a new kernel works", async () => {
    const { k, run } = start();
    await assert.rejects(run("process.abort();"), (e: unknown) => e instanceof KernelDiedError && /SIGABRT/.test(e.message));
    assert.equal(k.running, false);
    const next = start();
    assert.equal((await next.run("1")).status, "ok");
    await next.k.shutdown();
  });

  test("process.exit() in a cell is reported, not silent", async () => {
    const { k, run } = start();
    await assert.rejects(run("process.exit(3);"), (e: unknown) => e instanceof KernelDiedError && /process\.exit\(3\)/.test(e.message));
    assert.equal((await k.exited).code, 3);
  });
});
