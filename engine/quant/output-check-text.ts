// The output check's figures and the line that says them (engine/quant/output-check measures them): no imports, so
// the extension host (the quantization report) and the CLI print the same words.

export interface OutputCheck {
  /** Calibration rows both models ran (in-sample: the ranges were chosen on them). */
  rows: number;
  /** Each float output's SQNR against the float model, in dB (Infinity: identical), worst first; for one a final
   *  Softmax makes, also on the logits it reads, and for one a comparison masks (a detector's peak mask), also on the
   *  values behind the mask (what the measurements at the outputs compare). */
  outputs: { name: string; sqnrDb: number; logitsDb?: number; unmaskedDb?: number }[];
  /** The outputs the measurements compared, when QConfig.calibration.outputs named some (absent: every output). */
  judged?: string[];
  /** Outputs that other nodes of the model read too (intermediate tensors exported beside the result). */
  intermediate?: string[];
  /** Outputs the float model left 0 on every row checked: no signal to compare the file with (SQNR undefined). */
  silent?: string[];
}

/** What intermediateOutputs reads of a graph (an onnx GraphProto fits). */
interface GraphLike {
  node: readonly { opType: string; input: readonly string[]; output: readonly string[] }[];
  output: readonly { name: string }[];
}

/**
 * The graph's outputs that other nodes read too: intermediate tensors exported beside the result (feature maps kept
 * for training). Looked for through the Cast/Identity chain a converter puts before an output (float16 models keep
 * float32 outputs so: ISNet's feature maps are Casts nothing reads, of tensors the next stage reads).
 */
export function intermediateOutputs(graph: GraphLike): string[] {
  const readers = new Map<string, number>();
  for (const n of graph.node) for (const i of n.input) if (i) readers.set(i, (readers.get(i) ?? 0) + 1);
  const producer = new Map<string, GraphLike["node"][number]>();
  for (const n of graph.node) for (const o of n.output) if (o) producer.set(o, n);
  return graph.output.map((o) => o.name).filter((name) => {
    // Each tensor of the chain is read once by the chain itself (the output by nothing): more readers are others.
    for (let t = name, own = 0; ; own = 1) {
      if ((readers.get(t) ?? 0) > own) return true;
      const p = producer.get(t);
      if (!p || (p.opType !== "Cast" && p.opType !== "Identity") || !p.input[0]) return false;
      t = p.input[0];
    }
  });
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
    const logits = o.logitsDb !== undefined ? `, on its logits ${db(o.logitsDb)}` : o.unmaskedDb !== undefined ? `, before its mask ${db(o.unmaskedDb)}` : "";
    return `"${o.name}" ${db(o.sqnrDb)}${logits}${tags.length ? ` (${tags.join(", ")})` : ""}`;
  });
  const more = c.outputs.length > listed.length ? `, … (${c.outputs.length} in all: --json outputCheck)` : "";
  const on = `outputs against the float model on ${c.rows} calibration row(s)`;
  const line = shown.length ? `${on}, SQNR: ${shown.join(", ")}${more}` : on;
  const parts = [line, silentText(c), judgeHint(c)].filter((p): p is string => Boolean(p));
  return parts.join(shown.length ? "; " : ": ");
}

/**
 * The outputs the float model left 0 on every row checked, and what that means: SQNR has no signal to measure, so
 * the measurements at the outputs cannot tell their candidates apart on them (openWakeWord's hey_mycroft head scores
 * exactly 0 on every spoken sample without its phrase: its weight type, ranges and rounding were chosen on ∞ against
 * ∞ dB). Undefined when every output carried signal.
 */
export function silentText(c: Pick<OutputCheck, "silent">): string | undefined {
  const silent = c.silent ?? [];
  if (silent.length === 0) return undefined;
  const names = silent.map((n) => `"${n}"`).join(", ");
  return `${names} ${silent.length === 1 ? "is" : "are"} 0 on every row in the float model, nothing to compare: where an output is 0 on every calibration row, the choices made at the outputs (weight type, calibration auto, rounding auto, protection) cannot tell their candidates apart on it; calibrate on data the model responds to (for a detector, samples with what it detects)`;
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
