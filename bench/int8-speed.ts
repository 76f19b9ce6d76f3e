// Is our default static INT8 faster than FP32 where int8 should matter? The fixture models are too small to say
// (28×28 inputs: per-op overhead dominates), so this builds two models in code with seeded random weights:
//   resnet — a ResNet-style conv net (BN folded into Conv bias, Relu, residual Adds; 64ch@56×56 then 128ch@28×28)
//   transformer — single-head attention + FFN layers (d=256, seq 128, FFN 1024, residual Adds)
// quantizes each with our defaults and with explicit weight/activation types (calibrated on seeded random inputs),
// counts which ops onnxruntime actually runs (the graph saved at optimization 'all'), then times FP32 against every
// INT8 variant interleaved (engine/analysis/benchmark) at each batch size and thread count.
//
//   node --import tsx bench/int8-speed.ts [--models resnet,transformer] [--batches 1,8] [--threads 1,2]
//        [--seconds 6] [--variants default,u8s8,s8s8,u8u8,u8s7] [--json]
// --corpus ID[,ID] times real corpus models instead (bench/corpus: the models in ~/.cache/ptq-studio-corpus, the
// inputs its generators make): FP32, our default static INT8, ours with targetCpu "vnni" (U8S8) and ONNX Runtime's
// own static quantizer (its default and per-channel configs, run in the bench/peer chroot on the same 16 calibration
// samples), with each variant's output SQNR/agreement on 8 held-out samples (bench/corpus/evaluate.ts), the ops
// onnxruntime runs at level 'all', and the float ops still sitting between DQ and Q (where int8 time goes).
//   node --import tsx bench/int8-speed.ts --corpus ppocr-v4-rec-en,blazeface-front [--batches 1,8] [--threads 1]
//        [--seconds 6] [--corpus-variants ours,ours-vnni,ours-u8s7,ort-default,ort-per-channel] [--calib 16]
//        [--flush-denormals]  (FP32 with denormal weights set to 0 as the baseline, the FP32 file as a row: ptq bench's)
// The corpus variant fp32-fused is no INT8 file: the FP32 model with its written-out HardSwish as x·HardSigmoid(x)
// and denormals 0 (exact rewrites onnxruntime does not make), the float speed INT8 has to beat (docs/int8-speed.md).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { NodeProto, TensorProto } from "onnx-buf";
import { benchmark } from "../engine/analysis/benchmark";
import { seededRandom } from "../engine/data/random";
import type { Feeds } from "../engine/analysis/feeds";
import { DataType, Model, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, attr } from "../engine/onnx";
import { fuseHardSwish } from "../engine/quant/hardswish";
import { calibrate, convert, prepare, release, type QConfig } from "../engine/quant/index";
import { denormalWeights } from "../engine/quant/preprocess";
import { sqnr } from "../engine/quant/math";
import { createSession } from "../engine/runtime/session";
import { fixedBatchSize } from "../engine/data/feeds";
import { byId, ensureFetched, loadCatalog, modelPath } from "./corpus/catalog";
import { evaluate } from "./corpus/evaluate";
import { FrontEnd, makeSamples, writeSamples, type Sample } from "./corpus/inputs";
import { chrootProblem, runOrtQuantizer } from "./peer/ort";

const { values: args } = parseArgs({
  options: {
    models: { type: "string", default: "resnet,transformer" },
    batches: { type: "string", default: "1,8" },
    threads: { type: "string", default: "1,2" },
    seconds: { type: "string", default: "6" },
    variants: { type: "string", default: "default,u8s8,s8s8,u8u8,u8s7" },
    json: { type: "boolean", default: false },
    corpus: { type: "string" },
    "corpus-variants": { type: "string", default: "ours,ours-vnni,ort-default,ort-per-channel" },
    calib: { type: "string", default: "16" },
    "flush-denormals": { type: "boolean", default: false },
  },
});

const VARIANTS: Record<string, QConfig> = {
  default: {},
  u8s8: { activationType: "uint8", weightType: "int8" },
  s8s8: { activationType: "int8", weightType: "int8" },
  u8u8: { activationType: "uint8", weightType: "uint8" },
  // U8S8 with 7-bit weights: onnxruntime's advice for CPUs without VNNI (u8×s7 pair sums cannot saturate int16).
  u8s7: { activationType: "uint8", weightType: "int8", reduceRange: true },
};
/** Ops that say whether int8 kernels ran: fused QLinear and integer ops, and Q/DQ left standing (float fallbacks). */
const COUNTED = ["QLinearConv", "QLinearMatMul", "MatMulIntegerToFloat", "QGemm", "QLinearAdd", "QLinearSoftmax", "QuantizeLinear", "DequantizeLinear"];

