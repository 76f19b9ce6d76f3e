// QConfig's schema: one row per quantization option, with its command-line flag, type, allowed values, default
// (read from the engine where it keeps one), help line, the modes it applies to and where it sits in a
// QuantizeJob — the typed object a `ptq quantize --config FILE` holds (a QConfig plus mode, data, low-bit and target
// fields). The CLI's flags and help, the --config reader, the wizard and the notebook template all read this table,
// so a default or an allowed value is written once. Pure: no file system, no CLI, no VS Code.
import path from "node:path";
import { CALIBRATION_METHODS } from "../calibrate/types";
import type { ExecutionProvider } from "../runtime/session";
import type { ReaderOptions } from "../data/readers";
import type { QType } from "./math";
import { defaultWeightType, resolveConfig, TARGET_CPUS, WEIGHT_TYPES, WIDE_AUTO_ABOVE_DB, WIDE_AUTO_BELOW_DB, WIDE_AUTO_SHARE, type NodeSelector, type QConfig, type ResolvedQConfig, type TargetCpu } from "./types";

export const QUANTIZE_MODES = ["static", "dynamic", "int4", "fp4"] as const;
export type QuantizeMode = (typeof QUANTIZE_MODES)[number];
/** Low-bit value lists (engine/lowbit's Int4Options/Fp4Options take these; that layer sits above this one). */
export const INT4_ALGORITHMS = ["rtn", "hqq", "gptq"] as const;
export const INT4_FORMATS = ["matmulnbits", "qdq"] as const;
export const FP4_FORMATS = ["mxfp4", "nvfp4"] as const;
export const FP4_EXPORTS = ["runnable", "native", "fake"] as const;
/**
 * The low-bit pass's defaults as help and the wizard state them. engine/lowbit sits above this layer and keeps its
 * own `??` defaults today; it may read these instead (test/unit/cli/quantize-options checks that they agree, GPTQ's
 * damping aside).
 */
export const LOWBIT_DEFAULTS = {
  blockSize: 32, algorithm: "rtn", damping: 0.01, bits: 4, format: "matmulnbits", accuracyLevel: 0, fp4Format: "nvfp4", export: "runnable",
  protect: 20, protectMaxSize: 0.35,
} as const satisfies Required<Omit<LowBitJob, "gptq" | "symmetric" | "includeGather">> & { damping: number };
/** The mixed-precision search's default floor on the share of weights that stay int8 (its minInt8WeightShare; 0
 *  lifts it): without one, a search on a real recogniser "met" its target with 184 of 190 nodes float. */
export const MIN_INT8_WEIGHT_SHARE = 0.8;
/** `--batch-size`'s default: calibration arrays are split into batches of this many samples. */
export const DEFAULT_BATCH_SIZE = 32;
/** The mixed-precision search's remedies (engine/analysis/sensitivity's Remedy, plus "auto"). */
export const REMEDIES = ["auto", "int16", "float"] as const;

/** A node in a config file: its exact name, or `{ "regex": "…" }` matching names (JSON has no RegExp). */
export type NodeSpec = string | { regex: string };

/** QConfig as JSON holds it: node selectors as names or `{ regex }`. */
export type JsonQConfig = Omit<QConfig, "include" | "exclude"> & { include?: NodeSpec[]; exclude?: NodeSpec[] };

export interface LowBitJob {
  bits?: 2 | 4 | 8;
  blockSize?: number;
  symmetric?: boolean;
  algorithm?: (typeof INT4_ALGORITHMS)[number];
  gptq?: { damping?: number; actOrder?: boolean };
  format?: (typeof INT4_FORMATS)[number];
  includeGather?: boolean;
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
  fp4Format?: (typeof FP4_FORMATS)[number];
  export?: (typeof FP4_EXPORTS)[number];
  /** With calibration data: the worst output SQNR (dB) to keep; the layers that cost it most get int8 weights or stay
   *  float ... */
  protect?: number;
  /** ... while the model stays within this share of the float model's size (its file). */
  protectMaxSize?: number;
}

export interface TargetJob {
  /** Output SQNR (dB) to reach, on the calibration data. */
  sqnr?: number;
  /** Argmax agreement (%) with the float model to reach, per sample, on the calibration data. */
  agreement?: number;
  /** Top-1 drop (percentage points) not to exceed, on `eval`'s labelled data. */
  drop?: number;
  eval?: string;
  remedy?: (typeof REMEDIES)[number];
  minInt8WeightShare?: number;
  tradeoff?: boolean;
}

/** Everything `ptq quantize` does to one model, as a `--config` file holds it (the model and OUT are flags). */
export interface QuantizeJob extends JsonQConfig {
  mode?: QuantizeMode;
  /** Calibration data (static INT8, GPTQ): a folder of .npy, an .npz, test_data_set_* folders or images. */
  calib?: string;
  batchSize?: number;
  ep?: ExecutionProvider;
  /** onnxruntime's 'basic' pre-optimization (static and dynamic). */
  optimize?: boolean;
  lowBit?: LowBitJob;
  target?: TargetJob;
  /** How a folder of images (calib) becomes the input: the training pipeline's normalization. */
  images?: ImageJob;
}

