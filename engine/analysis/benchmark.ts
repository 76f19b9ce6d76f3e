// benchmark(): latency, throughput, size, load time and session memory of several models, measured in one process
// and interleaved run by run (A B, B A, A B …) so that machine drift and noisy neighbours hit every model equally.
// Threads are pinned (intra-op N, inter-op 1, sequential) and reported with the figures; the first run after a
// load or a shape change is reported apart as "cold", every other figure is warm.

import { statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Model } from "../onnx/model";
import { denormalWeights } from "../quant/preprocess";
import { createSession, type ExecutionProvider, type Session, type SessionSource } from "../runtime/session";
import { requireInputs, feedsBatch, firstSamples, generateFeeds, sampleAxes, type Feeds } from "./feeds";
import { fixedBatchSize, inputSpecsOf, type ReportedInput } from "../data/feeds";
import { bootstrapMedianRatio, judgeRatio, summarize, type Interval, type RatioVerdict, type Summary } from "./stats";

export interface BenchmarkOptions {
  /** Feeds to run: fixed tensors (their first dimension is the batch) or a function of the batch size. Default:
   * seeded random data shaped from the first model's inputs. */
  data?: Feeds | ((batch: number) => Feeds);
  /** Batch sizes to measure; ignored when `data` is fixed tensors. Default [1]. */
  batchSizes?: number[];
  /** intra-op threads. Default: all available cores. */
  threads?: number;
  ep?: ExecutionProvider;
  /** Untimed runs per model after the cold run. Default 5. */
  warmup?: number;
  /** Timed runs per model and batch size. Default 50, unless `seconds` is given. */
  runs?: number;
  /** Time budget per batch size for all models together; runs continue in rounds until it is spent (min 10). */
  seconds?: number;
  /** Full shapes, by input name, for generated data of inputs with dynamic dimensions other than the batch; where
   * the input's first dimension is dynamic, each batch size replaces the shape's first size. */
  shapes?: Record<string, number[]>;
  /** Confidence level of the ratio intervals. Default 0.95. */
  confidence?: number;
  /**
   * When the first model has denormal float32 weights (below 1.2e-38), also time a copy of it with them set to 0, as
   * the baseline: first in the figures, named "<name>, denormals 0", the model as given right after it. The copy
   * computes the same outputs (no float32 output can show those values) without the slow path x86 float kernels take
   * on them, so the ratios against it are what quantizing gains beyond setting them to 0, which quantizing also
   * does. A first model without denormal weights is measured as given, with a note. Default false.
   */
  flushDenormals?: boolean;
}

export interface BatchFigures {
  batch: number;
  /** The first run at this shape, after load: includes allocation and kernel selection. */
  coldMs: number;
  latencyMs: Summary;
  /** samples per second at the median latency. */
  throughput: number;
  /** Raw warm latencies in run order, for re-analysis. */
  samplesMs: number[];
  /** Against the first model at the same batch size; absent on the first model. */
  vsFirst?: { latencyRatio: Interval; speedup: number; verdict: RatioVerdict };
}

export interface ModelFigures {
  name: string;
  /** File size in bytes (bytes given directly: their length; a Model: its serialized size). */
  fileBytes: number;
  loadMs: number;
  /** Resident-set growth of this process while creating the session: a proxy for session memory, not a peak. */
  rssDeltaBytes: number;
  ep: ExecutionProvider;
  batches: BatchFigures[];
  sizeRatio?: number;
}

export interface BenchmarkSettings {
  threads: number;
  interOpThreads: 1;
  executionMode: "sequential";
  ep: ExecutionProvider;
  warmup: number;
  runs: number | null;
  seconds: number | null;
  batchSizes: number[];
  data: "given" | "generated";
  order: "interleaved, rotating start";
  confidence: number;
  machine: { cpus: number; cpuModel: string; totalMemBytes: number; node: string; platform: string; loadAvg: number[] };
}

export class BenchmarkResult {
  constructor(
    readonly models: ModelFigures[],
    readonly settings: BenchmarkSettings,
    readonly notes: string[],
  ) {}

  toJSON(): { kind: "ptq.benchmark"; version: 1; settings: BenchmarkSettings; models: ModelFigures[]; notes: string[] } {
    return { kind: "ptq.benchmark", version: 1, settings: this.settings, models: this.models, notes: this.notes };
  }
}

/** A model to measure: a file path, a loaded or converted Model (e.g. convert()'s result), or named bytes. */
export type ModelSource = string | Model | { name: string; bytes: Uint8Array };

