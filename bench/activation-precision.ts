// Which activations cost a model its accuracy at 8 bits, and what fixes it (docs/activation-precision.md).
//
//   node --import tsx bench/activation-precision.ts blame --corpus ppocr-v3-rec-en [--top 25] [--rows 8]
//     Per activation tensor, on the corpus bench's held-out samples: that tensor alone fake-quantized at 8 bits
//     (the rest float) and every tensor but that one (the rest at 8 bits), ranges from the default calibration
//     (16 samples, seed 1). Weights stay float: this measures the activations only. Prints the worst tensors by
//     their output error alone, with their producer op, and the agreement/SQNR of all-at-8-bit and of the
//     worst-k-float sets.
//
//   node --import tsx bench/activation-precision.ts compare --corpus ppocr-v3-rec-en,... [--configs default,auto16]
//     Each configuration converted for real (engine/quant) and scored by bench/corpus/evaluate.ts: worst-output
//     SQNR and argmax/threshold agreement with FP32 on 8 held-out samples, and how many nodes run float. --time
//     [--rounds 7]: then FP32 and every configuration timed interleaved (batch 8, 1 thread), median per file.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { argmaxRows } from "../engine/analysis/metrics";
import { buildSwitchModel, chooseWideActivations } from "../engine/calibrate/activation-precision";
import type { Feeds } from "../engine/calibrate/index";
import { fixedBatchSize } from "../engine/data/feeds";
import { stackable, stackRows } from "../engine/calibrate/rows";
import { Model } from "../engine/onnx/model";
import { calibrate, convert, prepare, release, type PreparedModel, type QConfig } from "../engine/quant/index";
import { qBits, type QType } from "../engine/quant/math";
import { createSession } from "../engine/runtime/session";
import { byId, loadCatalog, modelPath } from "./corpus/catalog";
import { EVAL_SEED, evaluate } from "./corpus/evaluate";
import { FrontEnd, makeSamples } from "./corpus/inputs";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
};

async function samplesOf(id: string, count: number, seed: number): Promise<Feeds[]> {
  const catalog = loadCatalog();
  const fe = new FrontEnd(catalog);
  try {
    return await makeSamples(byId(catalog, id), count, seed, fe);
  } finally {
    await fe.dispose();
  }
}

interface OutScore {
  /** Noise energy over signal energy of the first output, all rows pooled. */
  noise: number;
  agreement: number;
}

function score(ref: Float32Array, got: Float32Array, cols: number): OutScore {
  let [signal, noise] = [0, 0];
  for (let k = 0; k < ref.length; k++) [signal, noise] = [signal + ref[k]! ** 2, noise + (ref[k]! - got[k]!) ** 2];
  const a = argmaxRows({ rows: ref.length / cols, cols, data: ref });
  const b = argmaxRows({ rows: got.length / cols, cols, data: got });
  let same = 0;
  a.forEach((v, i) => (same += v === b[i] ? 1 : 0));
  return { noise: noise / signal, agreement: same / a.length };
}

const db = (noise: number) => (noise > 0 ? (-10 * Math.log10(noise)).toFixed(2) : "inf");
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

