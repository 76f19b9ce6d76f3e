import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrorAccumulator, errorFigures } from "../../../engine/analysis/error-stats";

test("error figures against hand-computed values", () => {
  // ref = [3, 4], q = [3, 3]: signal 25, noise 1, SQNR 10·log10(25) = 13.9794 dB, MSE 0.5, max 1,
  // cosine (9 + 12) / (5 · √18) = 21 / 21.2132 = 0.98995.
  const f = errorFigures([3, 4], [3, 3]);
  assert.ok(Math.abs(f.sqnrDb - 13.979400086720377) < 1e-12);
  assert.equal(f.mse, 0.5);
  assert.equal(f.maxAbs, 1);
  assert.ok(Math.abs(f.cosine - 21 / (5 * Math.sqrt(18))) < 1e-12);
  assert.equal(f.count, 2);
});

test("streaming over batches equals one pass over everything", () => {
  const ref = [1, -2, 0.5, 4, -3, 2];
  const q = [1.1, -2, 0.4, 3.5, -3, 2.2];
  const acc = new ErrorAccumulator();
  acc.add(ref.slice(0, 2), q.slice(0, 2));
  acc.add(ref.slice(2), q.slice(2));
  assert.deepEqual(acc.result(), errorFigures(ref, q));
});

test("edge cases: identical, all-zero reference, mismatched lengths", () => {
  assert.equal(errorFigures([1, 2], [1, 2]).sqnrDb, Infinity);
  assert.equal(errorFigures([1, 2], [1, 2]).cosine, 1);
  const z = errorFigures([0, 0], [0, 1]);
  assert.equal(z.sqnrDb, -Infinity);
  assert.equal(z.cosine, 0);
  assert.equal(errorFigures([0, 0], [0, 0]).cosine, 1);
  assert.throws(() => new ErrorAccumulator().add([1], [1, 2], "conv1_out"), /conv1_out: reference has 1 values, quantized has 2/);
});
