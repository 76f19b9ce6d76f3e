// The `ptq` command line against hostile or unlucky calls: interrupted runs leave no temp folders behind, outputs are
// checked before the work starts (a folder, a missing folder, the input itself, an existing file), and system errors
// (a full disk) name the file and say what to do. Each case runs the CLI from source in a child process, with a
// private TMPDIR, so only that child's temp folders are looked at.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { errorMessage } from "../../../cli/files";
import { encodeNpy } from "../../../engine/data/npy";
import { floatTensor, graph, model, node, valueInfo } from "../editor/build-model";

const root = path.join(__dirname, "..", "..", "..");
const main = path.join(root, "cli", "main.ts");
const cnn = path.join(root, "test", "fixtures", "models", "cnn.onnx");
const calib = path.join(root, "test", "fixtures", "data", "calib", "npy");

/** A fresh folder with a private temp dir inside; removed after the test. */
function sandbox(t: { after(fn: () => void): void }): { dir: string; tmp: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-security-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tmp = path.join(dir, "tmp");
  mkdirSync(tmp);
  return { dir, tmp };
}

function ptq(tmp: string, args: string[], preload?: string, env: Record<string, string> = {}) {
  const pre = preload ? ["--require", preload] : [];
  return spawnSync(process.execPath, [...pre, "--import", "tsx", main, ...args], { encoding: "utf8", env: { ...process.env, TMPDIR: tmp, ...env } });
}

const ptqFolders = (tmp: string) => readdirSync(tmp).filter((n) => n.startsWith("ptq-"));

// Holds the child right after it made its ptq-pre-* folder, until the test creates the release file: the signal then
// arrives while the folder exists, on every machine, however fast onnxruntime optimizes the model.
const HOLD = `
const fs = require("node:fs");
const path = require("node:path");
const make = fs.mkdtempSync;
fs.mkdtempSync = function (prefix, ...rest) {
  const dir = make.call(this, prefix, ...rest);
  if (path.basename(String(prefix)).startsWith("ptq-pre-")) {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    while (!fs.existsSync(process.env.PTQ_TEST_RELEASE)) Atomics.wait(cell, 0, 0, 5);
  }
  return dir;
};
`;

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  test(`${signal} during ptq quantize removes its ptq-pre-* temp folder and exits ${code}`, { timeout: 120_000 }, async (t) => {
    const { dir, tmp } = sandbox(t);
    const hold = path.join(dir, "hold.cjs");
    writeFileSync(hold, HOLD);
    const release = path.join(dir, "release");
    const out = path.join(dir, "cnn.int8.onnx");
    const child = spawn(process.execPath, ["--require", hold, "--import", "tsx", main, "quantize", cnn, "-o", out, "--calib", calib], {
      env: { ...process.env, TMPDIR: tmp, PTQ_TEST_RELEASE: release },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (c, s) => resolve({ code: c, signal: s })));
    let ended = false;
    void exited.then(() => (ended = true));
    // Poll the private temp dir until the folder is there (or the child ended without making one: a failure below).
    while (!ended && !ptqFolders(tmp).some((n) => n.startsWith("ptq-pre-"))) await new Promise((r) => setTimeout(r, 5));
    assert.ok(!ended, `the child ended before making its temp folder: ${stderr}`);
    child.kill(signal);
    writeFileSync(release, "");
    const end = await exited;
    assert.deepEqual(end, { code, signal: null }, stderr);
    assert.match(stderr, new RegExp(`stopped \\(${signal}\\)`));
    assert.deepEqual(ptqFolders(tmp), [], "no ptq-* folder is left in the temp dir");
    assert.ok(!existsSync(out), "no output from an interrupted run");
    assert.deepEqual(readdirSync(dir).sort(), ["hold.cjs", "release", "tmp"], "nothing else was written beside OUT");
  });
}