/** A builder with a seeded weight stream: He-scaled uniform weights keep activations in a sane range layer to layer. */
class Builder {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  private readonly rand: () => number;
  private n = 0;
  constructor(seed: number) {
    this.rand = seededRandom(seed);
  }
  weight(dims: number[], fanIn: number): string {
    const name = `w${this.n++}`;
    const bound = Math.sqrt(6 / fanIn);
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (this.rand() * 2 - 1) * bound;
    this.inits.push(makeTensor(name, DataType.FLOAT, dims, data));
    return name;
  }
  bias(n: number): string {
    const name = `b${this.n++}`;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (this.rand() * 2 - 1) * 0.1;
    this.inits.push(makeTensor(name, DataType.FLOAT, [n], data));
    return name;
  }
  op(type: string, inputs: string[], attributes = [] as ReturnType<typeof attr.int>[]): string {
    const out = `t${this.n++}`;
    this.nodes.push(makeNode(type, inputs, [out], { name: `${type}_${this.n}`, attributes }));
    return out;
  }
  conv(x: string, cin: number, cout: number, stride = 1): string {
    const w = this.weight([cout, cin, 3, 3], cin * 9);
    return this.op("Conv", [x, w, this.bias(cout)], [attr.ints("pads", [1, 1, 1, 1]), attr.ints("strides", [stride, stride])]);
  }
  linear(x: string, din: number, dout: number): string {
    return this.op("Add", [this.op("MatMul", [x, this.weight([din, dout], din)]), this.bias(dout)]);
  }
}

/** Stem conv, 3 residual blocks at 64ch 56×56, a stride-2 conv to 128ch 28×28, 2 residual blocks: 12 3×3 convs. */
function resnet(): Model {
  const b = new Builder(11);
  let x = b.op("Relu", [b.conv("x", 3, 64)]);
  const block = (c: number): void => {
    const y = b.conv(b.op("Relu", [b.conv(x, c, c)]), c, c);
    x = b.op("Relu", [b.op("Add", [x, y])]);
  };
  for (let i = 0; i < 3; i++) block(64);
  x = b.op("Relu", [b.conv(x, 64, 128, 2)]);
  for (let i = 0; i < 2; i++) block(128);
  const pooled = b.op("Flatten", [b.op("GlobalAveragePool", [x])]);
  const logits = b.op("Gemm", [pooled, b.weight([128, 10], 128), b.bias(10)]);
  const g = makeGraph("resnet", b.nodes, [makeValueInfo("x", DataType.FLOAT, ["batch", 3, 56, 56])], [makeValueInfo(logits, DataType.FLOAT, ["batch", 10])], {
    initializers: b.inits,
  });
  return Model.fromProto(makeModel(g, { opsets: { "": 17 }, producerName: "ptq-bench" }));
}

/** 4 layers of single-head attention (Q·Kᵀ/√d, Softmax, ·V, output projection) and a Relu FFN, each with a residual Add. */
function transformer(d = 256, seq = 128, ffn = 1024, layers = 4): Model {
  const b = new Builder(23);
  let x = "x";
  const scale = "inv_sqrt_d";
  b.inits.push(makeTensor(scale, DataType.FLOAT, [], [1 / Math.sqrt(d)]));
  for (let l = 0; l < layers; l++) {
    const q = b.linear(x, d, d);
    const k = b.linear(x, d, d);
    const v = b.linear(x, d, d);
    const kt = b.op("Transpose", [k], [attr.ints("perm", [0, 2, 1])]);
    const p = b.op("Softmax", [b.op("Mul", [b.op("MatMul", [q, kt]), scale])], [attr.int("axis", -1)]);
    x = b.op("Add", [x, b.linear(b.op("MatMul", [p, v]), d, d)]);
    x = b.op("Add", [x, b.linear(b.op("Relu", [b.linear(x, d, ffn)]), ffn, d)]);
  }
  const g = makeGraph("transformer", b.nodes, [makeValueInfo("x", DataType.FLOAT, ["batch", seq, d])], [makeValueInfo(x, DataType.FLOAT, ["batch", seq, d])], {
    initializers: b.inits,
  });
  return Model.fromProto(makeModel(g, { opsets: { "": 17 }, producerName: "ptq-bench" }));
}

