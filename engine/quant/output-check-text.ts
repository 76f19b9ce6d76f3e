// The output check's figures and the line that says them (engine/quant/output-check measures them): no imports, so
// the extension host (the quantization report) and the CLI print the same words.

export interface OutputCheck {
  /** Calibration rows both models ran (in-sample: the ranges were chosen on them). */
  rows: number;
  /** Each float output's SQNR against the float model, in dB (Infinity: identical), worst first. */
  outputs: { name: string; sqnrDb: number }[];
  /** The outputs the measurements compared, when QConfig.calibration.outputs named some (absent: every output). */
  judged?: string[];
  /** Outputs that other nodes of the model read too (intermediate tensors exported beside the result). */
  intermediate?: string[];
}

/** The worst intermediate output this far below the best other output earns the --judge-outputs hint (dB). */
export const JUDGE_HINT_DB = 6;

/**
 * The summary's line: 'outputs against the float model on 8 calibration row(s), SQNR: "a" 12.3 dB (worst), "b" 30.1
 * dB, …': worst first, at most `max`, and the outputs the measurements judged (QConfig.calibration.outputs) always.
 */
export function describeOutputCheck(c: OutputCheck, max = 6): string {
  const judged = new Set(c.judged ?? []);
  const db = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} dB` : "identical");
  const listed = c.outputs.filter((o, i) => i < max || judged.has(o.name));
  const shown = listed.map((o) => {
    const tags = [o === c.outputs[0] && c.outputs.length > 1 ? "worst" : "", judged.has(o.name) ? "judged" : ""].filter(Boolean);
    return `"${o.name}" ${db(o.sqnrDb)}${tags.length ? ` (${tags.join(", ")})` : ""}`;
  });
  const more = c.outputs.length > listed.length ? `, … (${c.outputs.length} in all: --json outputCheck)` : "";
  const line = `outputs against the float model on ${c.rows} calibration row(s), SQNR: ${shown.join(", ")}${more}`;
  const hint = judgeHint(c);
  return hint ? `${line}; ${hint}` : line;
}

/**
 * When every output was judged and the worst is one that other nodes read too (a feature map exported for training
 * or debugging, as ISNet's decoder stages are) while the outputs nothing reads are JUDGE_HINT_DB or more better: the
 * measurements fitted that output, and --judge-outputs can name the ones the application reads. Only a hint: which
 * outputs an application reads is not in the file.
 */
function judgeHint(c: OutputCheck): string | undefined {
  const inner = new Set(c.intermediate ?? []);
  if (c.judged?.length || inner.size === 0 || !inner.has(c.outputs[0]?.name ?? "")) return undefined;
  const finals = c.outputs.filter((o) => !inner.has(o.name));
  if (finals.length === 0 || !(Math.min(...finals.map((o) => o.sqnrDb)) - c.outputs[0]!.sqnrDb >= JUDGE_HINT_DB)) return undefined;
  const names = finals.map((o) => o.name).join(",");
  return `the worst are outputs other nodes read too (intermediate tensors); if the application reads only the others, --judge-outputs ${names} fits the measurements to those`;
}
