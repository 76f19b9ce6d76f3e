// The calibrator: runs the augmented copy of the model (graph optimizations off, sessions of its own) batch by
// batch and folds each batch into one observer per tensor, so memory does not grow with the number of samples.
// Who does what: observers.ts (one per method: what a tensor did, and its range), planner.ts (which tensors per
// session, how batches become runs under the byte cap), sessions.ts (the onnxruntime sessions); this file runs
// the plan, feeds the observers and says what went wrong (warnings, non-finite values).

import { checkFeeds, modelInputs, type CalibrationData, type Feeds, type InputSpec } from "../data/feeds";
import { OnnxError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import { locateTensors } from "./augment";
import { bodyTensors, exposeBodyTensors } from "../quant/subgraph-observe";
import { CALIBRATION_METHODS, type CalibrationOptions, type CollectOptions, type TensorHistogram, type TensorRange } from "./types";
import { batchStats, type BatchStats } from "./minmax";
import { buildProbe, choose, type AutoCandidate, type AutoChoice, type Probe } from "./auto";
import { AutoRangeObserver, createObserver, widenedWhenSymmetric, type RangeObserver } from "./observers";
import { MAX_RUN_BYTES, RunPlanner } from "./planner";
import { commonRows, copyRows, sliceRows, splitRows, stackable, stackRows } from "./rows";
import type { Range } from "./thresholds";
import { SessionPool, type Run } from "./sessions";
import { inferModelShapes, modelOpset } from "../onnx/shape-infer";

const isFiniteAll = (...v: number[]) => v.every(Number.isFinite);

/**
 * auto measures its candidates (at the consumers, then at the model's outputs) on the first this many calibration
 * rows (options.outputRows overrides it). They are not held out of the histograms: a held-out row is a row mse's
 * ranges do not see, and auto that keeps mse then writes other ranges than mse would (on the corpus, 2 of 16 samples
 * held out cost oww-timer 4 dB, ppocr-v3-rec-en 3 of 512 lines; docs/calibration.md "auto: a gain on the rows, not
 * in the pool"). Measured in-sample, a choice must show a gain on the rows (engine/quant/assignment-choice), and one
 * other than mse must then hold across their halves (halves()).
 */
const OUTPUT_ROWS = 16;
/**
 * auto's probe (the error at each tensor's consumers) runs on the first this many of them: it runs the float model
 * and a fake-quantized copy of every consumer per candidate, in parts (PROBE_CAPS), so on 16 rows of mlsd-320-large
 * it took 30 s of a 47 s calibration; the per-tensor choices it makes are one assignment among five, which the
 * choice at the outputs then measures on all OUTPUT_ROWS rows.
 */
const PROBE_ROWS = 4;

/** ...and each half of the rows that auto judges across (Calibrator.halves) on its first this many. */
const HALF_PROBE_ROWS = PROBE_ROWS / 2;

/** One half of auto's first rows, calibrated alone: its ranges (the per-tensor choices), every candidate's, and the
 *  other half's rows, which judge them. */
export interface CalibrationHalf {
  ranges: Map<string, TensorRange>;
  candidates: Map<string, Map<AutoCandidate, TensorRange>>;
  judgedOn: Feeds[];
}

/**
 * auto's probe keeps every tensor it measures alive until its end (its nodes follow the whole graph), so it runs in
 * parts whose tensors take at most this many run caps (options.maxRunBytes) per row: on mlsd-320-large (a fixed batch
 * of one 320×320 image, 129 tensors) the probe in one part took peak RSS from 839 MiB (mse) to 1.3 GiB.
 */
const PROBE_CAPS = 4;
/**
 * ...and of at most this many tensors: onnxruntime takes time superlinear in the nodes to open a session, and a
 * probe holds some 50 nodes per tensor (four candidates, each fake-quantized into a copy of every consumer): on
 * PaddleOCR's orientation classifier (141 tensors, 7128 probe nodes) the probe in one part took 14 s, 9 of them
 * opening its session; in parts of 8 tensors 3.2 s, of 24 4.7 s, of 48 8.0 s. Each part runs the float model too,
 * which costs on a large one (mlsd-320-large: 5 parts by bytes 7.6 s, 9 parts 8.5 s).
 */
const PROBE_TENSORS = 16;

/**
 * A tensor one row of which alone holds more than the run cap (options.maxRunBytes) cannot be bounded by splitting
 * the batch: its histogram is built from a strided sample of about this share of the cap per row instead (its
 * min, max and the range seeding stay exact: they are reduced in the graph over the whole tensor). ISNet at
 * 1024×1024: 1.91 GiB of observed float32 per image whole, 0.77 GiB sampled.
 */
const SAMPLE_SHARE = 4;
/** …and never fewer values than this per row (a small cap, as tests set, samples nothing smaller). */
const MIN_SAMPLE = 2 ** 16;

/**
 * The step that brings one row of `row` values under a SAMPLE_SHARE-th of the run cap (at least MIN_SAMPLE values),
 * or undefined where a row fits the cap whole: the smallest odd one, so that a step never lines up with the even
 * strides of convolutions and power-of-two channel counts.
 */
function sampleStep(row: number, cap: number): number | undefined {
  if (!Number.isFinite(cap)) return undefined;
  const target = Math.max(MIN_SAMPLE, Math.floor(cap / 4 / SAMPLE_SHARE));
  if (row * 4 <= cap || row <= target) return undefined;
  const step = Math.ceil(row / target);
  return step % 2 === 0 ? step + 1 : step;
}

/**
 * Each tensor's values per row (its first, batch axis aside) where its static shape gives them; undefined where it is
 * symbolic (Calibrator's sizeRows measures those).
 */
function staticRows(model: Model, tensors: readonly string[]): Map<string, number | undefined> {
  const shapes = inferModelShapes(model.proto).tensors;
  return new Map(
    tensors.map((t) => {
      const dims = shapes.get(t)?.shape;
      const known = dims && dims.length >= 2 && dims.slice(1).every((d): d is number => typeof d === "number" && d > 0);
      return [t, known ? (dims.slice(1) as number[]).reduce((a, b) => a * b, 1) : undefined];
    }),
  );
}

/** The sum of an int64 vector of element counts (a reduce-only session's sizes output). */
function elementsOf(data: unknown): number {
  let n = 0;
  for (const v of data as BigInt64Array) n += Number(v);
  return n;
}

/** Merges one part's statistics into the batch's. */
function merge(into: Map<string, BatchStats>, t: string, s: BatchStats): void {
  const m = into.get(t);
  into.set(t, m
    ? { min: Math.min(m.min, s.min), max: Math.max(m.max, s.max), finite: m.finite + s.finite, nonFinite: m.nonFinite + s.nonFinite }
    : s);
}

export class Calibrator {
  private readonly options: CalibrationOptions;
  private readonly specs: InputSpec[];
  /** Tensors that are observed: of the main graph, and computed inside If/Loop/Scan bodies. */
  readonly tensors: readonly string[];
  /** Tensors that were asked for but cannot be observed, with why. */
  readonly skipped: readonly { tensor: string; reason: string }[];
  /** Observers by the name the sessions fetch: a body tensor's is its main-graph copy (exposeBodyTensors). */
  private readonly observers = new Map<string, RangeObserver>();
  /** Main-graph copy of a body tensor → the body tensor's own name (ranges are reported under it). */
  private readonly bodyNames = new Map<string, string>();
  /**
   * Body tensors that came back empty every time so far (a branch not taken): while their histograms have no range
   * they do not hold back joining small batches or freeing the seeding session, which waits for every other one.
   */
  private readonly emptySoFar = new Set<string>();
  private readonly planner: RunPlanner;
  private readonly pool: SessionPool;
  private readonly warned = new Map<string, number>();
  private readonly warningList: string[] = [];
  private cachedRanges: Map<string, TensorRange> | undefined;
  private disposed = false;
  /** Per float input of the data: NaN/±Inf values and all values seen, to say where non-finite activations came from. */
  private readonly inputValues = new Map<string, { nonFinite: number; total: number }>();
  /** auto: a copy of the first calibration rows (up to outputRows), which it measures its candidates on. */
  private readonly firstRows: Feeds[] = [];
  private firstRowCount = 0;
  /** auto: elements of each tensor fetched whole, per row (from the last batch that fetched it). */
  private readonly rowElements = new Map<string, number>();
  /** Batches (runs of the model) observed so far. */
  batches = 0;
  /** Runs of the model observed (each part of a split batch, each joined run) and, per body tensor, those it was in. */
  private modelRuns = 0;
  private readonly reachedRuns = new Map<string, number>();
  private readonly reachedNow = new Set<string>();

  constructor(
    private readonly model: Model,
    tensors: string[],
    options: CalibrationOptions,
  ) {
    this.options = options;
    const label = model.path ?? "<model>";
    if (!(CALIBRATION_METHODS as readonly string[]).includes(options.method)) {
      throw new OnnxError(`unknown calibration method "${String(options.method)}" (${CALIBRATION_METHODS.join(", ")})`, label);
    }
    if (tensors.length === 0) throw new OnnxError("no tensors to calibrate were given", label);
    this.specs = modelInputs(model.proto);
    const splittable = this.specs.every((sp) => sp.shape !== undefined && sp.shape.length > 0 && typeof sp.shape[0] !== "number");
    const where = locateTensors(model.graph, tensors);
    const inBodies = bodyTensors(model.graph, where);
    const unknown = where.unknown.filter((t) => !inBodies.includes(t));
    if (unknown.length) {
      throw new OnnxError(`no tensor named ${unknown.map((t) => `"${t}"`).join(", ")} in the model; check the names`, label);
    }
    // Body tensors are threaded out to the main graph (onnxruntime returns main-graph values only), and observed
    // there; a branch not taken gives an empty tensor, which observes nothing (observeBatch skips it).
    let observed = model;
    const skipped: { tensor: string; reason: string }[] = [];
    if (inBodies.length) {
      try {
        const exposed = exposeBodyTensors(model, inBodies);
        observed = exposed.model;
        for (const [t, out] of exposed.outputs) this.bodyNames.set(out, t);
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        for (const tensor of inBodies) skipped.push({ tensor, reason: `inside an If/Loop/Scan subgraph that cannot be observed (${why}): its consumers are quantized dynamically` });
      }
    }
    this.skipped = skipped;
    for (const s of this.skipped) this.warn(`tensor "${s.tensor}" is ${s.reason}`);
    const keys = [...where.main, ...this.bodyNames.keys()];
    this.tensors = keys.map((k) => this.nameOf(k));
    for (const k of keys) this.observers.set(k, createObserver(options));
    this.observedModel = observed;
    const whole = [...this.observers.values()].some((o) => o.wholeTensors);
    this.planner = new RunPlanner(options, splittable, whole);
    const cap = options.maxRunBytes ?? MAX_RUN_BYTES;
    const rows = whole && Number.isFinite(cap) ? staticRows(observed, keys) : new Map<string, number | undefined>();
    for (const [t, row] of rows) {
      const step = row === undefined ? undefined : sampleStep(row, cap);
      if (step) this.steps.set(t, step);
    }
    this.unsized = modelOpset(observed.proto) >= 10 ? [...rows].filter(([, row]) => row === undefined).map(([t]) => t) : [];
    this.pool = new SessionPool(observed, options, (m) => this.warn(m), this.steps);
  }

  /** The model the sessions run: `model` with the observed body tensors threaded out. */
  private readonly observedModel: Model;
  /** Tensors whose histograms are built from every step-th value (sampleStep), by observer key. */
  private readonly steps = new Map<string, number>();
  /**
   * Whole tensors whose row size no static shape gives (symbolic height and width: PP-OCR's detectors and
   * recognisers): sizeRows measures them on the first batch, before the main sessions open with their steps.
   */
  private unsized: string[];

  /** Observed tensors whose histograms come from a strided sample, with the step (one value in `step`). */
  sampled(): Map<string, number> {
    return new Map([...this.steps].map(([k, s]) => [this.nameOf(k), s]));
  }

  /** The tensor an observer key stands for. */
  private nameOf(key: string): string {
    return this.bodyNames.get(key) ?? key;
  }

  private warn(message: string): void {
    this.warningList.push(message);
    this.options.onWarning?.(message);
  }

  /** Every warning so far (non-finite values, skipped tensors, CUDA fallback). */
  warnings(): readonly string[] {
    return this.warningList;
  }

  /** The main sessions; the first batch sizes the tensors of symbolic shape first (sizeRows). */
  private async sessions(first: Feeds): Promise<Run[]> {
    if (this.unsized.length) await this.sizeRows(first);
    return this.pool.sessions(this.planner.sessionTensors([...this.observers.keys()]), this.planner.reduceOnly);
  }

  /**
   * Steps for the whole tensors of symbolic shape, from their element counts on one row of `batch` (a reduce-only
   * run, freed before the main sessions open): a tensor one row of which holds more than the run cap is sampled,
   * as the constructor does for static shapes. Later batches of another size keep the step. PP-OCRv3's detector on
   * 960×960 pages: 10 of 189 tensors sampled, calibration's peak RSS 1625 → 1370 MB (docs/calibration.md).
   */
  private async sizeRows(batch: Feeds): Promise<void> {
    const tensors = this.unsized;
    this.unsized = [];
    const rows = commonRows(batch);
    const one = rows !== undefined && rows > 1 && this.planner.splittable ? sliceRows(batch, 0, 1) : batch;
    const perRow = one === batch ? (rows || 1) : 1;
    const run = await this.pool.open(tensors, true);
    try {
      const sizes = (await run.session.run(one, [run.sizes!]))[run.sizes!]!.data as BigInt64Array;
      const cap = this.options.maxRunBytes ?? MAX_RUN_BYTES;
      tensors.forEach((t, i) => {
        const step = sampleStep(Number(sizes[i]) / perRow, cap);
        if (step) this.steps.set(t, step);
      });
    } finally {
      await run.session.dispose();
    }
  }

  /** Whether observer `t` still waits for its first batch (a branch never taken so far does not). */
  private awaitsSeed(t: string): boolean {
    return this.observers.get(t)!.unseeded && !this.emptySoFar.has(t);
  }

  private get unseeded(): boolean {
    for (const t of this.observers.keys()) if (this.awaitsSeed(t)) return true;
    return false;
  }

  /** Observes every batch of `data`. Can be called again with more data; the observations accumulate. */
  async collect(data: CalibrationData, opts: CollectOptions = {}): Promise<void> {
    if (this.disposed) throw new Error("the calibrator was disposed");
    // With nothing observable (every tensor inside subgraphs) the data is still checked and counted, no session.
    // Opened at the first batch: tensors of symbolic shape are sized on it first (sizeRows).
    let runs: Run[] | undefined;
    const ready = async (first: Feeds) => (runs ??= this.observers.size ? await this.sessions(first) : []);
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
      await this.observeBatch(await ready(joined), joined);
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
          this.keepFirstRows(part);
          const rows = commonRows(part);
          const room = this.planner.joinRows(this.unseeded);
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
          await this.observeBatch(await ready(part), part);
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
      for (const o of this.observers.values()) o.commit();
      this.reportNonFinite();
    }
    this.refuseAllNonFinite();
    if (this.options.method === "auto") {
      // The probe opens sessions of its own: the calibration sessions' memory is given back first (they open again
      // for a later collect()). With both open mlsd-320-large's calibration peaked at 994 MiB, mse's at 802.
      await this.pool.dispose();
      if (!this.options.autoCandidates) await this.chooseAuto();
    }
  }

  /** auto: keeps a copy of the first calibration rows (up to outputRows) to measure its candidates on. */
  private keepFirstRows(part: Feeds): void {
    const rows = commonRows(part);
    if (this.options.method !== "auto" || rows === undefined || rows === 0) return;
    const n = Math.min(rows, (this.options.outputRows ?? OUTPUT_ROWS) - this.firstRowCount);
    if (n > 0 && (n === rows || this.planner.splittable)) {
      this.firstRows.push(copyRows(part, 0, n));
      this.firstRowCount += n;
    }
  }

  /**
   * auto: measures every tensor's candidate ranges at its consumers on the held-out rows (engine/calibrate/auto.ts)
   * and gives each observer its choice. When the probe cannot be built or run, mse stays, with a warning.
   */
  private async chooseAuto(): Promise<void> {
    const auto = [...this.observers].filter((e): e is [string, AutoRangeObserver] => e[1] instanceof AutoRangeObserver);
    const candidates = new Map<string, Map<AutoCandidate, Range>>();
    for (const [t, o] of auto) {
      const c = o.candidates();
      if (c.size) candidates.set(t, c);
    }
    const samples = [...this.autoRows(PROBE_ROWS)];
    if (candidates.size === 0 || samples.length === 0) return;
    const chosen = new Map<string, AutoChoice>();
    try {
      for (const part of this.probeParts([...candidates.keys()])) {
        const probe = buildProbe(this.observedModel, new Map(part.map((t) => [t, candidates.get(t)!])), { bits: this.options.bits ?? 8, symmetric: this.options.symmetric ?? false });
        const totals = await this.runProbe(probe, samples);
        for (const [t, c] of choose(probe, totals)) chosen.set(t, c);
      }
    } catch (e) {
      this.warn(`calibration method auto could not measure its candidates (${e instanceof Error ? e.message.split("\n")[0] : String(e)}): mse ranges are used`);
      return;
    }
    const rows = samples.reduce((a, f) => a + (commonRows(f) ?? 1), 0);
    const where = `the first ${rows} calibration sample(s)`;
    for (const [t, c] of chosen) {
      (this.observers.get(t) as AutoRangeObserver).choose({ ...c, why: `${c.why}; on ${where}` }, candidates.get(t)!.get(c.method)!);
    }
  }

  /**
   * `tensors` (in order) in parts whose whole tensors take at most PROBE_CAPS run caps per row (at least one tensor
   * each), and of at most PROBE_TENSORS tensors.
   */
  private probeParts(tensors: readonly string[]): string[][] {
    const budget = PROBE_CAPS * (this.options.maxRunBytes ?? MAX_RUN_BYTES);
    const parts: string[][] = [];
    let bytes = 0;
    for (const t of tensors) {
      const b = 4 * (this.rowElements.get(t) ?? 0);
      if (parts.length === 0 || bytes + b > budget || parts[parts.length - 1]!.length >= PROBE_TENSORS) {
        parts.push([]);
        bytes = 0;
      }
      parts[parts.length - 1]!.push(t);
      bytes += b;
    }
    return parts;
  }

  /** The probe's output vector summed over every sample's runs (split into rows as calibration runs are). */
  private async runProbe(probe: Probe, samples: readonly Feeds[]): Promise<Float64Array> {
    let totals: Float64Array | undefined;
    const session = await this.pool.session(probe.model);
    try {
      for (const feeds of samples) {
        const rows = commonRows(feeds) ?? 1;
        for (let start = 0; start < rows; ) {
          const n = this.planner.splittable ? this.planner.partRows(rows - start) : rows;
          const input = n === rows ? feeds : sliceRows(feeds, start, n);
          const v = (await session.run(input, [probe.output]))[probe.output]!.data as Float32Array;
          totals ??= new Float64Array(v.length);
          for (let i = 0; i < v.length; i++) totals[i] += v[i]!;
          start += n;
        }
      }
    } finally {
      await session.dispose();
    }
    return totals ?? new Float64Array(0);
  }

  /**
   * auto: the first calibration rows (up to `limit`, by default outputRows or OUTPUT_ROWS), one each (a model with
   * a fixed batch axis: one batch each): what its probe and a caller measuring at the model's outputs
   * (engine/quant's calibrate()) run on.
   */
  *autoRows(limit = this.options.outputRows ?? OUTPUT_ROWS): Generator<Feeds> {
    let left = limit;
    for (const f of this.firstRows) {
      const rows = commonRows(f) ?? 1;
      if (left <= 0) return;
      if (rows === 1 || !this.planner.splittable) yield f;
      else for (let r = 0; r < Math.min(rows, left); r++) yield sliceRows(f, r, 1);
      left -= rows;
    }
  }

  /**
   * auto, judged out of sample: the kept first rows (autoRows) in two halves, even rows and odd, each calibrated
   * alone with this calibration's options (a calibrator of its own, its probe on the half's first HALF_PROBE_ROWS
   * rows; with `only`, no probe and only mse's and that method's candidates); engine/quant's chooseAtOutputs judges
   * each half's ranges on the other half's rows. Ranges measured on the rows that made them favour what fits those
   * rows: on ppocr-v4-rec-en's second calibration set the per-tensor choices read +1.61 dB over mse pooled on the 16
   * rows that shaped both, −0.49 dB judged across halves, and −1.98 dB on 512 held-out lines (docs/calibration.md
   * "auto judged across halves"). None with fewer than two rows.
   */
  async halves(only?: AutoCandidate): Promise<CalibrationHalf[]> {
    const rows = [...this.autoRows()];
    if (rows.length < 2 || this.tensors.length === 0) return [];
    const parts = [rows.filter((_, i) => i % 2 === 0), rows.filter((_, i) => i % 2 === 1)];
    const out: CalibrationHalf[] = [];
    for (const [k, fit] of parts.entries()) {
      // Its warnings (non-finite values, skipped tensors) are this calibration's, said once already.
      const half = new Calibrator(this.model, [...this.tensors], {
        ...this.options,
        outputRows: HALF_PROBE_ROWS,
        autoCandidates: only ? [...new Set(["mse", only] as const)] : undefined,
        onWarning: undefined,
      });
      try {
        await half.collect(fit);
        out.push({ ranges: half.ranges(), candidates: half.candidateRanges(), judgedOn: parts[1 - k]! });
      } finally {
        await half.dispose();
      }
    }
    return out;
  }

  /** auto: every candidate method's range per tensor (non-finite counts kept), as measured by collect(). */
  candidateRanges(): Map<string, Map<AutoCandidate, TensorRange>> {
    const out = new Map<string, Map<AutoCandidate, TensorRange>>();
    for (const [t, o] of this.observers) {
      if (!(o instanceof AutoRangeObserver)) continue;
      const c = o.candidates();
      if (c.size === 0) continue;
      out.set(this.nameOf(t), new Map([...c].map(([m, r]) => [m, o.nonFinite > 0 ? { ...r, nonFinite: o.nonFinite } : r])));
    }
    return out;
  }

  /** auto: the method chosen per tensor and why (empty for the fixed methods, and before collect()). */
  choices(): Map<string, AutoChoice> {
    const out = new Map<string, AutoChoice>();
    for (const [t, o] of this.observers) if (o instanceof AutoRangeObserver && o.choice) out.set(this.nameOf(t), o.choice);
    return out;
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
    const observers = [...this.observers.values()];
    if (observers.length === 0 || observers.some((o) => o.seenFinite)) return;
    const counts = observers.map((o) => o.nonFinite);
    if (counts.every((n) => n === 0)) return;
    const names = this.tensors.slice(0, 5).map((t) => `"${t}"`).join(", ") + (this.tensors.length > 5 ? `, … (${this.tensors.length} in all)` : "");
    throw new OnnxError(
      `calibration saw no finite value: every value of every observed tensor (${names}) was NaN or ±Inf over ` +
        `${this.batches} batch(es); ${this.nonFiniteSource()}. Give calibration data without NaN/Inf`,
      this.model.path,
    );
  }

  /**
   * One batch, in runs the planner sizes under maxRunBytes (the batch split along its first axis): peak memory then
   * follows that cap, not the batch size. Whole tensors are fed part by part; splitting gives the histograms the
   * same counts as one run would: a histogram's first range is the absolute max of the first batch it sees, so
   * while some histogram has none yet, a reduce-only pass over the batch seeds it first (then every run bins at
   * that range). Later batches widen run by run, which bins alike up to float rounding at bin edges (merging bin
   * pairs equals binning at the doubled range). Reduced min/max are merged over the parts and fed once per batch.
   */
  private async observeBatch(runs: Run[], batch: Feeds): Promise<void> {
    const rows = commonRows(batch);
    if (!this.planner.splits(rows)) {
      let elements = 0;
      for (const run of runs) elements += await this.observe(run, batch);
      this.countRun();
      this.planner.learn(elements, rows);
      return;
    }
    if (this.planner.wholeTensors && !(await this.seed(batch, rows!))) {
      for (const run of runs) await this.observe(run, batch);
      this.countRun();
      return;
    }
    const merged = this.planner.wholeTensors ? undefined : new Map<string, BatchStats>();
    for (let start = 0; start < rows!; ) {
      const n = this.planner.partRows(rows! - start);
      const input = sliceRows(batch, start, n);
      let elements = 0;
      for (const run of runs) elements += await this.observe(run, input, merged);
      this.countRun();
      this.planner.learn(elements, n);
      start += n;
    }
    for (const [t, s] of merged ?? []) this.observers.get(t)!.observeStats(s);
  }

  /** One run of the model observed: the body tensors it reached count it. */
  private countRun(): void {
    this.modelRuns++;
    for (const t of this.reachedNow) this.reachedRuns.set(t, (this.reachedRuns.get(t) ?? 0) + 1);
    this.reachedNow.clear();
  }

  /**
   * Gives every histogram with no range yet the range the whole batch would give it (its finite absolute max, the
   * largest over the parts), from a reduce-only session run on the batch in parts. False when that cannot be
   * known exactly (NaN/Inf in the batch): the batch then runs whole, as before.
   */
  private async seed(batch: Feeds, rows: number): Promise<boolean> {
    const fresh = new Set([...this.observers.keys()].filter((t) => this.awaitsSeed(t)));
    if (fresh.size === 0) {
      await this.pool.seeded(); // usually right after the first batch
      return true;
    }
    const run = await this.pool.seeding([...fresh]);
    const wanted = run.outputs.filter((o) => fresh.has(o.tensor));
    const absMax = new Map<string, number>();
    for (let start = 0; start < rows; ) {
      const n = this.planner.partRows(rows - start);
      const fetch = wanted.flatMap((o) => [o.min!, o.max!, o.sum!]);
      const result = await run.session.run(sliceRows(batch, start, n), run.sizes ? [...fetch, run.sizes] : fetch);
      for (const o of wanted) {
        const [lo, hi, sum] = [o.min!, o.max!, o.sum!].map((k) => (result[k]!.data as Float32Array)[0]!);
        if (lo! > hi!) {
          this.emptySoFar.add(o.tensor); // a branch not taken: seeded by the first batch that reaches it
          continue;
        }
        if (!isFiniteAll(lo!, hi!, sum!)) return false;
        absMax.set(o.tensor, Math.max(absMax.get(o.tensor) ?? 0, Math.abs(lo!), Math.abs(hi!)));
      }
      this.planner.learn(run.sizes ? elementsOf(result[run.sizes]!.data) : 0, n);
      start += n;
    }
    for (const [t, m] of absMax) this.observers.get(t)!.seed(m);
    if (wanted.every((o) => !this.awaitsSeed(o.tensor))) await this.pool.seeded();
    return true;
  }

  /**
   * Runs one batch (or part of one) in one session and folds its outputs in; returns the elements of the observed
   * tensors (fetched whole, or counted in the graph). With `merged`, reduced statistics are merged there instead
   * of fed (the caller feeds them once per batch).
   */
  private async observe(run: Run, input: Feeds, merged?: Map<string, BatchStats>): Promise<number> {
    const fetch = run.outputs.flatMap((o) => [o.raw, o.min, o.max, o.sum].filter((n) => n !== undefined));
    const extra = [run.stats, run.sizes].filter((n) => n !== undefined);
    const result = await run.session.run(input, [...fetch, ...extra]);
    const statsVector = run.stats ? (result[run.stats]!.data as Float32Array) : undefined;
    const needRaw: string[] = [];
    let elements = run.sizes ? elementsOf(result[run.sizes]!.data) : 0;
    // auto's probe runs in parts by what each tensor costs per row (probeParts).
    const perRow = this.options.method === "auto" ? (commonRows(input) ?? 1) : undefined;
    const scalar = (name: string) => (result[name]!.data as Float32Array)[0]!;
    const feed = (t: string, s: BatchStats) => (merged ? merge(merged, t, s) : this.observers.get(t)!.observeStats(s));
    for (const o of run.outputs) {
      const at = o.statsAt;
      const reduced =
        o.min !== undefined ? { lo: scalar(o.min), hi: scalar(o.max!), sum: scalar(o.sum!) }
        : statsVector && at !== undefined ? { lo: statsVector[at]!, hi: statsVector[at + 1]!, sum: statsVector[at + 2]! }
        : undefined;
      // An empty tensor (an If branch not taken, a Loop run zero times) reduces to lo > hi: nothing to observe.
      if (reduced !== undefined && reduced.lo > reduced.hi) {
        if (o.raw) delete result[o.raw];
        if (this.observers.get(o.tensor)!.unseeded) this.emptySoFar.add(o.tensor);
        continue;
      }
      this.emptySoFar.delete(o.tensor);
      const finite = reduced !== undefined && isFiniteAll(reduced.lo, reduced.hi, reduced.sum);
      if (o.raw) {
        const values = result[o.raw]!.data as Float32Array;
        if (values.length === 0) {
          if (this.observers.get(o.tensor)!.unseeded) this.emptySoFar.add(o.tensor);
          continue;
        }
        if (this.bodyNames.has(o.tensor)) this.reachedNow.add(o.tensor);
        elements += values.length;
        if (perRow) this.rowElements.set(o.tensor, (values.length * (this.steps.get(o.tensor) ?? 1)) / perRow);
        // A finite sum means no NaN/Inf, so the graph's min/max are the batch's exact statistics; otherwise (or
        // on a float32 sum overflow) count in JS.
        const stats = finite && values.length > 0
          ? { min: reduced.lo, max: reduced.hi, finite: values.length, nonFinite: 0 }
          : batchStats(values);
        // Drop the reference as soon as the tensor is folded, so the garbage collector may take it back early.
        delete result[o.raw];
        this.observers.get(o.tensor)!.observe(values, stats);
        continue;
      }
      if (this.bodyNames.has(o.tensor)) this.reachedNow.add(o.tensor);
      if (finite) feed(o.tensor, { min: reduced.lo, max: reduced.hi, finite: 1, nonFinite: 0 });
      else needRaw.push(o.tensor); // NaN/Inf somewhere (or a float32 sum overflow): recount exactly on the side
    }
    if (needRaw.length) {
      for (const [t, s] of await this.observeRaw(needRaw, input)) feed(t, s);
    }
    return elements;
  }

  /** Min/max of tensors whose batch held NaN/Inf: rerun the batch in a session that returns them whole. */
  private async observeRaw(tensors: string[], input: Feeds): Promise<Map<string, BatchStats>> {
    const run = await this.pool.fallbackFor(tensors);
    const wanted = run.outputs.filter((o) => tensors.includes(o.tensor));
    const result = await run.session.run(input, wanted.map((o) => o.raw!));
    const stats = wanted.map((o) => [o.tensor, batchStats(result[o.raw!]!.data as Float32Array)] as const);
    return new Map(stats.filter(([, s]) => s.finite + s.nonFinite > 0));
  }

  private reportNonFinite(): void {
    for (const [key, o] of this.observers) {
      const t = this.nameOf(key);
      const n = o.nonFinite;
      if (n > (this.warned.get(t) ?? 0)) {
        this.warn(
          !o.seenFinite
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
    const out = new Map<string, TensorRange>();
    for (const [key, o] of this.observers) {
      const t = this.nameOf(key);
      let r = o.range();
      if (!r) continue;
      if (this.options.symmetric && widenedWhenSymmetric(this.options.method)) {
        const a = Math.max(Math.abs(r.min), Math.abs(r.max));
        r = { min: -a, max: a };
      }
      const reached = this.bodyNames.has(key) ? (this.reachedRuns.get(key) ?? 0) : this.modelRuns;
      out.set(t, {
        ...r,
        ...(o.nonFinite > 0 ? { nonFinite: o.nonFinite } : {}),
        ...(reached < this.modelRuns ? { reached: { runs: reached, of: this.modelRuns } } : {}),
      });
    }
    this.cachedRanges = out;
    return new Map(out);
  }

  /** Histograms of the observed tensors (histogram methods, or minmax with keepHistograms). */
  histograms(): Map<string, TensorHistogram> {
    const out = new Map<string, TensorHistogram>();
    for (const [t, o] of this.observers) {
      const s = o.histogram();
      if (s) out.set(this.nameOf(t), s);
    }
    return out;
  }

  /**
   * Frees the calibration sessions and the memory onnxruntime holds for them, keeping what was observed: a later
   * collect() opens them again. calibrate() calls it before its measurements, which open sessions of their own.
   */
  async releaseSessions(): Promise<void> {
    await this.pool.dispose();
  }

  /** Frees the calibration sessions; safe to call more than once. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.pool.dispose();
  }
}
