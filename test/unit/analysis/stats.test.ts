import { test } from "node:test";
import assert from "node:assert/strict";
import {
  binomialTwoSidedHalf,
  bootstrapMedianRatio,
  judgeRatio,
  mean,
  meanInterval,
  pairedBootstrapMeanDiff,
  pairedProportionDiff,
  quantileSorted,
  stdev,
  summarize,
  wilsonInterval,
  zFor,
} from "../../../engine/analysis/stats";

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} is not within ${tol} of ${b}`);

test("quantiles interpolate linearly like numpy's default", () => {
  const s = [1, 2, 3, 4];
  close(quantileSorted(s, 0.5), 2.5);
  close(quantileSorted(s, 0.9), 3.7); // h = 2.7 → 3 + 0.7·(4 − 3)
  close(quantileSorted(s, 0), 1);
  close(quantileSorted(s, 1), 4);
  close(quantileSorted([7], 0.99), 7);
  assert.throws(() => quantileSorted([], 0.5), /empty/);
});

test("mean and sample standard deviation match hand-computed values", () => {
  const xs = [2, 4, 4, 4, 5, 5, 7, 9];
  close(mean(xs), 5);
  close(stdev(xs), Math.sqrt(32 / 7)); // squared deviations sum to 32, n − 1 = 7
  assert.equal(stdev([3]), 0);
  const s = summarize([5, 1, 4, 2, 3]);
  assert.deepEqual([s.n, s.min, s.max, s.p50], [5, 1, 5, 3]);
  close(s.p90, 4.6);
  close(s.p10, 1.4);
});

test("z and the Wilson interval match textbook values", () => {
  close(zFor(0.95), 1.959964, 1e-5);
  close(zFor(0.99), 2.575829, 1e-5);
  const w = wilsonInterval(8, 10);
  close(w.estimate, 0.8);
  close(w.lo, 0.4902, 1e-3);
  close(w.hi, 0.9433, 1e-3);
  const zero = wilsonInterval(0, 20);
  assert.equal(zero.lo, 0);
  assert.ok(zero.hi > 0.1 && zero.hi < 0.2);
});

test("exact McNemar p-values are binomial tail sums", () => {
  close(binomialTwoSidedHalf(1, 10), 22 / 1024); // 2·(C(10,0) + C(10,1)) / 2^10
  close(binomialTwoSidedHalf(9, 10), 22 / 1024);
  assert.equal(binomialTwoSidedHalf(5, 10), 1);
  assert.equal(binomialTwoSidedHalf(0, 0), 1);
  // Large n stays finite (log-space sum).
  const p = binomialTwoSidedHalf(4000, 10000);
  assert.ok(p >= 0 && p < 1e-50);
});

test("paired accuracy difference: discordant counts, Wald interval, McNemar p", () => {
  const a = [1, 1, 1, 1, 0, 0, 1, 1, 1, 1];
  const b = [1, 1, 1, 0, 0, 1, 0, 1, 1, 0];
  const r = pairedProportionDiff(a, b);
  assert.equal(r.onlyA, 3);
  assert.equal(r.onlyB, 1);
  close(r.diff.estimate, -0.2);
  const half = 1.959964 * Math.sqrt((4 - 4 / 10) / 100);
  close(r.diff.lo, -0.2 - half, 1e-5);
  close(r.diff.hi, -0.2 + half, 1e-5);
  close(r.pValue, 10 / 16); // 2·(C(4,0) + C(4,1)) / 2^4
  assert.throws(() => pairedProportionDiff([1], [1, 0]), /differ in length/);
});

test("identical classifiers: zero difference, zero-width interval, p = 1", () => {
  const r = pairedProportionDiff([1, 0, 1], [1, 0, 1]);
  assert.equal(r.diff.estimate, 0);
  assert.equal(r.diff.lo, 0);
  assert.equal(r.diff.hi, 0);
  assert.equal(r.pValue, 1);
});

test("paired bootstrap is reproducible and collapses on constant differences", () => {
  const a = [1, 2, 3, 4, 5];
  const c = pairedBootstrapMeanDiff(a, a.map((x) => x + 0.5));
  close(c.estimate, 0.5);
  close(c.lo, 0.5);
  close(c.hi, 0.5);
  const a2 = Array.from({ length: 200 }, (_, i) => Math.sin(i));
  const b2 = a2.map((x, i) => x + (i % 3 === 0 ? 0.3 : -0.1));
  const r1 = pairedBootstrapMeanDiff(a2, b2, 0.95, 500, 7);
  const r2 = pairedBootstrapMeanDiff(a2, b2, 0.95, 500, 7);
  assert.deepEqual(r1, r2);
  assert.ok(r1.lo < r1.estimate && r1.estimate < r1.hi);
  const m = meanInterval(b2.map((x, i) => x - a2[i]!));
  close(m.estimate, r1.estimate, 1e-12);
  assert.ok(Math.abs(m.hi - m.lo - (r1.hi - r1.lo)) < 0.5 * (m.hi - m.lo), "analytic and bootstrap widths agree roughly");
});

test("ratio judgement: tight samples are trusted, noisy or short ones are not", () => {
  const steady = Array.from({ length: 50 }, (_, i) => 10 + (i % 5) * 0.05);
  const faster = steady.map((x) => x / 2);
  const r = bootstrapMedianRatio(steady, faster);
  close(r.estimate, 0.5, 1e-9);
  const v = judgeRatio(summarize(steady), summarize(faster), r);
  assert.equal(v.trustworthy, true, v.reason);
  assert.equal(v.reason, "");

  const noisy = Array.from({ length: 50 }, (_, i) => (i % 2 ? 5 : 20));
  const rn = bootstrapMedianRatio(steady, noisy);
  const vn = judgeRatio(summarize(steady), summarize(noisy), rn);
  assert.equal(vn.trustworthy, false);
  assert.match(vn.reason, /spread/);

  const short = steady.slice(0, 3);
  const vs = judgeRatio(summarize(short), summarize(short), bootstrapMedianRatio(short, short));
  assert.equal(vs.trustworthy, false);
  assert.match(vs.reason, /fewer than 10/);
});
