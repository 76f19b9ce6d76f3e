// Typed quantization configuration (no string maps: ORT's `extra_options` is what we avoid) and the summary a
// conversion reports. Every field is optional; `resolveConfig` fills the documented defaults and validates.
import type { OutputCheck } from "./output-check-text";
import type { NodeProto } from "onnx-buf";
import { CALIBRATION_METHODS, DEFAULT_CALIBRATION_METHOD, type CalibrationMethod } from "../calibrate/types";
import { signedWeightsSafe } from "./cpu";
import type { QType } from "./math";

export type QuantFormat = "qdq" | "qoperator";
export type WeightType = "int8" | "uint8";
/**
 * QConfig.weightType's values: a type, or "auto" (the default): on a target where two weight formats are exact (any, avx2, and
 * native on a CPU without VNNI) calibrate() measures the outputs with each, uint8 weights (U8U8) and int8 weights of
 * 7 bits (U8S7, onnxruntime's faster U8S8 kernels), and convert() writes U8S7 where it is not measurably worse
 * (engine/quant/weight-format). On vnni/arm, int8 (full range: exact and fast there).
 */
export type WeightTypeChoice = WeightType | "auto";
export const WEIGHT_TYPES: readonly WeightTypeChoice[] = ["int8", "uint8", "auto"];
/**
 * The CPU a quantized model is made for; it decides the default weight type, never the machine that quantizes.
 * "any" (default) and "avx2": uint8 weights (U8U8), exact on every CPU (x86 without VNNI saturates u8×s8 products).
 * "vnni" (x86 with AVX-512 VNNI, AVX-VNNI or AMX) and "arm": int8 weights (U8S8, onnxruntime's own default), exact
 * there and faster. "native": whichever of these the quantizing machine is.
 */
export type TargetCpu = "any" | "avx2" | "vnni" | "arm" | "native";
export const TARGET_CPUS: readonly TargetCpu[] = ["any", "avx2", "vnni", "arm", "native"];
export type { CalibrationMethod };
/** A node chosen by exact name, by a regular expression over its name, or by a predicate. */
export type NodeSelector = string | RegExp | ((node: NodeProto) => boolean);

export interface CalibrationConfig {
  /** Default: DEFAULT_CALIBRATION_METHOD (engine/calibrate/types). */
  method?: CalibrationMethod;
  /** percentile: the percentile of |x| kept (default 99.999). */
  percentile?: number;
  /** Histogram bins for entropy/percentile/mse (default 2048 as ORT). */
  numBins?: number;
  /** entropy: quantized bins (default 128 as ORT). */
  numQuantizedBins?: number;
  /** minmax: exponential moving average of per-batch ranges (default false). */
  movingAverage?: boolean;
  /** minmax moving average weight of a new batch (default 0.01 as ORT). */
  averagingConstant?: number;
  /**
   * Give at most this share (0–1) of the activations 16 bits: the ones whose 8-bit grid costs the outputs most,
   * measured on the first calibration rows (engine/calibrate/activation-precision). Default: none, unless the outputs
   * with every activation at 8 bits read below 6 dB (ResolvedQConfig.wideAuto); 0 turns that off too. The nodes
   * around them run on float kernels; how they are written: wideForm.
   */
  wideActivations?: number;
  /**
   * How the widened activations (wideActivations) are written. "clip" (default): each as a Clip to its 16-bit range,
   * float on both sides: onnxruntime has no 16-bit kernels on CPU, so the nodes around a 16-bit Q/DQ pair run in
   * float anyway, and the Clip computes what the pair does to within one 16-bit step, in one pass instead of two
   * (fused into a float Conv before it), in a standard file at the model's opset. "qdq": 16-bit
   * QuantizeLinear/DequantizeLinear, for runtimes with 16-bit kernels (opset 21, or com.microsoft's below).
   */
  wideForm?: "clip" | "qdq";
  /**
   * What method "auto" compares at the model's outputs (asking for "ctc" makes auto the default method) when it chooses among whole assignments (its second stage):
   * "sqnr" (default), the worst output's SQNR on the first 16 calibration rows, pooled and per row (engine/quant/assignment-choice); "ctc", for CTC sequence
   * models ([batch, time, classes] outputs, class 0 the blank): the CTC loss of the float model's decoded argmax
   * sequences under the candidate's outputs, on up to 64 rows. On PP-OCR recognisers SQNR and per-step agreement
   * prefer assignments that read fewer lines, and whole rows decoded alike are too coarse on 16 calibration lines
   * (docs/calibration.md "A yardstick for CTC models").
   */
  yardstick?: "sqnr" | "ctc";
  /**
   * The graph outputs that the measurements at the outputs compare (auto's second stage, 16-bit activations,
   * protected layers, the weight type). Default: every output. A model that also exports auxiliary outputs (side
   * masks and feature maps kept for training, as ISNet's 1024×1024 background remover does) is otherwise judged by
   * its worst one: name the outputs the application reads. The written model keeps every output.
   */
  outputs?: string[];
}

