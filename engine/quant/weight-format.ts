// weightType "auto": uint8 weights (U8U8) or 7-bit int8 weights (U8S7), chosen per model by measuring the outputs.
// Both are exact on every CPU (u8×s7 pair sums cannot saturate AVX2's VPMADDUBSW), so the file never depends on
// the machine that runs it; U8S7 runs onnxruntime's U8S8 kernels, which on conv models are far faster than its
// U8U8 ones (mlsd-320-large 0.78× → 3.05× FP32), but half the weight resolution costs some models accuracy
// (ppocr-v3-rec-en −2.4 pp). So both are measured on the same rows, with the same activation ranges, at the model's
// outputs, and U8S7 is written only where it is not measurably worse (WEIGHT_TIE_DB; docs/int8-speed.md).
import type { Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import type { ExecutionProvider } from "../runtime/session";
import { outputsOn, worstNoiseRatio } from "../calibrate/activation-precision";
import { commonRows } from "../calibrate/rows";
import type { WeightType } from "./types";

export interface WeightFormat {
  type: WeightType;
  reduceRange: boolean;
}

export const U8U8: WeightFormat = { type: "uint8", reduceRange: false };
export const U8S7: WeightFormat = { type: "int8", reduceRange: true };

/**
 * U8S7 is chosen when, row by row, its worst-output SQNR is not measurably lower than U8U8's by more than this
 * (dB): the mean per-row difference less two standard errors (a one-sided ~97.5 % bound) must stay above −0.5 dB.
 * A bound, not the pooled figures: on the corpus detectors one row's worst-output SQNR moves 1.5–3 dB between the
 * formats either way, so pooled figures on 16 calibration rows picked U8S7 where 128 held-out samples then lost
 * 0.8–1 dB (blazeface-front, ppocr-v3-det-en); docs/int8-speed.md "weightType auto".
 */
export const WEIGHT_TIE_DB = 0.5;

/** Rows whose worst-output noise is below this (100 dB) count as exact: no difference to measure there. */
const EXACT = 1e-10;

export interface WeightChoice extends WeightFormat {
  /** Worst-output noise/signal energy against the float model with each format, pooled over the rows. */
  noise: { u8u8: number; u8s7: number };
  /** Per-row SQNR difference U8S7 − U8U8 (dB): mean and its lower bound (mean − 2 standard errors). */
  difference: { mean: number; lower: number; rows: number };
  why: string;
}

const db = (x: number) => (x > 0 ? `${(-10 * Math.log10(x)).toFixed(2)} dB` : "∞ dB");
const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)} dB`;

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
  quantized: (format: WeightFormat) => Promise<Model>,
  ep?: ExecutionProvider,
): Promise<WeightChoice> {
  const ref = await outputsOn(float, rows, ep);
  const u8 = await outputsOn(await quantized(U8U8), rows, ep);
  const s7 = await outputsOn(await quantized(U8S7), rows, ep);
  const d = ref.map((r, i) => 10 * Math.log10(Math.max(worstNoiseRatio([r], [u8[i]!]), EXACT) / Math.max(worstNoiseRatio([r], [s7[i]!]), EXACT)));
  const n = d.length;
  const mean = d.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  const sd = n > 1 ? Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : Infinity;
  const lower = mean - (2 * sd) / Math.sqrt(n);
  const pick = n > 1 && lower >= -WEIGHT_TIE_DB ? U8S7 : U8U8;
  const noise = { u8u8: worstNoiseRatio(ref, u8), u8s7: worstNoiseRatio(ref, s7) };
  const count = rows.reduce((k, r) => k + (commonRows(r) ?? 1), 0);
  const verdict = pick === U8S7 ? "int8 with 7 bits (U8S7)" : "uint8 (U8U8)";
  const why =
    `weightType auto chose ${verdict}: on the first ${count} calibration row(s) worst-output SQNR U8U8 ${db(noise.u8u8)}, U8S7 ${db(noise.u8s7)}; ` +
    `U8S7 − U8U8 per ${n === count ? "row" : "batch"}: mean ${signed(mean)}, lower bound ${n > 1 ? signed(lower) : "none (one batch)"} (U8S7 is taken above −${WEIGHT_TIE_DB} dB)`;
  return { ...pick, noise, difference: { mean, lower, rows: n }, why };
}