/** engine/data's ImageNormalization as a job holds it (CLI: --image-*). */
export interface ImageJob {
  scale?: number;
  mean?: number[];
  std?: number[];
  layout?: "NCHW" | "NHWC";
  /** [height, width] for an input whose H and W are symbolic. */
  size?: number[];
}

/** "a.b.c" paths of a type's fields, objects included (a Record's keys are not expanded). */
type Paths<T, P extends string = ""> = {
  [K in keyof T & string]-?: NonNullable<T[K]> extends readonly unknown[] | string | number | boolean
    ? `${P}${K}`
    : string extends keyof NonNullable<T[K]>
      ? `${P}${K}`
      : `${P}${K}` | Paths<NonNullable<T[K]>, `${P}${K}.`>;
}[keyof T & string];
export type JobKey = Paths<QuantizeJob>;

export type OptionKind = "enum" | "int" | "number" | "numbers" | "boolean" | "string" | "path" | "list" | "nodes" | "node" | "object";
export type OptionSection = "quantize" | "target" | "lowbit" | "config";

export interface QuantOption {
  /** Where the value sits in a QuantizeJob and in a --config file. */
  key: JobKey;
  /** The command-line flag; config-only options have none. */
  flag?: `--${string}`;
  /** The value's name in help ("M", "PATH"); none for a flag without a value. */
  arg?: string;
  kind: OptionKind;
  /** enum: the allowed values (numbers where the job holds numbers). */
  values?: readonly (string | number)[];
  /** A flag without a value: what it stores (default true). */
  sets?: boolean;
  /** numbers: how many values (any count when absent). */
  count?: number;
  /** int/number/numbers (each value): the accepted range, and how messages say it ("a positive integer"). */
  accepts?: { test(n: number): boolean; says: string };
  /** The flag's text when it is not the value itself (--target "drop<=PP"): the value, or undefined if malformed. */
  fromText?(text: string): number | undefined;
  /** Setting this key from the command line unsets these (--target-sqnr, --target and --target-agreement are one
   *  choice). */
  replaces?: readonly JobKey[];
  /** A repeatable flag appends to the list (nodes, node). */
  repeat?: boolean;
  /** The default as help states it, read where the engine keeps it; undefined: none to state. */
  default?(): string | number | boolean | undefined;
  help: string;
  modes: readonly QuantizeMode[];
  section: OptionSection;
}

const INT8: readonly QuantizeMode[] = ["static", "dynamic"];
const ALL: readonly QuantizeMode[] = QUANTIZE_MODES;
/** The resolved QConfig of an empty config: the engine's own defaults, read when help or the wizard asks. */
export const engineDefaults = (): ResolvedQConfig => resolveConfig({});
const engine = engineDefaults;
const between = (lo: number, hi: number, says: string) => ({ test: (n: number) => n > lo && n < hi, says });
const share = { test: (n: number) => n >= 0 && n <= 1, says: "a share between 0 and 1, e.g. 0.9" };
const positiveInt = { test: (n: number) => Number.isInteger(n) && n >= 1, says: "a positive integer" };

