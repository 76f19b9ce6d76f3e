// Threshold selection from a histogram: entropy (KL divergence, ORT's get_entropy_threshold / TensorRT),
// percentile (symmetric and asymmetric) and MSE (quantization error over candidate ranges).
// Pure functions of a HistogramSnapshot; every result is clamped to the finite range actually seen.

import { foldAbsolute, type HistogramSnapshot } from "./histogram";

export interface Range {
  min: number;
  max: number;
}

function clampToSeen(h: HistogramSnapshot, lo: number, hi: number): Range {
  return { min: Math.max(lo, h.min), max: Math.min(hi, h.max) };
}

/** True when the histogram has a zero-width range (all-zero or constant data): nothing to choose. */
function degenerate(h: HistogramSnapshot): boolean {
  return h.edges[h.edges.length - 1] === h.edges[0] || h.min === h.max;
}

/**
 * ORT's smooth_distribution, as a shift: empty bins get `eps`, the others lose eps·zeros/nonZeros (returned), over
 * the first `size` values of `v`; undefined where every bin is empty or a bin would not stay positive.
 */
function smoothShift(v: Float64Array, size: number, eps: number): number | undefined {
  let zeros = 0;
  for (let i = 0; i < size; i++) if (v[i] === 0) zeros++;
  const nonZeros = size - zeros;
  if (nonZeros === 0) return undefined;
  const shift = (eps * zeros) / nonZeros;
  for (let i = 0; i < size; i++) if (v[i] !== 0 && v[i] - shift <= 0) return undefined;
  return shift;
}

/**
 * scipy.stats.entropy(smooth(p), smooth(q)) over the first `size` values: the KL divergence of the normalized,
 * smoothed distributions (Infinity where either cannot be smoothed). Computed without copies, in the order and with
 * the arithmetic of smoothing into new arrays and then summing, so the divergences are the same to the bit.
 */
function smoothedKl(p: Float64Array, q: Float64Array, size: number, eps = 0.0001): number {
  const ps = smoothShift(p, size, eps);
  const qs = smoothShift(q, size, eps);
  if (ps === undefined || qs === undefined) return Infinity;
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < size; i++) {
    sp += p[i] === 0 ? eps : p[i] - ps;
    sq += q[i] === 0 ? eps : q[i] - qs;
  }
  // A bin empty in both (an activation's side that never fires) adds the same term every time: computed once.
  const e = eps / sp;
  const bothEmpty = e * Math.log(e / (eps / sq));
  let kl = 0;
  for (let i = 0; i < size; i++) {
    if (p[i] === 0 && q[i] === 0) {
      kl += bothEmpty;
      continue;
    }
    const pi = (p[i] === 0 ? eps : p[i] - ps) / sp;
    if (pi > 0) kl += pi * Math.log(pi / ((q[i] === 0 ? eps : q[i] - qs) / sq));
  }
  return kl;
}

/**
 * Entropy (KL divergence) threshold, a port of ORT's `get_entropy_threshold`: for each candidate window of
 * 2i+1 bins around zero (i from numQuantizedBins/2 to numBins/2), fold the outliers into the edge bins (p),
 * merge the window into numQuantizedBins bins and expand back (q, integer division as in ORT's int64 q),
 * smooth both and keep the window with the smallest KL(p || q). Degenerate histograms return the seen range.
 */
export function entropyThreshold(h: HistogramSnapshot, numQuantizedBins = 128): Range {
  if (degenerate(h)) return { min: h.min, max: h.max };
  const hist = h.counts;
  const n = hist.length;
  const zero = Math.floor(n / 2);
  const halfQ = Math.floor(numQuantizedBins / 2);
  if (halfQ < 1 || halfQ > zero) {
    throw new RangeError(`numQuantizedBins (${numQuantizedBins}) must be in [2, numBins (${n})]`);
  }
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + hist[i];

  let best = Infinity;
  let bestRange: Range = { min: h.edges[0], max: h.edges[n] };
  const quantized = new Float64Array(numQuantizedBins);
  // One p and one q for every window (the widest is n bins), refilled each time.
  const p = new Float64Array(n);
  const q = new Float64Array(n);
  for (let i = halfQ; i <= zero; i++) {
    const start = zero - i;
    const end = Math.min(zero + i + 1, n);
    const size = end - start;
    p.set(hist.subarray(start, end));
    p[0] += prefix[start];
    p[size - 1] += prefix[n] - prefix[end];

    const merged = Math.floor(size / numQuantizedBins);
    quantized.fill(0);
    for (let k = 0; k < numQuantizedBins; k++) {
      quantized[k] = prefix[start + (k + 1) * merged] - prefix[start + k * merged];
    }
    quantized[numQuantizedBins - 1] += prefix[end] - prefix[start + numQuantizedBins * merged];

    q.fill(0, 0, size);
    for (let k = 0; k < numQuantizedBins; k++) {
      const a = k * merged;
      const b = a + merged;
      let norm = 0;
      for (let j = a; j < b; j++) if (p[j] !== 0) norm++;
      if (norm !== 0) q.fill(Math.floor(quantized[k] / norm), a, b);
    }
    const div = smoothedKl(p, q, size);
    if (div < best) {
      best = div;
      bestRange = { min: h.edges[start], max: h.edges[end] };
    }
  }
  return clampToSeen(h, bestRange.min, bestRange.max);
}