/** Several models: a record (its keys name them) or a list (named after their files). */
export type BenchmarkModels = Record<string, ModelSource> | ModelSource[];

export function modelName(m: ModelSource): string {
  if (typeof m === "string") return m;
  if (m instanceof Model) return m.path ? path.basename(m.path) : "in-memory model";
  return m.name;
}

export function namedModels(models: BenchmarkModels, caller: string): [string, ModelSource][] {
  const entries: [string, ModelSource][] = Array.isArray(models) ? models.map((m) => [modelName(m), m]) : Object.entries(models);
  if (entries.length === 0) throw new Error(`${caller}: no models given`);
  return entries;
}

/** A session for a model to measure; intra-op threads pinned (engine/runtime fixes inter-op at 1, sequential). */
export function openModel(m: ModelSource, threads: number, ep: ExecutionProvider): Promise<Session> {
  const src: SessionSource = typeof m === "string" || m instanceof Model ? m : m.bytes;
  return createSession(src, { threads, ep });
}

/** A file path's or named bytes' model, loaded (a Model as it is). */
export function loadModel(m: ModelSource): Promise<Model> {
  if (m instanceof Model) return Promise.resolve(m);
  return typeof m === "string" ? Model.load(m) : Promise.resolve(Model.fromBytes(m.bytes));
}

function fileBytes(m: ModelSource): number {
  // An in-memory Model counts as its serialized size (external data not included).
  if (m instanceof Model) return m.toBytes().byteLength;
  if (typeof m !== "string") return m.bytes.byteLength;
  try {
    return statSync(m).size;
  } catch {
    throw new Error(`benchmark: cannot read model file "${m}"; check the path`);
  }
}

async function timeRun(r: Session, feeds: Feeds): Promise<number> {
  const t0 = performance.now();
  await r.run(feeds);
  return performance.now() - t0;
}

/** `shapes` with `batch` at each input's sample axis (sampleAxes: the first, or where it names the batch symbol) where its declared size there is dynamic. */
export function shapesAtBatch(inputs: readonly ReportedInput[], shapes: Record<string, number[]> | undefined, batch: number): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const axes = sampleAxes(inputs);
  for (const [name, dims] of Object.entries(shapes ?? {})) {
    const axis = axes.get(name) ?? 0;
    const declared = inputs.find((i) => i.name === name)?.shape?.[axis];
    out[name] = (typeof declared === "number" && declared > 0) || axis >= dims.length ? dims : dims.map((d, k) => (k === axis ? batch : d));
  }
  return out;
}

