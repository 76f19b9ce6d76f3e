import { test } from "node:test";
import assert from "node:assert/strict";
import { batchStats, MinMaxObserver } from "../../../engine/calibrate/minmax";
import { StreamingHistogram, foldAbsolute, type HistogramSnapshot } from "../../../engine/calibrate/histogram";
import { entropyThreshold, mseThreshold, percentileThreshold } from "../../../engine/calibrate/thresholds";

test("batchStats skips and counts NaN and Inf", () => {
  assert.deepEqual(batchStats([1, -2, NaN, Infinity, 3, -Infinity]), { min: -2, max: 3, finite: 3, nonFinite: 3 });
  const none = batchStats([NaN]);
  assert.equal(none.finite, 0);
});

test("MinMaxObserver: overall range and ORT-style moving average", () => {
  const plain = new MinMaxObserver();
  plain.observe(new Float32Array([0, 1]));
  plain.observe(new Float32Array([-1, 3, NaN]));
  assert.deepEqual(plain.range(), { min: -1, max: 3 });
  assert.equal(plain.nonFinite, 1);

  // ORT: batches of one round are averaged; rounds are merged with the constant.
  const avg = new MinMaxObserver({ movingAverage: true, averagingConstant: 0.25 });
  avg.observe([0, 1]);
  avg.observe([-1, 3]);
  avg.observe([-2, 2]); // round 1: min = (0 - 1 - 2)/3, max = (1 + 3 + 2)/3
  assert.deepEqual(avg.range(), { min: -1, max: 2 });
  avg.commit();
  avg.observeRange(-3, 6); // round 2: lo = -1 + 0.25(-3 + 1), hi = 2 + 0.25(6 - 2)
  assert.deepEqual(avg.range(), { min: -1.5, max: 3 });
  avg.commit();
  avg.commit(); // an empty round changes nothing
  assert.deepEqual(avg.range(), { min: -1.5, max: 3 });
  plain.commit();
  plain.observe([5]);
  assert.deepEqual(plain.range(), { min: -1, max: 5 });

  const empty = new MinMaxObserver();
  empty.observe([NaN, Infinity]);
  assert.equal(empty.range(), undefined);
  assert.throws(() => new MinMaxObserver({ averagingConstant: 0 }), /averagingConstant/);
});

test("StreamingHistogram widens by doubling and merges bins exactly", () => {
  const h = new StreamingHistogram(8);
  h.observe([-1, 0.9]); // T = 1: -1 -> bin 0, 0.9 -> bin 7
  assert.equal(h.halfRange, 1);
  h.observe([3]); // T -> 2 -> 4; bins of width 1 from -4
  assert.equal(h.halfRange, 4);
  const s = h.snapshot()!;
  assert.deepEqual([...s.counts], [0, 0, 0, 1, 1, 0, 0, 1]);
  assert.deepEqual([...s.edges], [-4, -3, -2, -1, 0, 1, 2, 3, 4]);
  assert.equal(s.min, -1);
  assert.equal(s.max, 3);
});

test("StreamingHistogram streamed in growing batches equals one pass at the final range", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const streamed = new StreamingHistogram(64);
  const all: number[] = [];
  for (let b = 0; b < 6; b++) {
    const batch = Array.from({ length: 500 }, () => rand() * 0.37 * 3 ** b);
    all.push(...batch);
    streamed.observe(batch);
  }
  const s = streamed.snapshot()!;
  const t = streamed.halfRange;
  const direct = new Float64Array(64);
  for (const v of all) direct[Math.min(63, Math.floor(((v + t) * 64) / (2 * t)))]++;
  assert.deepEqual([...s.counts], [...direct]);
  assert.equal(s.counts.reduce((a, c) => a + c, 0), 3000);
});

test("StreamingHistogram: zeros before the range is known, all-zero and constant tensors, NaN", () => {
  const h = new StreamingHistogram(8);
  h.observe([0, 0, NaN]);
  assert.equal(h.halfRange, 0);
  const zeroOnly = h.snapshot()!;
  assert.equal(zeroOnly.min, 0);
  assert.equal(zeroOnly.max, 0);
  assert.equal(h.nonFinite, 1);
  h.observe([2]);
  assert.deepEqual([...h.snapshot()!.counts], [0, 0, 0, 0, 2, 0, 0, 1]);
  const c = new StreamingHistogram(8);
  c.observe([5, 5, 5]);
  assert.deepEqual(percentileThreshold(c.snapshot()!, 99), { min: 5, max: 5 });
  assert.deepEqual(entropyThreshold(c.snapshot()!, 4), { min: 5, max: 5 });
  assert.deepEqual(mseThreshold(c.snapshot()!), { min: 5, max: 5 });
  assert.equal(new StreamingHistogram(8).snapshot(), undefined);
  assert.throws(() => new StreamingHistogram(10), /multiple of 4/);
});

