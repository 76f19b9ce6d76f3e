// Two-fold cross-fitting: codes fitted on some calibration rows are judged only on rows they were not fitted on.
// Learned rounding reads better on its own fitting rows than on others (ppocr-v3-rec-en INT8: +2.3 dB on the 16 rows
// it was fitted on, −1.9 dB on 64 held-out ones; docs/recovery.md "Rounding auto"), so a choice between learned and
// nearest codes fits on every other row and judges on the rows between, and the other way round. Used by static
// INT8's rounding "auto" (engine/recovery/rounding-choice) and FP4's (engine/lowbit).
import type { Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import { energiesOn, outputsOn, type MeasureOptions, type RowEnergies } from "../calibrate/activation-precision";
import type { ExecutionProvider } from "../runtime/session";
import type { OutputTensor } from "../runtime/tensors";
import { checkSequences } from "./sequence-check";
import { boundOf, rowDifference } from "./weight-format";

/** Rounding other than nearest fits (and auto judges) on at most this many of the first calibration rows: static
 *  INT8's calibrate() keeps them, FP4's rounding auto reads them. */
export const ROUNDING_ROWS = 32;

/**
 * Learned codes are taken only where the difference learned − nearest in worst-output SQNR, on rows the codes were
 * not fitted on, has a lower bound above this: per row (mean − 2 standard errors) or pooled (jackknife; since the
 * forty-first session, engine/quant/types' Difference). On the corpus (16 calibration rows,
 * static INT8; docs/recovery.md "rounding auto") that took them on ppocr-v3-det-en (judged +0.58 dB, bound +0.03; 64
 * held-out samples +0.24 dB) and oww-hello-deepa (+12.7, bound +7.1; held out +2.7 dB) and kept nearest on the other
 * 12. A looser rule (mean ≥ +0.1 dB, bound above −0.5 dB) also took BlazeFace (held out +0.1, +0.4 dB) and
 * ppocr-v3-det-ch (judged +0.23 dB, bound −0.33; held out −0.22 dB).
 */
export const ROUNDING_BOUND_DB = 0;

/** Every other row fits (the first, third, …), the rest judge. */
export function splitRows<T>(rows: readonly T[]): { fit: T[]; judge: T[] } {
  const fit: T[] = [];
  const judge: T[] = [];
  rows.forEach((r, i) => (i % 2 === 0 ? fit : judge).push(r));
  return { fit, judge };
}

/** Whether the difference learned − nearest takes the learned codes (ROUNDING_BOUND_DB, either bound). */
export function learnedWins(d: { mean: number; lower: number; pooledLower?: number; rows: number }): boolean {
  return d.rows >= 2 && boundOf(d) > ROUNDING_BOUND_DB;
}

/** A cross-fitted measurement: both sides' energies on the judged rows (odd ones first), the float outputs there,
 *  and the difference learned − nearest. */
export interface CrossFit {
  near: RowEnergies;
  learned: RowEnergies;
  /** The float model's outputs on the judged rows, in that order. */
  reference: Record<string, OutputTensor>[];
  /** The judged rows in the order measured: splitRows' judge rows, then its fit rows. */
  judged: Feeds[];
  difference: ReturnType<typeof rowDifference>;
}

/**
 * Runs `float` and `nearest` on every row, `fittedEven` (fitted on splitRows' fit rows) on the judge rows and
 * `fittedOdd` (fitted on the judge rows) on the fit rows, and compares them row by row. `onMeasured` is called after
 * the nearest model's run (a progress step).
 */
export async function crossFit(float: Model, nearest: Model, fittedEven: Model, fittedOdd: Model, rows: readonly Feeds[], measure: MeasureOptions = {}, onMeasured?: () => void): Promise<CrossFit> {
  const { fit: even, judge: odd } = splitRows(rows);
  const judged = [...odd, ...even];
  const reference = await outputsOn(float, judged, measure);
  const near = await energiesOn(nearest, judged, reference, measure);
  onMeasured?.();
  const learned = await energiesOn(fittedEven, odd, reference.slice(0, odd.length), measure);
  const rest = await energiesOn(fittedOdd, even, reference.slice(odd.length), measure, undefined, learned.pooled);
  learned.rows.push(...rest.rows);
  return { near, learned, reference, judged, difference: rowDifference(near, learned) };
}

/**
 * Where `float` reads sequences (engine/quant/sequence-check: softmax outputs of [batch, time, classes]), how many of
 * a cross-fit's judged rows decode as the float model's with the cross-fitted learned codes and with nearest ones;
 * undefined for any other model. Learned codes are kept only where they decode no fewer: on ppocr-v4-rec-en (static
 * INT8) they raised output SQNR by 1.1 dB and lost 3 of 64 lines. The float outputs are the cross-fit's reference
 * where it holds every softmax output (QConfig's judged outputs may leave them out: then the float model runs).
 */
export async function crossFitLines(
  float: Model,
  nearest: Model,
  fittedEven: Model,
  fittedOdd: Model,
  c: CrossFit,
  ep?: ExecutionProvider,
): Promise<{ keep: boolean; note: string } | undefined> {
  const odd = Math.floor(c.judged.length / 2);
  const n = await checkSequences(float, nearest, c.judged, ep, c.reference);
  if (!n) return undefined;
  const a = await checkSequences(float, fittedEven, c.judged.slice(0, odd), ep, c.reference.slice(0, odd));
  const b = await checkSequences(float, fittedOdd, c.judged.slice(odd), ep, c.reference.slice(odd));
  const same = (a?.same ?? 0) + (b?.same ?? 0);
  return { keep: same >= n.same, note: `; sequence outputs decode as the float model's on ${same} of ${n.rows} judged rows with learned codes, ${n.same} with nearest` };
}
