// Low-bit weights side by side on the project's real fixture models: FP32, INT8 (default static QDQ), INT4 RTN,
// INT4 HQQ, INT4 GPTQ (MatMulNBits; GPTQ calibrated on the data INT8 calibrates on), MXFP4 and NVFP4 (runnable decode
// form). For each: file size, held-out top-1 (or perplexity) with the paired interval of the drop vs FP32, weight
// SQNR, and latency measured interleaved in one process.
//
// `--models matmul` instead times one large float MatMul against MatMulNBits at 2/4/8 bits with accuracy_level 0
// (float activations) and 4 (int8 activations), with each one's output SQNR vs float.
//
//   node --import tsx bench/lowbit.ts [--models cnn,vit,lm,matmul] [--seconds 3] [--threads 2] [--block-size 32]
//                                     [--matmul-size 4096]
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Model } from "../engine/onnx";
import { quantizeStatic } from "../engine/quant";
import { openData } from "../engine/data/readers";
import { lowBitModel, lowBitModelCalibrated, type LowBitOptions, type LowBitReport } from "../engine/lowbit";
import { loadDataDir, readNpyTensor } from "../engine/analysis/dataset";
import type { Tensor } from "../engine/data/feeds";
import { createSession } from "../engine/runtime/session";
import { evaluate } from "../engine/analysis/evaluate";
import { benchmark } from "../engine/analysis/benchmark";
import { DataType, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../engine/onnx";
import { sqnr } from "../engine/quant/math";

const { values: args } = parseArgs({
  options: {
    models: { type: "string", default: "cnn,mobilenet,vit,lm" },
    seconds: { type: "string", default: "3" },
    threads: { type: "string", default: String(Math.min(2, os.availableParallelism())) },
    "block-size": { type: "string", default: "32" },
    "calib-samples": { type: "string", default: "128" },
    "matmul-size": { type: "string", default: "4096" },
  },
});

const FIXTURES = path.join(__dirname, "..", "test", "fixtures");
const blockSize = Number(args["block-size"]);
const variants: [string, LowBitOptions | "int8" | "fp32"][] = [
  ["fp32", "fp32"],
  ["int8", "int8"],
  ["int4-rtn", { mode: "int4", blockSize, algorithm: "rtn" }],
  ["int4-hqq", { mode: "int4", blockSize, algorithm: "hqq" }],
  ["int4-gptq", { mode: "int4", blockSize, algorithm: "gptq" }],
  ["int4-gptq-actorder", { mode: "int4", blockSize, algorithm: "gptq", gptq: { actOrder: true } }],
  ["int8w-rtn", { mode: "int4", bits: 8, blockSize, algorithm: "rtn" }],
  ["int2-rtn", { mode: "int4", bits: 2, blockSize, algorithm: "rtn" }],
  ["int2-gptq", { mode: "int4", bits: 2, blockSize, algorithm: "gptq" }],
  // The same with embedding tables (Gather) in 4 bits too: only the LM has one.
  ["int4-rtn+emb", { mode: "int4", blockSize, algorithm: "rtn", includeGather: true }],
  ["int4-gptq+emb", { mode: "int4", blockSize, algorithm: "gptq", includeGather: true }],
  ["mxfp4", { mode: "fp4", fp4Format: "mxfp4", export: "runnable" }],
  ["nvfp4", { mode: "fp4", fp4Format: "nvfp4", export: "runnable" }],
];

/** Character windows of a text, encoded as the fixture LM's vocabulary does (0 = newline, 1..95 = ASCII 32..126). */
function textWindows(text: string, count: number, len: number): BigInt64Array {
  const ids = [...text].map((ch) => (ch === "\n" ? 0 : ch.charCodeAt(0) >= 32 && ch.charCodeAt(0) <= 126 ? ch.charCodeAt(0) - 31 : 1));
  const out = new BigInt64Array(count * len);
  const stride = Math.max(1, Math.floor((ids.length - len) / count));
  for (let w = 0; w < count; w++) for (let i = 0; i < len; i++) out[w * len + i] = BigInt(ids[w * stride + i] ?? 0);
  return out;
}

/** Held-out perplexity of the fixture LM: feed windows[:, :64], score the next character at every position. */
async function perplexity(file: string, heldout: Tensor): Promise<number> {
  const [n, w] = heldout.dims as [number, number];
  const ctx = w - 1;
  const ids = new BigInt64Array(n * ctx);
  for (let r = 0; r < n; r++) for (let i = 0; i < ctx; i++) ids[r * ctx + i] = (heldout.data as BigInt64Array)[r * w + i]!;
  const s = await createSession(file, { threads: Number(args.threads) });
  try {
    const out = await s.run({ input_ids: { data: ids, dims: [n, ctx] } });
    const logits = out.logits.data as Float32Array;
    const v = logits.length / (n * ctx);
    let nll = 0;
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < ctx; i++) {
        const row = logits.subarray((r * ctx + i) * v, (r * ctx + i + 1) * v);
        let m = -Infinity;
        for (const x of row) m = Math.max(m, x);
        let z = 0;
        for (const x of row) z += Math.exp(x - m);
        const target = Number((heldout.data as BigInt64Array)[r * w + i + 1]);
        nll += Math.log(z) + m - row[target]!;
      }
    }
    return Math.exp(nll / (n * ctx));
  } finally {
    await s.dispose();
  }
}

