// Min/max observer: the running range of one tensor, plain or as a moving average (ORT's MinMaxCalibrater).
// Pure code: it is fed either whole batches (histogram path) or per-batch scalars reduced in the graph.

/** Options of a min/max observer. */
export interface MinMaxOptions {
  /** Exponential moving average of per-batch min/max instead of the overall min/max. */
  movingAverage?: boolean;
  /** Weight of a new batch in the moving average (ORT's `averaging_constant`, default 0.01). */
  averagingConstant?: number;
}

/** Finite statistics of one batch; `nonFinite` counts the NaN/±Inf values that were skipped. */
export interface BatchStats {
  min: number;
  max: number;
  finite: number;
  nonFinite: number;
}

/**
 * Min and max of the finite values of `data`. NaN and ±Inf are counted, not used: one bad value must not
 * turn the whole range into NaN or infinity. With no finite value, min is +Inf and max is -Inf.
 */
export function batchStats(data: ArrayLike<number>): BatchStats {
  let min = Infinity;
  let max = -Infinity;
  let nonFinite = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {
      // NaN - NaN and Inf - Inf are both NaN: one comparison catches both.
      nonFinite++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max, finite: data.length - nonFinite, nonFinite };
}

/**
 * Tracks the range of one tensor across batches.
 *
 * Edge cases: a batch with no finite value is ignored (it neither sets nor moves the range); an all-zero or
 * constant tensor gives min == max (the scale math widens it to include zero and guards the tiny range);
 * before any finite value `range()` is undefined.
 *
 * Moving average follows ORT's MinMaxCalibrater exactly: within one collection round (one `collect()` call,
 * ended by `commit()`) the per-batch minima and maxima are AVERAGED; each later round then moves the range by
 * `c * (round - current)`. (A per-batch exponential average would let the first batches dominate.)
 */
export class MinMaxObserver {
  private lo = Infinity;
  private hi = -Infinity;
  private rounds = 0;
  private pendingMin = 0;
  private pendingMax = 0;
  private pending = 0;
  private readonly movingAverage: boolean;
  private readonly c: number;
  /** Count of NaN/±Inf values seen (and skipped). */
  nonFinite = 0;

  constructor(options: MinMaxOptions = {}) {
    this.movingAverage = options.movingAverage ?? false;
    this.c = options.averagingConstant ?? 0.01;
    if (!(this.c > 0 && this.c <= 1)) {
      throw new RangeError(`averagingConstant must be in (0, 1], got ${this.c}`);
    }
  }

  /** Feeds a whole batch of values. */
  observe(data: ArrayLike<number>): void {
    this.observeStats(batchStats(data));
  }

  /** Feeds a batch's statistics (batchStats of it, or the same reduced elsewhere). */
  observeStats(s: BatchStats): void {
    this.nonFinite += s.nonFinite;
    if (s.finite > 0) this.observeRange(s.min, s.max);
  }

  /** Feeds the finite min/max of one batch (already reduced, e.g. by ReduceMin/ReduceMax in the graph). */
  observeRange(min: number, max: number): void {
    if (!(Number.isFinite(min) && Number.isFinite(max)) || min > max) return;
    if (this.movingAverage) {
      this.pendingMin += min;
      this.pendingMax += max;
    } else {
      this.pendingMin = this.pending === 0 ? min : Math.min(this.pendingMin, min);
      this.pendingMax = this.pending === 0 ? max : Math.max(this.pendingMax, max);
    }
    this.pending++;
  }

  /** The range with the current round merged in, without ending the round. */
  private merged(): { min: number; max: number } | undefined {
    if (this.pending === 0) return this.rounds === 0 ? undefined : { min: this.lo, max: this.hi };
    const min = this.movingAverage ? this.pendingMin / this.pending : this.pendingMin;
    const max = this.movingAverage ? this.pendingMax / this.pending : this.pendingMax;
    if (this.rounds === 0) return { min, max };
    if (this.movingAverage) return { min: this.lo + this.c * (min - this.lo), max: this.hi + this.c * (max - this.hi) };
    return { min: Math.min(this.lo, min), max: Math.max(this.hi, max) };
  }

  /** Ends a collection round (the Calibrator calls it at the end of each collect()). */
  commit(): void {
    const r = this.merged();
    if (this.pending === 0 || !r) return;
    [this.lo, this.hi] = [r.min, r.max];
    this.rounds++;
    this.pending = 0;
    this.pendingMin = 0;
    this.pendingMax = 0;
  }

  /** The observed range, or undefined when no finite value was seen. */
  range(): { min: number; max: number } | undefined {
    return this.merged();
  }
}