/** The table. Its order is help's order within each section. */
export const QUANT_OPTIONS: readonly QuantOption[] = [
  { key: "mode", flag: "--mode", arg: "M", kind: "enum", values: QUANTIZE_MODES, default: () => "static", modes: ALL, section: "quantize",
    help: "static, dynamic, int4 or fp4 (weight-only low bits, see below)" },
  { key: "calib", flag: "--calib", arg: "PATH", kind: "path", modes: ALL, section: "quantize",
    help: "calibration data: a folder of .npy files, an .npz file or folder, ONNX test_data_set_* folders, or images (static; dynamic: to measure protected layers; GPTQ)" },
  { key: "batchSize", flag: "--batch-size", arg: "N", kind: "int", accepts: positiveInt, default: () => DEFAULT_BATCH_SIZE, modes: ALL, section: "quantize",
    help: "split calibration arrays into batches of N samples" },
  { key: "calibration.method", flag: "--method", arg: "M", kind: "enum", values: CALIBRATION_METHODS, default: () => engine().calibration.method, modes: INT8, section: "quantize",
    help: `calibration: ${CALIBRATION_METHODS.join(", ")}` },
  { key: "calibration.percentile", flag: "--percentile", arg: "P", kind: "number", accepts: { test: (p) => p > 0 && p <= 100, says: "a number in (0, 100]" },
    default: () => engine().calibration.percentile, modes: INT8, section: "quantize", help: "for --method percentile" },
  { key: "calibration.yardstick", flag: "--yardstick", arg: "Y", kind: "enum", values: ["sqnr", "ctc"], default: () => engine().calibration.yardstick, modes: ["static"], section: "quantize",
    help: "what --method auto compares at the outputs: sqnr, or ctc for CTC recognisers ([batch, time, classes], blank 0): the CTC loss of what FP32 reads, on up to 64 calibration rows (docs/calibration.md)" },
  { key: "calibration.outputs", flag: "--judge-outputs", arg: "NAMES", kind: "list", default: () => "every output", modes: INT8, section: "quantize",
    help: "comma-separated graph outputs the measurements at the outputs compare (auto, 16-bit activations, protected layers, weight type; a classifier's final Softmax output on the logits it reads): name the ones the application reads when the model also exports auxiliary outputs (side masks, feature maps), or those decide; the file keeps every output" },
  { key: "calibration.wideActivations", flag: "--wide-activations", arg: "SHARE", kind: "number", accepts: { test: (x) => x >= 0 && x <= 1, says: "a share from 0 to 1" },
    default: () => `unset: up to ${WIDE_AUTO_SHARE}, only where the outputs with 8-bit activations read between ${WIDE_AUTO_ABOVE_DB} and ${WIDE_AUTO_BELOW_DB} dB or are sequences (a recogniser's [batch, time, classes])`, modes: ["static"], section: "quantize",
    help: "give at most this share of the activations 16 bits: those whose 8-bit grid costs the outputs most, measured on the first calibration rows (0.2: the PP-OCR recognisers read 0.34 / 0.05 pp fewer of 4096 lines than FP32 instead of 0.66 / 0.81, at 1.13× / 1.17× FP32's speed instead of 1.2×; 0: never, not even automatically; docs/calibration.md \"Sequence models\")" },
  { key: "calibration.wideForm", flag: "--wide-form", arg: "F", kind: "enum", values: ["clip", "qdq"], default: () => engine().calibration.wideForm, modes: ["static"], section: "quantize",
    help: "how widened activations are written: clip (a Clip to their 16-bit range, float around it: onnxruntime has no 16-bit kernels on CPU; the same outputs within a 16-bit step, faster, standard at the model's opset) or qdq (16-bit Q/DQ, for runtimes with 16-bit kernels; opset 21)" },
  { key: "perChannel", flag: "--per-tensor", kind: "boolean", sets: false, default: () => (engine().perChannel ? "per-channel for Conv/MatMul/Gemm" : "per-tensor"), modes: INT8, section: "quantize",
    help: "per-tensor weights" },
  { key: "format", flag: "--format", arg: "F", kind: "enum", values: ["qdq", "qoperator"], default: () => engine().format, modes: INT8, section: "quantize",
    help: "qdq (portable) or qoperator (QLinear* ops, onnxruntime only)" },
  { key: "activationType", flag: "--activation-type", arg: "T", kind: "enum", values: ["uint8", "int8", "uint16", "int16"] satisfies QType[], default: () => engine().activationType, modes: INT8, section: "quantize",
    help: "activation type: uint8, int8, uint16, int16" },
  { key: "targetCpu", flag: "--target-cpu", arg: "C", kind: "enum", values: TARGET_CPUS, default: () => engine().targetCpu, modes: INT8, section: "quantize",
    help: "the CPU the model is for: any, avx2, vnni, arm, native (this machine's); decides the default weight type, never the machine that quantizes" },
  { key: "weightType", flag: "--weight-type", arg: "T", kind: "enum", values: WEIGHT_TYPES, modes: INT8, section: "quantize",
    default: () => byWeightType(),
    help: "int8, uint8 or auto: 7-bit int8 where the outputs measure no worse, else uint8 (static; docs/int8-speed.md)" },
  { key: "reduceRange", flag: "--reduce-range", kind: "boolean", default: () => engine().reduceRange, modes: INT8, section: "quantize",
    help: "7-bit weights for every model: with --weight-type int8 exact on every CPU and onnxruntime's fast U8S8 kernels (the default auto does this per model where it measures no worse; docs/int8-speed.md)" },
  { key: "exclude", flag: "--exclude", arg: "NODES", kind: "nodes", repeat: true, modes: ALL, section: "quantize",
    help: "comma-separated node names to keep in float; /regex/ matches names (static and dynamic only)" },
  { key: "exclude", flag: "--exclude-node", arg: "NAME", kind: "node", repeat: true, modes: ALL, section: "quantize",
    help: "one node to keep in float, its name taken exactly as given (commas, slashes and all); repeat for more" },
  { key: "opTypes", flag: "--op-types", arg: "OPS", kind: "list", default: () => "all supported", modes: INT8, section: "quantize",
    help: "comma-separated op types to quantize" },
  { key: "rounding", flag: "--rounding", arg: "nearest|learned|adaround|auto", kind: "enum", values: ["nearest", "learned", "adaround", "auto"] satisfies NonNullable<QConfig["rounding"]>[], default: () => "static: auto where the quantized layers do at most 200 M multiply-adds a calibration row, else nearest; fp4, and int4 without --algorithm, with --calib: auto; else nearest", modes: ["static", "int4", "fp4"], section: "quantize",
    help: "weight rounding: nearest, or learned against each layer's outputs on --calib (error feedback through the layer's input Hessian, bias corrected; Conv via sampled patches), or adaround (static INT8 only: AdaRound's gradient fit of each weight's rounding up or down on the same inputs, bias corrected, never worse than nearest per channel; slowest), or auto (learned, for int4 GPTQ, written only where the first calibration rows measure it better at the outputs on rows it was not fitted on: two-fold cross-fitting). Slower; docs/recovery.md says where they help" },
  { key: "ep", flag: "--ep", arg: "cpu|cuda", kind: "enum", values: ["cpu", "cuda"] satisfies ExecutionProvider[], default: () => "cpu", modes: INT8, section: "quantize",
    help: "execution provider for calibration" },
  { key: "protect", flag: "--no-protect", kind: "boolean", sets: false, default: () => "on", modes: ["static", "dynamic", "int4", "fp4"], section: "quantize",
    help: "quantize every selected node: by default the weighted nodes whose quantization alone makes a quarter or more of the model's output error stay float (docs/calibration.md; dynamic mode measures with --calib only); int4/fp4 with --calib: measure and report the outputs, step no layer up (--protect)" },
  { key: "optimize", flag: "--no-optimize", kind: "boolean", sets: false, modes: INT8, section: "quantize",
    help: "skip onnxruntime's 'basic' pre-optimization (BatchNorm folding, constant folding)" },
  { key: "images.mean", flag: "--image-mean", arg: "M[,M,M]", kind: "numbers", modes: ALL, section: "quantize", default: () => 0,
    help: "images (--calib a folder of .png/.jpg): subtracted from each channel after --image-scale, one value or one per channel (ImageNet: 0.485,0.456,0.406); as the model's training normalized its inputs" },
  { key: "images.std", flag: "--image-std", arg: "S[,S,S]", kind: "numbers", accepts: { test: (x) => x !== 0, says: "a non-zero number" }, modes: ALL, section: "quantize", default: () => 1,
    help: "images: each channel then divided by this (ImageNet: 0.229,0.224,0.225)" },
  { key: "images.scale", flag: "--image-scale", arg: "F", kind: "number", accepts: { test: (x) => x > 0, says: "a positive number" }, modes: ALL, section: "quantize", default: () => "1/255",
    help: "images: pixel values (0–255) are multiplied by this first (1 keeps 0–255)" },
  { key: "images.layout", flag: "--image-layout", arg: "NCHW|NHWC", kind: "enum", values: ["NCHW", "NHWC"], modes: ALL, section: "quantize", default: () => "from the input's shape (channels 1 or 3)",
    help: "images: the input's layout" },
  { key: "images.size", flag: "--image-size", arg: "HxW", kind: "numbers", count: 2, accepts: positiveInt, modes: ALL, section: "quantize", default: () => "the input's fixed height and width",
    help: "images: resize to this height and width (needed where the input's are symbolic)" },

  { key: "target.sqnr", flag: "--target-sqnr", arg: "DB", kind: "number", replaces: ["target.drop", "target.agreement"], modes: ["static"], section: "target",
    help: "output SQNR against the float model, on the calibration data, of at least DB" },
  { key: "target.agreement", flag: "--target-agreement", arg: "PCT", kind: "number", replaces: ["target.sqnr", "target.drop"], modes: ["static"], section: "target",
    accepts: { test: (n) => n > 0 && n <= 100, says: "a percentage in (0, 100]" },
    help: "argmax agreement with the float model of at least PCT % of the samples (a sample agrees when every row of its first output does: a classifier's class, a recogniser's whole line), on the calibration data; needs no labels" },
  { key: "target.drop", flag: "--target", arg: '"drop<=PP"', kind: "number", replaces: ["target.sqnr", "target.agreement"], modes: ["static"], section: "target",
    accepts: { test: (n) => n >= 0, says: "a number of percentage points ≥ 0" },
    fromText: (s) => {
      const m = /^\s*drop\s*<=\s*([0-9.]+)\s*$/.exec(s);
      return m && Number.isFinite(Number(m[1])) ? Number(m[1]) : undefined;
    },
    help: "top-1 drop of at most PP percentage points on labelled data (needs --eval)" },
  { key: "target.eval", flag: "--eval", arg: "DIR", kind: "path", modes: ["static"], section: "target",
    help: "held-out x.npy (or <input>.npy) and y.npy class labels for --target drop" },
  { key: "target.remedy", flag: "--remedy", arg: "auto|int16|float", kind: "enum", values: REMEDIES, default: () => "auto", modes: ["static"], section: "target",
    help: "int16: the chosen nodes' activations get 16 bits, their weights stay int8; float: the chosen nodes are not quantized; auto: int16 if that can meet the target, else float" },
  { key: "target.minInt8WeightShare", flag: "--min-int8-weights", arg: "F", kind: "number", accepts: share, default: () => MIN_INT8_WEIGHT_SHARE, modes: ["static"], section: "target",
    help: "keep at least this share (0-1) of the weights int8: nodes that would break it stay quantized and the search takes the next ones in the ranking; 0 lifts it" },
  { key: "target.tradeoff", flag: "--tradeoff", kind: "boolean", modes: ["static"], section: "target",
    help: "also time the float model and every configuration measured (one interleaved benchmark, batch 1, 2 s) and print accuracy vs size vs latency" },

  { key: "lowBit.blockSize", flag: "--block-size", arg: "N", kind: "enum", values: [16, 32, 64, 128, 256], default: () => LOWBIT_DEFAULTS.blockSize, modes: ["int4"], section: "lowbit",
    help: "int4: rows of K per block, a power of two 16–256; FP4 fixes it (32/16)" },
  { key: "lowBit.algorithm", flag: "--algorithm", arg: "rtn|hqq|gptq", kind: "enum", values: INT4_ALGORITHMS, default: () => LOWBIT_DEFAULTS.algorithm, modes: ["int4"], section: "lowbit",
    help: "int4 rounding: round-to-nearest, HQQ refinement (never worse per block), or GPTQ (error feedback through the activations' Hessian; needs --calib)" },
  { key: "lowBit.gptq.damping", flag: "--damping", arg: "D", kind: "number", accepts: between(0, 1, "a number between 0 and 1 (e.g. 0.01)"), default: () => LOWBIT_DEFAULTS.damping, modes: ["int4"], section: "lowbit",
    help: "GPTQ: damping as a share of the Hessian's mean diagonal" },
  { key: "lowBit.gptq.actOrder", flag: "--act-order", kind: "boolean", default: () => "off", modes: ["int4"], section: "lowbit",
    help: "GPTQ: quantize inputs in order of decreasing activation energy" },
  { key: "lowBit.symmetric", flag: "--asymmetric", kind: "boolean", sets: false, default: () => "symmetric", modes: ["int4"], section: "lowbit",
    help: "int4 with per-block zero points" },
  { key: "lowBit.bits", flag: "--bits", arg: "2|4|8", kind: "enum", values: [2, 4, 8], default: () => LOWBIT_DEFAULTS.bits, modes: ["int4"], section: "lowbit",
    help: "int4 mode's width; MatMulNBits and DequantizeLinear (uint2 needs opset 25, upgraded) run all three on onnxruntime CPU" },
  { key: "lowBit.includeGather", flag: "--include-gather", kind: "boolean", default: () => "off", modes: ["int4"], section: "lowbit",
    help: "int4: also embedding tables (Gather on axis 0) → com.microsoft.GatherBlockQuantized (on the fixture LM it adds 11–16 points of perplexity increase to save 13 % of the file; worth it when the table is a large share of the model)" },
  { key: "lowBit.format", flag: "--int4-format", arg: "F", kind: "enum", values: INT4_FORMATS, default: () => LOWBIT_DEFAULTS.format, modes: ["int4"], section: "lowbit",
    help: "matmulnbits (com.microsoft.MatMulNBits; a Conv's uint4 codes decoded by ops onnxruntime folds at load, so it runs at FP32's speed) or qdq (opset-21 blocked DequantizeLinear, MatMul's and Conv's: the standard form; onnxruntime decodes a Conv's on every run)" },
  { key: "lowBit.accuracyLevel", flag: "--accuracy-level", arg: "N", kind: "enum", values: [0, 1, 2, 3, 4], default: () => LOWBIT_DEFAULTS.accuracyLevel, modes: ["int4"], section: "lowbit",
    help: "MatMulNBits accuracy_level 0–4 (0: float activations; 4: int8, fastest)" },
  { key: "lowBit.protect", flag: "--protect", arg: "DB", kind: "number", accepts: between(-100, 200, "an output SQNR in dB (e.g. 25)"), default: () => `${LOWBIT_DEFAULTS.protect} with --calib`, modes: ["int4", "fp4"], section: "lowbit",
    help: "with --calib: keep the outputs at DB or more against the float model (worst output SQNR), within --protect-max-size; the layers that cost them most per byte get int8 weights or stay float (docs/lowbit.md). Without --calib nothing is measured" },
  { key: "lowBit.protectMaxSize", flag: "--protect-max-size", arg: "F", kind: "number", accepts: { test: (n) => n > 0, says: "a share of the float model's size above 0 (e.g. 0.5)" }, default: () => LOWBIT_DEFAULTS.protectMaxSize, modes: ["int4", "fp4"], section: "lowbit",
    help: "the most protection may grow the model to, as a share of the float model's size (the file): below the target it writes the last step within it and says so" },
  { key: "lowBit.fp4Format", flag: "--fp4-format", arg: "F", kind: "enum", values: FP4_FORMATS, default: () => LOWBIT_DEFAULTS.fp4Format, modes: ["fp4"], section: "lowbit",
    help: "nvfp4 (blocks of 16, E4M3 scales) or mxfp4 (blocks of 32, power-of-two scales)" },
  { key: "lowBit.export", flag: "--fp4-export", arg: "E", kind: "enum", values: FP4_EXPORTS, default: () => LOWBIT_DEFAULTS.export, modes: ["fp4"], section: "lowbit",
    help: "runnable (packed codes + decode subgraph, runs on onnxruntime CPU), native (opset-23 FLOAT4E2M1; onnxruntime CPU cannot run it), fake (FP4-rounded float weights)" },

  // QConfig fields a config file may set that have no flag.
  { key: "activationSymmetric", kind: "boolean", default: () => engine().activationSymmetric, modes: INT8, section: "config", help: "symmetric activation ranges" },
  { key: "weightSymmetric", kind: "boolean", default: () => engine().weightSymmetric, modes: INT8, section: "config", help: "symmetric weight ranges" },
  { key: "keepOutputSoftmaxFloat", kind: "boolean", default: () => engine().keepOutputSoftmaxFloat, modes: INT8, section: "config", help: "keep a final Softmax that is a graph output in float" },
  { key: "keepFinalConvFloat", kind: "boolean", default: () => engine().keepFinalConvFloat, modes: INT8, section: "config", help: "a Conv whose output is a graph output (directly or through data movement) writes it in float" },
  { key: "include", kind: "nodes", modes: INT8, section: "config", help: "only these nodes (names or { regex })" },
  { key: "overrides", kind: "object", modes: INT8, section: "config", help: "per-tensor overrides by tensor name (QConfig.overrides)" },
  { key: "calibration.numBins", kind: "int", accepts: positiveInt, default: () => engine().calibration.numBins, modes: INT8, section: "config", help: "histogram bins" },
  { key: "calibration.numQuantizedBins", kind: "int", accepts: positiveInt, default: () => engine().calibration.numQuantizedBins, modes: INT8, section: "config", help: "entropy: quantized bins" },
  { key: "calibration.movingAverage", kind: "boolean", default: () => engine().calibration.movingAverage, modes: INT8, section: "config", help: "minmax: moving average of per-batch ranges" },
  { key: "calibration.averagingConstant", kind: "number", accepts: between(0, 1, "a number between 0 and 1"), default: () => engine().calibration.averagingConstant, modes: INT8, section: "config", help: "minmax moving average weight of a new batch" },
];