test("-o is checked before the work: a folder, a missing folder, the input (or a link to it), an existing OUT or OUT.data", (t) => {
  const { dir, tmp } = sandbox(t);
  const input = path.join(dir, "cnn.onnx");
  writeFileSync(input, readFileSync(cnn));
  const folder = path.join(dir, "out");
  mkdirSync(folder);
  const link = path.join(dir, "link.onnx");
  symlinkSync(input, link);
  const taken = path.join(dir, "taken.onnx");
  writeFileSync(taken, "someone's file");
  const dataTaken = path.join(dir, "fresh.onnx");
  writeFileSync(`${dataTaken}.data`, "someone's weights");
  const modes: Record<string, string[]> = {
    static: ["--calib", calib],
    dynamic: ["--mode", "dynamic"],
    int4: ["--mode", "int4"],
    fp4: ["--mode", "fp4"],
    target: ["--calib", calib, "--target-sqnr", "30"],
  };
  const cases: [string, RegExp][] = [
    [folder, /-o .*out is a folder: give a file name in it/],
    [path.join(dir, "missing", "m.onnx"), /-o .*m\.onnx: the folder .*missing does not exist; create it or choose another -o/],
    [input, /is the input .*cnn\.onnx: inputs are never written over/],
    [link, /link\.onnx is the input .*cnn\.onnx/],
    [taken, /-o .*taken\.onnx exists; pass --overwrite to replace it/],
    [dataTaken, /fresh\.onnx\.data exists .*pass --overwrite/],
  ];
  const before = readdirSync(dir).sort();
  for (const [mode, extra] of Object.entries(modes)) {
    // Every case in static mode; the other modes share its check, so two cases each show they call it first.
    for (const [out, message] of mode === "static" ? cases : [cases[1]!, cases[4]!]) {
      const r = ptq(tmp, ["quantize", input, "-o", out, ...extra]);
      assert.equal(r.status, 2, `${mode} -o ${out}: ${r.stderr}`);
      assert.match(r.stderr, message, mode);
    }
  }
  assert.deepEqual(readdirSync(dir).sort(), before, "no temp file or output was left anywhere");
  assert.deepEqual(readdirSync(folder), []);
  assert.ok(readFileSync(input).equals(readFileSync(cnn)), "the input is untouched");
  assert.equal(readFileSync(taken, "utf8"), "someone's file");
  // --overwrite allows replacing OUT, never the input.
  const over = ptq(tmp, ["quantize", input, "-o", link, "--mode", "dynamic", "--overwrite"]);
  assert.equal(over.status, 2);
  assert.match(over.stderr, /is the input/);
  const ok = ptq(tmp, ["quantize", input, "-o", taken, "--mode", "dynamic", "--overwrite", "--json"]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(ptqFolders(tmp), []);
});

test("report --html, notebook run -o and demo --out check their outputs before the work too", (t) => {
  const { dir, tmp } = sandbox(t);
  const existing = path.join(dir, "r.html");
  writeFileSync(existing, "<p>old</p>");
  const nb = path.join(dir, "n.ipynb");
  writeFileSync(nb, JSON.stringify({ cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 }));
  const checks: [string[], RegExp][] = [
    [["report", cnn, cnn, "--html", path.join(dir, "missing", "r.html")], /--html .*r\.html: the folder .*missing does not exist/],
    [["report", cnn, cnn, "--html", existing], /--html .*r\.html exists; pass --overwrite to replace it/],
    [["report", cnn, cnn, "--html", dir], /--html .* is a folder/],
    [["report", cnn, cnn, "--html", cnn, "--overwrite"], /--html .*cnn\.onnx is the input/],
    [["notebook", "run", nb, "-o", path.join(dir, "missing", "o.ipynb")], /-o .*o\.ipynb: the folder .*missing does not exist/],
    [["notebook", "run", nb, "-o", existing], /-o .*r\.html exists; pass --force to replace it/],
    [["demo", "--out", existing], /--out .*r\.html is a file: give a folder/],
  ];
  for (const [args, message] of checks) {
    const r = ptq(tmp, args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.equal(readFileSync(existing, "utf8"), "<p>old</p>");
  assert.deepEqual(readdirSync(dir).sort(), ["n.ipynb", "r.html", "tmp"]);
  assert.deepEqual(ptqFolders(tmp), []);
});

// Every write into the output folder fails as on a full disk; the descriptor's write carries no path.
const FULL_DISK = `
const fs = require("node:fs");
const path = require("node:path");
const full = new Set();
const open = fs.openSync;
fs.openSync = function (p, ...rest) {
  const fd = open.call(this, p, ...rest);
  if (path.resolve(String(p)).startsWith(process.env.PTQ_TEST_FULL + path.sep)) full.add(fd);
  return fd;
};
const write = fs.writeSync;
fs.writeSync = function (fd, ...rest) {
  if (full.has(fd)) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { errno: -28, code: "ENOSPC", syscall: "write" });
  return write.call(this, fd, ...rest);
};
`;

test("a full disk: the message names the file being written and says what to do; nothing is left behind", (t) => {
  const { dir, tmp } = sandbox(t);
  const preload = path.join(dir, "full.cjs");
  writeFileSync(preload, FULL_DISK);
  const outDir = path.join(dir, "out");
  mkdirSync(outDir);
  const out = path.join(outDir, "cnn.int8.onnx");
  const r = ptq(tmp, ["quantize", cnn, "-o", out, "--mode", "dynamic"], preload, { PTQ_TEST_FULL: outDir });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trim(), `ptq quantize: no space left on the device writing ${out}: free space or choose another -o`);
  assert.deepEqual(readdirSync(outDir), [], "no temp file is left in the output folder");
  assert.deepEqual(ptqFolders(tmp), []);
});

test("system errors name their file and say what to do", () => {
  const sys = (code: string, syscall: string, p?: string) => Object.assign(new Error(`${code}: ${syscall}`), { code, syscall, ...(p ? { path: p } : {}) });
  assert.equal(errorMessage(sys("ENOENT", "open", "/d/x.npy")), "no such file or folder: /d/x.npy; check the path");
  assert.equal(errorMessage(sys("ENOSPC", "write"), { path: "/o/m.onnx", flag: "-o" }), "no space left on the device writing /o/m.onnx: free space or choose another -o");
  assert.equal(errorMessage(sys("EACCES", "open", "/o/m.onnx"), { path: "/o/m.onnx", flag: "--html" }), "permission denied opening /o/m.onnx; check its permissions or choose another --html");
  assert.equal(errorMessage(new Error("plain")), "plain");
});

/** x [N, 4] → MatMul "mm1" (weight "w1") → Relu → MatMul "mm2" (weight "w2") → y; `w2` as given. */
function twoLayers(w2: number[]): Uint8Array {
  const w1 = Array.from({ length: 16 }, (_, k) => ((k * 5) % 7) - 3);
  const g = graph(
    "g",
    [node("MatMul", ["x", "w1"], ["h"], {}, { name: "mm1" }), node("Relu", ["h"], ["r"], {}, { name: "relu" }), node("MatMul", ["r", "w2"], ["y"], {}, { name: "mm2" })],
    [valueInfo("x", 1, ["N", 4])],
    [valueInfo("y", 1, ["N", 4])],
    [floatTensor("w1", [4, 4], w1), floatTensor("w2", [4, 4], w2)],
  );
  return toBinary(ModelProtoSchema, model(g));
}

test("a NaN weight: the error names the initializer and its node (dynamic mode, which quantizes every MatMul weight)", (t) => {
  const { dir, tmp } = sandbox(t);
  const input = path.join(dir, "nan-weight.onnx");
  writeFileSync(input, twoLayers(Array.from({ length: 16 }, (_, k) => (k === 6 ? NaN : k / 10))));
  const r = ptq(tmp, ["quantize", input, "-o", path.join(dir, "out.onnx"), "--mode", "dynamic"]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /initializer "w2" of MatMul node "mm2" has 1 non-finite value\(s\) \(NaN at flat index 6 of shape \[4, 4\]\)/);
  assert.match(r.stderr, /exclude the node so it stays float/);
  assert.deepEqual(readdirSync(dir).sort(), ["nan-weight.onnx", "tmp"]);
  assert.deepEqual(ptqFolders(tmp), []);
});

test("all-NaN calibration data: the error says so, naming the tensors and the input, not 'run calibrate()'", (t) => {
  const { dir, tmp } = sandbox(t);
  const input = path.join(dir, "m.onnx");
  writeFileSync(input, twoLayers(Array.from({ length: 16 }, (_, k) => k / 10)));
  const data = path.join(dir, "calib");
  mkdirSync(data);
  writeFileSync(path.join(data, "x.npy"), encodeNpy(new Float32Array(32).fill(NaN), [8, 4]));
  for (const method of ["minmax", "mse"]) {
    const r = ptq(tmp, ["quantize", input, "-o", path.join(dir, "out.onnx"), "--calib", data, "--method", method]);
    assert.equal(r.status, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /run calibrate\(\)/);
    assert.match(r.stderr, /calibration saw no finite value: every value of every observed tensor \("x", .*\) was NaN or ±Inf over 1 batch\(es\); the calibration data holds them: input "x" 32 of 32 values/, method);
  }
  assert.deepEqual(ptqFolders(tmp), []);
  assert.ok(!existsSync(path.join(dir, "out.onnx")));
});
