// ConvTranspose → Add(per-channel constant) → BatchNormalization folds into the ConvTranspose (engine/quant/
// fold-conv-transpose): the float model computes the same values, and the quantized one has no float Add/BN and no
// Q/DQ pair between them (PP-OCR det's head).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { foldIntoConvs, foldIntoConvTranspose } from "../../../engine/quant/fold-conv-transpose";
import { lowBitModel } from "../../../engine/lowbit";
import { makeModel, quantizeTiny, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;

/** x[N, 4, 5, 5] → ConvTranspose(stride 2, group) [→ bias] → Add(c) → BatchNormalization → Relu → y. */
function head(opts: { group?: number; bias?: boolean; addShape?: number[]; addIsOutput?: boolean } = {}) {
  const group = opts.group ?? 1;
  const cout = 6;
  const addShape = opts.addShape ?? [cout, 1, 1];
  const n = addShape.reduce((a, b) => a * b, 1);
  const inits = [
    makeTensor("W", F, [4, cout / group, 2, 2], randomFloats((4 * cout * 4) / group, 1)),
    makeTensor("C", F, addShape, randomFloats(n, 2)),
    makeTensor("s", F, [cout], randomFloats(cout, 3, 0.5, 2)),
    makeTensor("b", F, [cout], randomFloats(cout, 4)),
    makeTensor("mu", F, [cout], randomFloats(cout, 5)),
    makeTensor("var", F, [cout], randomFloats(cout, 6, 0.1, 2)),
  ];
  if (opts.bias) inits.push(makeTensor("B", F, [cout], randomFloats(cout, 7)));
  const outputs = [valueInfo("y", F, ["N", cout, 10, 10])];
  if (opts.addIsOutput) outputs.push(valueInfo("a", F, ["N", cout, 10, 10]));
  return makeModel(
    [
      makeNode("ConvTranspose", opts.bias ? ["x", "W", "B"] : ["x", "W"], ["t"], { name: "ct", attributes: [attr.ints("strides", [2, 2]), attr.int("group", group)] }),
      makeNode("Add", ["t", "C"], ["a"], { name: "add" }),
      makeNode("BatchNormalization", ["a", "s", "b", "mu", "var"], ["n"], { name: "bn", attributes: [attr.float("epsilon", 1e-3)] }),
      makeNode("Relu", ["n"], ["y"], { name: "relu" }),
    ],
    [valueInfo("x", F, ["N", 4, 5, 5])],
    outputs,
    inits,
  );
}

const feeds = { x: new ort.Tensor("float32", randomFloats(2 * 4 * 25, 9), [2, 4, 5, 5]) };

async function foldedMatches(proto: ReturnType<typeof head>): Promise<string[]> {
  const m = Model.fromProto(proto).clone();
  foldIntoConvTranspose(m);
  const ref = await runModel(proto, feeds, "disabled");
  const got = await runModel(m.proto, feeds, "disabled");
  assert.deepEqual(Object.keys(got).sort(), Object.keys(ref).sort());
  for (const [k, t] of Object.entries(ref)) {
    const g = got[k]!.data as Float32Array;
    const worst = (t.data as Float32Array).reduce((w, v, i) => Math.max(w, Math.abs(v - g[i]!)), 0);
    assert.ok(worst < 1e-5, `folded output "${k}" differs by ${worst}`);
  }
  return m.graph.node.map((n) => n.opType);
}

test("a ConvTranspose's per-channel Add and BatchNormalization fold into its weight and bias, same values", async () => {
  assert.deepEqual(await foldedMatches(head()), ["ConvTranspose", "Relu"]);
  assert.deepEqual(await foldedMatches(head({ bias: true, addShape: [1, 6, 1, 1] })), ["ConvTranspose", "Relu"], "a bias of its own, Add of shape [1, C, 1, 1]");
  assert.deepEqual(await foldedMatches(head({ group: 2, addShape: [1] })), ["ConvTranspose", "Relu"], "grouped, a scalar Add");
});

test("nothing folds that would change a value: an Add that is not per channel, a BatchNormalization reading a graph output", async () => {
  assert.deepEqual(await foldedMatches(head({ addShape: [1, 1, 10, 10] })), ["ConvTranspose", "Add", "BatchNormalization", "Relu"]);
  // "a" is a graph output: the ConvTranspose may take in the Add (it then produces "a"), not the BatchNormalization after it.
  assert.deepEqual(await foldedMatches(head({ addIsOutput: true })), ["ConvTranspose", "BatchNormalization", "Relu"]);
});

test("quantized, the head runs one float ConvTranspose between a DQ and a Q: no float Add or BatchNormalization", async () => {
  const r = await quantizeTiny(head(), { x: [2, 4, 5, 5] }, {});
  assert.equal(r.ops.Add, undefined, JSON.stringify(r.ops));
  assert.equal(r.ops.BatchNormalization, undefined, JSON.stringify(r.ops));
  assert.equal(r.ops.ConvTranspose, 1);
  const left = r.qdq.graph.initializer.map((t) => t.name).filter((n) => ["W", "C", "s", "b", "mu", "var"].includes(n));
  assert.deepEqual(left, [], "the folded nodes' constants are gone");
  assert.ok(r.sqnr > 25, `SQNR ${r.sqnr}`);
});

/** x[N, 6, 5, 5] → Conv(3×3, group) → BatchNormalization → Relu → y, the BatchNormalization's parameters in Constant
 *  nodes (as a PaddlePaddle export writes them) and the Conv's weight an initializer. */
function convBn(group: number) {
  const cout = 6;
  const constant = (name: string, values: Float32Array) => makeNode("Constant", [], [name], { name: `const_${name}`, attributes: [attr.tensor("value", makeTensor(name, F, [cout], values))] });
  return makeModel(
    [
      constant("s", randomFloats(cout, 3, 0.5, 2)),
      constant("b", randomFloats(cout, 4)),
      constant("mu", randomFloats(cout, 5)),
      constant("var", randomFloats(cout, 6, 0.1, 2)),
      makeNode("Conv", ["x", "W"], ["t"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1]), attr.int("group", group)] }),
      makeNode("BatchNormalization", ["t", "s", "b", "mu", "var"], ["n"], { name: "bn", attributes: [attr.float("epsilon", 1e-3)] }),
      makeNode("Relu", ["n"], ["y"], { name: "relu" }),
    ],
    [valueInfo("x", F, ["N", 6, 5, 5])],
    [valueInfo("y", F, ["N", cout, 5, 5])],
    [makeTensor("W", F, [cout, 6 / group, 3, 3], randomFloats((cout * 6 * 9) / group, 1))],
  );
}

