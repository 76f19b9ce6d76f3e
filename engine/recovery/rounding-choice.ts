// QConfig.rounding for static INT8 (quantizeStatic). "learned" and "adaround" fit every quantized layer's codes on the
// first calibration rows. "auto": learned weight rounding (engine/recovery/rounding: each quantized layer's codes chosen
// again against its own outputs) where it measures better at the model's outputs than nearest rounding, on rows the
// fit did not see. Learned rounding lowers every layer's own output error, but the outputs do not always follow, and
// on its own fitting rows it reads better than it is: ppocr-v3-rec-en +2.3 dB on the 16 rows it was fitted on, −1.9
// dB on 64 held-out ones; mlsd-320-tiny +1.4 / −0.3 dB per row (docs/recovery.md "rounding auto"). So the choice is
// made on rows the codes were not fitted on (two-fold cross-fitting on the kept calibration rows, chooseRounding).
import type { CalibrationData, Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import { worstRatio, type MeasureOptions } from "../calibrate/activation-precision";
import { commonRows } from "../calibrate/rows";
import { quantizeStatic as quantizeStaticWith, type StaticFileOptions, type WeightRounder } from "../quant/index";
import type { QConfig, QuantizationSummary, RoundingChoice } from "../quant/types";
import { crossFit, crossFitLines, learnedWins, ROUNDING_BOUND_DB, splitRows } from "../quant/cross-fit";
import { db, differenceText } from "../quant/weight-format";
import { adaRound } from "./adaround";
import { refineRounding, type RoundingReport } from "./rounding";

export { learnedWins, ROUNDING_BOUND_DB, splitRows } from "../quant/cross-fit";

/** What the rows are called in a choice's text: batches where some hold several rows (a fixed batch axis). */
const rowWords = (rows: readonly Feeds[]) => (rows.some((r) => (commonRows(r) ?? 1) > 1) ? ["batch", "batches"] : ["row", "rows"]);

/**
 * The file to write, `nearest` (convert()'s model from `float`) or a learned-rounding copy, and why. `rows`: single
 * calibration rows (whole batches where the model's batch axis is fixed). Judged by two-fold cross-fitting: learned
 * rounding fitted on every other row is measured on the rows between, and the other way round, so every row is judged
 * by codes not fitted on it; where that takes the learned codes, they are fitted once more on all the rows and
 * written. Where learned rounding cannot run, or there are too few rows, `nearest` is kept and the choice says why. A
 * sequence model (softmax outputs of [batch, time, classes]) takes the learned codes only if they also decode no fewer
 * judged rows as the float model does: on ppocr-v4-rec-en they raised output SQNR by 1.1 dB and lost 3 of 64 lines.
 */
export async function chooseRounding(
  float: Model,
  nearest: Model,
  rows: readonly Feeds[],
  measure: MeasureOptions = {},
  onStep?: (done: number, total: number) => void,
): Promise<{ model: Model; choice: RoundingChoice }> {
  const start = performance.now();
  const seconds = () => (performance.now() - start) / 1000;
  const keep = (why: string, layers?: number) => ({ model: nearest, choice: { asked: "auto" as const, method: "nearest" as const, why: `rounding auto kept nearest rounding: ${why}`, ...(layers !== undefined && { layers }), seconds: seconds() } });
  const { fit: even, judge: odd } = splitRows(rows);
  if (odd.length < 2) return keep(`${rows.length} calibration row(s), too few to fit on some and judge on the others (it needs 4 or more)`);
  // Progress in fits: three (each half, then all rows), a measurement counted as one.
  let fits = 0;
  const step = () => onStep?.(++fits, 5);
  onStep?.(0, 5);
  let a: Awaited<ReturnType<typeof refineRounding>>;
  // Only the fits' own failures keep nearest: a stop asked through onStep (it throws) is not caught here.
  try {
    a = await refineRounding(float, nearest, even);
  } catch (e) {
    return keep(`learned rounding could not run (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`);
  }
  step();
  if (a.report.layers.length === 0) return keep("no layer whose codes learned rounding can choose", 0);
  const b = await refineRounding(float, nearest, odd);
  step();
  const c = await crossFit(float, nearest, a.model, b.model, rows, measure, step);
  const { near, learned: got, difference: d } = c;
  step();
  const [per, pers] = rowWords(rows);
  const layers = (r: RoundingReport) => `${r.meanBeforeDb.toFixed(1)} → ${r.meanAfterDb.toFixed(1)} dB`;
  const measured =
    `learned codes fitted on every other of ${rows.length} calibration ${pers} and judged on the ${pers} between, and the other way round ` +
    `(${a.report.layers.length} layer(s), mean layer output SQNR ${layers(a.report)} and ${layers(b.report)}): worst-output SQNR nearest ` +
    `${db(worstRatio(near.pooled))}, learned ${db(worstRatio(got.pooled))}; learned − nearest ${differenceText(d, per)} ` +
    `(learned is taken where either bound is above ${ROUNDING_BOUND_DB} dB)`;
  let win = learnedWins(d);
  let lines = "";
  if (win) {
    const seq = await crossFitLines(float, nearest, a.model, b.model, c, measure.ep);
    if (seq) [win, lines] = [seq.keep, seq.note];
  }
  if (!win) {
    onStep?.(5, 5);
    return { model: nearest, choice: { asked: "auto", method: "nearest", why: `rounding auto kept nearest rounding: ${measured}${lines}`, difference: d, layers: a.report.layers.length, seconds: seconds() } };
  }
  const all = await refineRounding(float, nearest, rows);
  step();
  const why = `rounding auto chose learned rounding: ${measured}${lines}; written: fitted on all ${rows.length} ${pers} (${all.report.layers.length} layer(s), mean layer output SQNR ${layers(all.report)})`;
  return { model: all.model, choice: { asked: "auto", method: "learned", why, difference: d, layers: all.report.layers.length, seconds: seconds() } };
}

/**
 * QConfig.rounding applied to convert()'s model (quantizeStatic's WeightRounder): "learned" (GPTQ's error feedback,
 * refineRounding) and "adaround" (adaRound) fit every quantized layer's codes on `rows` and write them; "auto" writes
 * learned codes only where chooseRounding measures them better. A fit that leaves no layer refined writes nearest.
 */
export const roundWeights: WeightRounder = async (asked, float, nearest, rows, measure, onStep) => {
  if (asked === "auto") return chooseRounding(float, nearest, rows, measure, onStep);
  const fit = asked === "adaround" ? adaRound : refineRounding;
  const { model, report } = await fit(float, nearest, rows, { ...(onStep && { onProgress: onStep }) });
  const kept = report.skipped.length ? `; ${report.skipped.length} kept nearest (${[...new Set(report.skipped.map((s) => s.reason.split(":")[0]))].join("; ")})` : "";
  const [per, pers] = rowWords(rows);
  const choice = { asked, layers: report.layers.length, seconds: report.seconds };
  if (report.layers.length === 0) return { model: nearest, choice: { ...choice, method: "nearest", why: `${asked} rounding kept nearest rounding: no layer whose codes it can choose${kept}` } };
  const why =
    `${asked} rounding: ${report.layers.length} layer(s) on their inputs from the ${report.inputs} model, fitted on ${rows.length} calibration ${rows.length === 1 ? per : pers}, ` +
    `mean layer output SQNR ${report.meanBeforeDb.toFixed(1)} → ${report.meanAfterDb.toFixed(1)} dB${kept}`;
  return { model, choice: { ...choice, method: asked, why } };
};

/**
 * Static INT8 from file to file (engine/quant's quantizeStatic) with QConfig.rounding applied by roundWeights:
 * engine/quant sits below learned rounding, so it takes the rounder as an option, and this is the quantizeStatic the
 * library (engine/index), the notebook kernel and the CLI export.
 */
export function quantizeStatic(input: string | Model, output: string, data: CalibrationData, config: QConfig = {}, options: StaticFileOptions = {}): Promise<QuantizationSummary> {
  return quantizeStaticWith(input, output, data, config, { roundWeights, ...options });
}