/** --weight-type's default, per target CPU (native: this machine's choice). */
function byWeightType(): string {
  const by = new Map<string, string[]>();
  const of = (cpu: TargetCpu) => (resolveConfig({ targetCpu: cpu }).measureWeights ? "auto" : defaultWeightType(cpu));
  for (const cpu of TARGET_CPUS.filter((c) => c !== "native")) by.set(of(cpu), [...(by.get(of(cpu)) ?? []), cpu]);
  return [...by].map(([t, cpus]) => `${t} for ${cpus.join("/")}`).join(", ");
}

/** The row of a flag, or undefined. */
export const optionByFlag = (flag: string): QuantOption | undefined => QUANT_OPTIONS.find((o) => o.flag === flag);
/** The (first) row of a key. */
export const optionByKey = (key: JobKey): QuantOption => QUANT_OPTIONS.find((o) => o.key === key)!;

/** A value that does not fit its option: the message names the flag or key (and file) and what it takes. */
export class OptionError extends Error {}

/** The engine default of a key as help states it ("" when it has none). */
export function defaultText(o: QuantOption): string {
  const d = o.default?.();
  return d === undefined ? "" : String(d);
}

const list = (v: readonly (string | number)[]) => (v.length > 1 ? `${v.slice(0, -1).join(", ")} or ${v[v.length - 1]}` : String(v[0]));

