import { test } from "node:test";
import assert from "node:assert/strict";
import {
  argmaxRows,
  classLabels,
  editDistance,
  errorCounts,
  macroF1,
  perSampleCosine,
  perSampleMse,
  perSamplePsnr,
  sequences,
  topkCorrect,
} from "../../../engine/analysis/metrics";

const rows = (data: number[], cols: number) => ({ rows: data.length / cols, cols, data });

test("argmax and top-k correctness per row, ties towards the lower index", () => {
  const logits = rows([0.1, 0.7, 0.2, /**/ 0.5, 0.2, 0.3, /**/ 0.3, 0.3, 0.4], 3);
  assert.deepEqual(Array.from(argmaxRows(logits)), [1, 0, 2]);
  const y = Int32Array.from([1, 2, 1]);
  assert.deepEqual(Array.from(topkCorrect(logits, y, 1)), [1, 0, 0]);
  // Row 2: logits 0.3, 0.3, 0.4; label 1 ties with class 0 (lower index wins), so it ranks third.
  assert.deepEqual(Array.from(topkCorrect(logits, y, 2)), [1, 1, 0]);
  assert.throws(() => topkCorrect(logits, Int32Array.from([1, 2, 7]), 1), /label 7 of sample 2/);
});

test("class labels from ids, [N,1] ids, int64 ids and one-hot rows", () => {
  assert.deepEqual(Array.from(classLabels({ type: "int64", dims: [3], data: BigInt64Array.from([2n, 0n, 1n]) })), [2, 0, 1]);
  assert.deepEqual(Array.from(classLabels({ type: "int32", dims: [2, 1], data: Int32Array.from([4, 5]) })), [4, 5]);
  assert.deepEqual(Array.from(classLabels({ type: "float32", dims: [2, 3], data: Float32Array.from([0, 0, 1, 0, 1, 0]) })), [2, 1]);
});

test("macro F1 matches a hand count", () => {
  // labels 0 0 1 1 2, preds 0 1 1 1 0: class0 tp1 fp1 fn1 → 0.5; class1 tp2 fp1 fn0 → 0.8; class2 tp0 fn1 → 0.
  const f1 = macroF1(Int32Array.from([0, 1, 1, 1, 0]), Int32Array.from([0, 0, 1, 1, 2]));
  assert.ok(Math.abs(f1 - (0.5 + 0.8 + 0) / 3) < 1e-12);
  assert.equal(macroF1(Int32Array.from([3, 3]), Int32Array.from([3, 3])), 1);
});

test("MSE, PSNR and cosine per sample", () => {
  const a = rows([1, 2, 3, 4], 2);
  const b = rows([1, 4, 3, 4], 2);
  assert.deepEqual(Array.from(perSampleMse(a, b)), [2, 0]);
  const psnr = perSamplePsnr(a, b, 2);
  assert.ok(Math.abs(psnr[0]! - 10 * Math.log10(4 / 2)) < 1e-12);
  assert.equal(psnr[1], 100);
  const cos = perSampleCosine(rows([1, 0, 0, 0], 2), rows([1, 1, 0, 0], 2));
  assert.ok(Math.abs(cos[0]! - Math.SQRT1_2) < 1e-12);
  assert.equal(cos[1], 1);
  assert.throws(() => perSampleMse(a, rows([1, 2, 3], 3)), /shapes differ/);
});

test("edit distance, CTC decoding and corpus CER/WER counts", () => {
  assert.equal(editDistance([1, 2, 3], [1, 3]), 1);
  assert.equal(editDistance([], [1, 2]), 2);
  assert.equal(editDistance([5, 6, 7], [7, 6, 5]), 2);
  // [1,T,V] scores: argmax per step gives 0 3 3 0 4 4 → CTC (blank 0) → 3 4.
  const scores = new Float32Array(6 * 5);
  [0, 3, 3, 0, 4, 4].forEach((c, t) => (scores[t * 5 + c] = 1));
  assert.deepEqual(sequences({ type: "float32", dims: [1, 6, 5], data: scores }, { ctcBlank: 0 }, true), [[3, 4]]);
  const ref = sequences({ type: "int32", dims: [1, 4], data: Int32Array.from([3, 4, 5, -1]) }, {}, false);
  assert.deepEqual(ref, [[3, 4, 5]]);
  const c = errorCounts([[3, 4]], ref, "char", 0);
  assert.deepEqual([c.edits[0], c.lengths[0]], [1, 3]);
  // Words split on token 9: ref "1 2 | 3" vs pred "1 2 | 4" → 1 word substituted out of 2.
  const w = errorCounts([[1, 2, 9, 4]], [[1, 2, 9, 3]], "word", 9);
  assert.deepEqual([w.edits[0], w.lengths[0]], [1, 2]);
});
