// The calibration run planner: which tensors go to which session, and how the data's batches become runs of the
// model (small batches joined, large ones split along the first axis) so that what one run fetches stays under a
// byte cap. Pure bookkeeping: no session, no observer; the calibrator asks and runs.

import type { CalibrationOptions } from "./types";

/** Default cap on the bytes of observed tensors one run holds (see CalibrationOptions.maxRunBytes). */
export const MAX_RUN_BYTES = 16 * 2 ** 20;
/** Joined small batches fill only this fraction of the cap: joining saves run overhead, not memory, and at the
 *  full cap it added 30–50 MiB of peak on the fixtures (single-sample files, measured). */
const JOIN_SHARE = 4;

export class RunPlanner {
  /** Bytes of whole tensors one row (sample) fetches, learned from the first run that fetches whole tensors. */
  private rowBytes: number | undefined;
  private readonly cap: number;

  constructor(
    private readonly options: CalibrationOptions,
    /** The model's inputs all have a free first (batch) axis, so a batch can run as several smaller ones. */
    readonly splittable: boolean,
    /** Some observer needs whole tensors (a histogram): runs fetch them, so the cap applies. */
    readonly wholeTensors: boolean,
  ) {
    this.cap = options.maxRunBytes ?? MAX_RUN_BYTES;
  }

  /** Min/max alone: every tensor is reduced in the graph and comes back as scalars. */
  get reduceOnly(): boolean {
    return !this.wholeTensors;
  }

  /**
   * The tensors of each calibration session. Reduced outputs are scalars: one session. Whole tensors: at most
   * tensorsPerSession exposed per session, because exposed outputs are never reused by onnxruntime's allocator.
   */
  sessionTensors(tensors: readonly string[]): string[][] {
    const per = this.reduceOnly ? tensors.length : Math.max(1, this.options.tensorsPerSession ?? 256);
    const chunks: string[][] = [];
    for (let i = 0; i < tensors.length; i += per) chunks.push(tensors.slice(i, i + per));
    return chunks;
  }

  /**
   * How many rows small batches may be joined into (0: none). Histogram methods only (min/max reduces in the
   * graph: nothing fetched to bound), never with a moving average (per batch), never before the first batch has
   * run alone (it sets the histograms' first ranges, and what a row costs): `unseeded` says some histogram still
   * has no range, and a histogram takes its first range from the first batch it sees, which must be one sample.
   */
  joinRows(unseeded: boolean): number {
    if (!this.splittable || !this.wholeTensors || this.options.movingAverage || !this.rowBytes) return 0;
    if (unseeded || this.options.batchSize !== undefined) return 0;
    return Number.isFinite(this.cap) ? Math.floor(this.cap / JOIN_SHARE / this.rowBytes) : 0;
  }

  /**
   * True when a batch of `rows` runs in parts: what a run holds over the cap (or a row's cost still unknown), on a
   * model whose batch axis is free. Reduce-only runs fetch scalars, but onnxruntime still holds the batch's
   * activations while it runs (a PP-OCR recogniser, 32 rows of 3×48×320: 3 GB), so they split too; their
   * statistics are merged per batch, which a moving average needs. Whole tensors are fed per part, so with a
   * moving average (per batch) they are never split.
   */
  splits(rows: number | undefined): boolean {
    if (!this.splittable || rows === undefined || rows < 2) return false;
    if (this.wholeTensors && this.options.movingAverage) return false;
    const fits = !Number.isFinite(this.cap) || (this.rowBytes !== undefined && rows * this.rowBytes <= this.cap);
    return !fits;
  }

  /** Rows of the next part of a split batch: one first, to learn what a row costs; then as many as the cap allows. */
  partRows(remaining: number): number {
    return this.rowBytes === undefined ? 1 : Math.min(remaining, Math.max(1, Math.floor(this.cap / this.rowBytes)));
  }

  /** Learns a row's cost from the first run: `elements` float32 values observed (fetched or reduced) for `rows` rows. */
  learn(elements: number, rows: number | undefined): void {
    if (rows) this.rowBytes ??= (elements * 4) / rows;
  }
}