async function benchLm(): Promise<void> {
  const file = path.join(FIXTURES, "models", "lm.onnx");
  if (!existsSync(file)) return;
  const out = mkdtempSync(path.join(os.tmpdir(), "ptq-lowbit-lm-"));
  const fp32 = await Model.load(file);
  const heldout = readNpyTensor(path.join(FIXTURES, "data", "lm", "heldout.npy"));
  // Calibrate on training text the model saw (a Debian licence), never on the held-out windows.
  const train = readFileSync("/usr/share/common-licenses/GPL-3", "utf8");
  const calib = Array.from({ length: 8 }, (_, b) => ({ input_ids: { data: textWindows(train.slice(b * 4000), 16, 64), dims: [16, 64] } }));
  console.log(`\n## lm (test/fixtures/models/lm.onnx), held-out perplexity on ${heldout.dims[0]} windows, block size ${blockSize}`);
  console.log("| variant | file | × smaller | perplexity | Δ vs FP32 | weight SQNR |");
  console.log("|---|---|---|---|---|---|");
  const base = statSync(file).size;
  let fp32Ppl = 0;
  for (const [label, v] of variants) {
    const target = path.join(out, `lm.${label}.onnx`);
    let note = "—";
    if (v === "fp32") {
      await copyFile(file, target);
    } else if (v === "int8") {
      await quantizeStatic(file, target, calib);
    } else {
      const { model, report } = await lowBitModelCalibrated(fp32, v, calib);
      await model.save(target);
      note = sqnrNote(report);
    }
    const ppl = await perplexity(target, heldout);
    if (v === "fp32") fp32Ppl = ppl;
    const size = statSync(target).size;
    console.log(`| ${label} | ${(size / 1024).toFixed(1)} KiB | ${(base / size).toFixed(2)} | ${ppl.toFixed(4)} | ${v === "fp32" ? "—" : `${(((ppl - fp32Ppl) / fp32Ppl) * 100).toFixed(2)} %`} | ${note} |`);
  }
}

function sqnrNote(report: LowBitReport): string {
  const dbs = report.layers.map((l) => l.sqnrDb);
  if (!dbs.length) return "no weights quantized";
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rtn = report.layers.every((l) => l.rtnSqnrDb !== undefined) ? ` (RTN ${mean(report.layers.map((l) => l.rtnSqnrDb!)).toFixed(1)} dB)` : "";
  const out = report.layers.every((l) => l.outputSqnrDb !== undefined)
    ? `; output ${mean(report.layers.map((l) => l.outputSqnrDb!)).toFixed(1)} dB (RTN ${mean(report.layers.map((l) => l.rtnOutputSqnrDb!)).toFixed(1)} dB)`
    : "";
  return `${mean(dbs).toFixed(1)} dB mean over ${dbs.length} weights${rtn}${out}`;
}

