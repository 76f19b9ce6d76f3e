// Pure statistics for benchmark and evaluate: order statistics, confidence intervals, paired tests and the rule
// that says when a latency ratio is too noisy to report as a result. No I/O, no randomness outside the seeded PRNG,
// so every figure is reproducible and testable against hand-computed values.
import { seededRandom } from "../data/random";

/** Quantile of an ascending-sorted array by linear interpolation (numpy's default, "type 7"). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new Error("quantile of an empty sample");
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile q must be in [0, 1], got ${q}`);
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export function sortedCopy(xs: ArrayLike<number>): Float64Array {
  return Float64Array.from(xs).sort();
}

export function mean(xs: ArrayLike<number>): number {
  if (xs.length === 0) throw new Error("mean of an empty sample");
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}

/** Sample standard deviation (n − 1 in the denominator); 0 for a single value. */
export function stdev(xs: ArrayLike<number>): number {
  const n = xs.length;
  if (n < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < n; i++) s += (xs[i]! - m) ** 2;
  return Math.sqrt(s / (n - 1));
}

export interface Summary {
  n: number;
  mean: number;
  stdev: number;
  min: number;
  max: number;
  p10: number;
  p50: number;
  p90: number;
  p99: number;
}

export function summarize(xs: ArrayLike<number>): Summary {
  const s = sortedCopy(xs);
  return {
    n: s.length,
    mean: mean(s),
    stdev: stdev(s),
    min: s[0]!,
    max: s[s.length - 1]!,
    p10: quantileSorted(s, 0.1),
    p50: quantileSorted(s, 0.5),
    p90: quantileSorted(s, 0.9),
    p99: quantileSorted(s, 0.99),
  };
}

/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile needs 0 < p < 1, got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - pl) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** Two-sided z for a confidence level, e.g. 0.95 → 1.95996. */
export function zFor(level: number): number {
  if (!(level > 0 && level < 1)) throw new Error(`confidence level must be in (0, 1), got ${level}`);
  return normalQuantile(1 - (1 - level) / 2);
}

export interface Interval {
  estimate: number;
  lo: number;
  hi: number;
  level: number;
}

/** Wilson score interval for a proportion k/n: well behaved at 0 and 1, unlike the Wald interval. */
export function wilsonInterval(k: number, n: number, level = 0.95): Interval {
  if (n <= 0) throw new Error("wilsonInterval needs n > 0");
  const z = zFor(level);
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { estimate: p, lo: Math.max(0, centre - half), hi: Math.min(1, centre + half), level };
}

/** Normal-approximation interval for the mean of a sample (large-n; used for per-sample metric means). */
export function meanInterval(xs: ArrayLike<number>, level = 0.95): Interval {
  const m = mean(xs);
  const half = xs.length > 1 ? (zFor(level) * stdev(xs)) / Math.sqrt(xs.length) : 0;
  return { estimate: m, lo: m - half, hi: m + half, level };
}

/** Exact two-sided binomial test of k successes in n trials at p = 0.5 (the exact McNemar test). */
export function binomialTwoSidedHalf(k: number, n: number): number {
  if (n === 0) return 1;
  const m = Math.min(k, n - k);
  // Sum the lower tail in log space so large n does not overflow.
  let logC = 0; // log C(n, 0)
  let tail = 0;
  for (let i = 0; i <= m; i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logC - n * Math.LN2);
  }
  return Math.min(1, 2 * tail);
}

export interface PairedProportionDiff {
  /** Samples where only the reference (A) was right, and where only the candidate (B) was right. */
  onlyA: number;
  onlyB: number;
  n: number;
  /** accuracy(B) − accuracy(A), as a fraction; the interval is the paired Wald interval. */
  diff: Interval;
  /** Standard error of diff, as a fraction: √((b + c) − (b − c)²/n) / n. */
  stdErr: number;
  /** Exact McNemar p-value (two-sided) for "A and B are equally accurate". */
  pValue: number;
}

/**
 * Paired comparison of two classifiers on the same samples. Only the discordant pairs carry information about the
 * difference, so the interval is far tighter than two independent accuracy intervals would suggest.
 */
export function pairedProportionDiff(correctA: ArrayLike<boolean | number>, correctB: ArrayLike<boolean | number>, level = 0.95): PairedProportionDiff {
  const n = correctA.length;
  if (n !== correctB.length) throw new Error(`paired samples differ in length: ${n} vs ${correctB.length}`);
  if (n === 0) throw new Error("paired comparison of zero samples");
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < n; i++) {
    const a = Boolean(correctA[i]);
    const b = Boolean(correctB[i]);
    if (a && !b) onlyA++;
    else if (b && !a) onlyB++;
  }
  const d = (onlyB - onlyA) / n;
  // Var(d) = ((b + c) − (b − c)²/n) / n² for the paired difference of proportions.
  const variance = (onlyA + onlyB - (onlyB - onlyA) ** 2 / n) / (n * n);
  const stdErr = Math.sqrt(Math.max(0, variance));
  const half = zFor(level) * stdErr;
  return { onlyA, onlyB, n, diff: { estimate: d, lo: d - half, hi: d + half, level }, stdErr, pValue: binomialTwoSidedHalf(onlyA, onlyA + onlyB) };
}