function hist(counts: number[], lo: number, hi: number, min: number, max: number): HistogramSnapshot {
  const n = counts.length;
  const edges = Float64Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
  return { edges, counts: Float64Array.from(counts), min, max };
}

test("percentile: asymmetric cuts each tail, symmetric folds |x|", () => {
  // 8 bins over [-4, 4]: one value at -3.5, 98 at 0.5, one at 3.5.
  const h = hist([1, 0, 0, 0, 98, 0, 0, 1], -4, 4, -3.5, 3.5);
  assert.deepEqual(percentileThreshold(h, 90), { min: 0, max: 1 });
  assert.deepEqual(percentileThreshold(h, 100), { min: -3.5, max: 3.5 });
  assert.deepEqual(percentileThreshold(h, 90, true), { min: -1, max: 1 });
  assert.deepEqual(percentileThreshold(h, 99.5, true), { min: -3.5, max: 3.5 });
  assert.deepEqual([...foldAbsolute(h).counts], [98, 0, 0, 2]);
  assert.throws(() => percentileThreshold(h, 101), /percentile/);
});

test("entropy threshold matches ONNX Runtime's get_entropy_threshold (numpy reference values)", () => {
  const ref: Array<[number[], number, number]> = [
    [[0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 6, 13, 25, 46, 81, 134, 209, 309, 431, 569, 711, 840, 939, 993, 993, 939, 840, 711, 569, 431, 309, 209, 134, 81, 46, 25, 13, 6, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0], -2.0, 2.125],
    [[0, 0, 0, 0, 0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 6, 9, 12, 17, 24, 34, 48, 67, 94, 131, 183, 256, 358, 500, 358, 256, 183, 131, 94, 67, 48, 34, 24, 17, 12, 9, 6, 4, 3, 2, 1, 1, 0, 0, 0, 0, 0], -3.75, 3.8],
    [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 800, 623, 485, 377, 294, 229, 178, 139, 108, 84, 65, 51, 39, 31, 24, 18, 14, 11, 8, 6, 5, 4, 3, 2, 1, 1, 1, 0, 0, 0, 0, 20], -3.0, 3.125],
  ];
  for (const [counts, lo, hi] of ref) {
    const r = entropyThreshold(hist(counts, -4, 4, -3.9, 3.8), 8);
    assert.ok(Math.abs(r.min - lo) < 1e-12 && Math.abs(r.max - hi) < 1e-12, `got ${r.min},${r.max} want ${lo},${hi}`);
  }
});

test("MSE: keeps the full range of uniform data, clips a lone outlier, clips more at fewer bits", () => {
  const uniform = new StreamingHistogram(2048);
  uniform.observe(Float32Array.from({ length: 20001 }, (_, i) => -1 + i / 10000));
  const u = mseThreshold(uniform.snapshot()!, { symmetric: true });
  assert.ok(u.max > 0.98 && u.max <= 1, `uniform max ${u.max}`);

  const g = new StreamingHistogram(2048);
  let seed = 3;
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const data = Float32Array.from({ length: 20000 }, () => Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand()));
  g.observe(data);
  g.observe([100]);
  const r8 = mseThreshold(g.snapshot()!, { symmetric: true });
  const r4 = mseThreshold(g.snapshot()!, { symmetric: true, bits: 4 });
  // 8 bits: rounding noise of 20000 values at scale 2t/255 outweighs clipping one outlier, so t stays large;
  // 4 bits: the grid is 16x coarser and clipping the outlier wins.
  assert.ok(r8.max > 50 && r8.max <= 100, `8-bit threshold ${r8.max}`);
  assert.ok(r4.max > 2 && r4.max < 6, `4-bit threshold ${r4.max}`);
  assert.equal(r8.min, -r8.max);
  const asym = mseThreshold(g.snapshot()!, { bits: 4 });
  assert.ok(asym.min < -2 && asym.max < 10, `asymmetric 4-bit ${asym.min}..${asym.max}`);
});

