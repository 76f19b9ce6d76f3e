// Streaming histogram of one tensor, symmetric around zero like ORT's HistogramCollector, but with a FIXED
// number of bins: ORT adds bins every time the range grows (memory grows with the data); we double the range
// and merge bin pairs instead, which is exact (no redistribution guess) because numBins is a multiple of 4.

import { batchStats, type BatchStats } from "./minmax";

/** What a histogram looks like from outside (kept for the UI and for analysis). */
export interface HistogramSnapshot {
  /** numBins + 1 bin edges from -threshold to +threshold. */
  edges: Float64Array;
  counts: Float64Array;
  /** Finite range actually seen (the edges may be wider). */
  min: number;
  max: number;
}

/**
 * A histogram over [-T, T] with `numBins` equal bins, T growing by powers of two as data arrives.
 *
 * - Values exactly on an inner edge go to the right bin, +T goes to the last bin (numpy's convention).
 * - NaN and ±Inf are counted in `nonFinite` and left out.
 * - All-zero data seen before any non-zero value is kept as a pending count and lands in the bin just right
 *   of zero once the range is known; an all-zero tensor ends with T = 0 and `snapshot()` returns a single
 *   zero-width range (min = max = 0).
 * - A constant non-zero tensor c gives T = |c| and all counts in an edge bin.
 * Memory is numBins float64 counts, whatever the amount of data.
 */
export class StreamingHistogram {
  readonly numBins: number;
  private counts: Float64Array;
  private threshold = 0;
  private pendingZeros = 0;
  private lo = Infinity;
  private hi = -Infinity;
  nonFinite = 0;
  total = 0;

  constructor(numBins = 2048) {
    if (!Number.isInteger(numBins) || numBins < 8 || numBins % 4 !== 0) {
      throw new RangeError(`numBins must be an integer multiple of 4 and at least 8, got ${numBins}`);
    }
    this.numBins = numBins;
    this.counts = new Float64Array(numBins);
  }

  /** Current half-width T of the histogram (0 while only zeros were seen). */
  get halfRange(): number {
    return this.threshold;
  }

  /**
   * Folds a batch in. `stats` are the batch's finite statistics when already known (reduced in the graph by the
   * calibrator); they must be exactly what batchStats(data) returns, or the counts are wrong.
   */
  observe(data: ArrayLike<number>, stats: BatchStats = batchStats(data)): void {
    const s = stats;
    this.nonFinite += s.nonFinite;
    if (s.finite === 0) return;
    this.lo = Math.min(this.lo, s.min);
    this.hi = Math.max(this.hi, s.max);
    const absMax = Math.max(Math.abs(s.min), Math.abs(s.max));
    if (absMax === 0) {
      // Only zeros (and maybe non-finite values) in this batch.
      this.addZeros(s.finite);
      return;
    }
    this.widenTo(absMax);
    if (data instanceof Float32Array) binFloat32(this.counts, data, this.threshold, s.nonFinite > 0);
    else binAny(this.counts, data, this.threshold);
    this.total += s.finite;
  }

  /**
   * Sets the first range before any data, to the absolute max of the batch about to be observed in parts: the
   * counts then equal observing that batch whole. No effect once a range exists, or for 0.
   */
  seed(absMax: number): void {
    if (this.threshold === 0 && absMax > 0 && Number.isFinite(absMax)) this.widenTo(absMax);
  }

  private addZeros(count: number): void {
    if (this.threshold === 0) this.pendingZeros += count;
    else this.counts[this.numBins / 2] += count;
    this.total += count;
  }

  /** Grows T by powers of two until it covers `absMax`, merging bin pairs at each doubling. */
  private widenTo(absMax: number): void {
    if (this.threshold === 0) {
      this.threshold = absMax;
      this.counts[this.numBins / 2] += this.pendingZeros;
      this.pendingZeros = 0;
      return;
    }
    while (this.threshold < absMax) {
      const n = this.numBins;
      const old = this.counts;
      const merged = new Float64Array(n);
      // Old bin i starts at new coordinate (n/2 + i)/2: old bins 2k and 2k+1 land in new bin n/4 + k.
      for (let i = 0; i < n; i++) merged[(n / 4) + (i >> 1)] += old[i];
      this.counts = merged;
      this.threshold *= 2;
    }
  }