/**
 * Node selectors as `--exclude` writes them: "a, b,,/re/" → ["a", "b", { regex: "re" }]. With patterns off (the
 * low-bit modes match names only) "/re/" is the name "/re/".
 */
export function nodeSpecs(text: string, patterns = true): NodeSpec[] {
  return text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => (patterns && s.length > 2 && s.startsWith("/") && s.endsWith("/") ? { regex: s.slice(1, -1) } : s));
}

/** A NodeSpec as QConfig takes it. */
export function nodeSelector(s: NodeSpec): NodeSelector {
  return typeof s === "string" ? s : new RegExp(s.regex);
}

/** A `{ regex }` selector must compile: refused here, named, rather than when the conversion starts. */
function checkPattern(s: NodeSpec, where: string): void {
  if (typeof s === "string") return;
  try {
    nodeSelector(s);
  } catch (e) {
    throw new OptionError(`${where}: /${s.regex}/ is not a regular expression (${(e as Error).message})`);
  }
}

/** A flag's text as its option's value; `flag` names it in the message. */
export function valueFromText(o: QuantOption, text: string, patterns = true): unknown {
  const flag = o.flag ?? o.key;
  const bad = (what: string) => new OptionError(`${flag} takes ${what}, not "${text}"`);
  switch (o.kind) {
    case "enum": {
      const v = o.values!.find((x) => String(x) === text);
      if (v === undefined) throw bad(list(o.values!));
      return v;
    }
    case "int":
    case "number": {
      const n = o.fromText ? o.fromText(text) : text.trim() === "" ? NaN : Number(text);
      if (n === undefined) throw bad(o.arg ?? "a number");
      if (!Number.isFinite(n) || (o.kind === "int" && !Number.isInteger(n)) || (o.accepts && !o.accepts.test(n))) throw bad(o.accepts?.says ?? (o.kind === "int" ? "an integer" : "a number"));
      return n;
    }
    case "list":
      return text.split(",").map((s) => s.trim()).filter(Boolean);
    case "numbers": {
      const parts = text.split(/[,x×]/).map((s) => s.trim());
      const ns = parts.map((s) => (s === "" ? NaN : Number(s)));
      const what = `${o.count ? `${o.count} ` : ""}comma-separated ${o.accepts ? "values" : "numbers"}${o.arg ? ` (${o.arg})` : ""}${o.accepts ? `, each ${o.accepts.says}` : ""}`;
      if ((o.count !== undefined && ns.length !== o.count) || !ns.every((n) => Number.isFinite(n) && (!o.accepts || o.accepts.test(n)))) throw bad(what);
      return ns;
    }
    case "nodes": {
      const specs = nodeSpecs(text, patterns);
      for (const s of specs) checkPattern(s, flag);
      return specs;
    }
    case "node":
      return [text];
    case "boolean":
      return o.sets ?? true;
    default:
      return text;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const OVERRIDE_KEYS = ["type", "range", "scale", "zeroPoint", "symmetric", "keepFloat"];

/** A config file's value for `o`, checked; `where` names the file and key in messages. */
function valueFromJson(o: QuantOption, v: unknown, where: string, baseDir: string): unknown {
  const bad = (what: string) => new OptionError(`${where} takes ${what}, not ${JSON.stringify(v)}`);
  switch (o.kind) {
    case "enum":
      if (!o.values!.includes(v as string | number)) throw bad(list(o.values!.map((x) => JSON.stringify(x))));
      return v;
    case "int":
    case "number":
      if (typeof v !== "number" || !Number.isFinite(v) || (o.kind === "int" && !Number.isInteger(v)) || (o.accepts && !o.accepts.test(v))) throw bad(o.accepts?.says ?? "a number");
      return v;
    case "boolean":
      if (typeof v !== "boolean") throw bad("true or false");
      return v;
    case "string":
    case "path":
      if (typeof v !== "string" || v === "") throw bad("a non-empty string");
      return o.kind === "path" ? path.resolve(baseDir, v) : v;
    case "list":
      if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) throw bad("a list of strings");
      return v;
    case "numbers":
      if (!Array.isArray(v) || (o.count !== undefined && v.length !== o.count) || !v.every((n) => typeof n === "number" && Number.isFinite(n) && (!o.accepts || o.accepts.test(n)))) {
        throw bad(`a list of ${o.count ? `${o.count} ` : ""}${o.accepts ? `values, each ${o.accepts.says}` : "numbers"}`);
      }
      return v;
    case "nodes":
    case "node":
      if (!Array.isArray(v) || !v.every((s) => typeof s === "string" || (isObject(s) && typeof s.regex === "string" && Object.keys(s).length === 1))) {
        throw bad('a list of node names and { "regex": "…" } objects');
      }
      for (const s of v) checkPattern(s as NodeSpec, where);
      return v;
    case "object":
      if (!isObject(v) || !Object.values(v).every(isObject)) throw bad("an object of per-tensor objects");
      for (const [name, t] of Object.entries(v)) {
        const extra = Object.keys(t as object).find((k) => !OVERRIDE_KEYS.includes(k));
        if (extra) throw new OptionError(`${where}["${name}"]: unknown key "${extra}" (allowed: ${OVERRIDE_KEYS.join(", ")})`);
      }
      return v;
  }
}

export function getKey(job: QuantizeJob, key: JobKey): unknown {
  return key.split(".").reduce<unknown>((o, k) => (isObject(o) ? o[k] : undefined), job);
}

/** Sets (or, with undefined, removes) `key`, creating the objects on the way. */
export function setKey(job: QuantizeJob, key: JobKey, value: unknown): void {
  const parts = key.split(".");
  let o = job as Record<string, unknown>;
  for (const p of parts.slice(0, -1)) o = (isObject(o[p]) ? o[p] : (o[p] = {})) as Record<string, unknown>;
  if (value === undefined) delete o[parts[parts.length - 1]!];
  else o[parts[parts.length - 1]!] = value;
}

/** Every key set in `job`, in table order. */
export function keysSet(job: QuantizeJob): JobKey[] {
  return [...new Set(QUANT_OPTIONS.map((o) => o.key))].filter((k) => getKey(job, k) !== undefined);
}

/**
 * A config file's text as a QuantizeJob. Bad JSON names the file, line and column; an unknown key is refused
 * with the keys allowed there; each value is checked as its flag's would be. Paths are relative to the file.
 */
export function readJob(text: string, file: string): QuantizeJob {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new OptionError(`${file}: not valid JSON${jsonWhere(text, (e as Error).message)}: ${(e as Error).message.replace(/ in JSON at position \d+.*$/, "")}`);
  }
  if (!isObject(raw)) throw new OptionError(`${file}: a config is a JSON object ({ "mode": "static", … }), not ${Array.isArray(raw) ? "an array" : JSON.stringify(raw)}`);
  const job: QuantizeJob = {};
  const walk = (obj: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const key = `${prefix}${k}`;
      const row = QUANT_OPTIONS.find((o) => o.key === key);
      const nested = QUANT_OPTIONS.some((o) => o.key.startsWith(`${key}.`));
      if (row) setKey(job, row.key, valueFromJson(row, v, `${file}: ${key}`, path.dirname(file)));
      else if (nested && isObject(v)) walk(v, `${key}.`);
      else if (nested) throw new OptionError(`${file}: ${key} is an object of ${childKeys(`${key}.`).join(", ")}`);
      else throw new OptionError(`${file}: unknown key "${key}" (allowed${prefix ? ` in ${prefix.slice(0, -1)}` : ""}: ${childKeys(prefix).join(", ")})`);
    }
  };
  walk(raw, "");
  return job;
}

