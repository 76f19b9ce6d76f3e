// `ptq report IN.onnx OUT.onnx`: what quantization cost and bought, for CI pipelines: the metric on held-out data
// with the paired interval of the difference, and the benchmark of both models. Exit 3 when a threshold given on
// the command line is violated. JSON schema: docs/cli.md.

import { existsSync } from "node:fs";
import { benchmark, shapesAtBatch } from "../engine/analysis/benchmark";
import { loadDataDir } from "../engine/analysis/dataset";
import { evaluate, type LabelledData, type MetricSpec } from "../engine/analysis/evaluate";
import { Model } from "../engine/onnx/model";
import { oneValuePerSample } from "../engine/onnx/proto";
import { firstSamples, generateFeeds, sampleAxes, type Feeds } from "../engine/analysis/feeds";
import { fixedBatchSize, inputSpecsOf } from "../engine/data/feeds";
import { modelIO } from "./model-io";
import { buildReport, reportHtml, reportText } from "./report-document";
import { parseNonNegativeNumber, parsePositiveInt, parsePositiveNumber, parseShapeFlags, requireShapes, resolveShapes, UsageError } from "./args";
import { checkOutput, errorMessage, writeFileAtomic } from "./files";
import { IMAGE_FLAGS, imageOptions } from "./image-flags";
import { flagLines, HELP_FLAG, parseFlags, SHAPE_FLAG, THREADS_FLAG, type Flag } from "./flags";

const METRICS = ["top1", "top5", "f1", "mse", "psnr", "cosine", "cer", "wer", "agreement"] as const;

/** The benchmark's defaults here: a report's speed figure is one batch size, fewer runs than `ptq bench`. */
const BATCH = 1;
const RUNS = 30;

const FLAGS = [
  { name: "data", arg: "PATH", help: "held-out inputs, in any format --calib takes: a folder of .npy batches (or one <input>.npy per input), an .npz file or folder, ONNX test_data_set_* folders, or images; labels, optional, in y.npy beside .npy files or as array \"y\" in each .npz. Its shapes are used for the benchmark too", default: "256 seeded random samples scored against IN's outputs (cosine)" },
  { name: "labels", arg: "FILE", help: "labels .npy (class ids, targets or token ids)", default: "the labels found with --data" },
  SHAPE_FLAG,
  { name: "metric", arg: "M", help: METRICS.join(", "), default: "top1 with labels; with unlabelled --data agreement where IN's output holds class scores [N, C], cer of the greedy CTC reading on a Softmax's [N, T, C], mse on one value per sample, else cosine; on random samples cosine (mse on one value per sample)" },
  { name: "limit", arg: "N", help: "score only the first N samples" },
  { name: "max-drop", arg: "X", help: "exit 3 if OUT's metric is worse than IN's by more than X (percentage points for accuracy-like metrics, metric units otherwise)" },
  { name: "min-speedup", arg: "X", help: "exit 3 if OUT's median-latency speed-up over IN is below X" },
  { name: "batch", arg: "N", help: "benchmark batch size", default: BATCH },
  { name: "runs", arg: "N", help: "benchmark runs per model", default: RUNS },
  THREADS_FLAG,
  { name: "html", arg: "FILE", help: "also write a self-contained HTML report" },
  { name: "overwrite", help: "let --html replace an existing file" },
  { name: "json", help: "print the report as JSON (schema in docs/cli.md)" },
  ...IMAGE_FLAGS,
  HELP_FLAG,
] as const satisfies readonly Flag[];