/** Per-tensor override, keyed by tensor name in `QConfig.overrides`. */
export interface TensorOverride {
  /** Quantized type of this tensor (activations only). */
  type?: QType;
  /** Use this range instead of the calibrated one. */
  range?: { min: number; max: number };
  /** Fix the scale and zero point (wins over range). */
  scale?: number;
  zeroPoint?: number;
  symmetric?: boolean;
  /** Leave this tensor in float. */
  keepFloat?: boolean;
}

export interface QConfig {
  /** "qdq" (default: portable, fused by onnxruntime) or "qoperator" (QLinear* ops, onnxruntime only). */
  format?: QuantFormat;
  /** Activation type. Default "uint8" (U8S8): see docs/quantization.md for the measurement behind it. */
  activationType?: QType;
  /** The CPU the model is for (default "any"): picks the default weight type, see TargetCpu. */
  targetCpu?: TargetCpu;
  /**
   * Weight type. Default "auto" (see WeightTypeChoice): for any/avx2 uint8 or 7-bit int8, measured per model (both
   * exact everywhere: on x86 without VNNI onnxruntime's full-range u8×s8 kernels saturate, see cpu.ts), int8 for
   * vnni/arm. Giving weightType or reduceRange fixes the weights: then uint8 for any/avx2.
   */
  weightType?: WeightTypeChoice;
  /** Per-channel weights for Conv/ConvTranspose/MatMul/Gemm. Default true. */
  perChannel?: boolean;
  /** Symmetric activation ranges. Default false (asymmetric keeps ReLU outputs' full resolution). */
  activationSymmetric?: boolean;
  /** Symmetric weight ranges. Default true (zero point 0: what int8 GEMM kernels want). */
  weightSymmetric?: boolean;
  /**
   * 7-bit weights (activations keep 8 bits, as in onnxruntime). With weightType "int8" on x86 without VNNI this
   * avoids the u8×s8 saturation and runs onnxruntime's faster U8S8 kernels (bench/int8-speed: ~1.5× FP32 vs
   * ~1.2× for the default U8U8 there) at some accuracy cost. Default false.
   */
  reduceRange?: boolean;
  calibration?: CalibrationConfig;
  /** Op types to quantize. Default: every op type with a quantizer in the registry. */
  opTypes?: string[];
  /** Only these nodes (default: all). */
  include?: NodeSelector[];
  /** Never these nodes (default: none). */
  exclude?: NodeSelector[];
  /** Per-tensor overrides by tensor name. */
  overrides?: Record<string, TensorOverride>;
  /**
   * Keep a final Softmax or Sigmoid that produces a graph output (or a body's) in float (default true): its output
   * feeds nothing quantized, so quantizing it only costs accuracy on probabilities, and its input, the logits, is
   * then left float too: a calibrated 8-bit range clips logits the calibration never saw, and a clipped logit is a
   * changed decision (oww-hey-jarvis's verifier, calibrated on its few firing samples, read every rejection as 0.5).
   */
  keepOutputSoftmaxFloat?: boolean;
  /**
   * A Conv or ConvTranspose whose output is a graph output, directly or through data movement only (Reshape,
   * Transpose, ...), writes it in float (default true): its inputs and weight stay int8, onnxruntime runs it in
   * float with its weight decoded at load, and the output is not rounded to one 8-bit range. A detector's anchor
   * logits span the background's −1368 to a face's +3.5 (blazeface-back): one 8-bit step there is 5.4, wider than
   * the scores a decision reads, and the static file kept 49.6 % of FP32's face anchors (86.5 % with the output float).
   */
  keepFinalConvFloat?: boolean;
  /**
   * Weight rounding: "nearest", "learned", "adaround" or "auto"; the default: static INT8 "auto" where the quantized layers do at most
   * ROUNDING_AUTO_MACS multiply-adds a calibration row, else "nearest"; the low-bit modes "auto" with calibration data. After convert(), each Conv/Gemm/MatMul weight is
   * rounded again against its layer's outputs on the calibration data and its bias corrected, by GPTQ's error
   * feedback (engine/recovery/rounding) or AdaRound's gradient fit (engine/recovery/adaround; static INT8 only),
   * docs/recovery.md; fitted on the first ROUNDING_ROWS calibration rows. "auto" (static INT8): learned rounding written
   * only where calibration rows it was not fitted on measure it better at the outputs. quantizeStatic (the library's,
   * the kernel's, the CLI's: engine/recovery/rounding-choice) applies them and the summary's `rounding` says what it did;
   * convert() does not (in code: refineRounding or adaRound on its model). The low-bit modes take "learned" (their own
   * fits, engine/lowbit: FP4's learned codes, int4's GPTQ) and "auto", their default with calibration data (int4's
   * unless an algorithm is asked; lowBitModelCalibrated); dynamic INT8 and the accuracy-target search refuse all but
   * "nearest".
   */
  rounding?: "nearest" | "learned" | "adaround" | "auto";
  /**
   * Static INT8: keep float the weighted nodes whose quantization alone makes a quarter or more of the whole
   * quantized model's output error, measured during calibrate() on its first rows (default true; engine/quant/protect,
   * docs/calibration.md "Protected layers"). false quantizes every node the config selects.
   */
  protect?: boolean;
}

