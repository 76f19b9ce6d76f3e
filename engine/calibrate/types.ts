// The calibrator's options and what it returns (ranges, histograms): apart from the calibrator itself, so that its
// index can re-export both without an import cycle.

/** The calibration methods, in the order help texts and pickers list them. "auto" chooses one of the others per
 *  tensor by the error it causes at the tensor's consumers, then whole assignments at the model's outputs, on the first
 *  calibration rows (engine/calibrate/auto.ts, engine/quant/assignment-choice). */
export const CALIBRATION_METHODS = ["minmax", "entropy", "percentile", "mse", "auto"] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];
/** What QConfig.calibration.method defaults to. auto: mse's ranges unless another assignment measurably reads the
 *  outputs better; on the corpus and the fixtures at least mse's figures everywhere, +3.7 and +4.9 dB on two models
 *  (docs/calibration.md "auto: a gain on the rows, not in the pool"). mse alone is 2–4× faster to quantize. */
export const DEFAULT_CALIBRATION_METHOD: CalibrationMethod = "auto";

export interface CalibrationOptions {
  method: CalibrationMethod;
  /** percentile: share of values kept inside the range, in percent (default 99.999). */
  percentile?: number;
  /** Histogram methods: bins per tensor, a multiple of 4 (default 2048). */
  numBins?: number;
  /** entropy: bins of the quantized distribution (default 128, ORT's default; 256 for uint8-like targets). */
  numQuantizedBins?: number;
  /**
   * minmax: also keep histograms (for the histogram view). Costs what the histogram methods cost: the tensors are
   * fetched whole instead of reduced in the graph. Memory stays flat in the number of samples either way.
   */
  keepHistograms?: boolean;
  /**
   * minmax: ORT's moving_average: the per-batch min/max of one collect() call are averaged, and each later
   * collect() call moves the range by averagingConstant toward its own average.
   */
  movingAverage?: boolean;
  /** minmax with movingAverage: weight of each later collect() call (default 0.01). */
  averagingConstant?: number;
  /** Symmetric ranges (-a, a): percentile folds |x|, mse searches symmetric candidates, others widen at the end. */
  symmetric?: boolean;
  /** mse: bit width the range is optimized for (default 8). */
  bits?: number;
  /** Execution provider of the calibration session (default cpu; cuda falls back to cpu with a warning). */
  ep?: "cpu" | "cuda";
  /** Split larger batches along the first axis into runs of at most this many samples. */
  batchSize?: number;
  /**
   * Histogram methods: cap on the bytes of whole tensors one run fetches (default 16 MiB). A batch whose tensors
   * exceed it runs in parts along its first axis (when the model's batch axis is free), so peak memory follows the
   * cap rather than the batch size; the histograms come out the same (see Calibrator). Smaller batches (single-
   * sample files) are joined into runs of up to a quarter of the cap, after the first: far fewer runs. Infinity:
   * neither.
   */
  maxRunBytes?: number;
  /** Histogram methods: at most this many tensors are exposed per calibration session (default 256). */
  tensorsPerSession?: number;
  /** intra-op threads of the calibration session (default: onnxruntime's choice). */
  threads?: number;
  /**
   * auto: the candidate methods computed from each histogram (default all: AUTO_CANDIDATES). Given, no probe runs and
   * every tensor keeps mse's range: Calibrator.halves judging one method against mse needs only those two, and
   * entropy's search over every tensor is much of a half's time (blazeface-back S1 quantized in 39.0 s with every
   * candidate, 31.5 s with two).
   */
  autoCandidates?: readonly ("mse" | "entropy" | "percentile" | "minmax")[];
  /** auto: rows heldOutRows() gives for a choice at the model's outputs (default 16; 64 for a CTC yardstick). */
  outputRows?: number;
  /** Receives each warning (non-finite values, skipped tensors, CUDA fallback) as it happens. */
  onWarning?: (message: string) => void;
}

/** A chosen clipping range, in float. */
export interface TensorRange {
  min: number;
  max: number;
  /** NaN/±Inf values calibration saw and left out of the range (absent when none): an attention mask's -Inf, say.
   *  convert() keeps such tensors in float, since no quantized value can stand for them. */
  nonFinite?: number;
  /**
   * A tensor inside an If/Loop/Scan body that only some calibration runs reached (an If branch taken on 3 of 16
   * runs): its range comes from `runs` of the `of` runs of the model.
   */
  reached?: { runs: number; of: number };
}

/** A per-tensor histogram: numBins + 1 edges, symmetric around 0; min/max is the finite range actually seen. */
export interface TensorHistogram {
  edges: Float64Array | number[];
  counts: Float64Array;
  min: number;
  max: number;
}

/** What a progress call after the batches is about: one of calibrate()'s measurements at the outputs. */
export interface PhaseProgress {
  /** "measuring protected layers", … */
  phase: string;
  /** What done and total count ("nodes", "steps"). */
  unit: string;
  /** Seconds left in this phase, from the time its steps took so far. */
  etaSeconds?: number;
}

export interface CollectOptions {
  /**
   * Called after each batch with the batches done so far and the total when the data is an array; then, in
   * calibrate(), for each measurement at the model's outputs (16-bit activations, protected layers, weight type),
   * with `phase` saying which: these run the model again per step and take longer than the batches on large models.
   */
  onProgress?(done: number, total?: number, phase?: PhaseProgress): void;
  /** Stops between batches; collect() then rejects with the signal's reason. What was collected is kept. */
  signal?: AbortSignal;
}