test("StreamingHistogram: statistics given from outside and a seeded range give the counts of one whole pass", () => {
  let seed = 11;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const batch = Float32Array.from({ length: 4000 }, (_, i) => (i % 3 === 0 ? 0 : rand() * (1 + (i % 7))));
  const whole = new StreamingHistogram(256);
  whole.observe(batch);
  // Statistics reduced elsewhere (the calibration graph) instead of batchStats: same counts, both loops.
  const given = new StreamingHistogram(256);
  given.observe(batch, batchStats(batch));
  assert.deepEqual([...given.snapshot()!.counts], [...whole.snapshot()!.counts]);
  const generic = new StreamingHistogram(256);
  generic.observe([...batch]);
  assert.deepEqual([...generic.snapshot()!.counts], [...whole.snapshot()!.counts]);
  // The same batch in parts: unseeded, the first part's range differs; seeded with the batch's absmax, identical.
  const absMax = Math.max(...[...batch].map(Math.abs));
  const parts = [batch.subarray(0, 10), batch.subarray(10, 1500), batch.subarray(1500)];
  const seeded = new StreamingHistogram(256);
  seeded.seed(absMax);
  for (const p of parts) seeded.observe(p);
  assert.equal(seeded.halfRange, whole.halfRange);
  assert.deepEqual(seeded.snapshot(), whole.snapshot());
  const unseeded = new StreamingHistogram(256);
  for (const p of parts) unseeded.observe(p);
  assert.notEqual(unseeded.halfRange, whole.halfRange, "the test's parts must need the seed");
  // seed() never moves an existing range, and ignores 0.
  seeded.seed(absMax * 10);
  assert.equal(seeded.halfRange, whole.halfRange);
  const zero = new StreamingHistogram(8);
  zero.seed(0);
  assert.equal(zero.halfRange, 0);
});

/** ORT's get_entropy_threshold loop as first ported (copies smoothed, then summed): the reference the faster one
 *  must match to the bit. */
function entropyReference(h: HistogramSnapshot, numQuantizedBins: number): { min: number; max: number } {
  const smooth = (p: Float64Array, eps = 0.0001) => {
    const zeros = p.filter((v) => v === 0).length;
    if (zeros === p.length) return undefined;
    const eps1 = (eps * zeros) / (p.length - zeros);
    const out = p.map((v) => (v === 0 ? eps : v - eps1));
    return out.every((v) => v > 0) ? out : undefined;
  };
  const kl = (p: Float64Array, q: Float64Array) => {
    let [sp, sq, d] = [0, 0, 0];
    for (let i = 0; i < p.length; i++) [sp, sq] = [sp + p[i]!, sq + q[i]!];
    for (let i = 0; i < p.length; i++) if (p[i]! / sp > 0) d += (p[i]! / sp) * Math.log(p[i]! / sp / (q[i]! / sq));
    return d;
  };
  const hist = h.counts;
  const n = hist.length;
  const zero = Math.floor(n / 2);
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i]! + hist[i]!;
  let best = Infinity;
  let range = { min: h.edges[0]!, max: h.edges[n]! };
  for (let i = numQuantizedBins / 2; i <= zero; i++) {
    const [start, end] = [zero - i, Math.min(zero + i + 1, n)];
    const size = end - start;
    const p = Float64Array.from(hist.slice(start, end));
    p[0] += prefix[start]!;
    p[size - 1] += prefix[n]! - prefix[end]!;
    const merged = Math.floor(size / numQuantizedBins);
    const quantized = Float64Array.from({ length: numQuantizedBins }, (_, k) => prefix[start + (k + 1) * merged]! - prefix[start + k * merged]!);
    quantized[numQuantizedBins - 1] += prefix[end]! - prefix[start + numQuantizedBins * merged]!;
    const q = new Float64Array(size);
    for (let k = 0; k < numQuantizedBins; k++) {
      const norm = p.subarray(k * merged, (k + 1) * merged).filter((v) => v !== 0).length;
      if (norm) q.fill(Math.floor(quantized[k]! / norm), k * merged, (k + 1) * merged);
    }
    const [ps, qs] = [smooth(p), smooth(q)];
    const d = ps && qs ? kl(ps, qs) : Infinity;
    if (d < best) [best, range] = [d, { min: h.edges[start]!, max: h.edges[end]! }];
  }
  return { min: Math.max(range.min, h.min), max: Math.min(range.max, h.max) };
}

test("entropy threshold: the same range as the port that smoothed copies, on ReLU-like, symmetric, discrete and long-tailed data", () => {
  let s = 11;
  const r = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const kinds = [
    () => Math.max(0, r() - 0.4),
    () => (r() - 0.5) * (r() < 0.02 ? 50 : 1),
    () => Math.round(r() * 4),
    () => Math.exp(r() * 6) * (r() < 0.5 ? -1 : 1),
  ];
  for (let k = 0; k < 12; k++) {
    const h = new StreamingHistogram([2048, 512, 128][k % 3]);
    h.observe(Float32Array.from({ length: 4000 + 1000 * k }, kinds[k % 4]!));
    const snap = h.snapshot()!;
    assert.deepEqual(entropyThreshold(snap), entropyReference(snap, 128), `histogram ${k}`);
  }
});