/**
 * With calibration.wideActivations unset, up to this share of the activations is widened, and only where the outputs
 * with every activation at 8 bits (weights float, WIDE_ROWS rows) read between these SQNRs (dB). The held-out PP-OCRv3
 * Chinese recogniser read 4.5 dB there and decoded 15.6 % of 512 lines as FP32 does under the 8-bit default, 96.1 %
 * with this share widened. The corpus models read blazeface-back 8.6 dB, the recognisers 10.5–14.6, the PP-OCR
 * detectors 12.9–13.3, oww-melspectrogram 5.4, the M-LSD models below 0 (docs/activation-precision.md). 10 dB since
 * the forty-sixth session (6 before): on 64 held-out crops of real photographs blazeface-back's static file kept
 * 86.5 % of FP32's face anchors at 8 bits (precision 81.3 %), 95.6 / 95.2 % with 20 % widened, while the detectors
 * at 12.9–13.3 dB keep 98 % of FP32's text pixels at 8 bits. A model with sequence outputs ([batch, time, classes] behind a
 * Softmax, engine/quant/sequence-check) is widened whatever it reads: on 4096 held-out lines the PP-OCR recognisers
 * read −0.66 / −0.81 pp under FP32 with 8 bits, −0.27 / −0.07 pp with this share widened (written as Clips, wideForm),
 * at 1.13 / 1.17× FP32's speed instead of 1.2× (docs/calibration.md "Sequence models", "Widened activations as a
 * Clip"). Read by calibrate() (engine/quant/index).
 */
export const WIDE_AUTO_SHARE = 0.2;
export const WIDE_AUTO_ABOVE_DB = 0;
export const WIDE_AUTO_BELOW_DB = 10;

export interface ResolvedQConfig {
  format: QuantFormat;
  targetCpu: TargetCpu;
  activationType: QType;
  /** The weights written unless calibration measures otherwise (see measureWeights). */
  weightType: WeightType;
  /**
   * weightType "auto" on a target with two exact formats: calibrate() measures uint8 weights against 7-bit int8
   * ones at the outputs and convert() writes the chosen pair; until then, and in dynamic mode, weightType and
   * reduceRange above (uint8, full range) hold.
   */
  measureWeights: boolean;
  /**
   * calibration.wideActivations left unset: calibrate() measures the outputs with every activation at 8 bits and,
   * only where they read between WIDE_AUTO_ABOVE_DB and WIDE_AUTO_BELOW_DB, or where the model has sequence
   * outputs, widens up to WIDE_AUTO_SHARE of them as wideActivations would.
   */
  wideAuto: boolean;
  perChannel: boolean;
  activationSymmetric: boolean;
  weightSymmetric: boolean;
  reduceRange: boolean;
  calibration: Required<CalibrationConfig>;
  opTypes: string[] | undefined;
  include: NodeSelector[] | undefined;
  exclude: NodeSelector[];
  overrides: Record<string, TensorOverride>;
  keepOutputSoftmaxFloat: boolean;
  keepFinalConvFloat: boolean;
  /** QConfig.protect. */
  protect: boolean;
  /** QConfig.rounding: quantizeStatic applies "learned" and "adaround" after convert(), and "auto" measures learned
   *  rounding against nearest and writes the better (engine/recovery/rounding-choice). */
  rounding: NonNullable<QConfig["rounding"]>;
  /** QConfig.rounding not given: static INT8 then takes "auto" where its fits cost little (engine/quant/index
   *  ROUNDING_AUTO_MACS), `rounding` ("nearest") elsewhere. */
  roundingByDefault: boolean;
  /** Weights written in another format than weightType/reduceRange, by initializer name (weightType auto's per-Conv choice, engine/quant/weight-format). */
  weightsByTensor?: ReadonlyMap<string, { type: WeightType; reduceRange: boolean }>;
  /**
   * Overrides the engine added itself (calibration.wideActivations' 16-bit tensors), not a user's or the search's:
   * a small Conv they leave running in float may keep its float weight (engine/quant/qdq planSmallestFloat).
   */
  engineOverrides?: ReadonlySet<string>;
}

