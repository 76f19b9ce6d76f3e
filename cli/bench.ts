// `ptq bench A.onnx [B.onnx …]`: latency, throughput, size and load figures of several models measured in one
// process, interleaved; the first model is the baseline for ratios. JSON schema: docs/cli.md.

import { existsSync } from "node:fs";
import { benchmark, type BenchmarkOptions } from "../engine/analysis/benchmark";
import { loadDataDir } from "../engine/analysis/dataset";
import { firstSamples, sampleAxes, samplesIn, type Feeds } from "../engine/analysis/feeds";
import { fixedBatchSize, inputSpecsOf } from "../engine/data/feeds";
import { modelIO } from "./model-io";
import { parsePositiveInt, parsePositiveNumber, parseShapeFlags, requireShapes, resolveShapes, UsageError, type ShapeFlag } from "./args";
import { errorMessage } from "./files";
import { IMAGE_FLAGS, imageOptions } from "./image-flags";
import type { ImageNormalization } from "../engine/data/images";
import { EP_FLAG, flagLines, HELP_FLAG, parseFlags, SHAPE_FLAG, THREADS_FLAG, type Flag } from "./flags";
import { benchmarkText } from "../kernel/views/benchmark-view";

const FLAGS = [
  { name: "data", arg: "PATH", help: "inputs to run on, in any format --calib takes: a folder of .npy batches (or one <input>.npy per input), an .npz file or folder, ONNX test_data_set_* folders, or images; its shapes are used", default: "seeded random data shaped from the first model's inputs" },
  SHAPE_FLAG,
  { name: "batch", arg: "N[,M]", help: "batch size(s) to measure; with --data, the first N samples", default: 1 },
  THREADS_FLAG,
  { name: "runs", arg: "N", help: "timed runs per model and batch size", default: 50 },
  { name: "seconds", arg: "S", help: "time budget per batch size instead of a run count" },
  { name: "warmup", arg: "N", help: "untimed runs after the cold run", default: 5 },
  EP_FLAG,
  { name: "flush-denormals", help: "when the first model has denormal float32 weights (float kernels run slowly on them on many x86 CPUs; quantizing writes them as 0), also time a copy of it with them set to 0, as the baseline" },
  { name: "json", help: "print the result as JSON (schema in docs/cli.md)" },
  ...IMAGE_FLAGS,
  HELP_FLAG,
] as const satisfies readonly Flag[];

const HELP = `Usage: ptq bench A.onnx [B.onnx ...] [options]

Measures every model in one process, runs interleaved (A B, B A, ...), threads pinned.
The first model is the baseline: the others get a speed-up with a 95% interval.

Options:
${flagLines(FLAGS).join("\n")}

Exit codes: 0 ok, 1 failure (bad model, bad data), 2 usage.`;

export async function run(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseFlags(argv, FLAGS);
  } catch (e) {
    process.stderr.write(`ptq bench: ${(e as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  const { values: v, positionals: models } = opts;
  if (v.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  let options: BenchmarkOptions;
  let shapeFlags: ShapeFlag[];
  let images: ImageNormalization | undefined;
  try {
    if (models.length === 0) throw new UsageError("give at least one .onnx model");
    if (v.ep !== undefined && v.ep !== "cpu" && v.ep !== "cuda") throw new UsageError(`--ep must be cpu or cuda, not "${v.ep}"`);
    if (v.runs !== undefined && v.seconds !== undefined) throw new UsageError("give --runs or --seconds, not both");
    if (v.shape !== undefined && v.data !== undefined) throw new UsageError("give --shape or --data, not both: with --data the shapes come from the data");
    shapeFlags = parseShapeFlags(v.shape);
    images = imageOptions(v, v.data);
    options = {
      batchSizes: v.batch?.split(",").map((b) => parsePositiveInt(b, "--batch")),
      threads: v.threads !== undefined ? parsePositiveInt(v.threads, "--threads") : undefined,
      runs: v.runs !== undefined ? parsePositiveInt(v.runs, "--runs") : undefined,
      seconds: v.seconds !== undefined ? parsePositiveNumber(v.seconds, "--seconds") : undefined,
      warmup: v.warmup !== undefined ? parsePositiveInt(v.warmup, "--warmup", 0) : undefined,
      ep: v.ep as "cpu" | "cuda" | undefined,
      flushDenormals: v["flush-denormals"] === true,
    };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`ptq bench: ${e.message}\n\nRun \`ptq bench --help\` for options.\n`);
    return 2;
  }
  try {
    for (const m of models) if (!existsSync(m)) throw new Error(`model file not found: ${m}`);
    const { inputs } = await modelIO(models[0]!);
    if (v.data === undefined) {
      options.shapes = resolveShapes(shapeFlags, inputs);
      requireShapes(inputs, options.shapes);
    } else {
      const all = loadDataDir(v.data, inputs, undefined, { limit: Math.max(...(options.batchSizes ?? [1])), images }).inputs;
      const axes = sampleAxes(inputs);
      const available = samplesIn(all, axes);
      // A model that fixes its batch (BlazeFace, M-LSD: 1) runs at that size whatever was asked; the benchmark says so.
      const fixed = fixedBatchSize(inputSpecsOf(inputs));
      const tooBig = (fixed !== undefined ? [fixed] : (options.batchSizes ?? [1])).filter((b) => b > available);
      if (tooBig.length) throw new Error(`--batch ${tooBig.join(",")}: ${v.data} holds only ${available} samples`);
      // Given data: take the first N samples for each requested batch size.
      options.data = (batch: number): Feeds => firstSamples(all, axes, fixed ?? batch);
      options.batchSizes ??= [1];
    }
    const result = await benchmark(models, options);
    process.stdout.write((v.json ? JSON.stringify(result.toJSON(), null, 2) : benchmarkText(result.toJSON())) + "\n");
    return 0;
  } catch (e) {
    process.stderr.write(`ptq bench: ${errorMessage(e)}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}
