// Batches along their first (batch) axis: split into runs, slice, join small ones, and hand them to a session.
// The calibrator uses these to bound what one run fetches (engine/calibrate/calibrator.ts); the measurements after
// it (engine/quant) to bound what one run of the model holds.

import type { ModelProto } from "onnx-buf";
import { rereadable, type CalibrationData, type Feeds, type TensorArray } from "../data/feeds";
import { rowActivationBytes } from "../onnx/shape-infer";

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

/** The first `max` rows of `kept` (keepingFirstRows' batches; whole ones where they cannot be cut). */
export function firstRows(kept: readonly Feeds[], max: number, batch: number | undefined): Feeds[] {
  const out: Feeds[] = [];
  let n = 0;
  for (const f of kept) {
    if (n >= max) break;
    const rows = commonRows(f);
    const take = rows === undefined || batch !== undefined ? (rows ?? 1) : Math.min(rows, max - n);
    out.push(take === rows || rows === undefined ? f : sliceRows(f, 0, take));
    n += take;
  }
  return out;
}

/** The first `max` kept rows as a measurement runs them: where the model's batch axis is free, cut into single rows
 *  and stacked into runs of alike shapes within MEASURE_RUN_BYTES; the kept batches as they are where it is fixed. */
export function measuredRows(model: ModelProto, kept: readonly Feeds[], max: number, batch: number | undefined): Feeds[] {
  const first = firstRows(kept, max, batch);
  if (batch !== undefined) return first;
  const rows = first.flatMap(eachRow);
  return stackAlike(rows, runRows(model, rows));
}

/**
 * What one measurement run's tensors may weigh (rowActivationBytes times its rows); onnxruntime holds part of them at
 * once: ppocr-v3-det-en on a 960×960 page makes 639 MB of tensors, and its session holds 0.28 GB more after a run;
 * 8 such pages stacked into one run took the output check to 2.0 GB. Within this cap the corpus at its own sizes
 * stacks 2–3 rows a run on its detectors and recognisers, every row on its audio models (docs/calibration.md).
 */
export const MEASURE_RUN_BYTES = 256 * 2 ** 20;

/** How many of `rows` (single rows) one measurement run stacks: MEASURE_RUN_BYTES over the largest row's tensors, at
 *  least 1; all where inference knows no size. */
function runRows(model: ModelProto, rows: readonly Feeds[]): number {
  const dims = new Map<string, Record<string, readonly number[]>>();
  for (const r of rows) {
    const d = Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.dims]));
    dims.set(JSON.stringify(d), d);
  }
  const most = Math.max(0, ...[...dims.values()].map((d) => rowActivationBytes(model, d)));
  return most > 0 ? Math.max(1, Math.floor(MEASURE_RUN_BYTES / most)) : Infinity;
}

/** Consecutive row batches whose inputs have the same shapes past the row axis, stacked up to `perRun` rows a run. */
export function stackAlike(rows: readonly Feeds[], perRun: number): Feeds[] {
  const key = (f: Feeds) => (commonRows(f) === undefined ? undefined : Object.entries(f).map(([k, t]) => `${k}:${t.dims.slice(1).join("x")}`).join(","));
  const out: Feeds[][] = [];
  let last: string | undefined;
  let stacked = 0;
  for (const f of rows) {
    const k = key(f);
    const n = commonRows(f) ?? 1;
    if (k !== undefined && k === last && stacked + n <= perRun) {
      out[out.length - 1]!.push(f);
      stacked += n;
    } else {
      out.push([f]);
      stacked = n;
    }
    last = k;
  }
  return out.map((g) => (g.length === 1 ? g[0]! : stackRows(g)));
}

/**
 * `data` one row (sample) a batch, where `free` (the model's batch axis is free): the low-bit passes count, keep and
 * run rows, so one file of 128 stacked samples is read as a folder of 128 single ones would be: the same rows
 * measured, the same file written, and no run of the model over the whole batch (ppocr-v3-det-en int4 on 128
 * stacked 320×320 samples: 1.64 GB peak and 252 s before, 545 MB and 37 s now). Read again as often as `data` can
 * be.
 */
export function singleRows(data: CalibrationData, free: boolean): CalibrationData {
  if (!free) return data;
  async function* rows(): AsyncGenerator<Feeds> {
    for await (const feeds of data) yield* eachRow(feeds);
  }
  return rereadable(data) ? { [Symbol.asyncIterator]: rows } : rows();
}