/** x[batch, S] · W[S, S] in float vs MatMulNBits: latency at batch 1 and 32, output SQNR on a batch of 32. */
async function benchMatMul(): Promise<void> {
  const size = Number(args["matmul-size"]);
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  // Sum of three uniforms: roughly Gaussian weights, as trained layers have.
  const w = Float32Array.from({ length: size * size }, () => (rand() + rand() + rand()) * 0.02);
  const graph = makeGraph(
    "matmul",
    [makeNode("MatMul", ["x", "W"], ["y"], { name: "fc" })],
    [makeValueInfo("x", DataType.FLOAT, ["batch", size])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", size])],
    { initializers: [makeTensor("W", DataType.FLOAT, [size, size], w)] },
  );
  const fp32 = Model.fromProto(makeModel(graph, { opsets: { "": 13 } }));
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-lowbit-matmul-"));
  const files: Record<string, string> = { fp32: path.join(dir, "fp32.onnx") };
  await fp32.save(files.fp32!);
  for (const bits of [4, 8, 2] as const) {
    for (const accuracyLevel of [0, 4] as const) {
      const label = `int${bits} acc${accuracyLevel}`;
      files[label] = path.join(dir, `int${bits}-acc${accuracyLevel}.onnx`);
      await lowBitModel(fp32, { mode: "int4", bits, blockSize, accuracyLevel }).model.save(files[label]!);
    }
  }
  const x = { x: { data: Float32Array.from({ length: 32 * size }, rand), dims: [32, size] } };
  const outputs: Record<string, Float32Array> = {};
  for (const [label, file] of Object.entries(files)) {
    const s = await createSession(file, { threads: Number(args.threads) });
    outputs[label] = (await s.run(x)).y.data as Float32Array;
    await s.dispose();
  }
  const bench = (await benchmark(files, { batchSizes: [1, 32], seconds: Number(args.seconds), threads: Number(args.threads) })).toJSON();
  console.log(`\n## MatMul [batch, ${size}] × [${size}, ${size}], block size ${blockSize}, ${args.threads} threads`);
  console.log("| variant | file | p50 b=1 | speed-up b=1 | p50 b=32 | speed-up b=32 | output SQNR vs FP32 (b=32) |");
  console.log("|---|---|---|---|---|---|---|");
  for (const [label, file] of Object.entries(files)) {
    const figs = bench.models.find((m) => m.name === label)!;
    const [b1, b32] = [1, 32].map((b) => figs.batches.find((x) => x.batch === b)!);
    const up = (b: typeof b1) => (b!.vsFirst ? `${b!.vsFirst.speedup.toFixed(2)}×` : "1.00×");
    const q = label === "fp32" ? "—" : `${sqnr(outputs.fp32!, outputs[label]!).toFixed(1)} dB`;
    console.log(
      `| ${label} | ${(statSync(file).size / 2 ** 20).toFixed(1)} MiB | ${b1!.latencyMs.p50.toFixed(3)} ms | ${up(b1)} | ` +
        `${b32!.latencyMs.p50.toFixed(3)} ms | ${up(b32)} | ${q} |`,
    );
  }
}

async function benchModel(name: string): Promise<void> {
  if (name === "lm") return benchLm();
  if (name === "matmul") return benchMatMul();
  const file = path.join(FIXTURES, "models", `${name}.onnx`);
  if (!existsSync(file)) {
    console.log(`\n## ${name}: ${file} not found, skipped`);
    return;
  }
  const out = mkdtempSync(path.join(os.tmpdir(), `ptq-lowbit-${name}-`));
  const fp32 = await Model.load(file);
  const files: Record<string, string> = {};
  const sqnr: Record<string, string> = {};
  const limit = Number(args["calib-samples"]);
  const calib = function* () {
    let i = 0;
    for (const feeds of openData(path.join(FIXTURES, "data", "calib", "npy"), fp32.proto)) if (i++ < limit) yield feeds;
  };
  for (const [label, v] of variants) {
    const target = path.join(out, `${name}.${label}.onnx`);
    if (v === "fp32") {
      files[label] = file;
      continue;
    }
    if (v === "int8") {
      await quantizeStatic(file, target, calib());
    } else {
      const { model, report } = await lowBitModelCalibrated(fp32, v, calib());
      await model.save(target);
      sqnr[label] = sqnrNote(report);
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