const MODELS: Record<string, { build: () => Model; shape: number[] }> = {
  resnet: { build: resnet, shape: [3, 56, 56] },
  transformer: { build: () => transformer(), shape: [128, 256] },
};

function randomFeeds(shape: number[], batch: number, seed: number): Feeds {
  const r = seededRandom(seed);
  const data = new Float32Array(batch * shape.reduce((a, c) => a * c, 1));
  for (let i = 0; i < data.length; i++) data[i] = r() * 2 - 1;
  return { x: { data, dims: [batch, ...shape], type: "float32" } };
}

/** Op counts of what onnxruntime runs: the model saved after 'all' optimization (hardware-specific, never shipped). */
async function runtimeOps(model: Model, dir: string, tag: string): Promise<Record<string, number>> {
  const file = path.join(dir, `${tag}.ort-all.onnx`);
  const s = await createSession(model, { optimization: "all", optimizedModelPath: file, threads: 1 });
  await s.dispose();
  const counts: Record<string, number> = {};
  for (const n of Model.loadSync(file).graph.node) if (COUNTED.includes(n.opType)) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
  return counts;
}

/** SQNR (dB) of a model's output against FP32 on held-out seeded inputs: saturation shows here, not in timings. */
async function outputSqnr(fp32: Model, q: Model, feeds: Feeds): Promise<number> {
  const out = async (m: Model): Promise<Float32Array> => {
    const s = await createSession(m, { threads: 1 });
    try {
      return Object.values(await s.run(feeds))[0]!.data as Float32Array;
    } finally {
      await s.dispose();
    }
  };
  return sqnr(await out(fp32), await out(q));
}

interface Row {
  model: string;
  variant: string;
  threads: number;
  batch: number;
  fp32Ms: number;
  int8Ms: number;
  speedup: number;
  ratioLo: number;
  ratioHi: number;
  spread: string;
  verdict: string;
}

/** FP32 (the first model) against every other one, interleaved in one process (engine/analysis/benchmark). */
async function timeInterleaved(
  name: string,
  models: Record<string, Model | string>,
  threads: number,
  batches: number[],
  seconds: number,
  data: (batch: number) => Feeds,
): Promise<Row[]> {
  const rows: Row[] = [];
  // --flush-denormals: FP32 with its denormal weights set to 0 is the baseline, the FP32 file a row beside the INT8 ones.
  const res = await benchmark(models, { threads, batchSizes: batches, seconds, data, flushDenormals: args["flush-denormals"] });
  const base = res.models[0]!;
  for (const m of res.models.slice(1)) {
    for (const f of m.batches) {
      const b0 = base.batches.find((x) => x.batch === f.batch)!;
      const p = (s: typeof f.latencyMs): string => `${s.p10.toFixed(1)}–${s.p90.toFixed(1)}`;
      rows.push({
        model: name,
        variant: m.name,
        threads,
        batch: f.batch,
        fp32Ms: b0.latencyMs.p50,
        int8Ms: f.latencyMs.p50,
        speedup: f.vsFirst!.speedup,
        ratioLo: 1 / f.vsFirst!.latencyRatio.hi,
        ratioHi: 1 / f.vsFirst!.latencyRatio.lo,
        spread: `fp32 p10–p90 ${p(b0.latencyMs)}, int8 ${p(f.latencyMs)} (n=${f.latencyMs.n})`,
        verdict: f.vsFirst!.verdict.trustworthy ? "trustworthy" : `noisy: ${f.vsFirst!.verdict.reason}`,
      });
    }
  }
  process.stderr.write(`${name} threads=${threads} done (load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")})\n`);
  return rows;
}