/** The keys one level below `prefix` ("" for the top). */
function childKeys(prefix: string): string[] {
  return [...new Set(QUANT_OPTIONS.filter((o) => o.key.startsWith(prefix)).map((o) => o.key.slice(prefix.length).split(".")[0]!))];
}

/** " at line L, column C" from JSON.parse's "position N" (V8 says the position; some versions the line too). */
function jsonWhere(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return text.trim() === "" ? " (the file is empty)" : "";
  const before = text.slice(0, Number(m[1]));
  const line = before.split("\n").length;
  return ` at line ${line}, column ${Number(m[1]) - before.lastIndexOf("\n")}`;
}

/** `over`'s keys set on top of `base` (a key set to undefined in `over` unsets it); neither is changed. */
export function mergeJobs(base: QuantizeJob, over: QuantizeJob, overKeys: readonly JobKey[] = keysSet(over)): QuantizeJob {
  const out = structuredClone(base);
  for (const k of overKeys) setKey(out, k, structuredClone(getKey(over, k)));
  return out;
}

/** How a job's calibration data is read: its batch size and, for a folder of images, their normalization. */
export function jobReaderOptions(job: QuantizeJob): ReaderOptions {
  const { size, ...images } = job.images ?? {};
  return { batchSize: job.batchSize ?? DEFAULT_BATCH_SIZE, ...(job.images && { images: { ...images, ...(size && { size: [size[0]!, size[1]!] as const }) } }) };
}