async function blame(id: string, top: number): Promise<void> {
  const model = await Model.load(modelPath(byId(loadCatalog(), id)));
  const prepared = await prepare(model, {});
  const t0 = performance.now();
  await calibrate(prepared, await samplesOf(id, 16, 1)).finally(() => release(prepared));
  console.log(`${id}: ${prepared.ranges.size} activation ranges (${prepared.config.calibration.method}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const sw = buildSwitchModel(prepared.model, prepared.ranges, { bits: qBits(prepared.config.activationType), symmetric: prepared.config.activationSymmetric });
  const feeds = stackRows(await samplesOf(id, Number(arg("rows", "8")), EVAL_SEED));
  const s = await createSession(sw.model, { optimization: "basic" });
  const n = sw.tensors.length;
  const out0 = s.outputs[0]?.name;
  const run = async (on: Float32Array) => {
    const o = await s.run({ ...feeds, [sw.switches]: { data: on, dims: [n] } });
    const t = out0 ? o[out0]! : Object.values(o)[0]!;
    return { data: t.data as Float32Array, cols: t.dims.at(-1)! };
  };
  const t1 = performance.now();
  const ref = await run(new Float32Array(n));
  const all = score(ref.data, (await run(new Float32Array(n).fill(1))).data, ref.cols);
  console.log(`all ${n} at 8 bits: agreement ${pct(all.agreement)}, SQNR ${db(all.noise)} dB`);
  const producer = new Map<string, string>();
  for (const node of prepared.model.graph.node) for (const o of node.output) producer.set(o, `${node.opType} ${node.name}`);
  const rows: { t: string; alone: OutScore; allBut?: OutScore }[] = [];
  for (let i = 0; i < n; i++) {
    const one = new Float32Array(n);
    one[i] = 1;
    rows.push({ t: sw.tensors[i]!, alone: score(ref.data, (await run(one)).data, ref.cols) });
  }
  rows.sort((a, b) => b.alone.noise - a.alone.noise);
  for (const r of rows.slice(0, top)) {
    const but = new Float32Array(n).fill(1);
    but[sw.tensors.indexOf(r.t)] = 0;
    r.allBut = score(ref.data, (await run(but)).data, ref.cols);
  }
  console.log(`${n + top + 2} runs of ${Object.values(feeds)[0]!.dims[0]} rows in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  const total = rows.reduce((a, r) => a + r.alone.noise, 0);
  console.log(`| # | tensor | producer | alone: SQNR · agreement | share of summed alone-noise | all but it: SQNR · agreement |`);
  console.log(`|---|---|---|---|---|---|`);
  rows.slice(0, top).forEach((r, k) => {
    console.log(`| ${k + 1} | ${r.t} | ${producer.get(r.t) ?? "input"} | ${db(r.alone.noise)} · ${pct(r.alone.agreement)} | ${pct(r.alone.noise / total)} | ${db(r.allBut!.noise)} · ${pct(r.allBut!.agreement)} |`);
  });
  for (const k of [1, 2, 4, 8, 16, 32, 64]) {
    if (k >= n) break;
    const on = new Float32Array(n).fill(1);
    for (const r of rows.slice(0, k)) on[sw.tensors.indexOf(r.t)] = 0;
    const sc = score(ref.data, (await run(on)).data, ref.cols);
    console.log(`worst ${k} float, rest 8 bits: agreement ${pct(sc.agreement)}, SQNR ${db(sc.noise)} dB`);
  }
  await s.dispose();
}

const CONFIGS: Record<string, QConfig> = {
  default: {},
  int16: { activationType: "uint16" },
  auto16: {},
  "auto16-40": {},
};

/** auto16 variants: chooseWideActivations' options. */
const WIDE_OPTIONS: Record<string, { maxShare?: number }> = { auto16: {}, "auto16-40": { maxShare: 0.4 } };

/** auto16: the activations chooseWideActivations picks, on the last 4 calibration samples, get 16 bits. */
async function wideOverrides(prepared: PreparedModel, data: Feeds[], variant: string): Promise<{ overrides: QConfig["overrides"]; why: string; seconds: number }> {
  const t0 = performance.now();
  const wide16: QType = prepared.config.activationType === "int8" ? "int16" : "uint16";
  const last = data.slice(-4);
  const w = await chooseWideActivations(prepared.model, prepared.ranges, last.every((f) => stackable(last[0]!, f)) && fixedBatchSize(prepared.model) === undefined ? [stackRows(last)] : last, {
    bits: qBits(prepared.config.activationType),
    symmetric: prepared.config.activationSymmetric,
    ...WIDE_OPTIONS[variant],
  });
  return { overrides: Object.fromEntries(w.tensors.map((t) => [t, { type: wide16 }])), why: `${w.tensors.join(", ")}: ${w.why}`, seconds: (performance.now() - t0) / 1000 };
}

async function compare(ids: string[], configs: string[]): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-act-precision-"));
  try {
    for (const id of ids) {
      const model = await Model.load(modelPath(byId(loadCatalog(), id)));
      const data = await samplesOf(id, 16, 1);
      const files = new Map<string, string>([["fp32", modelPath(byId(loadCatalog(), id))]]);
      for (const name of configs) {
        const config = CONFIGS[name];
        if (!config) throw new Error(`unknown configuration "${name}": one of ${Object.keys(CONFIGS).join(", ")}`);
        const t0 = performance.now();
        const prepared = await prepare(model, config);
        await calibrate(prepared, data).finally(() => release(prepared));
        let converting = prepared;
        if (WIDE_OPTIONS[name]) {
          const w = await wideOverrides(prepared, data, name);
          console.error(`${id} ${name} (${w.seconds.toFixed(1)} s): ${w.why}`);
          converting = { ...prepared, config: { ...prepared.config, overrides: { ...prepared.config.overrides, ...w.overrides } } };
        }
        const { model: q, summary } = await convert(converting);
        const seconds = (performance.now() - t0) / 1000;
        const file = path.join(dir, `${id}.${name}.onnx`);
        await q.save(file, { overwrite: true });
        const r = await evaluate(id, file);
        if (!r.ok) throw new Error(`${id} ${name}: ${r.reason}`);
        const agree = r.agreement !== undefined && !Number.isNaN(r.agreement) ? ` · ${pct(r.agreement)}` : "";
        files.set(name, file);
        const slow = summary.quantized.filter((n) => /^(Conv|ConvTranspose|MatMul|Gemm)$/.test(n.opType) && n.tensors.some((t) => t.type === "uint16" || t.type === "int16")).length;
        const wide = new Set(summary.quantized.flatMap((n) => n.tensors.filter((t) => t.type === "uint16" || t.type === "int16").map((t) => t.name))).size;
        console.log(`| ${id} | ${name} | ${r.sqnrDb!.toFixed(2)} dB${agree} | ${summary.quantized.length} quantized, ${summary.float.length} float nodes${wide ? `, ${wide} 16-bit tensors (${slow} Conv/MatMul/Gemm on float kernels)` : ""} | ${seconds.toFixed(1)} s |`);
      }
      if (process.argv.includes("--time")) await timeInterleaved(id, files);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Latency of each file on 8 held-out samples in one batch, 1 thread, interleaved rounds; the median per file. */
async function timeInterleaved(id: string, files: Map<string, string>): Promise<void> {
  const feeds = stackRows(await samplesOf(id, 8, EVAL_SEED));
  const sessions = new Map<string, Awaited<ReturnType<typeof createSession>>>();
  for (const [name, file] of files) sessions.set(name, await createSession(file, { threads: 1 }));
  const times = new Map<string, number[]>([...files.keys()].map((k) => [k, []]));
  try {
    for (const s of sessions.values()) await s.run(feeds);
    for (let r = 0; r < Number(arg("rounds", "7")); r++) {
      for (const [name, s] of sessions) {
        const t0 = performance.now();
        await s.run(feeds);
        times.get(name)!.push(performance.now() - t0);
      }
    }
  } finally {
    for (const s of sessions.values()) await s.dispose();
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const fp32 = median(times.get("fp32")!);
  console.log(`${id} batch 8, 1 thread, median of interleaved rounds: ${[...times].map(([k, v]) => `${k} ${median(v).toFixed(0)} ms (${(fp32 / median(v)).toFixed(2)}× FP32)`).join(", ")}`);
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  const ids = arg("corpus", "ppocr-v3-rec-en").split(",");
  if (mode === "blame") for (const id of ids) await blame(id, Number(arg("top", "25")));
  else if (mode === "compare") await compare(ids, arg("configs", "default").split(","));
  else throw new Error("usage: bench/activation-precision.ts blame|compare --corpus IDS [--configs NAMES] [--top N]");
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