async function main(): Promise<void> {
  if (args.corpus) return corpusMain(args.corpus.split(",").filter(Boolean));
  const names = args.models.split(",");
  const batches = args.batches.split(",").map(Number);
  const threadCounts = args.threads.split(",").map(Number);
  const variants = args.variants.split(",");
  const seconds = Number(args.seconds);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "ptq-int8-speed-"));
  const rows: Row[] = [];
  const ops: Record<string, Record<string, Record<string, number>>> = {};
  const sqnrs: Record<string, Record<string, number>> = {};
  try {
    for (const name of names) {
      const spec = MODELS[name];
      if (!spec) throw new Error(`--models: unknown model "${name}" (have ${Object.keys(MODELS).join(", ")})`);
      const fp32 = spec.build();
      const models: Record<string, Model> = { fp32 };
      ops[name] = { fp32: await runtimeOps(fp32, tmp, `${name}.fp32`) };
      for (const v of variants) {
        const cfg = VARIANTS[v];
        if (!cfg) throw new Error(`--variants: unknown variant "${v}" (have ${Object.keys(VARIANTS).join(", ")})`);
        const t0 = performance.now();
        const prepared = await prepare(fp32, cfg);
        try {
          await calibrate(prepared, [0, 1, 2, 3].map((s) => randomFeeds(spec.shape, 4, 100 + s)));
        } finally {
          await release(prepared);
        }
        models[v] = (await convert(prepared)).model;
        const c = prepared.config;
        process.stderr.write(`${name} ${v}: ${c.activationType} activations, ${c.weightType} weights, quantized in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
        ops[name]![v] = await runtimeOps(models[v]!, tmp, `${name}.${v}`);
        (sqnrs[name] ??= {})[v] = await outputSqnr(fp32, models[v]!, randomFeeds(spec.shape, 2, 999));
      }
      for (const threads of threadCounts) rows.push(...(await timeInterleaved(name, models, threads, batches, seconds, (bs) => randomFeeds(spec.shape, bs, 7))));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({ ops, sqnrs, rows, cpu: os.cpus()[0]?.model, loadAvg: os.loadavg() }, null, 2) + "\n");
    return;
  }
  process.stdout.write(`# ${os.cpus()[0]?.model} ×${os.availableParallelism()}, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
  for (const [m, byVariant] of Object.entries(ops)) {
    for (const [v, c] of Object.entries(byVariant)) {
      const db = sqnrs[m]?.[v];
      process.stdout.write(`ops ${m} ${v}${db === undefined ? "" : ` (output SQNR ${db.toFixed(1)} dB)`}: ${COUNTED.filter((k) => c[k]).map((k) => `${k}×${c[k]}`).join(" ") || "(none counted)"}\n`);
    }
  }
  printRows(rows);
}

// ---------- --corpus: real models ----------

const CORPUS_VARIANTS = ["ours", "ours-vnni", "ours-u8s7", "ort-default", "ort-per-channel", "fp32-fused"] as const;
/** ort_quantize.py's config names (bench/corpus/peer.ts runs the same two for its static columns). */
const ORT_CONFIGS: Record<string, string> = { "ort-default": "default", "ort-per-channel": "pre-pc-u8s8-minmax" };
/** ours-u8s7: U8S8 with 7-bit weights (onnxruntime's advice for x86 without VNNI): u8×s7 pair sums cannot saturate. */
const OURS_CONFIGS: Record<string, QConfig> = {
  ours: {},
  "ours-vnni": { targetCpu: "vnni" },
  "ours-u8s7": { weightType: "int8", reduceRange: true },
};
/** Ops that run on integers (fused QDQ groups, Q/DQ themselves); anything else in a quantized graph is float. */
const isIntegerOp = (op: string): boolean => /^(QLinear|QGemm|MatMulInteger|ConvInteger|DynamicQuantize|QuantizeLinear|DequantizeLinear|QAttention)/.test(op);

interface RuntimeGraph {
  nodes: number;
  counts: Record<string, number>;
  /** Float ops that read a DequantizeLinear or feed a QuantizeLinear: int8 data converted to float and back for them. */
  floatBetween: Record<string, number>;
}

/** What onnxruntime runs: the graph saved at level 'all' (hardware-specific, never shipped), counted by op type. */
async function runtimeGraph(model: Model | string, dir: string, tag: string): Promise<RuntimeGraph> {
  const file = path.join(dir, `${tag}.ort-all.onnx`);
  const s = await createSession(model, { optimization: "all", optimizedModelPath: file, threads: 1 });
  await s.dispose();
  const g = Model.loadSync(file).graph;
  const producer = new Map<string, string>();
  const readers = new Map<string, string[]>();
  for (const n of g.node) {
    for (const o of n.output) producer.set(o, n.opType);
    for (const i of n.input) readers.set(i, [...(readers.get(i) ?? []), n.opType]);
  }
  const counts: Record<string, number> = {};
  const floatBetween: Record<string, number> = {};
  for (const n of g.node) {
    counts[n.opType] = (counts[n.opType] ?? 0) + 1;
    if (isIntegerOp(n.opType)) continue;
    const fromDq = n.input.some((i) => producer.get(i) === "DequantizeLinear");
    const toQ = n.output.some((o) => (readers.get(o) ?? []).includes("QuantizeLinear"));
    if (fromDq || toQ) floatBetween[n.opType] = (floatBetween[n.opType] ?? 0) + 1;
  }
  rmSync(file, { force: true });
  return { nodes: g.node.length, counts, floatBetween };
}

const byCount = (c: Record<string, number>): string =>
  Object.entries(c)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, v]) => `${k}×${v}`)
    .join(" ") || "none";

