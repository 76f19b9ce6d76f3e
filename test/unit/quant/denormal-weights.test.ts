// Denormal float32 weights are set to 0 when a model is prepared (engine/quant/preprocess flushDenormalWeights): they
// change no output a float32 model can show, but x86 float kernels run slowly on them (PP-OCRv4's recogniser: one
// 480×480 1×1 Conv took 42 ms of ~50 ms per line), and a weight that stays float would keep that cost.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ptq } from "../cli/ptq-child";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { create } from "@bufbuild/protobuf";
import { GraphProtoSchema } from "onnx-buf";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor, tensorToFloat32 } from "../../../engine/onnx/tensor";
import { prepare } from "../../../engine/quant/index";
import { lowBitModel } from "../../../engine/lowbit/index";
import { makeModel, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;
const DENORMAL = 1e-40;

test("denormal float32 weights become 0, in initializers and in a subgraph's Constant; normal values and the other types stay", async () => {
  const w = randomFloats(64, 3);
  w[5] = DENORMAL;
  w[9] = -DENORMAL;
  w[11] = 1.2e-38; // the smallest normal float32 is 1.1755e-38: kept
  const branch = (name: string, value: number) =>
    create(GraphProtoSchema, {
      name,
      node: [makeNode("Constant", [], [`${name}_c`], { name: `${name}_const`, attributes: [attr.tensor("value", makeTensor(`${name}_v`, F, [4], [value, 1, 2, 3]))] }), makeNode("Add", ["m", `${name}_c`], [`${name}_out`], { name: `${name}_add` })],
      output: [valueInfo(`${name}_out`, F, [2, 4])],
    });
  const proto = makeModel(
    [
      makeNode("MatMul", ["x", "W"], ["m"], { name: "mm" }),
      makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", branch("then", DENORMAL)), attr.graph("else_branch", branch("else", 0.5))] }),
    ],
    [valueInfo("x", F, [2, 16]), valueInfo("cond", DataType.BOOL, [])],
    // H is a graph output: an initializer nothing reads would be left out (dropUnreadWeights).
    [valueInfo("y", F, [2, 4]), valueInfo("H", DataType.FLOAT16, [2])],
    [makeTensor("W", F, [16, 4], w), makeTensor("H", DataType.FLOAT16, [2], [6e-8, 1])],
  );
  const prepared = await prepare(Model.fromProto(proto), {}, { optimize: false });
  const g = prepared.model.graph;
  const W = tensorToFloat32(g.initializer.find((t) => t.name === "W")!);
  assert.deepEqual([W[5], W[9], W[11]], [0, 0, Math.fround(1.2e-38)]);
  assert.deepEqual([...W].filter((_, i) => i !== 5 && i !== 9), [...w].filter((_, i) => i !== 5 && i !== 9).map(Math.fround));
  const ifNode = g.node.find((n) => n.opType === "If")!;
  const constant = (b: string) => tensorToFloat32(ifNode.attribute.find((a) => a.name === b)!.g!.node[0]!.attribute[0]!.t!);
  assert.deepEqual([...constant("then_branch")], [0, 1, 2, 3]);
  assert.deepEqual([...constant("else_branch")], [0.5, 1, 2, 3]);
  // float16's subnormals are not float32's: left as they are.
  assert.equal(g.initializer.find((t) => t.name === "H")!.dataType, DataType.FLOAT16);
  assert.ok(tensorToFloat32(g.initializer.find((t) => t.name === "H")!)[0]! > 0);
  assert.ok(prepared.warnings.some((m) => /^3 denormal float32 weight value\(s\) in 2 tensor\(s\) set to 0/.test(m)), prepared.warnings.join("\n"));

  const plain = await prepare(Model.fromProto(makeModel([makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })], [valueInfo("x", F, [2, 16])], [valueInfo("y", F, [2, 4])], [makeTensor("W", F, [16, 4], randomFloats(64, 3))])), {}, { optimize: false });
  assert.ok(!plain.warnings.some((m) => /denormal/.test(m)));
});