test("a Conv's BatchNormalization folds into its weight and a bias, its parameters read from Constant nodes, which go; same values", async () => {
  const x = { x: new ort.Tensor("float32", randomFloats(2 * 6 * 25, 9), [2, 6, 5, 5]) };
  for (const group of [1, 2, 6]) {
    const proto = convBn(group);
    const m = Model.fromProto(proto).clone();
    assert.deepEqual(foldIntoConvs(m), ["W"], "the weight the fold replaced, for the caller to drop");
    assert.deepEqual(m.graph.node.map((n) => n.opType), ["Conv", "Relu"], `group ${group}: the BatchNormalization and its Constants gone`);
    const [ref, got] = [await runModel(proto, x, "disabled"), await runModel(m.proto, x, "disabled")];
    const worst = (ref.y!.data as Float32Array).reduce((w, v, i) => Math.max(w, Math.abs(v - (got.y!.data as Float32Array)[i]!)), 0);
    assert.ok(worst < 1e-5, `group ${group}: folded output differs by ${worst}`);
    // INT8's path folds only ConvTranspose (onnxruntime's optimizer folds a Conv's before it).
    const convOnly = Model.fromProto(proto).clone();
    assert.deepEqual(foldIntoConvTranspose(convOnly), []);
    assert.equal(convOnly.graph.node.length, 7);
  }
});

test("int4 and FP4 files hold the folded weights: no float BatchNormalization nor its parameters behind a low-bit Conv", () => {
  for (const options of [{ mode: "int4" as const }, { mode: "fp4" as const, format: "nvfp4" as const }]) {
    const { model } = lowBitModel(Model.fromProto(convBn(1)), options);
    const ops = model.graph.node.map((n) => n.opType);
    assert.ok(!ops.includes("BatchNormalization"), `${options.mode}: ${ops.join(", ")}`);
    const names = [...model.graph.initializer.map((t) => t.name), ...model.graph.node.flatMap((n) => n.output)];
    for (const p of ["s", "b", "mu", "var", "W"]) assert.ok(!names.includes(p), `${options.mode}: "${p}" left in the file`);
  }
});