/** Batch `bs` of the held-out samples (cycled), concatenated along the first axis. */
function corpusFeeds(samples: readonly Sample[], bs: number): Feeds {
  const feeds: Record<string, Feeds[string]> = {};
  for (const name of Object.keys(samples[0]!)) {
    const first = samples[0]![name]!;
    const size = first.data.length;
    const data = new Float32Array(size * bs);
    for (let i = 0; i < bs; i++) data.set(samples[i % samples.length]![name]!.data as Float32Array, i * size);
    feeds[name] = { data, dims: [bs * first.dims[0]!, ...first.dims.slice(1)], type: "float32" };
  }
  return feeds;
}

interface CorpusVariant {
  file: string;
  agreement?: number;
  sqnrDb?: number;
  graph?: RuntimeGraph;
  note?: string;
}

/**
 * fp32-fused: the float model with each HardSwish written out as x·Clip(x+3, 0, 6)/6 rewritten as x·HardSigmoid(x)
 * (engine/quant/hardswish.ts; the same function) and its denormal weights set to 0: a float baseline onnxruntime runs
 * without the layout conversions the written-out form costs, to read INT8's figures against. Undefined (with a line on
 * stderr) where the model has no written-out HardSwish.
 */
function fusedFp32(fp32: Model, id: string): Model | undefined {
  const { model: m, rewritten } = fuseHardSwish(fp32);
  if (!rewritten) {
    process.stderr.write(`${id} fp32-fused: no HardSwish written as x·Clip(x+3, 0, 6)/6, nothing to fuse: not timed\n`);
    return undefined;
  }
  const { values } = denormalWeights(m, true);
  process.stderr.write(`${id} fp32-fused: ${rewritten} HardSwish as x·HardSigmoid(x), ${values} denormal weight value(s) set to 0\n`);
  return m;
}

