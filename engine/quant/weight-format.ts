// weightType "auto": uint8 weights (U8U8) or 7-bit int8 weights (U8S7), chosen per model by measuring the outputs.
// Both are exact on every CPU (u8×s7 pair sums cannot saturate AVX2's VPMADDUBSW), so the file never depends on
// the machine that runs it; U8S7 runs onnxruntime's U8S8 kernels, which on conv models are far faster than its
// U8U8 ones (mlsd-320-large 0.78× → 3.05× FP32), but half the weight resolution costs some models accuracy
// (ppocr-v3-rec-en −2.4 pp). So both are measured on the same rows, with the same activation ranges, at the model's
// outputs, and U8S7 is written only where it is not measurably worse (WEIGHT_TIE_DB; docs/int8-speed.md). Where the
// whole model is, U8S7 may still be free on the Convs that do most of the work (ppocr-v3-det-en: its two 96→24 3×3
// Convs at a quarter of the input's resolution do 58 % of the multiply-adds and took 49 of its 207 ms at batch 8
// under U8U8, 10 under U8S7, for 0.1 dB): those are measured the same way, the heaviest first (PARTIAL_SHARES).
import type { GraphProto } from "onnx-buf";
import type { Feeds } from "../data/feeds";
import { forEachGraph, onCompared } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { makeValueInfo, valueInfoTensor } from "../onnx/proto";
import { inferShapes, modelOpset } from "../onnx/shape-infer";
import { energiesOn, noiseToDb, outputsOn, worstRatio, type MeasureOptions, type OutputEnergy, type RowEnergies } from "../calibrate/activation-precision";
import type { OutputTensor } from "../runtime/tensors";
import { commonRows } from "../calibrate/rows";
import { PROTECT_ABOVE_DB } from "./protect";
import type { Difference, WeightType } from "./types";

export interface WeightFormat {
  type: WeightType;
  reduceRange: boolean;
}

export const U8U8: WeightFormat = { type: "uint8", reduceRange: false };
export const U8S7: WeightFormat = { type: "int8", reduceRange: true };

/**
 * U8S7 is chosen when its worst-output SQNR is not measurably lower than U8U8's by more than this (dB): a lower
 * bound of the difference must stay above −0.5 dB, the per-row one (mean less two standard errors, one-sided
 * ~97.5 %) or the pooled one (jackknife; Difference in ./types). A bound, not the pooled figures: on the corpus detectors
 * one row's worst-output SQNR moves 1.5–3 dB between the formats either way, so pooled figures on 16 calibration
 * rows picked U8S7 where 128 held-out samples then lost 0.8–1 dB (blazeface-front, ppocr-v3-det-en);
 * docs/int8-speed.md "weightType auto".
 */
export const WEIGHT_TIE_DB = 0.5;

/**
 * Where the whole model reads at or below PROTECT_ABOVE_DB (0 dB: its outputs' error at least their signal, where
 * protection does not measure either) the per-row bound cannot decide: rows' differences spread by several dB
 * either way, and the bound flipped with the calibration set. mlsd-320-large (agreement with FP32 ≥ 99.96 % under
 * either format), calibration seeds 1 / 2 / 3: mean +1.06 / +0.45 / +0.38 dB, bound −0.38 / −1.23 / −2.21 dB, so
 * U8S7 (3.0× FP32), U8U8 (0.8×) and U8S7 on 3 of 58 Convs. There the mean alone decides, against the same tie:
 * mlsd-320-large takes U8S7 on all three, mlsd-320-tiny (mean −0.88 dB; held out U8S7 −3.1 dB and 99.91 %
 * agreement against U8U8's −1.9 dB and 99.95 %) stays U8U8. (Those figures were M-LSD's peak mask read as it is;
 * since the measurements compare the heatmap behind it (comparedOutputs) no corpus model reads at or below 0 dB.)
 */
export const MEAN_DECIDES_AT_OR_BELOW_DB = PROTECT_ABOVE_DB;

/**
 * Whether every weight goes U8S7, given U8U8's worst-output noise/signal and the per-row difference U8S7 − U8U8:
 * "bound" where the difference's lower bound clears the tie, "mean" where the model reads at or below
 * MEAN_DECIDES_AT_OR_BELOW_DB and the mean does; undefined: not on the whole model.
 */
export function wholeModelU8S7(u8u8Noise: number, d: { mean: number; lower: number; pooledLower?: number; rows: number }): "bound" | "mean" | undefined {
  if (d.rows < 2) return undefined;
  if (boundOf(d) >= -WEIGHT_TIE_DB) return "bound";
  return noiseToDb(u8u8Noise) <= MEAN_DECIDES_AT_OR_BELOW_DB && d.mean >= -WEIGHT_TIE_DB ? "mean" : undefined;
}

