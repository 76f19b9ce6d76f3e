import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { ValueInfoProtoSchema } from "onnx-buf";
import { DataType, Model, attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, valueInfoTensor } from "../../../engine/onnx";
import { createSession } from "../../../engine/runtime/session";
import { int4QuantDequant } from "../onnx/helpers";

/** y = relu(x @ W + b), W [4,3] in an initializer. */
function mlp(): Model {
  const w = makeTensor("W", DataType.FLOAT, [4, 3], Array.from({ length: 12 }, (_, i) => (i - 6) / 4));
  const b = makeTensor("b", DataType.FLOAT, [3], [0.5, -0.25, 0]);
  const g = makeGraph(
    "mlp",
    [makeNode("MatMul", ["x", "W"], ["h"], { name: "mm" }), makeNode("Add", ["h", "b"], ["z"], { name: "add" }), makeNode("Relu", ["z"], ["y"], { name: "relu" })],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 4])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 3])],
    { initializers: [w, b] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 17 } }));
}

function reference(x: number[]): number[] {
  const W = Array.from({ length: 12 }, (_, i) => (i - 6) / 4);
  const b = [0.5, -0.25, 0];
  return [0, 1, 2].map((j) => Math.max(0, x.reduce((s, xi, k) => s + xi * W[k * 3 + j]!, 0) + b[j]!));
}