const QTYPES: readonly QType[] = ["int8", "uint8", "int16", "uint16"];
/**
 * A difference in worst-output SQNR, `got` − `base` (dB), both measured against the same reference on the same rows,
 * read two ways, each with a lower bound:
 * - per row: each row's own worst-output SQNR difference, their mean and mean − 2 standard errors. Every row counts
 *   once, so a gain carried by a few rows of large error does not pass (blazeface-front's percentile ranges: pooled
 *   +0.9 dB on 16 calibration rows, −1.0 dB on 64 held-out samples; per row +0.05, bound −0.92 dB).
 * - pooled: the difference of the pooled worst-output SQNRs (the figure summaries report), and it − 2 jackknife
 *   standard errors (each row left out in turn), which a gain carried by one row does not clear either.
 * Where an output is one number a row (a wake-word score), a row's SQNR is that number's luck of rounding: rows'
 * differences swing by ±60 dB and the per-row bound never clears, while the pooled one measures (oww-hey-jarvis,
 * learned rounding cross-fitted on 16 rows: per row +4.12, bound −13.54 dB; pooled +6.51, bound +5.06 dB; 64 held-out
 * samples 33.3 → 48.0 dB). On outputs of many values the two bounds agree within about 0.4 dB. `bound` is the larger
 * of the two: a rule takes a gain that clears its threshold either way (docs/calibration.md "Two bounds");
 * engine/quant/weight-format's rowDifference measures it.
 */
export interface Difference {
  mean: number;
  lower: number;
  pooled: number;
  pooledLower: number;
  /** max(lower, pooledLower). */
  bound: number;
  rows: number;
}

/** QConfig.rounding other than "nearest", or static INT8's default: what was written and why (engine/recovery/rounding-choice). */
export interface RoundingChoice {
  /** QConfig.rounding as asked; "default" where it was not given and static INT8's default kept nearest rounding
   *  (where the default became "auto", "auto"; `why` says it was the default). */
  asked: "learned" | "adaround" | "auto" | "default";
  /** The codes written: "learned" (GPTQ's error feedback), "adaround", or convert()'s "nearest". */
  method: "nearest" | "learned" | "adaround";
  why: string;
  /** Worst-output SQNR difference learned − nearest on the judged rows (dB), per row and pooled with their lower
   *  bounds; absent where not measured. */
  difference?: Difference;
  /** The fit's layers (absent where it did not run). */
  layers?: number;
  /** Time the choice took, fits and measurement (s). */
  seconds: number;
}

export const ROUNDINGS: readonly NonNullable<QConfig["rounding"]>[] = ["nearest", "learned", "adaround", "auto"];

/** The weight type a target CPU runs exactly and fastest (the default when QConfig.weightType is not given). */
export function defaultWeightType(target: TargetCpu): WeightType {
  if (target === "native") return signedWeightsSafe() ? "int8" : "uint8";
  return target === "vnni" || target === "arm" ? "int8" : "uint8";
}

/** Whether weightType "auto" measures on `target`: where int8 weights of full range are not exact (see cpu.ts). */
function measuresWeights(target: TargetCpu): boolean {
  return defaultWeightType(target) === "uint8";
}