/** Rows whose worst-output noise is below this (100 dB) count as exact: no difference to measure there. */
const EXACT = 1e-10;

/**
 * Where the whole model measures worse with U8S7, U8U8 with U8S7 on the heaviest Convs only: the smallest set of
 * Convs, heaviest first, that does at least each of these shares of all Convs' multiply-adds, measured in turn
 * against U8U8 (PARTIAL_TIE_DB) until one fails; the largest that passed is written. onnxruntime's U8S8 kernels
 * repay in proportion to the multiply-adds, while the outputs' loss from 7-bit weights comes from where a layer
 * sits (the stem, the depthwise Convs), not from its size: on ppocr-v3-det-en the top 65 % is three FPN Convs that
 * cost 0.04 dB on 32 held-out samples, all 72 Convs 0.95 dB.
 */
export const PARTIAL_SHARES = [0.5, 0.6, 0.7, 0.8, 0.9] as const;

/**
 * A chunk of Convs joins the U8S7 set only if the set's lower bound stays above −PARTIAL_TIE_DB: tighter than the
 * whole model's tie, because on the calibration rows (whose activation ranges were fitted there) 7-bit weights
 * measure better than on held-out rows (ppocr-v3-det-en, every Conv: +0.11 dB on its 16 calibration rows, −0.50 dB
 * on 16 held-out rows); its set with the 0.5 dB tie (14 Convs, 80 % of the multiply-adds, lower bound −0.41 dB) lost
 * 0.24 dB on 32 held-out samples for 5 % more speed.
 */
export const PARTIAL_TIE_DB = 0.15;

/** U8U8 with some Conv weights (by initializer name) in U8S7. */
export type WeightFormats = ReadonlyMap<string, WeightFormat>;

export interface WeightChoice extends WeightFormat {
  /** Worst-output noise/signal energy against the float model with each format, pooled over the rows. */
  noise: { u8u8: number; u8s7: number };
  /** Worst-output SQNR difference U8S7 − U8U8 (dB), per row and pooled, with their lower bounds (Difference). */
  difference: Difference;
  /** U8U8 chosen with these weights in U8S7 (PARTIAL_SHARES); undefined: one format for every weight. */
  byTensor?: WeightFormats;
  why: string;
}

/** A Conv's weight and its multiply-adds on one row (unknown output size: its weight's element count). */
interface ConvWork {
  weight: string;
  macs: number;
}

/**
 * The Convs with a constant weight, heaviest first (graph order on ties), their multiply-adds found by static shape
 * inference with the graph inputs sized as `row` (weight elements × output positions).
 */
export function convWork(model: Model, row: Feeds): ConvWork[] {
  const out = layerWork(model, row)
    .filter((l) => l.opType === "Conv" && !l.inBody)
    .map((l) => ({ weight: l.weight, macs: l.macs }));
  return out.map((c, i) => ({ c, i })).sort((a, b) => b.c.macs - a.c.macs || a.i - b.i).map(({ c }) => c);
}

/**
 * The weighted layers (Conv, ConvTranspose, Gemm, MatMul with a constant weight) in graph order, each with its
 * multiply-adds on `row` by static shape inference with the graph inputs sized as `row`: weight elements × positions
 * (a Conv's output positions, a ConvTranspose's input positions, a Gemm's or MatMul's rows). A tensor inference
 * cannot size counts one position, and so does a layer inside an If/Loop/Scan body (its weight elements: at least
 * what one run of the body does).
 */
export function layerWork(model: Model, row: Feeds): LayerWork[] {
  const g = model.graph;
  const sized: GraphProto = {
    ...g,
    input: g.input.map((v) => {
      const t = row[v.name];
      const type = valueInfoTensor(v)?.elemType;
      return t && type !== undefined ? makeValueInfo(v.name, type, t.dims) : v;
    }),
  };
  const shapes = inferShapes(sized, modelOpset(model.proto)).tensors;
  const dims = new Map<string, number[]>();
  forEachGraph(g, (graph) => {
    for (const t of graph.initializer) if (!dims.has(t.name)) dims.set(t.name, t.dims.map(Number));
  });
  const product = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);
  const sizeOf = (tensor: string, from: number, to?: number) => {
    const d = shapes.get(tensor)?.shape?.slice(from, to);
    return d?.every((x): x is number => typeof x === "number") ? product(d) : 1;
  };
  const out: LayerWork[] = [];
  forEachGraph(g, (graph, depth) => {
    for (const n of graph.node) {
      const w = n.input[1];
      const wd = w && WEIGHTED.has(n.opType) ? dims.get(w) : undefined;
      if (!wd || wd.length < (n.opType.startsWith("Conv") ? 3 : 2)) continue;
      const positions =
        depth > 0 ? 1
        : n.opType === "Conv" ? sizeOf(n.output[0]!, 2)
        : n.opType === "ConvTranspose" ? sizeOf(n.input[0]!, 2)
        : sizeOf(n.output[0]!, 0, -1);
      out.push({ weight: w!, opType: n.opType, macs: product(wd) * positions, inBody: depth > 0 });
    }
  });
  return out;
}