const HELP = `Usage: ptq report IN.onnx OUT.onnx [options]

Compares a quantized model (OUT) with its original (IN): the metric on held-out data with a paired
95% interval of the difference, and latency/throughput/size of both (interleaved, threads pinned).

Options:
${flagLines(FLAGS).join("\n")}

Exit codes: 0 ok, 1 failure (bad model, bad data), 2 usage, 3 a --max-drop/--min-speedup limit violated.`;

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags(argv, FLAGS);
  } catch (e) {
    process.stderr.write(`ptq report: ${(e as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  let cfg;
  try {
    if (positionals.length !== 2) throw new UsageError(`give exactly two models, IN.onnx and OUT.onnx (got ${positionals.length})`);
    if (v.metric !== undefined && !(METRICS as readonly string[]).includes(v.metric)) throw new UsageError(`--metric must be one of ${METRICS.join(", ")}, not "${v.metric}"`);
    if (v.labels !== undefined && v.data === undefined) throw new UsageError("--labels needs --data (the inputs the labels belong to)");
    if (v.shape !== undefined && v.data !== undefined) throw new UsageError("give --shape or --data, not both: with --data the shapes come from the data");
    if (v.overwrite && v.html === undefined) throw new UsageError("--overwrite applies to --html FILE");
    if (v.html !== undefined) checkOutput(v.html, { flag: "--html", overwrite: v.overwrite === true, inputs: [...positionals, v.data, v.labels] });
    cfg = {
      limit: v.limit !== undefined ? parsePositiveInt(v.limit, "--limit") : undefined,
      maxDrop: v["max-drop"] !== undefined ? parseNonNegativeNumber(v["max-drop"], "--max-drop") : undefined,
      minSpeedup: v["min-speedup"] !== undefined ? parsePositiveNumber(v["min-speedup"], "--min-speedup") : undefined,
      batch: v.batch !== undefined ? parsePositiveInt(v.batch, "--batch") : BATCH,
      runs: v.runs !== undefined ? parsePositiveInt(v.runs, "--runs") : RUNS,
      threads: v.threads !== undefined ? parsePositiveInt(v.threads, "--threads") : undefined,
      shapes: parseShapeFlags(v.shape),
      images: imageOptions(v, v.data),
    };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`ptq report: ${e.message}\n\nRun \`ptq report --help\` for options.\n`);
    return 2;
  }
  const [inPath, outPath] = positionals as [string, string];
  try {
    for (const m of [inPath, outPath]) if (!existsSync(m)) throw new Error(`model file not found: ${m}`);
    const { inputs } = await modelIO(inPath);
    let data: LabelledData;
    let shapes: Record<string, number[]> | undefined;
    const notes: string[] = [];
    if (v.data !== undefined) {
      data = loadDataDir(v.data, inputs, v.labels, { limit: cfg.limit, images: cfg.images });
    } else {
      shapes = resolveShapes(cfg.shapes, inputs);
      requireShapes(inputs, shapes);
      const n = Math.min(256, cfg.limit ?? 256);
      data = { inputs: generateFeeds(inputs, n, 7, shapesAtBatch(inputs, shapes, n)) };
      notes.push(`no --data: ${n} seeded random samples, scored against IN's outputs; give --data for a real accuracy figure`);
    }
    // With data, evaluate() picks: top-1 with labels, else what fits IN's output (agreement, CTC CER, cosine).
    // Random samples: closeness to IN's outputs (mse where a sample's output is one value: its cosine is its sign).
    const random = async (): Promise<MetricSpec> => (oneValuePerSample((await Model.load(inPath)).graph.output[0]) ? "mse" : "cosine");
    const metric: MetricSpec | undefined = (v.metric as MetricSpec | undefined) ?? (v.data === undefined ? await random() : undefined);
    const models = { [inPath]: inPath, [outPath]: outPath };
    const evaluation = await evaluate(models, data, metric, { limit: cfg.limit, threads: cfg.threads });
    // With data, the benchmark runs its first samples: their shapes are the ones that matter.
    const benchData = v.data !== undefined ? (batch: number): Feeds => firstSamples(data.inputs, sampleAxes(inputs), fixedBatchSize(inputSpecsOf(inputs)) ?? batch) : undefined;
    const bench = await benchmark(models, { batchSizes: [cfg.batch], runs: cfg.runs, threads: cfg.threads, data: benchData, shapes });
    const report = buildReport(evaluation.toJSON(), bench.toJSON(), { maxDrop: cfg.maxDrop, minSpeedup: cfg.minSpeedup }, notes);
    if (v.html !== undefined) writeFileAtomic(v.html, reportHtml(report));
    process.stdout.write((v.json ? JSON.stringify(report, null, 2) : reportText(report)) + "\n");
    return report.passed ? 0 : 3;
  } catch (e) {
    process.stderr.write(`ptq report: ${errorMessage(e, v.html !== undefined ? { path: v.html, flag: "--html" } : undefined)}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}
