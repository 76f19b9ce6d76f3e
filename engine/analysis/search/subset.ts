// The samples a ranking runs on when it is not given its own: a few rows of the search data, spread evenly over it.
// The ranking only orders the nodes (one measurement per node); the search's own steps check their candidates on all
// the data, so ranking on 32 of 128 samples costs a quarter of the runs and leaves what is chosen measured on all.
import type { Feeds } from "../../data/feeds";
import { commonRows, sliceRows, stackRows } from "../../calibrate/rows";

/** Samples a search ranks its nodes on by default (SearchOptions.rankSamples). */
export const RANK_SAMPLES = 32;

/** What spreadRows picked: the feeds, and how many samples (rows) they hold of how many. */
export interface RowSubset {
  data: readonly Feeds[];
  rows: number;
  of: number;
}

/**
 * `k` rows of `data` spread evenly over it (row floor((j + ½)·n/k) for j < k): the same rows every time, from every
 * part of the data. Batches keep their order; a batch of which only some rows are picked is cut down to them, unless
 * `fixedBatch` (the model's batch axis is a fixed size): then whole batches are taken, those holding a picked row.
 * All of `data` (the same array) when it has no more than `k` rows.
 */
export function spreadRows(data: readonly Feeds[], k: number, fixedBatch = false): RowSubset {
  if (!(Number.isInteger(k) && k >= 1) && k !== Infinity) throw new Error(`rankSamples: ${k} must be a whole number ≥ 1 (or Infinity for all the data)`);
  const sizes = data.map((b) => commonRows(b) ?? 1);
  const n = sizes.reduce((a, b) => a + b, 0);
  if (n <= k) return { data, rows: n, of: n };
  const picked: Feeds[] = [];
  let rows = 0;
  let j = 0;
  let first = 0;
  data.forEach((batch, b) => {
    const size = sizes[b]!;
    const mine: number[] = [];
    for (; j < k && Math.floor(((j + 0.5) * n) / k) < first + size; j++) mine.push(Math.floor(((j + 0.5) * n) / k) - first);
    first += size;
    if (mine.length === 0) return;
    if (fixedBatch || mine.length === size) {
      picked.push(batch);
      rows += size;
      return;
    }
    picked.push(stackRows(mine.map((r) => sliceRows(batch, r, 1))));
    rows += mine.length;
  });
  return { data: picked, rows, of: n };
}