const WEIGHTED = new Set(["Conv", "ConvTranspose", "Gemm", "MatMul"]);

interface LayerWork extends ConvWork {
  opType: string;
  inBody: boolean;
}

/** The heaviest Convs doing at least `share` of all Convs' multiply-adds. */
function heaviest(convs: readonly ConvWork[], share: number): ConvWork[] {
  const total = convs.reduce((a, c) => a + c.macs, 0);
  let sum = 0;
  const out: ConvWork[] = [];
  for (const c of convs) {
    if (sum >= share * total) break;
    out.push(c);
    sum += c.macs;
  }
  return out;
}

/** The bound a rule compares with its threshold: the larger of the per-row and pooled lower bounds (the per-row one
 *  alone where only it was measured). */
export const boundOf = (d: { lower: number; pooledLower?: number }): number => Math.max(d.lower, d.pooledLower ?? -Infinity);

/** "per row: mean +0.58 dB, lower bound +0.03 dB; pooled +0.59 dB, lower bound −0.10 dB" (`per`: "row" or "batch"). */
export const differenceText = (d: Difference, per = "row"): string =>
  `per ${per}: mean ${signed(d.mean)}, lower bound ${d.rows > 1 ? signed(d.lower) : "none"}; pooled ${signed(d.pooled)}, lower bound ${d.rows > 1 ? signed(d.pooledLower) : "none"}`;

/** Per-output energies summed over `rows`. */
export function summed(rows: readonly ReadonlyMap<string, OutputEnergy>[]): Map<string, OutputEnergy> {
  const acc = new Map<string, OutputEnergy>();
  for (const r of rows)
    for (const [k, e] of r) {
      const a = acc.get(k) ?? { signal: 0, noise: 0 };
      a.signal += e.signal;
      a.noise += e.noise;
      acc.set(k, a);
    }
  return acc;
}

/** `sum` less one row's energies. */
function without(sum: ReadonlyMap<string, OutputEnergy>, row: ReadonlyMap<string, OutputEnergy>): Map<string, OutputEnergy> {
  const out = new Map<string, OutputEnergy>();
  for (const [k, e] of sum) {
    const r = row.get(k);
    out.set(k, r ? { signal: e.signal - r.signal, noise: Math.max(0, e.noise - r.noise) } : e);
  }
  return out;
}

/** The worst-output SQNR difference `got` − `base` (dB) of two pooled energies, exact rows floored at EXACT. */
const pooledDb = (base: ReadonlyMap<string, OutputEnergy>, got: ReadonlyMap<string, OutputEnergy>) =>
  10 * Math.log10(Math.max(worstRatio(base), EXACT) / Math.max(worstRatio(got), EXACT));

/** `got` − `base` in worst-output SQNR (dB), per row and pooled, with their lower bounds (Difference). */
export function rowDifference(base: RowEnergies, got: RowEnergies): Difference {
  const d = base.rows.map((b, i) => 10 * Math.log10(Math.max(worstRatio(b), EXACT) / Math.max(worstRatio(got.rows[i]!), EXACT)));
  const n = d.length;
  const mean = d.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  const sd = n > 1 ? Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : Infinity;
  const lower = mean - (2 * sd) / Math.sqrt(n);
  const [b, g] = [summed(base.rows), summed(got.rows)];
  const pooled = pooledDb(b, g);
  let pooledLower = -Infinity;
  if (n > 1) {
    const left = base.rows.map((r, i) => pooledDb(without(b, r), without(g, got.rows[i]!)));
    const m = left.reduce((a, x) => a + x, 0) / n;
    pooledLower = pooled - 2 * Math.sqrt(((n - 1) / n) * left.reduce((a, x) => a + (x - m) ** 2, 0));
  }
  return { mean, lower, pooled, pooledLower, bound: Math.max(lower, pooledLower), rows: n };
}

