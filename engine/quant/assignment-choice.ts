// calibration.method "auto", at the model's outputs: which whole assignment of ranges (mse for every tensor, minmax,
// percentile, entropy, or the calibrator's per-tensor choices) a conversion writes, from each one's output energies
// on the same rows. mse is the default of every fixed-method run, so another assignment replaces it only where it is
// measurably better: its pooled error lower by OUTPUT_TIE and its gain over mse, as a lower bound per row or pooled
// (engine/quant/types' Difference), above OUTPUT_BOUND_DB. The rows are the first calibration rows, which
// shaped the ranges too, and a pooled error over 16 of them ranks assignments by a few rows where one clips less: on
// blazeface-front percentile read 14.4 dB there against mse's 13.5 and 12.4 against 13.4 dB on 64 held-out samples
// (docs/calibration.md "auto: a gain on the rows, not in the pool"); its pooled bound reads −1.32 dB.
import { noiseDb, worstRatio, type RowEnergies } from "../calibrate/activation-precision";
import type { Difference } from "./types";
import { differenceText, rowDifference, signed } from "./weight-format";

/** A whole assignment must beat mse's pooled output error by this share to replace it. */
export const OUTPUT_TIE = 0.02;

/** ...and its gain in worst-output SQNR over mse must have a lower bound above this (dB), per row (mean − 2 standard
 *  errors) or pooled (jackknife). */
export const OUTPUT_BOUND_DB = 0;

/** The rule, as the summary states it. */
export const OUTPUT_RULE = `another than mse is written where it lowers the pooled error by ${100 * OUTPUT_TIE} % and gains with a lower bound, per row or pooled, above ${signed(OUTPUT_BOUND_DB)}`;

/** One assignment's measurement against mse's: pooled error, and (besides mse) the gain over mse. */
export interface AssignmentScore {
  name: string;
  /** Worst output's noise/signal energy pooled over the rows. */
  error: number;
  /** Worst-output SQNR gain over mse (dB), per row and pooled, with their lower bounds; undefined for mse itself. */
  gain?: Difference;
}

/**
 * The assignment to write: "mse" unless another beats it by OUTPUT_TIE pooled and by OUTPUT_BOUND_DB as a bound; of
 * those, the least pooled error (the first on ties, in `energies`' order). `energies` must hold "mse".
 */
export function chooseAssignment(energies: ReadonlyMap<string, RowEnergies>): { best: string; scores: AssignmentScore[] } {
  const mse = energies.get("mse");
  if (!mse) throw new Error('chooseAssignment: no "mse" assignment to compare with');
  const scores = [...energies].map(([name, e]): AssignmentScore => {
    const error = worstRatio(e.pooled);
    if (name === "mse") return { name, error };
    return { name, error, gain: rowDifference(mse, e) };
  });
  const mseError = worstRatio(mse.pooled);
  let best = scores.find((s) => s.name === "mse")!;
  for (const s of scores) {
    if (!s.gain || s.gain.rows < 2 || !(s.gain.bound > OUTPUT_BOUND_DB)) continue;
    if (s.error < mseError * (1 - OUTPUT_TIE) && s.error < best.error) best = s;
  }
  return { best: best.name, scores };
}

/**
 * A winner other than mse, judged across the halves of the rows that chose it (each half's ranges on the other
 * half's rows: Calibrator.halves), holds where it is not worse than mse there: its mean per-row gain or its pooled
 * gain at least 0 dB (with `ctc`, a CTC loss of the float model's reading no higher than mse's). Judged only on the
 * rows that made their ranges, the per-tensor choices on ppocr-v4-rec-en's second calibration set gained +1.61 dB
 * pooled (bound +0.33) and lost 1.98 dB on 512 held-out lines; across halves they read −0.49 dB pooled, −1.08 per
 * row. A sign, not a bound: half the rows make noisier ranges, and on the corpus the winners that held out read
 * across halves from −0.29 dB per row (+0.09 pooled) up (docs/calibration.md "auto judged across halves").
 */
export function holdsAcross(mse: RowEnergies, other: RowEnergies, ctc?: { mse: number; other: number }): { holds: boolean; text: string } {
  const d = rowDifference(mse, other);
  const on = "judged across the halves of those rows (each half's ranges on the other half)";
  if (ctc) return { holds: ctc.other <= ctc.mse, text: `${on}: CTC loss ${ctc.other.toFixed(3)} against mse's ${ctc.mse.toFixed(3)}, ${differenceText(d)}` };
  return { holds: d.mean >= 0 || d.pooled >= 0, text: `${on}: ${differenceText(d)}` };
}

/** " (per row: mean +0.58 dB, lower bound +0.09 dB; pooled …)" for an assignment measured on two rows or more; ""
 *  otherwise. */
export function gainText(s: AssignmentScore): string {
  return s.gain && s.gain.rows >= 2 ? ` (${differenceText(s.gain)})` : "";
}

/** auto's choice at the outputs in one line, for the summary: what was written and the figure that decided it. */
export function assignmentLine(best: string, scores: readonly AssignmentScore[], twins: ReadonlyMap<string, string>, rows: number, ctcLoss?: (name: string) => number): string {
  const what = (name: string) => (name === "per-tensor choices" ? "the per-tensor choices" : `${name} for every tensor`);
  const on = `on the first ${rows} calibration row(s)`;
  if (ctcLoss) return `${what(best)}, by the CTC loss of FP32's reading ${on} (${ctcLoss(best).toFixed(3)}; mse ${ctcLoss("mse").toFixed(3)})`;
  const s = scores.find((x) => x.name === best)!;
  if (best !== "mse") return `${what(best)}: ${noiseDb(s.error)} at the worst output against mse's ${noiseDb(scores.find((x) => x.name === "mse")!.error)}, ${differenceText(s.gain!)}, ${on}`;
  const others = scores.filter((x) => x.gain && x.gain.rows >= 2 && !twins.has(x.name));
  const runnerUp = others.reduce<AssignmentScore | undefined>((a, x) => (!a || x.gain!.bound > a.gain!.bound ? x : a), undefined);
  const closest = runnerUp ? ` (closest: ${runnerUp.name}, ${differenceText(runnerUp.gain!)})` : "";
  return `mse's ranges kept: no other method gained on the first ${rows} calibration row(s) with a lower bound above ${signed(OUTPUT_BOUND_DB)}${closest}; --method mse skips this measurement`;
}
