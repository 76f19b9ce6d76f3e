// `ptq quantize … --target-sqnr DB` / `--target "drop<=PP" --eval DIR`: static INT8 that keeps the fewest, most
// sensitive nodes in float until the accuracy target is met (engine/analysis/sensitivity.ts), and says which and why.
import { loadDataDir } from "../engine/analysis/dataset";
import { eachArg } from "./args";
import type { HostTensor } from "../engine/analysis/feeds";
import { splitRows } from "../engine/calibrate/rows";
import { takeBatches } from "../engine/analysis/analyze";
import { openData } from "../engine/data/readers";
import type { Feeds } from "../engine/data/feeds";
import { Model } from "../engine/onnx/model";
import { verifyRunnable } from "../engine/runtime/verify";
import type { Remedy } from "../engine/analysis/sensitivity";
import { pickedNodes, searchLines, tradeoffMimeBundle } from "../kernel/views/mixed-report";

export const TARGET_HELP = `Accuracy target (static mode): give the most sensitive nodes 16-bit activations, or keep them in
float, until it is met
  --target-sqnr DB          output SQNR against the float model, on the calibration data, of at least DB
  --target "drop<=PP"       top-1 drop of at most PP percentage points on labelled data (needs --eval)
  --eval DIR                held-out x.npy (or <input>.npy) and y.npy class labels for --target drop
  --remedy auto|int16|float int16: the chosen nodes' activations get 16 bits, their weights stay int8; float: the
                            chosen nodes are not quantized; auto (default): int16 if that can meet the target,
                            else float
  --min-int8-weights F      keep at least this share (0-1) of the weights int8: nodes that would break it stay
                            quantized and the search takes the next ones in the ranking (default: no limit)
  --tradeoff                also time the float model and every configuration measured (one interleaved
                            benchmark, batch 1, 2 s) and print accuracy vs size vs latency`;

/** The search's options ride on the target so `ptq quantize` passes them through without knowing them. */
export type CliTarget = ({ kind: "sqnr"; minDb: number } | { kind: "drop"; maxPp: number }) & {
  minInt8WeightShare?: number;
  remedy?: Remedy | "auto";
  tradeoff?: boolean;
};

/** Takes the target flags out of argv; the rest goes to the ordinary parser. */
export function extractTarget(argv: string[]): { target?: CliTarget; evalDir?: string; rest: string[] } {
  const rest: string[] = [];
  let target: CliTarget | undefined;
  let evalDir: string | undefined;
  let minInt8WeightShare: number | undefined;
  let remedy: CliTarget["remedy"];
  let tradeoff = false;
  eachArg(argv, (a, value) => {
    if (a === "--target-sqnr") {
      const db = Number(value());
      if (!Number.isFinite(db)) throw new Error("--target-sqnr takes a number of dB");
      target = { kind: "sqnr", minDb: db };
    } else if (a === "--target") {
      const m = /^\s*drop\s*<=\s*([0-9.]+)\s*$/.exec(value());
      if (!m) throw new Error('--target takes "drop<=PP", e.g. --target "drop<=0.5"');
      target = { kind: "drop", maxPp: Number(m[1]) };
    } else if (a === "--eval") {
      evalDir = value();
    } else if (a === "--min-int8-weights") {
      const f = Number(value());
      if (!(f >= 0 && f <= 1)) throw new Error("--min-int8-weights takes a share between 0 and 1, e.g. 0.9");
      minInt8WeightShare = f;
    } else if (a === "--tradeoff") {
      tradeoff = true;
    } else if (a === "--remedy") {
      const r = value();
      if (r !== "auto" && r !== "int16" && r !== "float") throw new Error(`--remedy takes auto, int16 or float, not "${r}"`);
      remedy = r;
    } else {
      rest.push(a);
    }
  });
  if (target?.kind === "drop" && !evalDir) throw new Error('--target "drop<=PP" needs --eval DIR with labelled data (x.npy, y.npy)');
  if (minInt8WeightShare !== undefined) {
    if (!target) throw new Error("--min-int8-weights needs --target or --target-sqnr");
    target.minInt8WeightShare = minInt8WeightShare;
  }
  if (remedy !== undefined) {
    if (!target) throw new Error("--remedy needs --target or --target-sqnr");
    target.remedy = remedy;
  }
  if (tradeoff) {
    if (!target) throw new Error("--tradeoff needs --target or --target-sqnr");
    target.tradeoff = true;
  }
  return { target, evalDir, rest };
}

export interface TargetedRun {
  model: string;
  output: string;
  calib: string;
  batchSize: number;
  overwrite: boolean;
  json: boolean;
  config: import("../engine/quant/types").QConfig;
  prepareOptions: { optimize: boolean; ep: "cpu" | "cuda" };
}

/** Eval samples per run: one batch of thousands of images would hold every activation of all of them at once. */
const EVAL_BATCH = 250;

export async function runTargeted(run: TargetedRun, target: CliTarget, evalDir: string | undefined): Promise<number> {
  const { prepare, calibrate, release } = await import("../engine/quant/index");
  const { searchMixedPrecision } = await import("../engine/analysis/sensitivity");
  const source = await Model.load(run.model);
  const prepared = await prepare(source, run.config, run.prepareOptions);
  const calib = await takeBatches(openData(run.calib, source.proto, { batchSize: run.batchSize }), 64);
  try {
    await calibrate(prepared, calib);
  } finally {
    await release(prepared);
  }
  let data: Feeds[];
  let labels: HostTensor | undefined;
  if (target.kind === "drop") {
    const inputs = source.graph.input
      .filter((i) => !source.graph.initializer.some((t) => t.name === i.name))
      .map((i) => ({ name: i.name, type: "float32", shape: [] as (number | string)[] }));
    const labelled = loadDataDir(evalDir!, inputs);
    if (!labelled.labels) throw new Error(`--eval ${evalDir}: no y.npy with class labels`);
    data = [...splitRows(labelled.inputs as unknown as Feeds, EVAL_BATCH)];
    labels = labelled.labels;
  } else {
    data = calib.slice(0, 16);
  }
  const progress = process.stderr.isTTY && !run.json ? (line: string) => process.stderr.write(`\r${line}\x1b[K`) : () => undefined;
  const result = await searchMixedPrecision(prepared, data, target.kind === "sqnr" ? target : { ...target, labels: labels! }, {
    ep: run.prepareOptions.ep,
    // Rank on the calibration sample (output SQNR needs no labels): one run per quantized node on 2000 eval
    // images took minutes; the search then checks its few candidates on the whole --eval set.
    rankData: target.kind === "drop" ? calib.slice(0, 16) : undefined,
    minInt8WeightShare: target.minInt8WeightShare,
    remedy: target.remedy,
    tradeoff: target.tradeoff ? {} : undefined,
    onProgress: (done, total) => progress(`ranking nodes: ${done}/${total}`),
    onStep: (s) => progress(`search: ${pickedNodes(s)} → ${s.metric.toFixed(2)}`),
  });
  progress("");
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
