// One observer per calibration method, behind one interface (ONNX Runtime's calibrater classes are the anchor:
// MinMaxCalibrater, and HistogramCalibrater with its Entropy/Percentile/Distribution children). An observer only
// records what a tensor did and, when asked, picks a range from it: which sessions run, on which rows, is the
// planner's and the calibrator's business.

import { AUTO_CANDIDATES, type AutoCandidate, type AutoChoice } from "./auto";
import { StreamingHistogram } from "./histogram";
import { MinMaxObserver, type BatchStats } from "./minmax";
import { entropyThreshold, mseThreshold, percentileThreshold, type Range } from "./thresholds";
import type { CalibrationOptions, TensorHistogram } from "./types";

/** What one observed tensor keeps across batches. */
export interface RangeObserver {
  /** True when the observer needs the whole tensor (a histogram); false when min/max reduced in the graph do. */
  readonly wholeTensors: boolean;
  /** NaN/±Inf values seen and left out. */
  readonly nonFinite: number;
  /** A histogram with no range yet takes its first one from the first batch it sees (see Calibrator's seeding). */
  readonly unseeded: boolean;
  /** True once some finite value was seen (range() is then defined). */
  readonly seenFinite: boolean;
  /** Folds a whole batch of the tensor in; `stats` are exactly batchStats(values). */
  observe(values: Float32Array, stats: BatchStats): void;
  /** Folds one batch's statistics in, reduced in the graph (whole-tensor observers never get these); `finite`
   *  need only be positive when some value was finite. */
  observeStats(stats: BatchStats): void;
  /** Gives a histogram with no range yet the range of the batch about to be observed in parts. */
  seed(absMax: number): void;
  /** Ends one collect() call (the moving average averages per call). */
  commit(): void;
  /** The range this method picks, before symmetric widening; undefined before any finite value. */
  range(): Range | undefined;
  /** The histogram, when the observer keeps one. */
  histogram(): TensorHistogram | undefined;
}

/** Picks a range from a histogram (the histogram methods differ only in this). */
type Pick = (h: TensorHistogram & { edges: Float64Array }) => Range;

/** The histogram methods' shared collection (ORT's HistogramCalibrater); `pick` is the method. */
export class HistogramRangeObserver implements RangeObserver {
  readonly wholeTensors = true;
  private readonly hist: StreamingHistogram;
  constructor(
    numBins: number,
    protected pick: Pick,
    /** minmax with keepHistograms: the range comes from here, the histogram is only kept. */
    private readonly minmax?: MinMaxObserver,
  ) {
    this.hist = new StreamingHistogram(numBins);
  }
  get nonFinite(): number {
    return this.hist.nonFinite;
  }
  get unseeded(): boolean {
    return this.hist.halfRange === 0;
  }
  get seenFinite(): boolean {
    return this.minmax ? this.minmax.range() !== undefined : this.hist.total > 0;
  }
  observe(values: Float32Array, stats: BatchStats): void {
    this.hist.observe(values, stats);
    this.minmax?.observeStats(stats);
  }
  observeStats(): void {
    throw new Error("a histogram observer needs whole tensors");
  }
  seed(absMax: number): void {
    this.hist.seed(absMax);
  }
  commit(): void {
    this.minmax?.commit();
  }
  range(): Range | undefined {
    if (this.minmax) return this.minmax.range();
    const h = this.hist.snapshot();
    return h ? this.pick(h) : undefined;
  }
  histogram(): TensorHistogram | undefined {
    return this.hist.snapshot();
  }
}

/** min/max reduced in the graph (ORT's MinMaxCalibrater): three scalars per tensor and batch. */
class MinMaxRangeObserver implements RangeObserver {
  readonly wholeTensors = false;
  readonly unseeded = false;
  constructor(private readonly m: MinMaxObserver) {}
  get nonFinite(): number {
    return this.m.nonFinite;
  }
  get seenFinite(): boolean {
    return this.m.range() !== undefined;
  }
  observe(values: Float32Array, stats: BatchStats): void {
    void values;
    this.m.observeStats(stats);
  }
  observeStats(stats: BatchStats): void {
    this.m.observeStats(stats);
  }
  seed(): void {}
  commit(): void {
    this.m.commit();
  }
  range(): Range | undefined {
    return this.m.range();
  }
  histogram(): undefined {
    return undefined;
  }
}

/**
 * "auto": the histogram collection, then the range of whichever method the calibrator's held-out measurement chose
 * for this tensor (mse until it has chosen). Its candidates are what each method would pick, minmax and entropy
 * widened to (-a, a) when symmetric as ranges() does for them.
 */
export class AutoRangeObserver extends HistogramRangeObserver {
  choice: AutoChoice | undefined;
  constructor(private readonly o: CalibrationOptions) {
    super(o.numBins ?? 2048, histogramPick("mse", o));
  }
  /** What each candidate method picks from the histogram as it is (kept until the next batch). */
  candidates(): Map<AutoCandidate, Range> {
    if (this.measured) return this.measured;
    const h = this.histogram();
    const out = new Map<AutoCandidate, Range>();
    if (!h) return out;
    for (const m of this.o.autoCandidates ?? AUTO_CANDIDATES) out.set(m, histogramPick(m, this.o)(h as Parameters<Pick>[0]));
    this.measured = out;
    return out;
  }
  private measured: Map<AutoCandidate, Range> | undefined;
  /** The chosen method's range on the histogram as it was measured (an entropy search costs ~0.1 s a tensor). */
  private chosen: Range | undefined;
  choose(choice: AutoChoice, range: Range): void {
    this.choice = choice;
    this.chosen = range;
    this.pick = histogramPick(choice.method, this.o);
  }
  override observe(values: Float32Array, stats: BatchStats): void {
    this.chosen = undefined;
    this.measured = undefined;
    super.observe(values, stats);
  }
  override range(): Range | undefined {
    return this.chosen ?? super.range();
  }
}

/** The range each histogram method picks from a histogram, with the calibration's options (minmax: the range seen;
 *  minmax and entropy widened to (-a, a) here only for auto, whose candidates must be the ranges used). */
export function histogramPick(method: "entropy" | "percentile" | "mse" | "minmax", o: CalibrationOptions): Pick {
  const widen = (r: Range): Range => {
    if (!o.symmetric || o.method !== "auto") return r;
    const a = Math.max(Math.abs(r.min), Math.abs(r.max));
    return { min: -a, max: a };
  };
  if (method === "minmax") return (h) => widen({ min: h.min, max: h.max });
  if (method === "entropy") return (h) => widen(entropyThreshold(h, o.numQuantizedBins ?? 128));
  if (method === "percentile") return (h) => percentileThreshold(h, o.percentile ?? 99.999, o.symmetric ?? false);
  return (h) => mseThreshold(h, { bits: o.bits ?? 8, symmetric: o.symmetric ?? false });
}

/** The observer of one tensor for the calibration's method. */
export function createObserver(o: CalibrationOptions): RangeObserver {
  const numBins = o.numBins ?? 2048;
  if (o.method === "minmax") {
    const m = new MinMaxObserver(o);
    return o.keepHistograms ? new HistogramRangeObserver(numBins, () => m.range()!, m) : new MinMaxRangeObserver(m);
  }
  if (o.method === "auto") return new AutoRangeObserver(o);
  return new HistogramRangeObserver(numBins, histogramPick(o.method, o));
}

/** Methods whose ranges ranges() widens to (-a, a) itself when symmetric (the others search symmetric ranges). */
export const widenedWhenSymmetric = (method: CalibrationOptions["method"]) => method === "minmax" || method === "entropy";
