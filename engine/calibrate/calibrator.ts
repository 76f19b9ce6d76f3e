// The calibrator: runs the augmented copy of the model (graph optimizations off, a session of its own) batch by
// batch and folds each batch into per-tensor observers, so memory does not grow with the number of samples.

import { checkFeeds, modelInputs, type CalibrationData, type Feeds, type InputSpec } from "../data/feeds";
import { OnnxError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import { createSession, type Session } from "../runtime/session";
import type { RuntimeTensor } from "../runtime/tensors";
import { augmentModel, locateTensors, type ObservedOutputs } from "./augment";
import { StreamingHistogram } from "./histogram";
import type { CalibrationOptions, CollectOptions, TensorHistogram, TensorRange } from "./types";
import { MinMaxObserver, batchStats } from "./minmax";
import { commonRows, sliceRows, splitRows, stackable, stackRows, toRuntime } from "./rows";
import { entropyThreshold, mseThreshold, percentileThreshold } from "./thresholds";

interface Run {
  session: Session;
  outputs: ObservedOutputs[];
  /** The output holding every tensor's min, max, sum (whole-tensor sessions). */
  stats?: string;
}

const isFiniteAll = (...v: number[]) => v.every(Number.isFinite);

/** Default cap on the bytes of whole tensors fetched by one run (see CalibrationOptions.maxRunBytes). */
const MAX_RUN_BYTES = 16 * 2 ** 20;
/** Joined small batches fill only this fraction of the cap: joining saves run overhead, not memory, and at the
 *  full cap it added 30–50 MiB of peak on the fixtures (single-sample files, measured). */
const JOIN_SHARE = 4;

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
  /** Reduce-only session that seeds histograms with no range yet (see seed()). */
  private seedRun: Run | undefined;
  /** Bytes of whole tensors one row (sample) fetches, learned from the first run that splits a batch. */
  private rowBytes: number | undefined;
  /** The model's inputs all have a free first (batch) axis, so a batch can run as several smaller ones. */
  private readonly splittable: boolean;
  /** Per float input of the data: NaN/±Inf values and all values seen, to say where non-finite activations came from. */
  private readonly inputValues = new Map<string, { nonFinite: number; total: number }>();
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
    this.splittable = this.specs.every((sp) => sp.shape !== undefined && sp.shape.length > 0 && typeof sp.shape[0] !== "number");
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

  private async open(tensors: readonly string[], reduce: boolean, stats = false): Promise<Run> {
    const { model, outputs, stats: statsOutput } = augmentModel(this.model, tensors, reduce, { stats });
    const session = await createSession(model, {
      optimization: "disabled",
      // Whole tensors come back as graph outputs, which onnxruntime never reuses: its memory pattern then plans one
      // block for every output plus the intermediates and keeps it (mobilenet, batch 32: +90 MiB peak, measured).
      ...(reduce ? {} : { memPattern: false }),
      ep: this.options.ep ?? "cpu",
      ...(this.options.threads ? { threads: this.options.threads } : {}),
      onFallback: (why) => this.warn(why),
    });
    return { session, outputs, ...(statsOutput ? { stats: statsOutput } : {}) };
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
        for (const c of chunks) out.push(await this.open(c, reduce, !reduce));
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
    // Small batches (single-sample files) are joined into runs of up to maxRunBytes: far fewer runs. Binning a
    // joined run at its widest range equals binning batch by batch and merging bin pairs, up to float rounding at
    // bin edges (identical on every fixture: ranges.test.ts). `pending` holds them until the run is full.
    let pending: Feeds[] = [];
    let pendingRows = 0;
    const flush = async () => {
      if (pending.length === 0) return;
      const joined = pending.length === 1 ? pending[0]! : stackRows(pending);
      const count = pending.length;
      pending = [];
      pendingRows = 0;
      await this.observeBatch(runs, joined);
      this.batches += count;
    };
    try {
      for await (const feeds of data) {
        if (opts.signal?.aborted) {
          await flush();
          throw opts.signal.reason ?? new Error("calibration cancelled");
        }
        checkFeeds(feeds, this.specs, `calibration batch ${this.batches + pending.length + 1}`);
        this.countInputValues(feeds);
        for (const part of splitRows(feeds, this.options.batchSize)) {
          const rows = commonRows(part);
          const room = this.stackRows();
          if (rows !== undefined && room > 0 && (pending.length === 0 || stackable(pending[0]!, part)) && pendingRows + rows <= room) {
            pending.push(part);
            pendingRows += rows;
            continue;
          }
          await flush();
          if (rows !== undefined && room > 0 && rows < room) {
            pending.push(part);
            pendingRows = rows;
            continue;
          }
          await this.observeBatch(runs, part);
          this.batches++;
        }
        done++;
        opts.onProgress?.(done, total);
      }
      await flush();
      if (done === 0) {
        throw new OnnxError("the calibration data is empty: give at least one batch", this.model.path);
      }
    } finally {
      for (const m of this.minmax.values()) m.commit();
      this.reportNonFinite();
    }
    this.refuseAllNonFinite();
  }

  private countInputValues(feeds: Feeds): void {
    for (const [name, t] of Object.entries(feeds)) {
      if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) continue;
      const c = this.inputValues.get(name) ?? { nonFinite: 0, total: 0 };
      c.nonFinite += batchStats(t.data).nonFinite;
      c.total += t.data.length;
      this.inputValues.set(name, c);
    }
  }

  /** Where NaN/±Inf came from: the inputs that held some, or, when none did, the model itself. */
  private nonFiniteSource(): string {
    const bad = [...this.inputValues].filter(([, c]) => c.nonFinite > 0);
    if (bad.length === 0) return "the calibration inputs are all finite, so the model itself produces them (check its weights and ops)";
    return `the calibration data holds them: ${bad.map(([n, c]) => `input "${n}" ${c.nonFinite} of ${c.total} values`).join(", ")}`;
  }

  /**
   * Every observed value of every tensor was NaN/±Inf: no range can be chosen, and convert() would only find none.
   * Said here, naming the tensors and the data, rather than as "no calibration range".
   */
  private refuseAllNonFinite(): void {
    const observers = this.tensors.map((t) => ({ t, h: this.hist.get(t), m: this.minmax.get(t) }));
    if (observers.length === 0 || observers.some((o) => (o.m ? o.m.range() : o.h!.snapshot()) !== undefined)) return;
    const counts = observers.map((o) => (o.h ?? o.m)!.nonFinite);
    if (counts.every((n) => n === 0)) return;
    const names = this.tensors.slice(0, 5).map((t) => `"${t}"`).join(", ") + (this.tensors.length > 5 ? `, … (${this.tensors.length} in all)` : "");
    throw new OnnxError(
      `calibration saw no finite value: every value of every observed tensor (${names}) was NaN or ±Inf over ` +
        `${this.batches} batch(es); ${this.nonFiniteSource()}. Give calibration data without NaN/Inf`,
      this.model.path,
    );
  }

  /**
   * How many rows small batches may be joined into (0: none). Histogram methods only (min/max reduces in the
   * graph: nothing fetched to bound), never with a moving average (per batch), never before the first batch has
   * run alone (it sets the histograms' first ranges, and what a row costs).
   */
  private stackRows(): number {
    if (!this.splittable || this.hist.size === 0 || this.options.movingAverage || !this.rowBytes) return 0;
    // A histogram with no range yet takes its first one from the first batch it sees: that must be one sample.
    for (const h of this.hist.values()) if (h.halfRange === 0) return 0;
    if (this.options.batchSize !== undefined) return 0;
    const cap = this.options.maxRunBytes ?? MAX_RUN_BYTES;
    return Number.isFinite(cap) ? Math.floor(cap / JOIN_SHARE / this.rowBytes) : 0;
  }

  /**
   * One batch. Whole tensors are fetched in runs of at most maxRunBytes (the batch split along its first axis):
   * peak memory then follows that cap, not the batch size. Splitting gives the histograms the same counts as one
   * run would: a histogram's first range is the absolute max of the first batch it sees, so while some histogram
   * has none yet, a reduce-only run over the whole batch seeds it first (then every run bins at that range).
   * Later batches widen run by run, which bins alike up to float rounding at bin edges (merging bin pairs equals
   * binning at the doubled range). A moving average is per batch, so it is never split.
   */
  private async observeBatch(runs: Run[], batch: Feeds): Promise<void> {
    const rows = commonRows(batch);
    const cap = this.options.maxRunBytes ?? MAX_RUN_BYTES;
    const fitsOneRun = !Number.isFinite(cap) || (this.rowBytes !== undefined && rows !== undefined && rows * this.rowBytes <= cap);
    if (!this.splittable || rows === undefined || rows < 2 || this.hist.size === 0 || this.options.movingAverage || fitsOneRun) {
      let elements = 0;
      for (const run of runs) elements += await this.observe(run, toRuntime(batch));
      if (rows) this.rowBytes ??= (elements * 4) / rows;
      return;
    }
    if (!(await this.seed(batch))) {
      for (const run of runs) await this.observe(run, toRuntime(batch));
      return;
    }
    for (let start = 0; start < rows; ) {
      // The first run is one row, to learn what a row costs; then as many rows as the cap allows.
      const n = this.rowBytes === undefined ? 1 : Math.min(rows - start, Math.max(1, Math.floor(cap / this.rowBytes)));
      const input = toRuntime(sliceRows(batch, start, n));
      let elements = 0;
      for (const run of runs) elements += await this.observe(run, input);
      this.rowBytes ??= (elements * 4) / n;
      start += n;
    }
  }

  /**
   * Gives every histogram with no range yet the range the whole batch would give it (its finite absolute max),
   * from a reduce-only session run once on the batch. False when that cannot be known exactly (NaN/Inf in the
   * batch): the batch then runs whole, as before.
   */
  private async seed(batch: Feeds): Promise<boolean> {
    const fresh = new Set([...this.hist].filter(([, h]) => h.halfRange === 0).map(([t]) => t));
    if (fresh.size === 0) {
      // Usually right after the first batch. Its session (and the memory onnxruntime holds for it) goes.
      await this.seedRun?.session.dispose();
      this.seedRun = undefined;
      return true;
    }
    // Kept while some tensor is still all zeros (rare), so that it is not rebuilt for every batch; the tensors
    // without a range only ever become fewer, so the first session covers them all.
    this.seedRun ??= await this.open([...fresh], true);
    const wanted = this.seedRun.outputs.filter((o) => fresh.has(o.tensor));
    const result = await this.seedRun.session.run(toRuntime(batch), wanted.flatMap((o) => [o.min!, o.max!, o.sum!]));
    const seeds: [StreamingHistogram, number][] = [];
    for (const o of wanted) {
      const [lo, hi, sum] = [o.min!, o.max!, o.sum!].map((n) => (result[n]!.data as Float32Array)[0]!);
      if (!isFiniteAll(lo!, hi!, sum!)) return false;
      seeds.push([this.hist.get(o.tensor)!, Math.max(Math.abs(lo!), Math.abs(hi!))]);
    }
    for (const [h, absMax] of seeds) h.seed(absMax);
    if (seeds.every(([h]) => h.halfRange > 0)) {
      await this.seedRun.session.dispose();
      this.seedRun = undefined;
    }
    return true;
  }

  /** Runs one batch in one session and folds its outputs in; returns the elements of whole tensors fetched. */
  private async observe(run: Run, input: Record<string, RuntimeTensor>): Promise<number> {
    const fetch = run.outputs.flatMap((o) => [o.raw, o.min, o.max, o.sum].filter((n) => n !== undefined));
    const result = await run.session.run(input, run.stats ? [...fetch, run.stats] : fetch);
    const statsVector = run.stats ? (result[run.stats]!.data as Float32Array) : undefined;
    const needRaw: string[] = [];
    let elements = 0;
    const scalar = (name: string) => (result[name]!.data as Float32Array)[0]!;
    for (const o of run.outputs) {
      const at = o.statsAt;
      const reduced =
        o.min !== undefined ? { lo: scalar(o.min), hi: scalar(o.max!), sum: scalar(o.sum!) }
        : statsVector && at !== undefined ? { lo: statsVector[at]!, hi: statsVector[at + 1]!, sum: statsVector[at + 2]! }
        : undefined;
      const finite = reduced !== undefined && isFiniteAll(reduced.lo, reduced.hi, reduced.sum);
      if (o.raw) {
        const values = result[o.raw]!.data as Float32Array;
        elements += values.length;
        // A finite sum means no NaN/Inf, so the graph's min/max are the batch's exact statistics; otherwise (or
        // on a float32 sum overflow) count in JS.
        const stats = finite && values.length > 0
          ? { min: reduced.lo, max: reduced.hi, finite: values.length, nonFinite: 0 }
          : batchStats(values);
        // Drop the reference as soon as the tensor is folded, so the garbage collector may take it back early.
        delete result[o.raw];
        this.hist.get(o.tensor)!.observe(values, stats);
        this.minmax.get(o.tensor)?.observeStats(stats);
        continue;
      }
      if (finite) this.minmax.get(o.tensor)!.observeRange(reduced.lo, reduced.hi);
      else needRaw.push(o.tensor); // NaN/Inf somewhere (or a float32 sum overflow): recount exactly on the side
    }
    if (needRaw.length) await this.observeRaw(needRaw, input);
    return elements;
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
        const m = this.minmax.get(t);
        const all = (m ? m.range() : this.hist.get(t)!.snapshot()) === undefined;
        this.warn(
          all
            ? `tensor "${t}": every observed value (${n}) was NaN/Inf, so it has no range; ${this.nonFiniteSource()}`
            : `tensor "${t}": ${n} NaN/Inf value(s) in the calibration outputs were ignored; check the data and the model`,
        );
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
    await Promise.all([...runs.map((r) => r.session.dispose()), this.fallback?.run.session.dispose(), this.seedRun?.session.dispose()]);
  }
}
