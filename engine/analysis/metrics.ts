// Per-sample scores for evaluate(): each metric turns one model's outputs (and labels, or the reference model's
// outputs) into one number per sample plus an aggregate over a subset of samples. Keeping scores per sample is
// what makes paired confidence intervals for differences possible.

import type { Tensor } from "../data/feeds";
import { isStringData } from "../runtime/tensors";
import { ctcCollapse } from "../calibrate/activation-precision";

/** A model output or label tensor seen as `rows` samples of `cols` numbers each. */
export interface Rows {
  rows: number;
  cols: number;
  data: ArrayLike<number>;
}

/** A tensor's values as numbers (64-bit integers through Number); strings are refused. */
function numbers(t: Tensor, what: string): ArrayLike<number> {
  const d = t.data;
  if (isStringData(d)) throw new Error(`${what} holds strings; metrics need numbers`);
  return d instanceof BigInt64Array || d instanceof BigUint64Array ? Float64Array.from(d, (v) => Number(v)) : d;
}

export function asRows(t: Tensor, what: string): Rows {
  const rows = t.dims[0];
  if (rows === undefined) throw new Error(`${what} is a scalar; expected one row per sample`);
  const cols = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return { rows, cols, data: numbers(t, what) };
}

export function argmaxRows(x: Rows): Int32Array {
  const out = new Int32Array(x.rows);
  for (let r = 0; r < x.rows; r++) {
    let best = 0;
    let bestV = -Infinity;
    for (let c = 0; c < x.cols; c++) {
      const v = x.data[r * x.cols + c]!;
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

/** Class ids from a label tensor: one integer per sample ([N] or [N,1]), or one-hot rows ([N,C]). */
export function classLabels(t: Tensor): Int32Array {
  const x = asRows(t, "labels");
  if (x.cols === 1) return Int32Array.from({ length: x.rows }, (_, i) => x.data[i]!);
  return argmaxRows(x);
}

/** 1 where the label is among the k largest logits of the row (ties broken towards lower indices), else 0. */
export function topkCorrect(logits: Rows, labels: Int32Array, k: number): Uint8Array {
  if (logits.rows !== labels.length) throw new Error(`output has ${logits.rows} rows but there are ${labels.length} labels`);
  if (k < 1 || k > logits.cols) throw new Error(`top-${k} needs 1 ≤ k ≤ ${logits.cols} classes`);
  const out = new Uint8Array(logits.rows);
  for (let r = 0; r < logits.rows; r++) {
    const label = labels[r]!;
    if (label < 0 || label >= logits.cols) throw new Error(`label ${label} of sample ${r} is outside the output's ${logits.cols} classes`);
    const lv = logits.data[r * logits.cols + label]!;
    let above = 0;
    for (let c = 0; c < logits.cols; c++) {
      const v = logits.data[r * logits.cols + c]!;
      if (v > lv || (v === lv && c < label)) above++;
    }
    out[r] = above < k ? 1 : 0;
  }
  return out;
}

/** Macro-averaged F1 over the classes that occur in labels or predictions, on the samples in `idx`. */
export function macroF1(pred: Int32Array, label: Int32Array, idx?: Int32Array): number {
  const tp = new Map<number, number>();
  const fp = new Map<number, number>();
  const fn = new Map<number, number>();
  const inc = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);
  const n = idx ? idx.length : pred.length;
  for (let j = 0; j < n; j++) {
    const i = idx ? idx[j]! : j;
    if (pred[i] === label[i]) inc(tp, label[i]!);
    else {
      inc(fp, pred[i]!);
      inc(fn, label[i]!);
    }
  }
  const classes = new Set([...tp.keys(), ...fp.keys(), ...fn.keys()]);
  let sum = 0;
  for (const c of classes) {
    const t = tp.get(c) ?? 0;
    const denom = 2 * t + (fp.get(c) ?? 0) + (fn.get(c) ?? 0);
    sum += denom === 0 ? 0 : (2 * t) / denom;
  }
  return classes.size === 0 ? 0 : sum / classes.size;
}

function checkSameShape(a: Rows, b: Rows, what: string): void {
  if (a.rows !== b.rows || a.cols !== b.cols) throw new Error(`${what}: shapes differ (${a.rows}×${a.cols} vs ${b.rows}×${b.cols})`);
}

export function perSampleMse(a: Rows, b: Rows): Float64Array {
  checkSameShape(a, b, "MSE");
  const out = new Float64Array(a.rows);
  for (let r = 0; r < a.rows; r++) {
    let s = 0;
    for (let c = 0; c < a.cols; c++) s += (a.data[r * a.cols + c]! - b.data[r * a.cols + c]!) ** 2;
    out[r] = s / a.cols;
  }
  return out;
}

/** PSNR in dB per sample; an exact match is capped at 100 dB so means stay finite. */
export function perSamplePsnr(a: Rows, b: Rows, peak: number): Float64Array {
  return perSampleMse(a, b).map((m) => (m === 0 ? 100 : Math.min(100, 10 * Math.log10((peak * peak) / m))));
}

/** Cosine similarity per sample; two all-zero rows count as identical (1), one zero row as 0. */
export function perSampleCosine(a: Rows, b: Rows): Float64Array {
  checkSameShape(a, b, "cosine similarity");
  const out = new Float64Array(a.rows);
  for (let r = 0; r < a.rows; r++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let c = 0; c < a.cols; c++) {
      const x = a.data[r * a.cols + c]!;
      const y = b.data[r * a.cols + c]!;
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    out[r] = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
  }
  return out;
}

/** Levenshtein distance between two token sequences. */
export function editDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

export interface SequenceOptions {
  /** Token id removed from label and prediction sequences (padding). Default -1. */
  pad?: number;
  /** When set, predictions are CTC-decoded: repeats collapsed, then this blank id removed. */
  ctcBlank?: number;
  /** Token id that separates words, for WER. Default 0 (with pad -1). */
  space?: number;
}

/**
 * Token sequences per sample: integer rows ([N,T]) as they are, or score rows ([N,T,V]) by argmax over the last
 * axis; padding removed; CTC collapse when asked.
 */
export function sequences(t: Tensor, opts: SequenceOptions, isPrediction: boolean): number[][] {
  const pad = opts.pad ?? -1;
  let ids: number[][];
  if (t.dims.length === 3) {
    const [n, steps, vocab] = t.dims as [number, number, number];
    const am = argmaxRows({ rows: n * steps, cols: vocab, data: numbers(t, "sequence tensor") });
    ids = Array.from({ length: n }, (_, i) => Array.from(am.subarray(i * steps, (i + 1) * steps)));
  } else if (t.dims.length === 2) {
    const x = asRows(t, "sequence tensor");
    ids = Array.from({ length: x.rows }, (_, i) => Array.from({ length: x.cols }, (_, j) => Number(x.data[i * x.cols + j])));
  } else {
    throw new Error(`sequence metrics need [N,T] token ids or [N,T,V] scores, got dims [${t.dims.join(",")}]`);
  }
  return ids.map((seq) => {
    let s = seq;
    if (isPrediction && opts.ctcBlank !== undefined) s = ctcCollapse(s, opts.ctcBlank);
    return s.filter((v) => v !== pad);
  });
}

export function splitWords(seq: number[], space: number): number[][] {
  const words: number[][] = [[]];
  for (const v of seq) {
    if (v === space) words.push([]);
    else words[words.length - 1]!.push(v);
  }
  return words.filter((w) => w.length > 0);
}

/** Edit counts and reference lengths per sample, so corpus error rate = Σ edits / Σ lengths over any subset. */
export function errorCounts(pred: number[][], ref: number[][], unit: "char" | "word", space: number): { edits: Float64Array; lengths: Float64Array } {
  if (pred.length !== ref.length) throw new Error(`${pred.length} predicted sequences but ${ref.length} references`);
  const edits = new Float64Array(pred.length);
  const lengths = new Float64Array(pred.length);
  for (let i = 0; i < pred.length; i++) {
    if (unit === "char") {
      edits[i] = editDistance(pred[i]!, ref[i]!);
      lengths[i] = ref[i]!.length;
    } else {
      // Words compared as whole tokens: map each distinct word to one id.
      const dict = new Map<string, number>();
      const ids = (ws: number[][]) => ws.map((w) => dict.get(w.join(",")) ?? (dict.set(w.join(","), dict.size), dict.size - 1));
      const r = ids(splitWords(ref[i]!, space));
      edits[i] = editDistance(ids(splitWords(pred[i]!, space)), r);
      lengths[i] = r.length;
    }
  }
  return { edits, lengths };
}