/** A noise/signal energy ratio as SQNR to 0.01 dB ("∞ dB" when exact); a difference in dB with its sign. */
export const db = (x: number) => (x > 0 ? `${(-10 * Math.log10(x)).toFixed(2)} dB` : "∞ dB");
export const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)} dB`;

/**
 * The weight format to write: `quantized(format)` is the model convert() writes with it, `float` the model it was
 * made from; both run on `rows`, one row each (a model with a fixed batch axis: one batch each). Fewer than two
 * rows cannot bound the difference: U8U8. A close call (a bound within float round-off of −WEIGHT_TIE_DB) may go
 * either way on another CPU; the summary states the figures, and weightType "uint8", or "int8" with reduceRange,
 * pins the choice.
 */
export async function chooseWeightFormat(
  float: Model,
  rows: readonly Feeds[],
  quantized: (format: WeightFormat, byTensor?: WeightFormats) => Promise<Model>,
  measure: MeasureOptions = {},
  onStep?: (done: number, total: number) => void,
): Promise<WeightChoice> {
  // Progress in row runs: three models, then up to one more per partial share.
  let runs = 0;
  let most = 3 * rows.length;
  const onRow = () => onStep?.(++runs, most);
  onStep?.(0, most);
  const ref = await outputsOn(float, rows, measure, onRow);
  const u8 = await energiesOn(await quantized(U8U8), rows, ref, measure, onRow);
  const s7 = await energiesOn(await quantized(U8S7), rows, ref, measure, onRow);
  const difference = rowDifference(u8, s7);
  const n = difference.rows;
  const noise = { u8u8: worstRatio(u8.pooled), u8s7: worstRatio(s7.pooled) };
  const count = rows.reduce((k, r) => k + (commonRows(r) ?? 1), 0);
  const per = n === count ? "row" : "batch";
  const measured =
    `on the first ${count} calibration row(s) worst-output SQNR${onCompared(measure.judged)} U8U8 ${db(noise.u8u8)}, U8S7 ${db(noise.u8s7)}; ` +
    `U8S7 − U8U8 ${differenceText(difference, per)} (U8S7 is taken where either bound is above −${WEIGHT_TIE_DB} dB)`;
  const whole7 = wholeModelU8S7(noise.u8u8, difference);
  if (whole7) return { ...U8S7, noise, difference, why: `weightType auto chose int8 with 7 bits (U8S7): ${measured}${whole7 === "mean" ? `; the model reads at or below ${MEAN_DECIDES_AT_OR_BELOW_DB} dB, where rows' differences are too spread for the bound: the mean decides` : ""}` };
  if (n > 1) most += PARTIAL_SHARES.length * rows.length;
  const partial = n > 1 ? await heaviestInU8S7(float, rows, ref, u8, quantized, measure, onRow) : undefined;
  if (!partial) return { ...U8U8, noise, difference, why: `weightType auto chose uint8 (U8U8): ${measured}` };
  const d = partial.difference;
  return {
    ...U8U8,
    noise,
    difference,
    byTensor: partial.byTensor,
    why:
      `weightType auto chose uint8 (U8U8) with int8 of 7 bits (U8S7) on ${partial.byTensor.size} of ${partial.convs} Conv(s) ` +
      `(${(100 * partial.share).toFixed(1)} % of their multiply-adds): ${measured}; on those Convs alone U8S7 − U8U8 ` +
      `${differenceText(d, per)} (taken where either bound is above −${PARTIAL_TIE_DB} dB)`,
  };
}

/**
 * PARTIAL_SHARES in turn: the Convs between one share and the next join the set in U8S7 while the whole set passes
 * the bound against U8U8; the first chunk that fails ends the search (the Convs after it do less work each, so
 * they would buy less speed for the same risk: trying them on found sets of 11 % and 21 % of the fixtures'
 * multiply-adds, at the cost of more measurements).
 */
async function heaviestInU8S7(
  float: Model,
  rows: readonly Feeds[],
  ref: readonly Record<string, OutputTensor>[],
  u8: RowEnergies,
  quantized: (format: WeightFormat, byTensor?: WeightFormats) => Promise<Model>,
  measure: MeasureOptions,
  onRow?: () => void,
): Promise<{ byTensor: WeightFormats; share: number; convs: number; difference: Difference } | undefined> {
  const convs = convWork(float, rows[0]!);
  const total = convs.reduce((a, c) => a + c.macs, 0);
  let best: Awaited<ReturnType<typeof heaviestInU8S7>>;
  let kept: ConvWork[] = [];
  let done = 0;
  for (const share of PARTIAL_SHARES) {
    const upTo = heaviest(convs, share).length;
    if (upTo === done) continue;
    const set = [...kept, ...convs.slice(done, upTo)];
    done = upTo;
    const byTensor: WeightFormats = new Map(set.map((c) => [c.weight, U8S7]));
    const d = rowDifference(u8, await energiesOn(await quantized(U8U8, byTensor), rows, ref, measure, onRow));
    if (!(d.rows > 1 && d.bound >= -PARTIAL_TIE_DB)) break;
    kept = set;
    best = { byTensor, share: set.reduce((a, c) => a + c.macs, 0) / total, convs: convs.length, difference: d };
  }
  return best;
}
