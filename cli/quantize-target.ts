// `ptq quantize … --target-sqnr DB` / `--target "drop<=PP" --eval DIR`: static INT8 that keeps the fewest, most
// sensitive nodes in float until the accuracy target is met (engine/analysis/sensitivity.ts), and says which and why.
import { loadDataDir } from "../engine/analysis/dataset";
import { splitRows } from "../engine/calibrate/rows";
import { takeBatches } from "../engine/analysis/analyze";
import { openData } from "../engine/data/readers";
import type { Feeds, Tensor } from "../engine/data/feeds";
import { Model } from "../engine/onnx/model";
import { verifyRunnable } from "../engine/runtime/verify";
import { decodeUnfusedWeightsNote } from "../engine/quant/unfused-weights";
import type { Remedy } from "../engine/analysis/sensitivity";
import { pickedNodes, searchLines, tradeoffMimeBundle } from "../kernel/views/mixed-report";
import { jobQConfig, jobReaderOptions, type TargetJob } from "../engine/quant/options";
import { calibrationProgress, type ProgressPrinter } from "./progress";
import { imageReadingNote, type QuantizeCall } from "./quantize-options";

/** The search's target as the JSON output has always printed it, with the search's options riding on it. */
export type CliTarget = ({ kind: "sqnr"; minDb: number } | { kind: "drop"; maxPp: number } | { kind: "agreement"; minPct: number }) & {
  minInt8WeightShare?: number;
  remedy?: Remedy | "auto";
  tradeoff?: boolean;
};

/** The job's target (checkJob has made sure one of sqnr/drop/agreement is set and drop has its eval data). */
export function cliTarget(t: TargetJob): CliTarget {
  const base =
    t.sqnr !== undefined
      ? { kind: "sqnr" as const, minDb: t.sqnr }
      : t.agreement !== undefined
        ? { kind: "agreement" as const, minPct: t.agreement }
        : { kind: "drop" as const, maxPp: t.drop! };
  return {
    ...base,
    ...(t.minInt8WeightShare !== undefined && { minInt8WeightShare: t.minInt8WeightShare }),
    ...(t.remedy !== undefined && { remedy: t.remedy }),
    ...(t.tradeoff && { tradeoff: true }),
  };
}

/** Eval samples per run: one batch of thousands of images would hold every activation of all of them at once. */
const EVAL_BATCH = 250;

export async function runTargeted(run: QuantizeCall, progress: ProgressPrinter): Promise<number> {
  const { job } = run;
  const target = cliTarget(job.target!);
  const evalDir = job.target!.eval;
  const { prepare, calibrate, release } = await import("../engine/quant/index");
  const { searchMixedPrecision } = await import("../engine/analysis/sensitivity");
  const source = await Model.load(run.model);
  const prepared = await prepare(source, jobQConfig(job), { optimize: job.optimize, ep: job.ep });
  const calib = await takeBatches(openData(job.calib!, source.proto, jobReaderOptions(job)), 64);
  try {
    await calibrate(prepared, calib, { onProgress: calibrationProgress(progress) });
  } finally {
    await release(prepared);
  }
  let data: Feeds[];
  let labels: Tensor | undefined;
  if (target.kind === "drop") {
    const inputs = source.graph.input
      .filter((i) => !source.graph.initializer.some((t) => t.name === i.name))
      .map((i) => ({ name: i.name, type: "float32", shape: [] as (number | string)[] }));
    const labelled = loadDataDir(evalDir!, inputs);
    if (!labelled.labels) throw new Error(`--eval ${evalDir}: no y.npy with class labels`);
    data = [...splitRows(labelled.inputs, EVAL_BATCH)];
    labels = labelled.labels;
  } else {
    data = calib.slice(0, 16);
  }
  const result = await searchMixedPrecision(prepared, data, target.kind === "drop" ? { ...target, labels: labels! } : target, {
    ep: job.ep,
    // Rank on the calibration sample (output SQNR needs no labels): one run per quantized node on 2000 eval
    // images took minutes; the search then checks its few candidates on the whole --eval set.
    rankData: target.kind === "drop" ? calib.slice(0, 16) : undefined,
    minInt8WeightShare: target.minInt8WeightShare,
    remedy: target.remedy,
    tradeoff: target.tradeoff ? {} : undefined,
    // The search's own progress (engine/analysis/search/progress) names its phase and estimates the time left.
    // It ranks on a subset of the data (rankSamples), so each phase says how many samples its measurements run.
    onProgress: (done: number, total: number, p?: { phase?: string; etaSeconds?: number; samples?: number }) =>
      progress.update({ stage: `${p?.phase === "search" ? "search" : "ranking nodes"}${p?.samples !== undefined ? ` on ${p.samples} samples` : ""}`, done, total, unit: p ? "measurements" : "nodes", etaS: p?.etaSeconds }),
    onStep: (s) => progress.update({ stage: "search", detail: `${pickedNodes(s)} → ${s.metric.toFixed(2)}` }),
  });
  progress.done();
  const images = imageReadingNote(job, source.proto);
  if (images) process.stderr.write(`note: ${images}\n`);
  const decoded = job.format === "qoperator" ? undefined : decodeUnfusedWeightsNote(result.model);
  if (decoded) process.stderr.write(`note: ${decoded}\n`);
  const note = await verifyRunnable(result.model, source, run.output);
  if (note) process.stderr.write(`note: ${note}\n`);
  await result.model.save(run.output, { overwrite: run.overwrite });
  if (run.json) {
    const { model: _m, ...rest } = result;
    process.stdout.write(JSON.stringify({ output: run.output, ...rest, target: { ...target } }, null, 2) + "\n");
  } else {
    const lines = searchLines(result);
    if (target.tradeoff) lines.push("", String(tradeoffMimeBundle(result)["text/plain"]));
    process.stdout.write([`wrote ${run.output}: ${lines[0]}`, ...lines.slice(1)].join("\n") + "\n");
  }
  return result.chosen.met ? 0 : 3;
}
