// The output check's figures and the line that says them (engine/quant/output-check measures them): no imports, so
// the extension host (the quantization report) and the CLI print the same words.

export interface OutputCheck {
  /** Calibration rows both models ran (in-sample: the ranges were chosen on them). */
  rows: number;
  /** Each float output's SQNR against the float model, in dB (Infinity: identical), worst first. */
  outputs: { name: string; sqnrDb: number }[];
  /** The outputs the measurements compared, when QConfig.calibration.outputs named some (absent: every output). */
  judged?: string[];
}

/** The summary's line: "outputs against the float model on 8 calibration rows: a 12.3 dB (worst), b 30.1 dB, …". */
export function describeOutputCheck(c: OutputCheck, max = 6): string {
  const judged = c.judged ?? [];
  const db = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} dB` : "identical");
  const shown = c.outputs.slice(0, max).map((o, i) => {
    const tags = [i === 0 && c.outputs.length > 1 ? "worst" : "", judged.length && !judged.includes(o.name) ? "not judged" : ""].filter(Boolean);
    return `"${o.name}" ${db(o.sqnrDb)}${tags.length ? ` (${tags.join(", ")})` : ""}`;
  });
  const more = c.outputs.length > max ? `, … (${c.outputs.length} in all: --json outputCheck)` : "";
  return `outputs against the float model on ${c.rows} calibration row(s), SQNR: ${shown.join(", ")}${more}`;
}