  /** Copy of the current state; undefined before any finite value. */
  snapshot(): HistogramSnapshot | undefined {
    if (this.total === 0) return undefined;
    const n = this.numBins;
    const t = this.threshold;
    const edges = new Float64Array(n + 1);
    for (let i = 0; i <= n; i++) edges[i] = -t + (2 * t * i) / n;
    const counts = Float64Array.from(this.counts);
    if (this.pendingZeros > 0) counts[n / 2] += this.pendingZeros;
    return { edges, counts, min: this.lo, max: this.hi };
  }
}

// Bin b of [-t, t] in n bins holds [-t + b·2t/n, -t + (b+1)·2t/n). Truncation (| 0) equals Math.floor here: the
// product is >= 0 except for rounding just below -t, where both give a bin <= 0 that is clamped to 0, and it is
// at most n, far below 2^31. Same float64 arithmetic as before, so the same bins.

// Two integer count arrays, reused across calls (JS is single-threaded): consecutive values often fall in the same
// bin (a ReLU's zeros), and alternating arrays breaks the load-add-store chain on that one counter (10–25 % faster,
// measured). Counts are integers, so adding them up is exact.
let scratch: [Uint32Array, Uint32Array] | undefined;

/** The hot loop, specialized for float32 (what the calibration session returns); finite checks only when needed. */
function binFloat32(counts: Float64Array, data: Float32Array, t: number, mayHaveNonFinite: boolean): void {
  const n = counts.length;
  const perUnit = n / (2 * t);
  const last = n - 1;
  if (mayHaveNonFinite) {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v - v !== 0) continue;
      const b = ((v + t) * perUnit) | 0;
      counts[b > last ? last : b < 0 ? 0 : b]++;
    }
    return;
  }
  if (!scratch || scratch[0].length !== n) scratch = [new Uint32Array(n), new Uint32Array(n)];
  const [c0, c1] = scratch;
  const even = data.length & ~1;
  for (let i = 0; i < even; i += 2) {
    const a = ((data[i] + t) * perUnit) | 0;
    const b = ((data[i + 1] + t) * perUnit) | 0;
    c0[a > last ? last : a < 0 ? 0 : a]++;
    c1[b > last ? last : b < 0 ? 0 : b]++;
  }
  if (even < data.length) {
    const a = ((data[even] + t) * perUnit) | 0;
    c0[a > last ? last : a < 0 ? 0 : a]++;
  }
  for (let k = 0; k < n; k++) {
    counts[k] += c0[k] + c1[k];
    c0[k] = 0;
    c1[k] = 0;
  }
}

function binAny(counts: Float64Array, data: ArrayLike<number>, t: number): void {
  const n = counts.length;
  const perUnit = n / (2 * t);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) continue;
    let b = Math.floor((v + t) * perUnit);
    if (b >= n) b = n - 1;
    else if (b < 0) b = 0; // rounding at -T
    counts[b]++;
  }
}

/**
 * Folds a symmetric histogram into one of |x| over [0, T] with numBins/2 bins (for symmetric percentile).
 * Bin j of the result holds the bins at n/2 + j and n/2 - 1 - j.
 */
export function foldAbsolute(h: HistogramSnapshot): HistogramSnapshot {
  const n = h.counts.length;
  const half = n / 2;
  const counts = new Float64Array(half);
  const edges = new Float64Array(half + 1);
  for (let j = 0; j < half; j++) counts[j] = h.counts[half + j] + h.counts[half - 1 - j];
  for (let j = 0; j <= half; j++) edges[j] = h.edges[half + j];
  const absMax = Math.max(Math.abs(h.min), Math.abs(h.max));
  const absMin = h.min <= 0 && h.max >= 0 ? 0 : Math.min(Math.abs(h.min), Math.abs(h.max));
  return { edges, counts, min: absMin, max: absMax };
}
