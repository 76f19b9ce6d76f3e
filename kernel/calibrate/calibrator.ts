// The calibrator: runs the augmented copy of the model (graph optimizations off, a session of its own) batch by
// batch and folds each batch into per-tensor observers, so memory does not grow with the number of samples.

import { checkFeeds, modelInputs, type CalibrationData, type Feeds, type InputSpec } from "../data/feeds";
import { OnnxError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import { createSession, type Session } from "../runtime/session";
import type { RuntimeTensor } from "../runtime/tensors";
import { augmentModel, locateTensors, type ObservedOutputs } from "./augment";
import { StreamingHistogram } from "./histogram";
import type { CalibrationOptions, CollectOptions, TensorHistogram, TensorRange } from "./index";
import { MinMaxObserver } from "./minmax";
import { entropyThreshold, mseThreshold, percentileThreshold } from "./thresholds";

interface Run {
  session: Session;
  outputs: ObservedOutputs[];
}

const isFiniteAll = (...v: number[]) => v.every(Number.isFinite);

/** Splits a batch whose inputs all have more than `max` rows into runs of at most `max` rows. */
function* splitRows(feeds: Feeds, max: number | undefined): Generator<Feeds> {
  const entries = Object.entries(feeds);
  const rows = entries[0]?.[1].dims[0];
  if (!max || rows === undefined || rows <= max || entries.some(([, t]) => t.dims[0] !== rows)) {
    yield feeds;
    return;
  }
  for (let s = 0; s < rows; s += max) {
    const n = Math.min(max, rows - s);
    const part: Record<string, Feeds[string]> = {};
    for (const [k, t] of entries) {
      const per = t.data.length / rows;
      part[k] = { data: t.data.slice(s * per, (s + n) * per) as Feeds[string]["data"], dims: [n, ...t.dims.slice(1)], type: t.type };
    }
    yield part;
  }
}

export class Calibrator {
  private readonly options: CalibrationOptions;
  private readonly specs: InputSpec[];
  /** Tensors of the main graph that are observed. */
  readonly tensors: readonly string[];
  /** Tensors that were asked for but cannot be observed, with why. */
  readonly skipped: readonly { tensor: string; reason: string }[];
  private readonly minmax = new Map<string, MinMaxObserver>();
  private readonly hist = new Map<string, StreamingHistogram>();
  private readonly warned = new Map<string, number>();
  private readonly warningList: string[] = [];
  private runs: Promise<Run[]> | undefined;
  private fallback: { run: Run; tensors: Set<string> } | undefined;
  private cachedRanges: Map<string, TensorRange> | undefined;
  private disposed = false;
  /** Batches (runs of the model) observed so far. */
  batches = 0;

  constructor(
    private readonly model: Model,
    tensors: string[],
    options: CalibrationOptions,
  ) {
    this.options = options;
    const label = model.path ?? "<model>";
    if (!["minmax", "entropy", "percentile", "mse"].includes(options.method)) {
      throw new OnnxError(`unknown calibration method "${String(options.method)}" (minmax, entropy, percentile or mse)`, label);
    }
    if (tensors.length === 0) throw new OnnxError("no tensors to calibrate were given", label);
    this.specs = modelInputs(model.proto);
    const where = locateTensors(model.graph, tensors);
    if (where.unknown.length) {
      throw new OnnxError(`no tensor named ${where.unknown.map((t) => `"${t}"`).join(", ")} in the model; check the names`, label);
    }
    this.skipped = where.inSubgraph.map((tensor) => ({
      tensor,
      reason: "inside an If/Loop/Scan subgraph: not observed (its consumers keep float or use explicit overrides)",
    }));
    for (const s of this.skipped) this.warn(`tensor "${s.tensor}" is ${s.reason}`);
    this.tensors = where.main;
    for (const t of this.tensors) {
      if (options.method === "minmax") this.minmax.set(t, new MinMaxObserver(options));
      if (options.method !== "minmax" || options.keepHistograms) this.hist.set(t, new StreamingHistogram(options.numBins ?? 2048));
    }
  }

  private warn(message: string): void {
    this.warningList.push(message);
    this.options.onWarning?.(message);
  }

  /** Every warning so far (non-finite values, skipped tensors, CUDA fallback). */
  warnings(): readonly string[] {
    return this.warningList;
  }

  private async open(tensors: readonly string[], reduce: boolean): Promise<Run> {
    const { model, outputs } = augmentModel(this.model, tensors, reduce);
    const session = await createSession(model, {
      optimization: "disabled",
      ep: this.options.ep ?? "cpu",
      ...(this.options.threads ? { threads: this.options.threads } : {}),
      onFallback: (why) => this.warn(why),
    });
    return { session, outputs };
  }

  private sessions(): Promise<Run[]> {
    if (this.runs) return this.runs;
    const reduce = this.options.method === "minmax" && !this.options.keepHistograms;
    // Reduced outputs are scalars: one session. Whole tensors: at most tensorsPerSession exposed per session,
    // because exposed outputs are never reused by onnxruntime's allocator.
    const per = reduce ? this.tensors.length : Math.max(1, this.options.tensorsPerSession ?? 256);
    const chunks: string[][] = [];
    for (let i = 0; i < this.tensors.length; i += per) chunks.push(this.tensors.slice(i, i + per));
    this.runs = (async () => {
      const out: Run[] = [];
      try {
        for (const c of chunks) out.push(await this.open(c, reduce));
      } catch (e) {
        await Promise.all(out.map((r) => r.session.dispose()));
        this.runs = undefined;
        throw e;
      }
      return out;
    })();
    return this.runs;
  }

  /** Observes every batch of `data`. Can be called again with more data; the observations accumulate. */
  async collect(data: CalibrationData, opts: CollectOptions = {}): Promise<void> {
    if (this.disposed) throw new Error("the calibrator was disposed");
    // With nothing observable (every tensor inside subgraphs) the data is still checked and counted, no session.
    const runs = this.tensors.length ? await this.sessions() : [];
    const total = Array.isArray(data) ? data.length : undefined;
    let done = 0;
    this.cachedRanges = undefined;
    try {
      for await (const feeds of data) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? new Error("calibration cancelled");
        checkFeeds(feeds, this.specs, `calibration batch ${this.batches + 1}`);
        for (const part of splitRows(feeds, this.options.batchSize)) {
          const input: Record<string, RuntimeTensor> = {};
          for (const [k, t] of Object.entries(part)) input[k] = { data: t.data as RuntimeTensor["data"], dims: t.dims, type: t.type };
          for (const run of runs) await this.observe(run, input);
          this.batches++;
        }
        done++;
        opts.onProgress?.(done, total);
      }
      if (done === 0) {
        throw new OnnxError("the calibration data is empty: give at least one batch", this.model.path);
      }
    } finally {
      for (const m of this.minmax.values()) m.commit();
      this.reportNonFinite();
    }
  }

  private async observe(run: Run, input: Record<string, RuntimeTensor>): Promise<void> {
    const result = await run.session.run(input, run.outputs.flatMap((o) => (o.raw ? [o.raw] : [o.min!, o.max!, o.sum!])));
    const needRaw: string[] = [];
    for (const o of run.outputs) {
      if (o.raw) {
        const values = result[o.raw]!.data as Float32Array;
        this.hist.get(o.tensor)!.observe(values);
        this.minmax.get(o.tensor)?.observe(values);
        continue;
      }
      const [lo, hi, sum] = [o.min!, o.max!, o.sum!].map((n) => (result[n]!.data as Float32Array)[0]!);
      if (isFiniteAll(lo!, hi!, sum!)) this.minmax.get(o.tensor)!.observeRange(lo!, hi!);
      else needRaw.push(o.tensor); // NaN/Inf somewhere (or a float32 sum overflow): recount exactly on the side
    }
    if (needRaw.length) await this.observeRaw(needRaw, input);
  }

  /** Min/max of tensors whose batch held NaN/Inf: rerun the batch in a session that returns them whole. */
  private async observeRaw(tensors: string[], input: Record<string, RuntimeTensor>): Promise<void> {
    if (!this.fallback || tensors.some((t) => !this.fallback!.tensors.has(t))) {
      const all = new Set([...(this.fallback?.tensors ?? []), ...tensors]);
      await this.fallback?.run.session.dispose();
      this.fallback = undefined;
      this.fallback = { run: await this.open([...all], false), tensors: all };
    }
    const { run } = this.fallback;
    const wanted = run.outputs.filter((o) => tensors.includes(o.tensor));
    const result = await run.session.run(input, wanted.map((o) => o.raw!));
    for (const o of wanted) this.minmax.get(o.tensor)!.observe(result[o.raw!]!.data as Float32Array);
  }

  private reportNonFinite(): void {
    for (const t of this.tensors) {
      const n = (this.hist.get(t) ?? this.minmax.get(t))!.nonFinite;
      if (n > (this.warned.get(t) ?? 0)) {
        this.warn(`tensor "${t}": ${n} NaN/Inf value(s) in the calibration outputs were ignored; check the data and the model`);
        this.warned.set(t, n);
      }
    }
  }

  /** The clipping range of each observed tensor, chosen by the method; tensors with no finite value are absent. */
  ranges(): Map<string, TensorRange> {
    if (this.cachedRanges) return new Map(this.cachedRanges);
    const o = this.options;
    const out = new Map<string, TensorRange>();
    for (const t of this.tensors) {
      let r: TensorRange | undefined;
      if (o.method === "minmax") {
        r = this.minmax.get(t)!.range();
      } else {
        const h = this.hist.get(t)!.snapshot();
        if (!h) continue;
        if (o.method === "entropy") r = entropyThreshold(h, o.numQuantizedBins ?? 128);
        else if (o.method === "percentile") r = percentileThreshold(h, o.percentile ?? 99.999, o.symmetric ?? false);
        else r = mseThreshold(h, { bits: o.bits ?? 8, symmetric: o.symmetric ?? false });
      }
      if (!r) continue;
      if (o.symmetric && (o.method === "minmax" || o.method === "entropy")) {
        const a = Math.max(Math.abs(r.min), Math.abs(r.max));
        r = { min: -a, max: a };
      }
      const nonFinite = (this.hist.get(t) ?? this.minmax.get(t))!.nonFinite;
      out.set(t, nonFinite > 0 ? { ...r, nonFinite } : r);
    }
    this.cachedRanges = out;
    return new Map(out);
  }

  /** Histograms of the observed tensors (histogram methods, or minmax with keepHistograms). */
  histograms(): Map<string, TensorHistogram> {
    const out = new Map<string, TensorHistogram>();
    for (const [t, h] of this.hist) {
      const s = h.snapshot();
      if (s) out.set(t, s);
    }
    return out;
  }

  /** Frees the calibration sessions; safe to call more than once. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const runs = this.runs ? await this.runs.catch(() => []) : [];
    await Promise.all([...runs.map((r) => r.session.dispose()), this.fallback?.run.session.dispose()]);
  }
}
