// Batches along their first (batch) axis: split into runs, slice, join small ones, and hand them to a session.
// The calibrator uses these to bound what one run fetches (engine/calibrate/calibrator.ts).

import type { Feeds, TensorArray } from "../data/feeds";

/** Splits a batch whose inputs all have more than `max` rows into runs of at most `max` rows. */
export function* splitRows(feeds: Feeds, max: number | undefined): Generator<Feeds> {
  const entries = Object.entries(feeds);
  const rows = entries[0]?.[1].dims[0];
  if (!max || rows === undefined || rows <= max || entries.some(([, t]) => t.dims[0] !== rows)) {
    yield feeds;
    return;
  }
  for (let s = 0; s < rows; s += max) yield sliceRows(feeds, s, Math.min(max, rows - s));
}

/** Rows [start, start + n) of every input (all inputs share the first axis). */
export function sliceRows(feeds: Feeds, start: number, n: number): Feeds {
  const part: Record<string, Feeds[string]> = {};
  for (const [k, t] of Object.entries(feeds)) {
    const per = t.data.length / t.dims[0]!;
    part[k] = { data: (t.data as TensorArray).subarray(start * per, (start + n) * per), dims: [n, ...t.dims.slice(1)], type: t.type };
  }
  return part;
}

/** Each row of a batch on its own, as views of it (the whole batch where it has no row axis). */
export function eachRow(feeds: Feeds): Feeds[] {
  const rows = commonRows(feeds);
  return rows === undefined || rows === 1 ? [feeds] : Array.from({ length: rows }, (_, i) => sliceRows(feeds, i, 1));
}

/** Rows [start, start + n) of every input, copied (kept after the caller's buffers are reused). */
export function copyRows(feeds: Feeds, start: number, n: number): Feeds {
  const part: Record<string, Feeds[string]> = {};
  for (const [k, t] of Object.entries(sliceRows(feeds, start, n))) part[k] = { ...t, data: (t.data as TensorArray).slice() };
  return part;
}

/** The rows every input of the batch has along its first axis, or undefined when they differ. */
export function commonRows(feeds: Feeds): number | undefined {
  const rows = Object.values(feeds).map((t) => t.dims[0]);
  return rows.length && rows.every((r) => r === rows[0]) ? rows[0] : undefined;
}

/** Batches that share their inputs' names, types and dims past the first axis, joined along the first axis. */
export function stackRows(batches: readonly Feeds[]): Feeds {
  const out: Record<string, Feeds[string]> = {};
  for (const [k, t0] of Object.entries(batches[0]!)) {
    const parts = batches.map((b) => b[k]!.data as TensorArray);
    const total = parts.reduce((a, p) => a + p.length, 0);
    const data = new (parts[0]!.constructor as new (n: number) => TensorArray)(total);
    let at = 0;
    for (const p of parts) {
      (data as Float32Array).set(p as Float32Array, at);
      at += p.length;
    }
    const rows = batches.reduce((a, b) => a + b[k]!.dims[0]!, 0);
    out[k] = { data, dims: [rows, ...t0.dims.slice(1)], type: t0.type };
  }
  return out;
}

/** True when `b` can join `a` along the first axis (same inputs, types and trailing dims). */
export function stackable(a: Feeds, b: Feeds): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => {
    const [x, y] = [a[k]!, b[k]];
    return !!y && x.data.constructor === y.data.constructor && x.type === y.type && x.dims.length === y.dims.length &&
      x.dims.every((d, i) => i === 0 || d === y.dims[i]) && !Array.isArray(x.data);
  });
}
