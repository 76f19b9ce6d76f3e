// quantizeStatic's output check: every float output of the written file against the float model on the first
// calibration rows, worst first, judged outputs or not; the CLI's line names the worst and the outputs not judged.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { quantizeDynamic, quantizeStatic } from "../../../engine/quant/index";
import { sqnr } from "../../../engine/quant/math";
import { describeOutputCheck, intermediateOutputs } from "../../../engine/quant/output-check-text";
import { makeModel, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;

/** x[N, 64] → MatMul (64×32, one column's grid stretched by an outlier weight) → y; x scaled by 0.5 is output u too. */
function twoOutputs() {
  const w = randomFloats(64 * 32, 3);
  w[0] = 60;
  return makeModel(
    [makeNode("Mul", ["x", "half"], ["u"], { name: "scale" }), makeNode("MatMul", ["u", "W"], ["y"], { name: "mm" })],
    [valueInfo("x", F, ["N", 64])],
    [valueInfo("y", F, ["N", 32]), valueInfo("u", F, ["N", 64])],
    [makeTensor("half", F, [], [0.5]), makeTensor("W", F, [64, 32], w)],
  );
}

/** twoOutputs' y in `float` and in the file `out` on the two 4-row `batches`, with y declared an output of both: its SQNR. */
async function ySqnr(float: ReturnType<typeof twoOutputs>, out: string, batches: { x: ort.Tensor }[]): Promise<number> {
  const withY = (m: ReturnType<typeof twoOutputs>) => {
    m.graph!.output.push(valueInfo("y", F, ["N", 32]));
    return m;
  };
  const x = new Float32Array(8 * 64);
  batches.forEach((b, i) => x.set(b.x.data as Float32Array, i * 4 * 64));
  const feeds = { x: new ort.Tensor("float32", x, [8, 64]) };
  const [ref, got] = [await runModel(withY(float), feeds), await runModel(withY((await Model.load(out)).proto), feeds)];
  return sqnr(ref.y!.data as Float32Array, got.y!.data as Float32Array);
}

test("quantizeStatic reports each output's SQNR against the float model on the first 8 calibration rows, worst first", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-check-"));
  try {
    const batches = [1, 2, 3].map((seed) => ({ x: new ort.Tensor("float32", randomFloats(6 * 64, seed * 17), [6, 64]) }));
    const out = path.join(dir, "q.onnx");
    const model = Model.fromProto(twoOutputs());
    const summary = await quantizeStatic(model, out, batches, { calibration: { outputs: ["u"] } }, { optimize: false });
    const check = summary.outputCheck!;
    assert.equal(check.rows, 8, "the first 8 rows: batch 1 whole and 2 of batch 2");
    assert.deepEqual(check.outputs.map((o) => o.name).sort(), ["u", "y"], "every output, judged or not");
    assert.deepEqual(check.judged, ["u"]);
    assert.deepEqual(check.intermediate, ["u"], "u is read by the MatMul too");
    assert.ok(check.outputs[0]!.sqnrDb <= check.outputs[1]!.sqnrDb, "worst first");
    // The same figures as running both files on those rows.
    const x = new Float32Array(8 * 64);
    x.set(batches[0]!.x.data as Float32Array);
    x.set((batches[1]!.x.data as Float32Array).subarray(0, 2 * 64), 6 * 64);
    const feeds = { x: new ort.Tensor("float32", x, [8, 64]) };
    const [ref, got] = [await runModel(twoOutputs(), feeds), await runModel((await Model.load(out)).proto, feeds)];
    for (const o of check.outputs) {
      const want = sqnr(ref[o.name]!.data as Float32Array, got[o.name]!.data as Float32Array);
      assert.ok(Math.abs(o.sqnrDb - want) < 1e-3, `${o.name}: ${o.sqnrDb} vs ${want}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an output a final Softmax makes is also reported on the logits it reads, as the measurements compared it", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-check-"));
  try {
    // twoOutputs' y read by a Softmax whose output p replaces y.
    const proto = () => {
      const m = twoOutputs();
      m.graph!.node.push(makeNode("Softmax", ["y"], ["p"], { name: "softmax" }));
      m.graph!.output[0] = valueInfo("p", F, ["N", 32]);
      return m;
    };
    const batches = [1, 2].map((seed) => ({ x: new ort.Tensor("float32", randomFloats(4 * 64, seed * 17), [4, 64]) }));
    const out = path.join(dir, "q.onnx");
    const summary = await quantizeStatic(Model.fromProto(proto()), out, batches, {}, { optimize: false });
    const p = summary.outputCheck!.outputs.find((o) => o.name === "p")!;
    const u = summary.outputCheck!.outputs.find((o) => o.name === "u")!;
    assert.equal(u.logitsDb, undefined, "u is no Softmax's");
    assert.deepEqual(summary.outputCheck!.outputs.map((o) => o.name).sort(), ["p", "u"], "the logits are no output of their own");
    // The same figure as y in both files, run with y declared an output.
    const want = await ySqnr(proto(), out, batches);
    assert.ok(Math.abs(p.logitsDb! - want) < 1e-3, `p's logits: ${p.logitsDb} vs ${want}`);
    assert.match(describeOutputCheck(summary.outputCheck!), /"p" [\d.]+ dB, on its logits [\d.]+ dB/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an output a comparison masks is also reported on the values behind the mask, as the measurements compared them", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-check-"));
  try {
    // twoOutputs' y kept where it is above 0.1, 0 elsewhere (a detector's mask): p = y · Cast(Greater(y, 0.1)).
    const proto = () => {
      const m = twoOutputs();
      m.graph!.initializer.push(makeTensor("thr", F, [], [0.1]));
      m.graph!.node.push(
        makeNode("Greater", ["y", "thr"], ["above"], { name: "greater" }),
        makeNode("Cast", ["above"], ["keep"], { name: "cast", attributes: [attr.int("to", F)] }),
        makeNode("Mul", ["y", "keep"], ["p"], { name: "mask" }),
      );
      m.graph!.output[0] = valueInfo("p", F, ["N", 32]);
      return m;
    };
    const batches = [1, 2].map((seed) => ({ x: new ort.Tensor("float32", randomFloats(4 * 64, seed * 17), [4, 64]) }));
    const out = path.join(dir, "q.onnx");
    const summary = await quantizeStatic(Model.fromProto(proto()), out, batches, {}, { optimize: false });
    const p = summary.outputCheck!.outputs.find((o) => o.name === "p")!;
    assert.equal(p.logitsDb, undefined, "no Softmax");
    const want = await ySqnr(proto(), out, batches);
    assert.ok(Math.abs(p.unmaskedDb! - want) < 1e-3, `p before its mask: ${p.unmaskedDb} vs ${want}`);
    assert.match(describeOutputCheck(summary.outputCheck!), /"p" [\d.]+ dB, before its mask [\d.]+ dB/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("quantizeDynamic with data checks the outputs too; without data there is nothing to check on", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-check-"));
  try {
    const input = path.join(dir, "m.onnx");
    await Model.fromProto(twoOutputs()).save(input);
    const batches = [1, 2].map((seed) => ({ x: new ort.Tensor("float32", randomFloats(5 * 64, seed * 13), [5, 64]) }));
    const withData = await quantizeDynamic(input, path.join(dir, "d.onnx"), {}, { optimize: false, data: batches });
    assert.equal(withData.outputCheck?.rows, 8);
    assert.deepEqual(withData.outputCheck?.outputs.map((o) => o.name).sort(), ["u", "y"]);
    assert.equal(withData.outputCheck?.judged, undefined, "every output judged");
    const without = await quantizeDynamic(input, path.join(dir, "e.onnx"), {}, { optimize: false });
    assert.equal(without.outputCheck, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("intermediate outputs: read by other nodes, also through the Cast/Identity chain a float16 converter puts before an output", () => {
  const n = (opType: string, input: string[], output: string[]) => ({ opType, input, output });
  const graph = {
    node: [
      n("Conv", ["x", "w"], ["feat16"]), n("Relu", ["feat16"], ["next16"]), n("Cast", ["feat16"], ["feat"]),
      n("Sigmoid", ["next16"], ["mask16"]), n("Cast", ["mask16"], ["mask_c"]), n("Identity", ["mask_c"], ["mask"]),
      n("Neg", ["next16"], ["side"]), n("Abs", ["side"], ["aux"]),
    ],
    output: [{ name: "mask" }, { name: "feat" }, { name: "side" }, { name: "aux" }],
  };
  // feat: a Cast of a tensor the Relu reads; side: read by Abs itself; mask: its chain read by nothing else; aux: read by nothing.
  assert.deepEqual(intermediateOutputs(graph), ["feat", "side"]);
});

test("the output check's line: the worst output, outputs the measurements did not judge, identical ones, a cut-off list", () => {
  const check = { rows: 8, outputs: [{ name: "feat", sqnrDb: 4.94 }, { name: "mask", sqnrDb: 32.25 }, { name: "ids", sqnrDb: Infinity }] };
  assert.equal(
    describeOutputCheck({ ...check, judged: ["mask"] }),
    'outputs against the float model on 8 calibration row(s), SQNR: "feat" 4.9 dB (worst), "mask" 32.3 dB (judged), "ids" identical',
  );
  // The judged outputs are listed even past the cut-off.
  assert.equal(describeOutputCheck({ ...check, judged: ["ids"] }, 1), 'outputs against the float model on 8 calibration row(s), SQNR: "feat" 4.9 dB (worst), "ids" identical (judged), … (3 in all: --json outputCheck)');
  assert.equal(describeOutputCheck({ rows: 1, outputs: [check.outputs[1]!] }), 'outputs against the float model on 1 calibration row(s), SQNR: "mask" 32.3 dB');
  assert.match(describeOutputCheck(check, 2), /"mask" 32\.3 dB, … \(3 in all: --json outputCheck\)$/);
  // Every output judged, the worst one read inside the model, the others 6 dB or more better: the hint names them.
  const feat = { ...check, intermediate: ["feat"] };
  assert.match(describeOutputCheck(feat), /\(worst\), "mask" 32\.3 dB, "ids" identical; the worst are outputs other nodes read too \(intermediate tensors\); if the application reads only the others, --judge-outputs mask,ids fits the measurements to those$/);
  assert.doesNotMatch(describeOutputCheck({ ...feat, judged: ["mask"] }), /--judge-outputs/, "already judged");
  assert.doesNotMatch(describeOutputCheck({ ...feat, outputs: [{ name: "feat", sqnrDb: 30 }, { name: "mask", sqnrDb: 32.25 }] }), /--judge-outputs/, "within 6 dB");
  assert.doesNotMatch(describeOutputCheck({ ...check, intermediate: ["mask"] }), /--judge-outputs/, "the worst is not read inside");
});

test("an output the float model leaves 0 on every calibration row is named as such, not dropped: nothing to compare it with", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-check-"));
  try {
    // y = x·W as before; dead = Relu(−|x|·1): 0 on every row, as a detector's score that never fires on the data.
    const w = randomFloats(64 * 32, 3);
    const silentToo = (alive: boolean) =>
      makeModel(
        [
          makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" }),
          makeNode("Abs", ["x"], ["ax"], { name: "abs" }),
          makeNode("Neg", ["ax"], ["nx"], { name: "neg" }),
          makeNode("MatMul", ["nx", "P"], ["s"], { name: "score" }),
          makeNode("Relu", ["s"], ["dead"], { name: "relu" }),
        ],
        [valueInfo("x", F, ["N", 64])],
        [...(alive ? [valueInfo("y", F, ["N", 32])] : []), valueInfo("dead", F, ["N", 1])],
        [makeTensor("W", F, [64, 32], w), makeTensor("P", F, [64, 1], new Float32Array(64).fill(1))],
      );
    const batches = [1, 2].map((seed) => ({ x: new ort.Tensor("float32", randomFloats(6 * 64, seed * 17), [6, 64]) }));
    const both = await quantizeStatic(Model.fromProto(silentToo(true)), path.join(dir, "a.onnx"), batches, {}, { optimize: false });
    assert.deepEqual(both.outputCheck?.outputs.map((o) => o.name), ["y"]);
    assert.deepEqual(both.outputCheck?.silent, ["dead"]);
    assert.match(describeOutputCheck(both.outputCheck!), /SQNR: "y" [\d.]+ dB; "dead" is 0 on every row in the float model, nothing to compare: .*calibrate on data the model responds to/);
    // Its only output silent: the check still says so (it returned nothing before).
    const only = await quantizeStatic(Model.fromProto(silentToo(false)), path.join(dir, "b.onnx"), batches, {}, { optimize: false });
    assert.deepEqual(only.outputCheck, { rows: 8, outputs: [], silent: ["dead"] });
    assert.match(describeOutputCheck(only.outputCheck!), /^outputs against the float model on 8 calibration row\(s\): "dead" is 0 on every row in the float model, nothing to compare: where an output is 0 on every calibration row, the choices made at the outputs .* cannot tell their candidates apart on it/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
