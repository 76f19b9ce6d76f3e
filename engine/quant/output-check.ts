// What a static file does to each of the model's outputs: the written model and the float model run side by side on
// the calibration rows calibrate() kept, one row at a time, each float output's SQNR pooled over the rows. The
// summary reports it for every output (the worst first), also those QConfig.calibration.outputs leaves out of the
// measurements, so a user sees which output lost what, and whether a feature map kept for training drove them.

import type { Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import { createSession, type SessionOptions } from "../runtime/session";
import { commonRows } from "../calibrate/rows";
import { addOutputEnergy, noiseToDb, outputsBehind, type OutputEnergy } from "../calibrate/activation-precision";
import type { OutputCheck } from "./output-check-text";

/** How many kept calibration rows the check runs (each once per model). */
export const CHECK_ROWS = 8;

export type { OutputCheck } from "./output-check-text";

/**
 * Each float output of `quantized` against `float` on `rows`, worst first, a classifier's final Softmax output also on
 * its logits and a masked output on the values behind its mask (comparedOutputs), and the float outputs that are 0 on every row (`silent`: nothing to compare);
 * undefined when there is no row or no float output at all. Both sessions stay open while the batches of rows run one
 * at a time, so no batch's outputs outlive it.
 */
export async function checkOutputs(float: Model, quantized: Model, rows: readonly Feeds[], options: SessionOptions = {}): Promise<OutputCheck | undefined> {
  if (rows.length === 0) return undefined;
  const energy = new Map<string, OutputEnergy>();
  // A classifier's final Softmax output is also measured on the logits it reads, a masked output on the values behind
  // its mask (what the measurements compared).
  const outputs = float.graph.output.map((o) => o.name);
  const behindOf = new Map(outputsBehind(float).map((b) => [b.output, b]));
  const extra = float.outputInfos([...new Set([...behindOf.values()].map((b) => b.tensor))].filter((t) => !outputs.includes(t)));
  const view = (m: Model) => (extra.length ? m.withOutputs([...m.graph.output, ...extra]) : m);
  const ref = await createSession(view(float), options);
  try {
    const got = await createSession(view(quantized), options);
    try {
      for (const r of rows) {
        addOutputEnergy(energy, await ref.run(r), await got.run(r));
      }
    } finally {
      await got.dispose();
    }
  } finally {
    await ref.dispose();
  }
  const sqnrOf = (e: OutputEnergy) => noiseToDb(e.noise / e.signal);
  const measured = [...energy]
    .filter(([name, e]) => e.signal > 0 && outputs.includes(name))
    .map(([name, e]) => {
      const behind = behindOf.get(name);
      const b = energy.get(behind?.tensor ?? "");
      if (!b || b.signal === 0) return { name, sqnrDb: sqnrOf(e) };
      return { name, sqnrDb: sqnrOf(e), ...(behind!.behind === "unmasked" ? { unmaskedDb: sqnrOf(b) } : { logitsDb: sqnrOf(b) }) };
    })
    .sort((p, q) => p.sqnrDb - q.sqnrDb);
  const silent = outputs.filter((name) => energy.get(name)?.signal === 0);
  if (measured.length === 0 && silent.length === 0) return undefined;
  return { rows: rows.reduce((n, f) => n + (commonRows(f) ?? 1), 0), outputs: measured, ...(silent.length && { silent }) };
}