/** The QConfig part of a job (node selectors as QConfig takes them). */
export function jobQConfig(job: QuantizeJob): QConfig {
  const { mode: _m, calib: _c, batchSize: _b, ep: _e, optimize: _o, lowBit: _l, target: _t, images: _i, include, exclude, ...rest } = job;
  const config: QConfig = structuredClone(rest);
  if (include) config.include = include.map(nodeSelector);
  if (exclude) config.exclude = exclude.map(nodeSelector);
  return config;
}

/**
 * A QConfig (or any JSON-able part of a job) as TypeScript source for a notebook cell, keys in the order given:
 * `{ perChannel: false, calibration: { method: "entropy" }, exclude: ["a,b"] }`. Node names stay string literals.
 */
export function configSource(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(configSource).join(", ")}]`;
  if (v instanceof RegExp) return `new RegExp(${JSON.stringify(v.source)})`;
  if (isObject(v)) {
    if (typeof v.regex === "string" && Object.keys(v).length === 1) return `new RegExp(${JSON.stringify(v.regex)})`;
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (!entries.length) return "{}";
    return `{ ${entries.map(([k, x]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${configSource(x)}`).join(", ")} }`;
  }
  return JSON.stringify(v);
}

/** The QConfig keys a notebook template writes out at their defaults, for the user to change. */
const TEMPLATE_KEYS: readonly JobKey[] = ["format", "activationType", "targetCpu", "perChannel", "calibration.method"];

/** The main QConfig options at the engine's defaults, as notebook source: `{ format: "qdq", …, calibration: { method: "mse" } }`. */
export function defaultConfigSource(): string {
  const d = engineDefaults();
  const job: QuantizeJob = {};
  for (const k of TEMPLATE_KEYS) setKey(job, k, getKey(d as QuantizeJob, k));
  return configSource(job);
}
