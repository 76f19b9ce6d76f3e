// Low-bit weights side by side on the project's real fixture models: FP32, INT8 (default static QDQ), INT4 RTN,
// INT4 HQQ (MatMulNBits), MXFP4 and NVFP4 (runnable decode form). For each: file size, held-out top-1 with the
// paired interval of the drop vs FP32, weight SQNR, and latency measured interleaved in one process.
//
//   node --import tsx bench/lowbit.ts [--models cnn,vit] [--seconds 3] [--threads 2] [--block-size 32]
import { mkdtempSync, statSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Model } from "../kernel/onnx";
import { quantizeStatic } from "../kernel/quant";
import { openData } from "../kernel/data/readers";
import { lowBitModel, type LowBitOptions } from "../kernel/lowbit";
import { loadDataDir } from "../kernel/analysis/dataset";
import { evaluate } from "../kernel/analysis/evaluate";
import { benchmark } from "../kernel/analysis/benchmark";

const { values: args } = parseArgs({
  options: {
    models: { type: "string", default: "cnn,mobilenet,vit,charlm" },
    seconds: { type: "string", default: "3" },
    threads: { type: "string", default: String(Math.min(2, os.availableParallelism())) },
    "block-size": { type: "string", default: "32" },
    "calib-samples": { type: "string", default: "128" },
  },
});

const FIXTURES = path.join(__dirname, "..", "test", "fixtures");
const blockSize = Number(args["block-size"]);
const variants: [string, LowBitOptions | "int8" | "fp32"][] = [
  ["fp32", "fp32"],
  ["int8", "int8"],
  ["int4-rtn", { mode: "int4", blockSize, algorithm: "rtn" }],
  ["int4-hqq", { mode: "int4", blockSize, algorithm: "hqq" }],
  ["mxfp4", { mode: "fp4", fp4Format: "mxfp4", export: "runnable" }],
  ["nvfp4", { mode: "fp4", fp4Format: "nvfp4", export: "runnable" }],
];

async function benchModel(name: string): Promise<void> {
  const file = path.join(FIXTURES, "models", `${name}.onnx`);
  if (!existsSync(file)) {
    console.log(`\n## ${name}: ${file} not found, skipped`);
    return;
  }
  const out = mkdtempSync(path.join(os.tmpdir(), `ptq-lowbit-${name}-`));
  const fp32 = await Model.load(file);
  const files: Record<string, string> = {};
  const sqnr: Record<string, string> = {};
  for (const [label, v] of variants) {
    const target = path.join(out, `${name}.${label}.onnx`);
    if (v === "fp32") {
      files[label] = file;
      continue;
    }
    if (v === "int8") {
      const all = openData(path.join(FIXTURES, "data", "calib", "npy"), fp32.proto);
      const limit = Number(args["calib-samples"]);
      await quantizeStatic(file, target, (function* () {
        let i = 0;
        for (const feeds of all) if (i++ < limit) yield feeds;
      })());
    } else {
      const { model, report } = lowBitModel(fp32, v);
      await model.save(target);
      const dbs = report.layers.map((l) => l.sqnrDb);
      sqnr[label] = dbs.length
        ? `${(dbs.reduce((a, b) => a + b, 0) / dbs.length).toFixed(1)} dB mean over ${dbs.length} weights` +
          (report.layers[0].rtnSqnrDb !== undefined
            ? ` (RTN ${(report.layers.reduce((a, l) => a + (l.rtnSqnrDb ?? 0), 0) / dbs.length).toFixed(1)} dB)`
            : "")
        : "no weights quantized";
    }
    files[label] = target;
  }
  const data = loadDataDir(path.join(FIXTURES, "data", "eval"), fp32.graph.input.map((i) => ({ name: i.name, type: "float32", shape: [] })));
  const acc = await evaluate(files, data, "top1", { threads: Number(args.threads) });
  const bench = await benchmark(files, { batchSizes: [1, 32], seconds: Number(args.seconds), threads: Number(args.threads) });
  const accJson = acc.toJSON();
  const benchJson = bench.toJSON();
  console.log(`\n## ${name} (${path.relative(process.cwd(), file)}), block size ${blockSize}, ${args.threads} threads`);
  console.log("| variant | file | × smaller | top-1 | Δ vs FP32 (95% CI) | p50 b=1 | p50 b=32 | speed-up b=32 | weight SQNR |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  const base = statSync(file).size;
  for (const [label] of variants) {
    const size = statSync(files[label]).size;
    const score = accJson.models.find((m) => m.name === label)!;
    const figs = benchJson.models.find((m) => m.name === label)!;
    const b1 = figs.batches.find((b) => b.batch === 1)!;
    const b32 = figs.batches.find((b) => b.batch === 32)!;
    const diff = score.vsFirst ? `${(score.vsFirst.diff.estimate * 100).toFixed(2)} pp [${(score.vsFirst.diff.lo * 100).toFixed(2)}, ${(score.vsFirst.diff.hi * 100).toFixed(2)}]` : "—";
    const speed = b32.vsFirst ? `${b32.vsFirst.speedup.toFixed(2)}×` : "1.00×";
    console.log(
      `| ${label} | ${(size / 1024).toFixed(1)} KiB | ${(base / size).toFixed(2)} | ${(score.score.estimate * 100).toFixed(2)} % | ${diff} | ` +
        `${b1.latencyMs.p50.toFixed(3)} ms | ${b32.latencyMs.p50.toFixed(3)} ms | ${speed} | ${sqnr[label] ?? "—"} |`,
    );
  }
}

async function main(): Promise<void> {
  console.log(`# bench/lowbit.ts on ${os.cpus()[0]?.model ?? "unknown CPU"} (${os.availableParallelism()} vCPUs), Node ${process.version}`);
  for (const name of args.models!.split(",")) await benchModel(name.trim());
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
