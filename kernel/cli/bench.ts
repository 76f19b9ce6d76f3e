// `ptq bench A.onnx [B.onnx …]`: latency, throughput, size and load figures of several models measured in one
// process, interleaved; the first model is the baseline for ratios. JSON schema: docs/cli.md.

import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { benchmark, type BenchmarkOptions } from "../analysis/benchmark";
import { loadDataDir } from "../analysis/dataset";
import { sliceRows, type Feeds } from "../analysis/feeds";
import { openRuntimeRunner } from "../analysis/runtime-runner";
import { parsePositiveInt, parsePositiveNumber, UsageError } from "./args";
import { errorMessage } from "./files";

const HELP = `Usage: ptq bench A.onnx [B.onnx ...] [options]

Measures every model in one process, runs interleaved (A B, B A, ...), threads pinned.
The first model is the baseline: the others get a speed-up with a 95% interval.

Options:
  --data DIR       folder of .npy inputs (<input>.npy, or x.npy for one input); default: seeded random data
  --batch N[,M]    batch size(s) to measure (default 1); with --data, the first N samples
  --threads N      intra-op threads (default: all cores); inter-op is always 1
  --runs N         timed runs per model and batch size (default 50)
  --seconds S      time budget per batch size instead of a run count
  --warmup N       untimed runs after the cold run (default 5)
  --ep cpu|cuda    execution provider (default cpu)
  --json           print the result as JSON (schema in docs/cli.md)
  -h, --help       this help

Exit codes: 0 ok, 1 failure (bad model, bad data), 2 usage.`;

export async function run(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        data: { type: "string" },
        batch: { type: "string" },
        threads: { type: "string" },
        runs: { type: "string" },
        seconds: { type: "string" },
        warmup: { type: "string" },
        ep: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
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
  try {
    if (models.length === 0) throw new UsageError("give at least one .onnx model");
    if (v.ep !== undefined && v.ep !== "cpu" && v.ep !== "cuda") throw new UsageError(`--ep must be cpu or cuda, not "${v.ep}"`);
    if (v.runs !== undefined && v.seconds !== undefined) throw new UsageError("give --runs or --seconds, not both");
    options = {
      batchSizes: v.batch?.split(",").map((b) => parsePositiveInt(b, "--batch")),
      threads: v.threads !== undefined ? parsePositiveInt(v.threads, "--threads") : undefined,
      runs: v.runs !== undefined ? parsePositiveInt(v.runs, "--runs") : undefined,
      seconds: v.seconds !== undefined ? parsePositiveNumber(v.seconds, "--seconds") : undefined,
      warmup: v.warmup !== undefined ? parsePositiveInt(v.warmup, "--warmup", 0) : undefined,
      ep: v.ep as "cpu" | "cuda" | undefined,
    };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`ptq bench: ${e.message}\n\nRun \`ptq bench --help\` for options.\n`);
    return 2;
  }
  try {
    for (const m of models) if (!existsSync(m)) throw new Error(`model file not found: ${m}`);
    if (v.data !== undefined) {
      const probe = await openRuntimeRunner(models[0]!, { threads: 1, ep: "cpu" });
      const inputs = probe.inputs;
      await probe.release();
      const all = loadDataDir(v.data, inputs).inputs;
      const available = Math.min(...Object.values(all).map((t) => t.dims[0] ?? 1));
      const tooBig = (options.batchSizes ?? [1]).filter((b) => b > available);
      if (tooBig.length) throw new Error(`--batch ${tooBig.join(",")}: ${v.data} holds only ${available} samples`);
      // Given data: take the first N samples for each requested batch size.
      options.data = (batch: number): Feeds => Object.fromEntries(Object.entries(all).map(([k, t]) => [k, sliceRows(t, 0, batch)]));
      options.batchSizes ??= [1];
    }
    const result = await benchmark(models, options);
    process.stdout.write((v.json ? JSON.stringify(result.toJSON(), null, 2) : result.toString()) + "\n");
    return 0;
  } catch (e) {
    process.stderr.write(`ptq bench: ${errorMessage(e)}\n`);
    return 1;
  }
}
