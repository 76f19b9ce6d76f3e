// FP32 vs INT8 on the fixture models, in one process: quantize each model with the default config and with the
// activation/weight type variants (U8S8, S8S8, U8U8), score top-1 on data/eval, then time every variant against
// FP32 interleaved (engine/analysis/benchmark: pinned threads, rotating order) at batch 1 and larger batches.
//
//   node --import tsx bench/quantize.ts [--models cnn,mobilenet,vit] [--batches 1,8,32] [--seconds 5]
//        [--threads 2] [--variants default,u8s8,s8s8,u8u8] [--json]
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { benchmark } from "../engine/analysis/benchmark";
import { loadDataDir } from "../engine/analysis/dataset";
import { evaluate } from "../engine/analysis/evaluate";
import { openData } from "../engine/data/readers";
import { Model } from "../engine/onnx/model";
import { quantizeStatic, type QConfig } from "../engine/quant/index";

const FIX = path.join(__dirname, "..", "test", "fixtures");
const VARIANTS: Record<string, QConfig> = {
  default: {},
  u8s8: { activationType: "uint8", weightType: "int8" },
  s8s8: { activationType: "int8", weightType: "int8" },
  u8u8: { activationType: "uint8", weightType: "uint8" },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] ?? fallback : fallback;
}

interface Row {
  model: string;
  variant: string;
  top1: number;
  batch: number;
  fp32Ms: number;
  int8Ms: number;
  speedup: number;
  verdict: string;
}

async function main(): Promise<void> {
  const manifest = JSON.parse(readFileSync(path.join(FIX, "models", "manifest.json"), "utf8")) as Record<string, { file: string; input: string; output: string }>;
  const names = arg("models", "cnn,mobilenet,vit").split(",");
  const batches = arg("batches", "1,8,32").split(",").map(Number);
  const seconds = Number(arg("seconds", "5"));
  const threads = Number(arg("threads", String(os.availableParallelism())));
  const variants = arg("variants", "default,u8s8,s8s8,u8u8").split(",");
  const json = process.argv.includes("--json");
  const tmp = mkdtempSync(path.join(os.tmpdir(), "ptq-bench-quant-"));
  const rows: Row[] = [];
  const fp32Top1: Record<string, number> = {};
  try {
    for (const name of names) {
      const entry = manifest[name];
      const file = entry && path.join(FIX, "models", entry.file);
      if (!entry || !file || !existsSync(file)) {
        process.stderr.write(`skip ${name}: not in test/fixtures/models\n`);
        continue;
      }
      const model = Model.loadSync(file);
      const files: Record<string, string> = { fp32: file };
      for (const v of variants) {
        const out = path.join(tmp, `${name}.${v}.onnx`);
        const data = openData(path.join(FIX, "data", "calib", "calib.npz"), model.proto, { batchSize: 32 });
        await quantizeStatic(file, out, data, VARIANTS[v] ?? {});
        files[v] = out;
      }
      const inputs = model.graph.input.filter((i) => !model.graph.initializer.some((t) => t.name === i.name));
      const evalData = loadDataDir(path.join(FIX, "data", "eval"), inputs.map((i) => ({ name: i.name, type: "float32", shape: [] })));
      const scores = await evaluate(files, evalData, "top1", { threads, output: entry.output });
      const top1 = new Map(scores.toJSON().models.map((m) => [m.name, m.score.estimate]));
      fp32Top1[name] = top1.get("fp32") ?? NaN;
      const b = await benchmark(files, { batchSizes: batches, threads, seconds });
      const fp32 = b.models[0]!;
      for (const m of b.models.slice(1)) {
        for (const f of m.batches) {
          const base = fp32.batches.find((x) => x.batch === f.batch)!;
          rows.push({
            model: name,
            variant: m.name,
            top1: top1.get(m.name) ?? NaN,
            batch: f.batch,
            fp32Ms: base.latencyMs.p50,
            int8Ms: f.latencyMs.p50,
            speedup: base.latencyMs.p50 / f.latencyMs.p50,
            verdict: f.vsFirst ? (f.vsFirst.verdict.trustworthy ? "ok" : `noisy: ${f.vsFirst.verdict.reason}`) : "",
          });
        }
      }
      process.stderr.write(`${name}: done\n`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (json) {
    process.stdout.write(JSON.stringify({ threads, seconds, cpu: os.cpus()[0]?.model, fp32Top1, rows }, null, 2) + "\n");
    return;
  }
  process.stdout.write(`cpu: ${os.cpus()[0]?.model} (${os.cpus().length} logical), threads ${threads}, ${seconds}s per batch size\n`);
  process.stdout.write(`| model | variant | top-1 (FP32) | batch | FP32 p50 ms | INT8 p50 ms | speed-up | verdict |\n|---|---|---|---:|---:|---:|---:|---|\n`);
  for (const r of rows) {
    const acc = `${(r.top1 * 100).toFixed(2)}% (${(fp32Top1[r.model]! * 100).toFixed(2)}%)`;
    process.stdout.write(`| ${r.model} | ${r.variant} | ${acc} | ${r.batch} | ${r.fp32Ms.toFixed(3)} | ${r.int8Ms.toFixed(3)} | ${r.speedup.toFixed(2)}× | ${r.verdict} |\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/quantize: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