test("weights a fold makes denormal are flushed too: Conv → Mul by a scalar, folded into the Conv's weight", async () => {
  const w = randomFloats(2 * 3 * 3 * 3, 7);
  w[4] = 1e-36; // × 1e-3 below: 1e-39, denormal only after the fold
  const proto = makeModel(
    [makeNode("Conv", ["x", "W", "B"], ["c"], { name: "conv" }), makeNode("Mul", ["c", "k"], ["y"], { name: "scale" })],
    [valueInfo("x", F, [1, 3, 5, 5])],
    [valueInfo("y", F, [1, 2, 3, 3])],
    [makeTensor("W", F, [2, 3, 3, 3], w), makeTensor("B", F, [2], [0.1, -0.2]), makeTensor("k", F, [], [1e-3])],
  );
  const prepared = await prepare(Model.fromProto(proto), {}, { optimize: false });
  const conv = prepared.model.graph.node.find((n) => n.opType === "Conv")!;
  assert.ok(!prepared.model.graph.node.some((n) => n.opType === "Mul"), "the scalar Mul was folded into the Conv");
  const folded = tensorToFloat32(prepared.model.graph.initializer.find((t) => t.name === conv.input[1])!);
  assert.equal(folded[4], 0);
  assert.ok(Math.abs(folded[0]! - Math.fround(w[0]! * 1e-3)) < 1e-9);
});

test("benchmark() (ptq bench) notes which model has denormal weights, since its times include them, and with flushDenormals times a copy without them as the baseline", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-denormal-"));
  try {
    const model = (w: number[]) => makeModel([makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })], [valueInfo("x", F, [1, 4])], [valueInfo("y", F, [1, 2])], [makeTensor("W", F, [4, 2], w)]);
    const [slow, clean] = [path.join(dir, "slow.onnx"), path.join(dir, "clean.onnx")];
    writeFileSync(slow, toBinary(ModelProtoSchema, model([1, DENORMAL, 2, -DENORMAL, 3, 4, 5, 6])));
    writeFileSync(clean, toBinary(ModelProtoSchema, model([1, 2, 3, 4, 5, 6, 7, 8])));
    const r = ptq("bench", clean, slow, "--runs", "2", "--warmup", "0", "--threads", "1");
    assert.equal(r.status, 0, r.stderr);
    // A note of benchmark() itself, so the notebook's and the code lens's tables carry it too.
    assert.match(r.stdout, new RegExp(`! ${slow.replace(/[.\\/]/g, "\\$&")} has 2 denormal float32 weight value\\(s\\)`));
    assert.doesNotMatch(r.stdout, /clean\.onnx has/);
    assert.match(r.stdout, /--flush-denormals/, "the note says how to time a copy without them");

    // --flush-denormals: a copy of the first model without them is the baseline, the file as given right after it.
    const flushed = ptq("bench", slow, clean, "--flush-denormals", "--json", "--runs", "2", "--warmup", "0", "--threads", "1");
    assert.equal(flushed.status, 0, flushed.stderr);
    const json = JSON.parse(flushed.stdout) as { models: { name: string; batches: { vsFirst?: unknown }[] }[]; notes: string[] };
    assert.deepEqual(json.models.map((m) => m.name), [`${slow}, denormals 0`, slow, clean]);
    assert.equal(json.models[0]!.batches[0]!.vsFirst, undefined);
    assert.ok(json.models[1]!.batches[0]!.vsFirst, "the file as given is timed against the copy");
    assert.equal(json.notes.filter((n) => n.includes("denormal float32 weight value")).length, 1, json.notes.join("\n"));
    // A first model without denormals is the baseline as given, and says so.
    const plain = ptq("bench", clean, slow, "--flush-denormals", "--json", "--runs", "2", "--warmup", "0", "--threads", "1");
    assert.equal(plain.status, 0, plain.stderr);
    const p = JSON.parse(plain.stdout) as { models: { name: string }[]; notes: string[] };
    assert.deepEqual(p.models.map((m) => m.name), [clean, slow]);
    assert.ok(p.notes.some((n) => n.includes(`${clean} has no denormal float32 weights, so it is the baseline as given`)), p.notes.join("\n"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the low-bit modes set the denormal weights that stay float to 0 as well, and say so", () => {
  const w = randomFloats(64 * 32, 5);
  const b = randomFloats(32, 6);
  b[3] = DENORMAL;
  const m = Model.fromProto(
    makeModel(
      [makeNode("MatMul", ["x", "W"], ["h"], { name: "mm" }), makeNode("Add", ["h", "b"], ["y"], { name: "add" })],
      [valueInfo("x", F, [1, 64])],
      [valueInfo("y", F, [1, 32])],
      [makeTensor("W", F, [64, 32], w), makeTensor("b", F, [32], b)],
    ),
  );
  const { model, report } = lowBitModel(m, { mode: "int4" });
  const bias = tensorToFloat32(model.graph.initializer.find((t) => t.name === "b")!);
  assert.equal(bias[3], 0);
  assert.equal(bias[4], b[4]);
  assert.ok(report.notes.some((n) => /1 denormal float32 weight value\(s\) in 1 tensor\(s\) set to 0/.test(n)), report.notes.join("\n"));
  assert.equal(tensorToFloat32(m.graph.initializer.find((t) => t.name === "b")!)[3], Math.fround(DENORMAL), "the input model is untouched");
});