export function resolveConfig(c: QConfig = {}): ResolvedQConfig {
  const targetCpu = c.targetCpu ?? "any";
  if (!TARGET_CPUS.includes(targetCpu)) throw new Error(`QConfig.targetCpu: "${targetCpu}" is not one of ${TARGET_CPUS.join(", ")}`);
  // The default is auto: a user's weightType or reduceRange, either one, fixes the weights instead.
  const auto = c.weightType === "auto" || (c.weightType === undefined && c.reduceRange === undefined);
  if (c.weightType === "auto" && c.reduceRange !== undefined) {
    throw new Error(`QConfig.reduceRange: weightType "auto" chooses the weights' width itself; drop reduceRange, or give weightType "int8" or "uint8"`);
  }
  const r: ResolvedQConfig = {
    format: c.format ?? "qdq",
    targetCpu,
    activationType: c.activationType ?? "uint8",
    weightType: c.weightType === undefined || c.weightType === "auto" ? defaultWeightType(targetCpu) : c.weightType,
    measureWeights: auto && measuresWeights(targetCpu),
    wideAuto: c.calibration?.wideActivations === undefined,
    perChannel: c.perChannel ?? true,
    activationSymmetric: c.activationSymmetric ?? false,
    weightSymmetric: c.weightSymmetric ?? true,
    reduceRange: c.reduceRange ?? false,
    calibration: {
      // The ctc yardstick is a way for auto to choose: asking for it asks for auto.
      method: c.calibration?.method ?? (c.calibration?.yardstick === "ctc" ? "auto" : DEFAULT_CALIBRATION_METHOD),
      percentile: c.calibration?.percentile ?? 99.999,
      numBins: c.calibration?.numBins ?? 2048,
      numQuantizedBins: c.calibration?.numQuantizedBins ?? 128,
      movingAverage: c.calibration?.movingAverage ?? false,
      averagingConstant: c.calibration?.averagingConstant ?? 0.01,
      wideActivations: c.calibration?.wideActivations ?? 0,
      wideForm: c.calibration?.wideForm ?? "clip",
      yardstick: c.calibration?.yardstick ?? "sqnr",
      outputs: c.calibration?.outputs ?? [],
    },
    opTypes: c.opTypes,
    include: c.include,
    exclude: c.exclude ?? [],
    overrides: c.overrides ?? {},
    keepOutputSoftmaxFloat: c.keepOutputSoftmaxFloat ?? true,
    keepFinalConvFloat: c.keepFinalConvFloat ?? true,
    protect: c.protect ?? true,
    rounding: c.rounding ?? "nearest",
    roundingByDefault: c.rounding === undefined,
  };
  if (c.rounding !== undefined && !ROUNDINGS.includes(c.rounding)) throw new Error(`QConfig.rounding: "${c.rounding}" is not one of ${ROUNDINGS.join(", ")}`);
  if (r.format !== "qdq" && r.format !== "qoperator") throw new Error(`QConfig.format: "${r.format}" is not qdq or qoperator`);
  if (!QTYPES.includes(r.activationType)) throw new Error(`QConfig.activationType: "${r.activationType}" is not one of ${QTYPES.join(", ")}`);
  const wide = r.calibration.wideActivations;
  if (!(wide >= 0 && wide <= 1)) throw new Error(`QConfig.calibration.wideActivations: ${wide} is not a share between 0 and 1`);
  if (r.calibration.wideForm !== "clip" && r.calibration.wideForm !== "qdq") throw new Error(`QConfig.calibration.wideForm: "${r.calibration.wideForm}" is not clip or qdq`);
  if (r.weightType !== "int8" && r.weightType !== "uint8") throw new Error(`QConfig.weightType: "${r.weightType}" is not int8, uint8 or auto`);
  if (!(CALIBRATION_METHODS as readonly string[]).includes(r.calibration.method))
    throw new Error(`QConfig.calibration.method: "${r.calibration.method}" is not one of ${CALIBRATION_METHODS.join(", ")}`);
  if (r.calibration.yardstick !== "sqnr" && r.calibration.yardstick !== "ctc") throw new Error(`QConfig.calibration.yardstick: "${r.calibration.yardstick}" is not "sqnr" or "ctc"`);
  if (r.calibration.yardstick === "ctc" && r.calibration.method !== "auto")
    throw new Error(`QConfig.calibration.yardstick "ctc" is how method "auto" chooses, but the method is "${r.calibration.method}": leave the method out or set it to "auto"`);
  const p = r.calibration.percentile;
  if (!(p > 0 && p <= 100)) throw new Error(`QConfig.calibration.percentile: ${p} must be in (0, 100]`);
  for (const [name, o] of Object.entries(r.overrides)) {
    if (o.type && !QTYPES.includes(o.type)) throw new Error(`QConfig.overrides["${name}"].type: "${o.type}" is not a quantized type`);
    if (o.range && !(o.range.min <= o.range.max)) throw new Error(`QConfig.overrides["${name}"].range: min must be <= max`);
    if (o.scale !== undefined && !(o.scale > 0 && Number.isFinite(o.scale)))
      throw new Error(`QConfig.overrides["${name}"].scale: ${o.scale} must be a positive finite number`);
  }
  return r;
}