async function corpusModel(id: string, tmp: string, variants: readonly string[], rows: Row[]): Promise<Record<string, CorpusVariant>> {
  const catalog = loadCatalog();
  const m = byId(catalog, id);
  ensureFetched([id]);
  const fe = new FrontEnd(catalog);
  let calib: Sample[];
  let held: Sample[];
  try {
    calib = await makeSamples(m, Number(args.calib), 1, fe);
    held = await makeSamples(m, 8, 1000, fe);
  } finally {
    await fe.dispose();
  }
  if (Object.values(held[0]!).some((t) => !(t.data instanceof Float32Array)))
    throw new Error(`--corpus ${id}: only models whose inputs are all float32 are timed here (it has an int64 input)`);
  const fp32File = modelPath(m);
  const fp32 = await Model.load(fp32File);
  const out: Record<string, CorpusVariant> = { fp32: { file: fp32File } };
  const work = path.join(tmp, id);
  mkdirSync(work, { recursive: true });
  if (variants.includes("fp32-fused")) {
    const fused = fusedFp32(fp32, id);
    if (fused) {
      const file = path.join(work, `${id}.fp32-fused.onnx`);
      await fused.save(file);
      out["fp32-fused"] = { file };
    }
  }
  for (const v of variants) {
    const cfg = OURS_CONFIGS[v];
    if (!cfg) continue;
    const t0 = performance.now();
    const prepared = await prepare(fp32, cfg);
    try {
      await calibrate(prepared, calib);
    } finally {
      await release(prepared);
    }
    const file = path.join(work, `${id}.${v}.onnx`);
    await (await convert(prepared)).model.save(file);
    out[v] = { file };
    process.stderr.write(`${id} ${v}: quantized in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const ort = variants.filter((v) => ORT_CONFIGS[v]);
  if (ort.length) {
    const problem = chrootProblem();
    if (problem) throw new Error(`--corpus-variants ${ort.join(",")}: ${problem} (or leave them out)`);
    writeSamples(path.join(work, "calib"), calib);
    const recs = runOrtQuantizer({ model: fp32File, calib: path.join(work, "calib"), work, configs: ort.map((v) => ORT_CONFIGS[v]).join(","), timeoutS: 900 });
    for (const v of ort) {
      const rec = recs.find((r) => r.config === ORT_CONFIGS[v]);
      if (rec?.ok) out[v] = { file: rec.file };
      else process.stderr.write(`${id} ${v}: ONNX Runtime's quantizer failed: ${rec?.error ?? "no record"}\n`);
    }
  }
  for (const [v, c] of Object.entries(out)) {
    c.graph = await runtimeGraph(c.file, work, v);
    if (v === "fp32") continue;
    const e = await evaluate(id, c.file);
    if (!e.ok) throw new Error(`${id} ${v}: onnxruntime cannot run ${c.file}: ${e.reason}`);
    c.sqnrDb = e.sqnrDb;
    c.agreement = e.agreement;
  }
  // Models exported with a fixed batch of 1 (tf2onnx) cannot run batch 8.
  const fixed = fixedBatchSize(fp32);
  const batches = args.batches.split(",").map(Number).filter((b) => fixed === undefined || b === fixed);
  if (fixed !== undefined && batches.length < args.batches.split(",").length) out.fp32!.note = `fixed batch ${fixed} in the exported graph: other batch sizes not timed`;
  const files = Object.fromEntries(Object.entries(out).map(([v, c]) => [v, c.file]));
  for (const threads of args.threads.split(",").map(Number)) {
    rows.push(...(await timeInterleaved(id, files, threads, batches, Number(args.seconds), (bs) => corpusFeeds(held, bs))));
  }
  return out;
}

async function corpusMain(ids: string[]): Promise<void> {
  const variants = args["corpus-variants"].split(",").filter(Boolean);
  const bad = variants.filter((v) => !(CORPUS_VARIANTS as readonly string[]).includes(v));
  if (bad.length) throw new Error(`--corpus-variants: unknown ${bad.join(", ")} (have ${CORPUS_VARIANTS.join(", ")})`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "ptq-int8-speed-corpus-"));
  const rows: Row[] = [];
  const results: Record<string, Record<string, CorpusVariant>> = {};
  try {
    for (const id of ids) results[id] = await corpusModel(id, tmp, variants, rows);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({ results, rows, cpu: os.cpus()[0]?.model, loadAvg: os.loadavg() }, null, 2) + "\n");
    return;
  }
  process.stdout.write(`# ${os.cpus()[0]?.model} ×${os.availableParallelism()}, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
  for (const [id, byVariant] of Object.entries(results)) {
    for (const [v, c] of Object.entries(byVariant)) {
      const acc = c.sqnrDb === undefined ? "" : ` (SQNR ${c.sqnrDb.toFixed(1)} dB${c.agreement === undefined ? "" : `, agreement ${(100 * c.agreement).toFixed(1)} %`})`;
      process.stdout.write(`ops ${id} ${v}${acc}${c.note ? ` [${c.note}]` : ""}: ${c.graph!.nodes} nodes: ${byCount(c.graph!.counts)}\n`);
      if (v !== "fp32") process.stdout.write(`  float between DQ/Q: ${byCount(c.graph!.floatBetween)}\n`);
    }
  }
  printRows(rows);
}

function printRows(rows: readonly Row[]): void {
  process.stdout.write("| model | variant | threads | batch | FP32 p50 ms | variant p50 ms | speedup (95% CI) | spread | verdict |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const r of rows) {
    process.stdout.write(
      `| ${r.model} | ${r.variant} | ${r.threads} | ${r.batch} | ${r.fp32Ms.toFixed(1)} | ${r.int8Ms.toFixed(1)} | ${r.speedup.toFixed(2)}× (${r.ratioLo.toFixed(2)}–${r.ratioHi.toFixed(2)}) | ${r.spread} | ${r.verdict} |\n`,
    );
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