export async function benchmark(models: BenchmarkModels, options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  const entries = namedModels(models, "benchmark");
  const notes: string[] = [];
  if (options.flushDenormals) {
    const [name, src] = entries[0]!;
    const flushed = src instanceof Model ? src.clone() : await loadModel(src);
    const { values } = denormalWeights(flushed, true);
    if (values > 0) entries.unshift([`${name}, denormals 0`, flushed]);
    else notes.push(`flushDenormals: ${name} has no denormal float32 weights, so it is the baseline as given`);
  }
  const threads = options.threads ?? os.availableParallelism();
  const ep = options.ep ?? "cpu";
  const warmup = options.warmup ?? 5;
  const seconds = options.seconds ?? null;
  const runs = seconds === null ? (options.runs ?? 50) : null;
  const confidence = options.confidence ?? 0.95;
  if (!(threads >= 1)) throw new Error(`benchmark: threads must be ≥ 1, got ${threads}`);
  if (runs !== null && !(runs >= 1)) throw new Error(`benchmark: runs must be ≥ 1, got ${runs}`);
  const fixed = options.data !== undefined && typeof options.data !== "function" ? options.data : undefined;
  const batchSizes = fixed ? [feedsBatch(fixed)] : (options.batchSizes ?? [1]);
  if (fixed && options.batchSizes) notes.push(`batchSizes ignored: the given feeds fix the batch at ${batchSizes[0]}`);

  const sizes = entries.map(([, src]) => fileBytes(src));
  const figures: ModelFigures[] = [];
  const sessions: Session[] = [];
  try {
    // Initialise the runtime (native library, thread pools) once, untimed, so the first model's load time and
    // memory are not charged with it. Then load one at a time so each RSS delta belongs to one session.
    await (await openModel(entries[0]![1], threads, ep)).dispose();
    for (const [k, [name, src]] of entries.entries()) {
      const bytes = sizes[k]!;
      const rss0 = process.memoryUsage().rss;
      const t0 = performance.now();
      const r = await openModel(src, threads, ep);
      const loadMs = performance.now() - t0;
      sessions.push(r);
      if (r.ep !== ep) notes.push(`${name}: asked for ${ep}, ran on ${r.ep}`);
      figures.push({ name, fileBytes: bytes, loadMs, rssDeltaBytes: process.memoryUsage().rss - rss0, ep: r.ep, batches: [] });
    }
    for (const asked of batchSizes) {
      let feeds = fixed ?? (typeof options.data === "function" ? options.data(asked) : generateFeeds(sessions[0]!.inputs, asked, 1, shapesAtBatch(sessions[0]!.inputs, options.shapes, asked)));
      // Given data with more samples than a model that fixes its batch (BlazeFace, M-LSD: 1) takes: its first batch.
      const takes = fixedBatchSize(inputSpecsOf(sessions[0]!.inputs));
      const trimmed = takes !== undefined && feedsBatch(feeds) > takes;
      if (trimmed) {
        notes.push(`the data has ${feedsBatch(feeds)} samples but ${entries[0]![0]} takes batches of exactly ${takes}: timing its first ${takes}`);
        feeds = firstSamples(feeds, sampleAxes(sessions[0]!.inputs), takes);
      }
      // A model with a fixed first dimension runs at that size whatever was asked: report what ran.
      const batch = feedsBatch(feeds);
      if (batch !== asked && !(trimmed && fixed)) notes.push(`batch ${asked} asked, but the inputs have ${batch} rows (fixed in the model or the data): figures are for ${batch}`);
      sessions.forEach((r, i) => requireInputs(feeds, r.inputs, entries[i]![0]));
      const colds: number[] = [];
      for (const r of sessions) {
        colds.push(await timeRun(r, feeds));
        for (let w = 0; w < warmup; w++) await r.run(feeds);
      }
      const samples: number[][] = sessions.map(() => []);
      const started = performance.now();
      for (let round = 0; ; round++) {
        if (runs !== null && round >= runs) break;
        if (seconds !== null && round >= 10 && performance.now() - started >= seconds * 1000) break;
        // Rotate who goes first so no model always runs right after another's cache-thrashing run.
        for (let k = 0; k < sessions.length; k++) {
          const i = (round + k) % sessions.length;
          samples[i]!.push(await timeRun(sessions[i]!, feeds));
        }
      }
      const base = samples[0]!;
      const baseSummary = summarize(base);
      figures.forEach((f, i) => {
        const s = summarize(samples[i]!);
        const row: BatchFigures = { batch, coldMs: colds[i]!, latencyMs: s, throughput: (batch * 1000) / s.p50, samplesMs: samples[i]! };
        if (i > 0) {
          const ratio = bootstrapMedianRatio(base, samples[i]!, confidence);
          row.vsFirst = { latencyRatio: ratio, speedup: 1 / ratio.estimate, verdict: judgeRatio(baseSummary, s, ratio) };
        }
        f.batches.push(row);
      });
    }
  } finally {
    for (const r of sessions) await r.dispose();
  }
  for (const f of figures.slice(1)) f.sizeRatio = f.fileBytes / figures[0]!.fileBytes;
  const settings: BenchmarkSettings = {
    threads,
    interOpThreads: 1,
    executionMode: "sequential",
    ep,
    warmup,
    runs,
    seconds,
    batchSizes,
    data: options.data === undefined ? "generated" : "given",
    order: "interleaved, rotating start",
    confidence,
    machine: {
      cpus: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? "unknown",
      totalMemBytes: os.totalmem(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      loadAvg: os.loadavg(),
    },
  };
  // After the timing: reading every weight again is no part of what is measured.
  for (const [name, src] of entries) {
    const { values } = denormalWeights(src instanceof Model ? src : await loadModel(src));
    if (values > 0) {
      const flush = options.flushDenormals ? "" : "; flushDenormals (ptq bench --flush-denormals) times a copy without them as the baseline";
      notes.push(
        `${name} has ${values} denormal float32 weight value(s) (below 1.2e-38): on many x86 CPUs float kernels run slowly on them, so its times ` +
          `and the ratios against it may include that cost; quantizing writes them as 0 (docs/int8-speed.md "Denormal weights")${flush}`,
      );
    }
  }
  if (settings.machine.loadAvg[0]! > settings.machine.cpus) {
    notes.push(`load average ${settings.machine.loadAvg[0]!.toFixed(1)} exceeds ${settings.machine.cpus} cores: other work shared the CPU`);
  }
  return new BenchmarkResult(figures, settings, notes);
}