/** Percentile bootstrap interval of the mean of per-sample differences b[i] − a[i] (paired). */
export function pairedBootstrapMeanDiff(a: ArrayLike<number>, b: ArrayLike<number>, level = 0.95, resamples = 2000, seed = 1): Interval {
  const n = a.length;
  if (n !== b.length) throw new Error(`paired samples differ in length: ${n} vs ${b.length}`);
  if (n === 0) throw new Error("paired bootstrap of zero samples");
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = b[i]! - a[i]!;
  const rand = seededRandom(seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[Math.floor(rand() * n)]!;
    means[r] = s / n;
  }
  means.sort();
  const alpha = (1 - level) / 2;
  return { estimate: mean(d), lo: quantileSorted(means, alpha), hi: quantileSorted(means, 1 - alpha), level };
}

/** Percentile bootstrap interval of median(b) / median(a) for two independent latency samples. */
export function bootstrapMedianRatio(a: ArrayLike<number>, b: ArrayLike<number>, level = 0.95, resamples = 1000, seed = 1): Interval {
  if (a.length === 0 || b.length === 0) throw new Error("median ratio of an empty sample");
  const rand = seededRandom(seed);
  const ra = new Float64Array(a.length);
  const rb = new Float64Array(b.length);
  const ratios = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < ra.length; i++) ra[i] = a[Math.floor(rand() * a.length)]!;
    for (let i = 0; i < rb.length; i++) rb[i] = b[Math.floor(rand() * b.length)]!;
    ratios[r] = quantileSorted(rb.sort(), 0.5) / quantileSorted(ra.sort(), 0.5);
  }
  ratios.sort();
  const alpha = (1 - level) / 2;
  const est = quantileSorted(sortedCopy(b), 0.5) / quantileSorted(sortedCopy(a), 0.5);
  return { estimate: est, lo: quantileSorted(ratios, alpha), hi: quantileSorted(ratios, 1 - alpha), level };
}

export interface RatioVerdict {
  trustworthy: boolean;
  /** Why not, in words a user can act on; empty when trustworthy. */
  reason: string;
}

/** Relative spread of a latency sample: (p90 − p10) / p50. */
export function relativeSpread(s: Summary): number {
  return s.p50 > 0 ? (s.p90 - s.p10) / s.p50 : Infinity;
}

/**
 * The "too noisy to trust" rule for a ratio of medians. A ratio is reported as a result only when both samples are
 * large enough, neither sample's p10–p90 spread exceeds `maxSpread` of its median, and the bootstrap interval of
 * the ratio is narrower than `maxRelativeWidth` of the estimate. Thresholds are conservative defaults for a shared
 * CPU; they are parameters so callers can tighten them.
 */
export function judgeRatio(a: Summary, b: Summary, ratio: Interval, opts: { minRuns?: number; maxSpread?: number; maxRelativeWidth?: number } = {}): RatioVerdict {
  const minRuns = opts.minRuns ?? 10;
  const maxSpread = opts.maxSpread ?? 0.5;
  const maxWidth = opts.maxRelativeWidth ?? 0.25;
  const reasons: string[] = [];
  if (a.n < minRuns || b.n < minRuns) reasons.push(`fewer than ${minRuns} timed runs (${Math.min(a.n, b.n)}); raise runs or seconds`);
  const sa = relativeSpread(a);
  const sb = relativeSpread(b);
  if (sa > maxSpread || sb > maxSpread) {
    reasons.push(`p10–p90 spread is ${(Math.max(sa, sb) * 100).toFixed(0)}% of the median (limit ${(maxSpread * 100).toFixed(0)}%); the machine is busy or the model too small to time`);
  }
  const width = (ratio.hi - ratio.lo) / ratio.estimate;
  if (!(width <= maxWidth)) reasons.push(`the ratio's ${(ratio.level * 100).toFixed(0)}% interval [${ratio.lo.toFixed(2)}, ${ratio.hi.toFixed(2)}] is ${(width * 100).toFixed(0)}% wide`);
  return { trustworthy: reasons.length === 0, reason: reasons.join("; ") };
}

/**
 * Percentile bootstrap of any statistic of n paired samples, e.g. the difference in macro F1 or corpus CER between
 * two models. `stat` receives the resampled indices (with repetition) and returns the statistic on them.
 */
export function bootstrapStatistic(n: number, stat: (idx: Int32Array) => number, level = 0.95, resamples = 1000, seed = 1): Interval {
  if (n === 0) throw new Error("bootstrap of zero samples");
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const rand = seededRandom(seed);
  const values = new Float64Array(resamples);
  const idx = new Int32Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rand() * n);
    values[r] = stat(idx);
  }
  values.sort();
  const alpha = (1 - level) / 2;
  return { estimate: stat(all), lo: quantileSorted(values, alpha), hi: quantileSorted(values, 1 - alpha), level };
}
