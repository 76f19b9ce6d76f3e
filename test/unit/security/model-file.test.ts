// Hostile model files: paths that are not regular files (a FIFO blocks a plain open, /dev/zero never ends, a
// folder is no model), files past protobuf's 2 GiB limit, names defined twice (the quantizer would read one
// initializer and onnxruntime another), and the "exists" message that the CLI prints as is.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DataType, Model, OnnxError, makeNode, makeTensor } from "../../../engine/onnx";
import { optimizeModel } from "../../../engine/runtime/optimize";
import { bigWeights, smallMlp, withIf } from "../onnx/helpers";

const root = path.resolve(__dirname, "..", "..", "..");
const posix = process.platform !== "win32";

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), "ptq-modelfile-"));
}

interface Job {
  kind: "load" | "loadSync" | "readTensor";
  file: string;
}

/**
 * Runs load/read jobs in a child process with a time limit: without the fix a FIFO blocks open() for ever, and
 * that must fail the test rather than hang it. Returns each job's error message, or "loaded".
 */
function inChild(jobs: Job[]): string[] {
  const code = `
    const { readFileSync } = require("node:fs");
    const { Model, readTensor } = require(${JSON.stringify(path.join(root, "engine", "onnx", "index.ts"))});
    (async () => {
      const out = [];
      for (const j of JSON.parse(process.env.PTQ_TEST_JOBS)) {
        try {
          if (j.kind === "load") await Model.load(j.file);
          else if (j.kind === "loadSync") Model.loadSync(j.file);
          else {
            const m = Model.fromBytes(readFileSync(j.file), { path: j.file, skipValidation: true });
            readTensor(m.graph.initializer[0], m.dir);
          }
          out.push("loaded");
        } catch (e) {
          out.push(String(e && e.message));
        }
      }
      process.stdout.write(JSON.stringify(out));
    })();`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", code], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, PTQ_TEST_JOBS: JSON.stringify(jobs) },
  });
  assert.equal(r.signal, null, `the child was killed (${r.signal}): a load blocked or never ended\n${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

test("a FIFO, /dev/zero or a FIFO as external data is refused at once, never read", { skip: !posix }, () => {
  const dir = tmp();
  try {
    const fifo = path.join(dir, "model.onnx");
    execFileSync("mkfifo", [fifo]);
    // A model whose external data file is a FIFO: validation (load) and reading (readTensor) must both refuse.
    const ext = path.join(dir, "ext");
    mkdirSync(ext);
    bigWeights(300).saveSync(path.join(ext, "m.onnx"), { externalData: true });
    rmSync(path.join(ext, "m.onnx.data"));
    execFileSync("mkfifo", [path.join(ext, "m.onnx.data")]);
    const extModel = path.join(ext, "m.onnx");
    const jobs: Job[] = [
      { kind: "load", file: fifo },
      { kind: "loadSync", file: fifo },
      { kind: "load", file: extModel },
      { kind: "readTensor", file: extModel },
    ];
    if (existsSync("/dev/zero")) jobs.push({ kind: "loadSync", file: "/dev/zero" }, { kind: "load", file: "/dev/zero" });
    const out = inChild(jobs);
    assert.match(out[0]!, /model\.onnx: this is a named pipe \(FIFO\), not a model file: give the path of an \.onnx file/);
    assert.match(out[1]!, /model\.onnx: this is a named pipe \(FIFO\), not a model file/);
    assert.match(out[2]!, /m\.onnx: external data file "m\.onnx\.data" for tensor "big" is a named pipe \(FIFO\), not a regular file/);
    assert.match(out[3]!, /^external data file "m\.onnx\.data" for tensor "big" is a named pipe \(FIFO\), not a regular file/);
    for (const m of out.slice(4)) assert.match(m, /^\/dev\/zero: this is a character device, not a model file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a folder given as the model is refused with what it is", async () => {
  const dir = tmp();
  try {
    const sub = path.join(dir, "model.onnx");
    mkdirSync(sub);
    await assert.rejects(Model.load(sub), /model\.onnx: this is a directory, not a model file: give the path of an \.onnx file/);
    assert.throws(() => Model.loadSync(sub), /model\.onnx: this is a directory, not a model file/);
    // Saving onto a folder names it too, and leaves the folder as it was.
    assert.throws(() => smallMlp().saveSync(sub, { overwrite: true }), /model\.onnx: this is a directory: give a file name for the model/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a model file past protobuf's 2 GiB limit is refused before reading, with what to do", async () => {
  const dir = tmp();
  try {
    const file = path.join(dir, "huge.onnx");
    const fd = openSync(file, "w");
    ftruncateSync(fd, 2 ** 31 + 1); // sparse: no disk used
    closeSync(fd);
    const re = /huge\.onnx: the file is 2147483649 bytes, over protobuf's 2 GiB limit .* external data file/;
    await assert.rejects(Model.load(file), re);
    assert.throws(() => Model.loadSync(file), re);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function refused(m: Model, re: RegExp): void {
  assert.throws(
    () => Model.fromBytes(m.toBytes(), { path: "dup.onnx" }),
    (e: unknown) => e instanceof OnnxError && /^dup\.onnx: /.test(e.message) && re.test(e.message),
  );
}

test("names defined twice are refused in every graph, naming the tensor and the nodes", () => {
  // Two initializers "W": the quantizer would read the first, onnxruntime the last.
  const twoW = smallMlp();
  twoW.graph.initializer.push(makeTensor("W", DataType.FLOAT, [4, 3], new Float32Array(12)));
  refused(twoW, /initializer "W" is defined twice \(read by node "mm" \(MatMul\)\): names must be unique/);

  // The same in an If branch.
  const sub = withIf();
  const branch = sub.graph.node[0]!.attribute[0]!.g!;
  branch.initializer.push(makeTensor("k", DataType.FLOAT, [2], [1, 2]), makeTensor("k", DataType.FLOAT, [2], [3, 4]));
  refused(sub, /initializer "k" is defined twice in subgraph "then": names must be unique/);

  // Two nodes writing one value.
  const two = smallMlp();
  two.graph.node.push(makeNode("Neg", ["x"], ["z"], { name: "neg" }));
  refused(two, /value "z" is defined twice: node "add" \(Add\) and node "neg" \(Neg\) both write it/);

  // A node writing an initializer, and one writing a graph input.
  const overInit = smallMlp();
  overInit.graph.node[0]!.output[0] = "b";
  overInit.graph.node[1]!.input[0] = "b";
  refused(overInit, /value "b" is both an initializer and an output of node "mm" \(MatMul\)/);
  const overInput = smallMlp();
  overInput.graph.node[4]!.output[0] = "x";
  refused(overInput, /value "x" is both a graph input and an output of node "relu" \(Relu\)/);

  // In a subgraph: two nodes of the else branch writing one value.
  const subTwo = withIf();
  const elseG = subTwo.graph.node[0]!.attribute[1]!.g!;
  elseG.node.push(makeNode("Neg", ["x"], ["e_out"], { name: "neg2" }));
  refused(subTwo, /value "e_out" is defined twice in subgraph "else": node "e_out" \(Sub\) and node "neg2" \(Neg\) both write it/);

  // An initializer that is also a graph input (a default value) is fine.
  const dflt = smallMlp();
  dflt.graph.input.push({ ...dflt.graph.input[0]!, name: "b" });
  assert.doesNotThrow(() => Model.fromBytes(dflt.toBytes(), { path: "dflt.onnx" }));
});

test("an existing output is refused with both ways to replace it (CLI flag and API option)", async () => {
  const dir = tmp();
  try {
    const out = path.join(dir, "out.onnx");
    writeFileSync(out, "keep");
    const re = /out\.onnx: the file exists: choose another output, or replace it \(CLI: --overwrite; API: \{ overwrite: true \}\)/;
    await assert.rejects(smallMlp().save(out), re);
    await assert.rejects(optimizeModel(smallMlp(), out), re);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
