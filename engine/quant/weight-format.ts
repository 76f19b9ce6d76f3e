// weightType "auto": uint8 weights (U8U8) or 7-bit int8 weights (U8S7), chosen per model by measuring the outputs.
// Both are exact on every CPU (u8×s7 pair sums cannot saturate AVX2's VPMADDUBSW), so the file never depends on
// the machine that runs it; U8S7 runs onnxruntime's U8S8 kernels, which on conv models are far faster than its
// U8U8 ones (mlsd-320-large 0.7× → 2.9× FP32), but half the weight resolution costs some models accuracy
// (ppocr-v3-rec-en −2.4 pp). So both are measured on the same rows, with the same activation ranges, at the model's
// outputs, and U8S7 is written only where its output noise is within WEIGHT_TIE of U8U8's (docs/int8-speed.md).
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
 * U8S7 is chosen when its worst-output noise energy is at most (1 + WEIGHT_TIE) × U8U8's: 0.2 dB of SQNR. Halving
 * the weights' resolution quadruples their share of the noise, so this admits U8S7 only where weight rounding is
 * at most ~1.5 % of the output noise, or where the measurement finds U8S7 no worse. Chosen across the corpus, see
 * docs/int8-speed.md "weightType auto".
 */
export const WEIGHT_TIE = 0.05;

export interface WeightChoice extends WeightFormat {
  /** Worst-output noise/signal energy against the float model with each format (NaN: could not be measured). */
  noise: { u8u8: number; u8s7: number };
  why: string;
}

const db = (x: number) => (x > 0 ? `${(-10 * Math.log10(x)).toFixed(2)} dB` : "∞ dB");

/**
 * The weight format to write: `quantized(format)` is the model convert() writes with it, `float` the model it was
 * made from; both run on `rows`. A close call (a ratio within float round-off of the tie) may go either way on
 * another CPU; the summary states both figures, and weightType "uint8" or "int8" with reduceRange pins the choice.
 */
export async function chooseWeightFormat(
  float: Model,
  rows: readonly Feeds[],
  quantized: (format: WeightFormat) => Promise<Model>,
  ep?: ExecutionProvider,
): Promise<WeightChoice> {
  const ref = await outputsOn(float, rows, ep);
  const u8u8 = worstNoiseRatio(ref, await outputsOn(await quantized(U8U8), rows, ep));
  const u8s7 = worstNoiseRatio(ref, await outputsOn(await quantized(U8S7), rows, ep));
  const pick = u8s7 <= u8u8 * (1 + WEIGHT_TIE) ? U8S7 : U8U8;
  const verdict = pick === U8S7 ? "int8 with 7 bits (U8S7)" : "uint8 (U8U8)";
  const count = rows.reduce((n, r) => n + (commonRows(r) ?? 1), 0);
  const why = `weightType auto chose ${verdict}: worst-output SQNR on the first ${count} calibration row(s): U8U8 ${db(u8u8)}, U8S7 ${db(u8s7)} (U8S7 is taken within ${(10 * Math.log10(1 + WEIGHT_TIE)).toFixed(2)} dB of U8U8)`;
  return { ...pick, noise: { u8u8, u8s7 }, why };
}