/** First index whose cumulative share reaches `p` (numpy searchsorted, side left). */
function searchCdf(counts: Float64Array, total: number, p: number): number {
  let acc = 0;
  for (let i = 0; i < counts.length; i++) {
    acc += counts[i];
    if (acc / total >= p) return i;
  }
  return counts.length - 1;
}

/**
 * Percentile threshold. Symmetric: the `percentile` of |x| gives (-t, t). Asymmetric: (100 - percentile)/2
 * percent is cut from each tail. Unlike ORT (which takes the LEFT edge of the bin holding the upper quantile,
 * clipping slightly more than asked), the upper bound is the bin's right edge, so at least `percentile` percent
 * of the values lie inside the range.
 */
export function percentileThreshold(h: HistogramSnapshot, percentile = 99.999, symmetric = false): Range {
  if (!(percentile >= 0 && percentile <= 100)) {
    throw new RangeError(`percentile must be in [0, 100], got ${percentile}`);
  }
  if (degenerate(h)) return { min: h.min, max: h.max };
  if (symmetric) {
    const a = foldAbsolute(h);
    const total = a.counts.reduce((s, c) => s + c, 0);
    const idx = searchCdf(a.counts, total, percentile / 100);
    const t = Math.min(a.edges[idx + 1], a.max);
    return { min: -t, max: t };
  }
  const total = h.counts.reduce((s, c) => s + c, 0);
  const cut = (100 - percentile) / 200;
  const left = searchCdf(h.counts, total, cut);
  const right = searchCdf(h.counts, total, 1 - cut);
  return clampToSeen(h, h.edges[left], h.edges[right + 1]);
}

/**
 * The integer grid a range quantizes to, as ORT's compute_scale_zp makes it (range widened to include 0, zero
 * point rounded) on a signed `bits` grid; symmetric ranges keep zero point 0. Undefined for a zero-width range.
 */
export function quantGrid(lo: number, hi: number, bits: number, symmetric: boolean): { scale: number; zp: number; qmin: number; qmax: number } | undefined {
  const qmin = -(2 ** (bits - 1));
  const qmax = 2 ** (bits - 1) - 1;
  const rmin = Math.min(lo, 0);
  const rmax = Math.max(hi, 0);
  const scale = (rmax - rmin) / (qmax - qmin);
  if (!(scale > 0)) return undefined;
  return { scale, zp: symmetric ? 0 : Math.round(qmin - rmin / scale), qmin, qmax };
}

/** Options of the MSE search. */
export interface MseOptions {
  /** Bit width of the target integer type (default 8). */
  bits?: number;
  /** Search symmetric ranges (-t, t) instead of scaled asymmetric ranges. */
  symmetric?: boolean;
  /** Number of candidate ranges (default 512). */
  candidates?: number;
}

/**
 * Range minimizing the expected squared quantization error of the histogram (mass at bin centers).
 * Symmetric: candidates (-t, t) with t = k/K·absmax, k = 1..K. Asymmetric: the upper bound is searched over
 * k/K·max with the lower bound fixed, then the lower bound over k/K·min with the new upper bound (two 1-D
 * searches; the sides of a skewed distribution want different clipping). Each candidate is quantized like
 * ORT's compute_scale_zp (range widened to include 0, zero point rounded) on a signed `bits` grid; clipping
 * error counts in full. Ties keep the wider range.
 */
export function mseThreshold(h: HistogramSnapshot, options: MseOptions = {}): Range {
  const bits = options.bits ?? 8;
  const K = options.candidates ?? 512;
  if (!(Number.isInteger(bits) && bits >= 2 && bits <= 16)) throw new RangeError(`bits must be in [2, 16], got ${bits}`);
  if (degenerate(h)) return { min: h.min, max: h.max };
  const qmin = -(2 ** (bits - 1));
  const qmax = 2 ** (bits - 1) - 1;
  const centers: number[] = [];
  const mass: number[] = [];
  for (let i = 0; i < h.counts.length; i++) {
    if (h.counts[i] === 0) continue;
    centers.push((h.edges[i] + h.edges[i + 1]) / 2);
    mass.push(h.counts[i]);
  }
  const error = (lo: number, hi: number, symmetric: boolean, bound: number): number => {
    const g = quantGrid(lo, hi, bits, symmetric);
    if (!g) return Infinity;
    const { scale, zp } = g;
    let err = 0;
    for (let j = 0; j < centers.length && err < bound; j++) {
      const c = centers[j];
      const q = Math.min(qmax, Math.max(qmin, Math.round(c / scale) + zp));
      const d = c - (q - zp) * scale;
      err += mass[j] * d * d;
    }
    return err;
  };
  if (options.symmetric) {
    const absMax = Math.max(Math.abs(h.min), Math.abs(h.max));
    let best = Infinity;
    let t = absMax;
    for (let k = K; k >= 1; k--) {
      const e = error((-absMax * k) / K, (absMax * k) / K, true, best);
      if (e < best) [best, t] = [e, (absMax * k) / K];
    }
    return { min: -t, max: t };
  }
  let lo = h.min;
  let hi = h.max;
  if (hi > 0) {
    let best = Infinity;
    for (let k = K; k >= 1; k--) {
      const e = error(lo, (h.max * k) / K, false, best);
      if (e < best) [best, hi] = [e, (h.max * k) / K];
    }
  }
  if (lo < 0) {
    let best = Infinity;
    for (let k = K; k >= 1; k--) {
      const e = error((h.min * k) / K, hi, false, best);
      if (e < best) [best, lo] = [e, (h.min * k) / K];
    }
  }
  return { min: lo, max: hi };
}
