import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeGraph, makeModel, makeNode, makeValueInfo } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { loadDataDir } from "../../../engine/analysis/dataset";
import { evaluate, unlabelledMetric } from "../../../engine/analysis/evaluate";
import { MIME } from "../../../kernel/display-types";
import { toBundle } from "../../../kernel/display";
import { buildClassifierPair, C, D, labelledSamples } from "./models";

const N = 300;

test("evaluate top-1: FP32 accuracy matches the planted label noise; paired CI and McNemar on the QDQ model", async () => {
  const { dir, fp32, int8 } = buildClassifierPair(3); // 3-bit weights: a real, visible accuracy change
  try {
    const { x, y } = labelledSamples(N);
    const data = { inputs: { x: { type: "float32" as const, dims: [N, D], data: x } }, labels: { type: "int64" as const, dims: [N], data: y } };
    const r = await evaluate({ fp32, int8 }, data, "top1", { batchSize: 64, threads: 1 });
    const j = r.toJSON();
    assert.equal(j.metric, "top1");
    assert.equal(j.reference, "labels");
    assert.equal(j.samples, N);
    // Labels are FP32's argmax except every 7th sample (43 of 300), so FP32 scores exactly 257/300.
    assert.ok(Math.abs(j.models[0]!.score.estimate - 257 / N) < 1e-12);
    const q = j.models[1]!;
    assert.ok(q.vsFirst);
    assert.equal(q.vsFirst.method, "mcnemar");
    assert.ok(Math.abs(q.vsFirst.diff.estimate - (q.score.estimate - j.models[0]!.score.estimate)) < 1e-12);
    const dis = q.vsFirst.discordant!;
    assert.ok(Math.abs(q.vsFirst.diff.estimate - (dis.onlyThis - dis.onlyFirst) / N) < 1e-12);
    assert.ok(q.vsFirst.diff.lo <= q.vsFirst.diff.estimate && q.vsFirst.diff.estimate <= q.vsFirst.diff.hi);
    assert.ok(q.vsFirst.pValue! > 0 && q.vsFirst.pValue! <= 1);
    const bundle = toBundle(r); // what a notebook cell whose value is the result shows
    assert.equal(Object.keys(bundle)[0], MIME.accuracy); // the renderer's type comes first
    assert.ok(MIME.plotly in bundle && "application/vnd.ptq.evaluation+json" in bundle);
    assert.match(String(bundle["text/plain"]), /pp/);

    const top5 = await evaluate([fp32], data, { kind: "topk", k: C }, { threads: 1 });
    assert.equal(top5.models[0]!.score.estimate, 1); // every label is among all C classes
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("evaluate without labels: agreement and cosine against the first model; F1; limit", async () => {
  const { dir, fp32, int8 } = buildClassifierPair(3);
  try {
    const { x, y } = labelledSamples(N);
    const inputs = { x: { type: "float32" as const, dims: [N, D], data: x } };
    const agree = await evaluate([fp32, int8], { inputs }, "top1", { threads: 1, limit: 100 });
    assert.equal(agree.json.metric, "agreement");
    assert.equal(agree.json.samples, 100);
    assert.equal(agree.models[0]!.score.estimate, 1);
    assert.ok(agree.models[1]!.score.estimate > 0.5 && agree.models[1]!.score.estimate <= 1);
    assert.ok(agree.json.notes.some((n) => /no labels/.test(n)));

    const cos = await evaluate([fp32, int8], { inputs }, "cosine", { threads: 1 });
    assert.ok(Math.abs(cos.models[0]!.score.estimate - 1) < 1e-6);
    assert.ok(cos.models[1]!.score.estimate > 0.8 && cos.models[1]!.score.estimate < 1);

    const f1 = await evaluate([fp32, int8], { inputs, labels: { type: "int64", dims: [N], data: y } }, "f1", { threads: 1 });
    assert.equal(f1.models[1]!.vsFirst!.method, "paired-bootstrap");
    assert.ok(f1.models[0]!.score.estimate > 0.7 && f1.models[0]!.score.estimate < 1);

    await assert.rejects(evaluate([fp32], { inputs }, "top1", { output: "nope" }), /no output "nope"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("evaluate on the bundled CNN reproduces the FP32 top-1 the fixture script measured in torch", async () => {
  const root = path.join(__dirname, "..", "..", "fixtures");
  const manifest = JSON.parse(readFileSync(path.join(root, "models", "manifest.json"), "utf8")) as Record<string, { fp32Top1: number; input: string }>;
  const cnn = path.join(root, "models", "cnn.onnx");
  const data = loadDataDir(path.join(root, "data", "eval"), [{ name: manifest.cnn!.input, type: "float32", shape: ["batch", 1, 28, 28] }]);
  const r = await evaluate([cnn], data, "top1", { batchSize: 250, threads: 1 });
  assert.equal(r.json.samples, 2000);
  assert.equal(r.json.reference, "labels");
  // The manifest rounds to 4 decimals; 2000 samples give steps of 0.0005.
  assert.ok(Math.abs(r.models[0]!.score.estimate - manifest.cnn!.fp32Top1) <= 0.00005, `${r.models[0]!.score.estimate} vs ${manifest.cnn!.fp32Top1}`);
  const agree = await evaluate([cnn, cnn], { inputs: data.inputs }, "agreement", { batchSize: 500, threads: 1, limit: 500 });
  assert.equal(agree.models[1]!.score.estimate, 1);
});

test("evaluate CER on sequence outputs end to end, with and without CTC collapse, against hand counts", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-seq-"));
  try {
    const file = path.join(dir, "identity.onnx");
    const io = (n: string) => makeValueInfo(n, DataType.FLOAT, ["batch", 4, 3]);
    writeFileSync(file, Model.fromProto(makeModel(makeGraph("seq", [makeNode("Identity", ["s"], ["y"])], [io("s")], [io("y")]))).toBytes());
    // Argmax per step: sample 0 → 1 2 2 0, sample 1 → 0 1 1 1 (one-hot scores).
    const steps = [1, 2, 2, 0, 0, 1, 1, 1];
    const s = new Float32Array(2 * 4 * 3);
    steps.forEach((c, t) => (s[t * 3 + c] = 1));
    const labels = { type: "int32" as const, dims: [2, 4], data: Int32Array.from([1, 2, 2, -1, 0, 1, -1, -1]) };
    const data = { inputs: { s: { type: "float32" as const, dims: [2, 4, 3], data: s } }, labels };
    // Plain: [1,2,2,0] vs [1,2,2] → 1 edit; [0,1,1,1] vs [0,1] → 2 edits; 3 / 5 reference tokens.
    const plain = await evaluate([file], data, "cer", { threads: 1 });
    assert.ok(Math.abs(plain.models[0]!.score.estimate - 3 / 5) < 1e-12);
    assert.equal(plain.json.higherIsBetter, false);
    // CTC, blank 0: [1,2] vs [1,2,2] → 1; [1] vs [0,1] → 1; 2 / 5.
    const ctc = await evaluate([file], data, { kind: "cer", sequence: { ctcBlank: 0 } }, { threads: 1 });
    assert.ok(Math.abs(ctc.models[0]!.score.estimate - 2 / 5) < 1e-12);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** y [N, T, K] = Softmax(x + shift) over the last axis: a sequence model's per-step class scores. */
function sequenceModel(shift: Float32Array, T: number, K: number): Model {
  const g = makeGraph(
    "seq",
    [makeNode("Add", ["x", "shift"], ["z"]), makeNode("Softmax", ["z"], ["y"], { attributes: [attr.int("axis", -1)] })],
    [makeValueInfo("x", DataType.FLOAT, ["N", T, K])],
    [makeValueInfo("y", DataType.FLOAT, ["N", T, K])],
    { initializers: [makeTensor("shift", DataType.FLOAT, [T, K], shift)] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
}

test("agreement on a sequence output: a sample agrees when the argmax matches at every time step; unlabelledMetric: agreement for class scores, CER of the CTC reading for sequences, else cosine", async () => {
  const [n, T, K] = [40, 5, 4];
  let s = 7;
  const x = Float32Array.from({ length: n * T * K }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1);
  const shift = new Float32Array(T * K);
  const moved = shift.slice();
  moved[2 * K + 0] = 10; // step 2 reads class 0 whatever the input
  const a = sequenceModel(shift, T, K);
  const b = sequenceModel(moved, T, K);
  const argmax = (t: number, j: number) => {
    let best = 0;
    for (let k = 1; k < K; k++) if (x[(j * T + t) * K + k]! > x[(j * T + t) * K + best]!) best = k;
    return best;
  };
  // The samples whose step 2 already read class 0 agree; every other step is the same in both models.
  let expected = 0;
  for (let j = 0; j < n; j++) if (argmax(2, j) === 0) expected++;
  assert.ok(expected > 0 && expected < n);
  const r = (await evaluate({ a, b }, { inputs: { x: { type: "float32", dims: [n, T, K], data: x } } }, "agreement", { threads: 1 })).toJSON();
  assert.equal(r.models[1]!.score.estimate, expected / n);
  assert.ok(r.notes.some((m) => /all 5 positions/.test(m)), r.notes.join("\n"));

  assert.deepEqual(unlabelledMetric(a), { kind: "cer", sequence: { ctcBlank: 0 } }, "a Softmax's [N, T, K]: its greedy CTC reading");
  // evaluate() without a metric and without labels scores what unlabelledMetric picks.
  const byDefault = (await evaluate({ a, b }, { inputs: { x: { type: "float32", dims: [n, T, K], data: x } } }, undefined, { threads: 1 })).toJSON();
  assert.equal(byDefault.metric, "cer");
  assert.ok(byDefault.notes.some((m) => /greedy CTC reading/.test(m)), byDefault.notes.join("\n"));
  const { fp32, dir } = buildClassifierPair(8);
  try {
    assert.equal(unlabelledMetric(await Model.load(fp32)), "agreement", "logits [N, C]");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const single = (shape: (string | number)[]) =>
    Model.fromProto(makeModel(makeGraph("m", [makeNode("Relu", ["x"], ["y"])], [makeValueInfo("x", DataType.FLOAT, shape)], [makeValueInfo("y", DataType.FLOAT, shape)]), { opsets: { "": 13 } }));
  assert.equal(unlabelledMetric(single(["N", 1])), "mse", "one score per sample (a wake-word head)");
  assert.equal(unlabelledMetric(single(["N", 1, 64, 64])), "cosine", "a detector's map");
  assert.equal(unlabelledMetric(single(["N", 896, 16])), "cosine", "box offsets");
});