export function matchesSelector(node: NodeProto, sel: NodeSelector): boolean {
  if (typeof sel === "string") return node.name === sel;
  if (sel instanceof RegExp) return sel.test(node.name);
  return sel(node);
}

/** One node the conversion quantized, with the type each of its quantized inputs got. */
export interface QuantizedNodeInfo {
  name: string;
  opType: string;
  tensors: { name: string; type: QType | "int32"; perChannel: boolean }[];
}

export interface FloatNodeInfo {
  name: string;
  opType: string;
  reason: string;
}

export interface QuantizationSummary {
  format: QuantFormat;
  mode: "static" | "dynamic";
  quantized: QuantizedNodeInfo[];
  float: FloatNodeInfo[];
  /** Op types that have no quantizer, with how many nodes of each stayed float. */
  unsupportedOps: Record<string, number>;
  /** Biases whose weight scale was widened so the int32 bias does not overflow. */
  biasOverflow: string[];
  /** Activations folded into their producer (Relu/Clip removed because the Q clamps the same way). */
  foldedActivations: string[];
  opset: { before: number; after: number };
  /**
   * Weight type written and the CPU it was chosen for (static and dynamic INT8); reduceRange when the weights have
   * 7 bits; with weightType "auto", `why`: the measurement that chose them (or why none ran).
   */
  weights?: { type: WeightType; targetCpu: TargetCpu; reduceRange?: true; why?: string };
  /** calibration.method "auto": the method chosen per activation and why (engine/calibrate/auto). */
  calibrationChoices?: Record<string, { method: string; why: string }>;
  /** calibration.method "auto": the assignment written, chosen at the model's outputs, and the figure behind it. */
  calibrationAuto?: { assignment: string; why: string };
  /** calibration.wideActivations: the activations given 16 bits, and the measurement that chose them. */
  wideActivations?: { tensors: string[]; why: string };
  /** QConfig.protect: the nodes kept float by the measurement, and the measurement (also when it kept none). */
  protectedLayers?: { nodes: string[]; why: string };
  /** QConfig.rounding other than "nearest": the weight rounding written, and the fit or measurement behind it (engine/recovery/rounding-choice). */
  rounding?: RoundingChoice;
  /**
   * A sequence model (a softmax output of [batch, time, classes]): on how many of the kept calibration rows the
   * quantized model decodes what the float model decodes (engine/quant/sequence-check). A note says so too.
   */
  sequences?: { outputs: string[]; rows: number; same: number };
  /**
   * If/Loop/Scan bodies quantized from calibration whose activations only some calibration runs reached (a branch
   * the data seldom took): their ranges come from `runs` of the `of` runs (the fewest any of them was in; an
   * activation a nested body reads from its enclosing body counts that body's runs). A warning says so too.
   */
  bodyCoverage?: { body: string; runs: number; of: number }[]; // body: `the then_branch of If node "if" (graph "then")`
  /**
   * Static files written with calibration data (quantizeStatic): each float output's SQNR against the float model on
   * the first calibration rows, worst first (engine/quant/output-check), every output, judged or not.
   */
  outputCheck?: OutputCheck;
  warnings: string[];
}

export function emptySummary(config: ResolvedQConfig, mode: "static" | "dynamic", opset: number, format = config.format): QuantizationSummary {
  return {
    format,
    mode,
    weights: {
      type: config.weightType,
      targetCpu: config.targetCpu,
      ...(config.reduceRange ? { reduceRange: true as const } : {}),
      // Dynamic mode has no calibration data: weightType auto writes the target's default there, unmeasured.
      ...(config.measureWeights && mode === "static" ? { why: "weightType auto: not measured (calibration observed nothing in the main graph), the target's default" } : {}),
    },
    quantized: [],
    float: [],
    unsupportedOps: {},
    biasOverflow: [],
    foldedActivations: [],
    opset: { before: opset, after: opset },
    warnings: [],
  };
}