test("createSession runs a Model, its bytes and its file alike, with metadata", async () => {
  const m = mlp();
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-sess-"));
  try {
    const file = path.join(dir, "mlp.onnx");
    await m.save(file);
    const x = [1, -2, 3, 0.5];
    for (const src of [m, m.toBytes(), file]) {
      const s = await createSession(src, { threads: 1 });
      assert.deepEqual(s.inputs.map((i) => [i.name, i.type, i.shape]), [["x", "float32", ["batch", 4]]]);
      assert.equal(s.outputs[0]!.name, "y");
      assert.equal(s.ep, "cpu");
      const out = await s.run({ x: { data: Float32Array.from(x), dims: [1, 4] } });
      assert.equal(out.y!.dtype, DataType.FLOAT);
      assert.deepEqual(out.y!.dims, [1, 3]);
      const ref = reference(x);
      for (let j = 0; j < 3; j++) assert.ok(Math.abs((out.y!.data as Float32Array)[j]! - ref[j]!) < 1e-5);
      await s.dispose();
      await s.dispose(); // idempotent
      await assert.rejects(s.run({ x: { data: Float32Array.from(x), dims: [1, 4] } }), /disposed/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad feeds and fetches get errors naming the input or output", async () => {
  const s = await createSession(mlp());
  await assert.rejects(s.run({}), /missing input "x"/);
  await assert.rejects(s.run({ x: { data: new Float32Array(4), dims: [1, 4] }, q: { data: new Float32Array(1), dims: [1] } }), /"q" is not an input/);
  await assert.rejects(s.run({ x: { data: new Float32Array(4), dims: [1, 4] } }, ["h"]), /"h" is not an output/);
  await assert.rejects(s.run({ x: { data: new Float32Array(5), dims: [1, 5] } }), /input "x" is \[1, 5\], but the model fixes axis 1 at 4 \(\[batch, 4\]\): resize the data to that size/);
  await assert.rejects(s.run({ x: { data: new Float32Array(4), dims: [4] } }), /input "x" is \[4\], rank 1, but the model declares \[batch, 4\]/);
  await s.dispose();
});

test("CUDA requested without CUDA libraries falls back to CPU and says why", async () => {
  const reasons: string[] = [];
  const s = await createSession(mlp(), { ep: "cuda", onFallback: (r) => reasons.push(r) });
  if (s.ep === "cuda") {
    assert.equal(s.fallbackReason, undefined); // a machine with CUDA: nothing to fall back from
  } else {
    assert.equal(reasons.length, 1);
    assert.match(s.fallbackReason!, /CUDA is not available.*CPU/);
  }
  const out = await s.run({ x: { data: Float32Array.from([1, 2, 3, 4]), dims: [1, 4] } });
  assert.deepEqual(Array.from(out.y!.data as Float32Array).map((v) => Math.round(v * 1e4) / 1e4), reference([1, 2, 3, 4]));
  await s.dispose();
});

test("int4, bfloat16 and float8 graph outputs are cast to float instead of aborting Node", async () => {
  for (const dtype of [DataType.INT4, DataType.UINT4, DataType.BFLOAT16, DataType.FLOAT8E4M3FN]) {
    const isInt = dtype === DataType.INT4 || dtype === DataType.UINT4;
    // int4 via QuantizeLinear (the real use), bf16/fp8 via Cast (QuantizeLinear has no bf16 output).
    const node = isInt
      ? makeNode("QuantizeLinear", ["x", "s", "zp"], ["q"], { name: "quant" })
      : makeNode("Cast", ["x"], ["q"], { name: "cast", attributes: [attr.int("to", dtype)] });
    const g = makeGraph(
      "q",
      [node],
      [makeValueInfo("x", DataType.FLOAT, [4])],
      [makeValueInfo("q", dtype, [4])],
      { initializers: isInt ? [makeTensor("s", DataType.FLOAT, [], [1]), makeTensor("zp", dtype, [], [0])] : [] },
    );
    const m = Model.fromProto(makeModel(g, { opsets: { "": 21 } }));
    const dir = mkdtempSync(path.join(tmpdir(), "ptq-sess-q-"));
    const file = path.join(dir, "q.onnx");
    await m.save(file);
    // From a file too: onnxruntime reads it directly unless an output needs the cast.
    const fromFile = await createSession(file, { optimization: "disabled" });
    assert.deepEqual(fromFile.castOutputs, ["q"]);
    await fromFile.dispose();
    rmSync(dir, { recursive: true, force: true });
    const s = await createSession(m, { optimization: "disabled" });
    assert.deepEqual(s.castOutputs, ["q"]);
    assert.equal(s.outputs[0]!.type, "float32");
    const out = await s.run({ x: { data: Float32Array.from([1, 2, 3, 4]), dims: [4] } });
    assert.deepEqual(Array.from(out.q!.data as Float32Array), [1, 2, 3, 4], `dtype ${dtype}`);
    await s.dispose();
    assert.equal(valueInfoTensor(m.graph.output[0]!)?.elemType, dtype, "the caller's model is not modified");
  }
});

test("float16 inputs take Float32Array and outputs come back as Float32Array", async () => {
  const g = makeGraph("h", [makeNode("Mul", ["x", "x"], ["y"])], [makeValueInfo("x", DataType.FLOAT16, [3])], [makeValueInfo("y", DataType.FLOAT16, [3])]);
  const s = await createSession(Model.fromProto(makeModel(g)));
  const out = await s.run({ x: { data: Float32Array.from([1.5, -2, 0.25]), dims: [3] } });
  assert.equal(out.y!.dtype, DataType.FLOAT16);
  assert.deepEqual(Array.from(out.y!.data as Float32Array), [2.25, 4, 0.0625]);
  await s.dispose();
});

test("a model with external data given as a Model or as bytes in a Model resolves its data file", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-sess-ext-"));
  try {
    const file = path.join(dir, "ext.onnx");
    await mlp().save(file, { externalData: { threshold: 0 } });
    assert.ok(existsSync(file + ".data"));
    const loaded = await Model.load(file);
    assert.ok(loaded.hasExternalData());
    const cwd = process.cwd();
    process.chdir(tmpdir()); // onnxruntime would resolve a bare location against the working directory
    try {
      for (const src of [loaded, file]) {
        const s = await createSession(src);
        const out = await s.run({ x: { data: Float32Array.from([1, -2, 3, 0.5]), dims: [1, 4] } });
        const ref = reference([1, -2, 3, 0.5]);
        for (let j = 0; j < 3; j++) assert.ok(Math.abs((out.y!.data as Float32Array)[j]! - ref[j]!) < 1e-5);
        await s.dispose();
      }
    } finally {
      process.chdir(cwd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("optimizedModelPath saves the optimized graph; Constant weights are folded to initializers", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-sess-opt-"));
  try {
    const out = path.join(dir, "opt.onnx");
    const c = makeNode("Constant", [], ["k"], { attributes: [attr.tensor("value", makeTensor("", DataType.FLOAT, [3], [1, 2, 3]))] });
    const g = makeGraph("c", [c, makeNode("Add", ["x", "k"], ["y"])], [makeValueInfo("x", DataType.FLOAT, [3])], [makeValueInfo("y", DataType.FLOAT, [3])]);
    const s = await createSession(Model.fromProto(makeModel(g)), { optimization: "basic", optimizedModelPath: out });
    await s.dispose();
    const m = await Model.load(out);
    assert.deepEqual(m.graph.node.map((n) => n.opType), ["Add"]);
    assert.equal(m.graph.initializer.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fetching an int4 intermediate added as an untyped output is refused instead of aborting Node", async () => {
  const m = int4QuantDequant();
  m.graph.output.push(create(ValueInfoProtoSchema, { name: "q" })); // as calibration does: no type given
  const s = await createSession(m, { optimization: "disabled" });
  await assert.rejects(s.run({ x: { data: Float32Array.from([1, 2, 3, 4]), dims: [4] } }), /output "q" is int4, which onnxruntime-node cannot return/);
  const out = await s.run({ x: { data: Float32Array.from([1, 2, 3, 4]), dims: [4] } }, ["y"]);
  assert.deepEqual(Array.from(out.y!.data as Float32Array), [1, 2, 3, 4]);
  await s.dispose();
});

test("an onnxruntime Tensor is accepted as a feed (its data lives behind a prototype getter)", async () => {
  const { Tensor } = await import("onnxruntime-node");
  const s = await createSession(mlp());
  try {
    const x = [1, -2, 0.5, 3];
    const out = await s.run({ x: new Tensor("float32", Float32Array.from(x), [1, 4]) });
    assert.deepEqual(Array.from(out.y.data as Float32Array, (v) => Number(v.toFixed(5))), reference(x).map((v) => Number(v.toFixed(5))));
  } finally {
    await s.dispose();
  }
});

test("a model with initializers no node reads opens without onnxruntime's warning for each, from a Model or its path, and is not modified", () => {
  // onnxruntime prints its warnings from native code to the process's stderr: run the session in a child to see them.
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-unread-"));
  try {
    const m = mlp();
    m.graph.initializer.push(makeTensor("const_fold_opt__9", DataType.FLOAT, [2], [1, 2]));
    const file = path.join(dir, "unread.onnx");
    m.saveSync(file);
    const script = [
      `const { Model } = require(${JSON.stringify(path.resolve(__dirname, "../../../engine/onnx/model"))});`,
      `const { createSession } = require(${JSON.stringify(path.resolve(__dirname, "../../../engine/runtime/session"))});`,
      `(async () => { const m = Model.loadSync(${JSON.stringify(file)});`,
      `const ys = []; for (const source of [m, ${JSON.stringify(file)}]) { const s = await createSession(source, { threads: 1 });`,
      `const y = await s.run({ x: { data: Float32Array.of(1, 2, 3, 4), dims: [1, 4] } }); await s.dispose(); ys.push([...y.y.data]); }`,
      `console.log(JSON.stringify({ ys, kept: m.graph.initializer.length })); })();`,
    ].join("\n");
    const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Removing initializer/);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { ys: number[][]; kept: number };
    const round = (v: number[]) => v.map((x) => Math.round(x * 1e4) / 1e4);
    assert.equal(out.ys.length, 2);
    for (const y of out.ys) assert.deepEqual(round(y), round(reference([1, 2, 3, 4])));
    assert.equal(out.kept, 3, "the caller's model keeps its initializers");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
