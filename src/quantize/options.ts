// What the "Quantize model…" wizard collects, as a typed object, and how it becomes a `ptq quantize --config` job
// (engine/quant/options' table: the keys and defaults the CLI reads), the command that runs it and an output file
// name. Pure, so the mapping is unit-tested without VS Code.
import path from "node:path";
import type { ModelProto } from "onnx-buf";
import type { CalibrationMethod } from "../../engine/calibrate/types";
import { intermediateOutputs } from "../../engine/quant/output-check-text";
import { engineDefaults, LOWBIT_DEFAULTS, optionByKey, QUANT_OPTIONS, type ImageJob, type QuantizeJob, type QuantizeMode } from "../../engine/quant/options";

export type Scheme = "int8-static" | "int8-dynamic" | "int4-weights" | "fp4-weights";

export interface QuantizeOptions {
  input: string;
  output: string;
  scheme: Scheme;
  /** Folder of calibration inputs (.npy/.npz/.pb/images); undefined with randomData for int8-static, and for low-bit
   *  weights without data (then the outputs are not measured). */
  calibrationDir?: string;
  /** Calibrate on seeded random inputs (accuracy will suffer: the ranges are not the real ones). */
  randomData: boolean;
  perChannel: boolean;
  /** Default: the engine's own (QConfig.calibration.method). */
  calibrationMethod: CalibrationMethod;
  /** Node names kept in float, exact (no list syntax, no patterns: a node may be named "a,b" or "/x/"). */
  exclude: string[];
  /** Block size for int4/fp4 weights. */
  blockSize: number;
  /** Shapes for inputs with symbolic dims (asked by the wizard when no data gives them), by input name. */
  shapes?: Record<string, number[]>;
  /** A folder of images: how pixels become the input (the training's normalization); unset: pixels / 255. */
  images?: ImageJob;
  /** INT8 with data: the outputs the measurements at the outputs compare (QConfig.calibration.outputs); unset: all. */
  judgeOutputs?: string[];
  /** INT8 static, and FP4 and int4 weights with a folder of samples: "auto" writes learned weight rounding where calibration
   *  rows it was not fitted on measure it better, "nearest" each weight to its nearest value (QConfig.rounding);
   *  unset: the engine's default, nearest for INT8 and auto for FP4 and int4 with samples. */
  rounding?: "auto" | "nearest";
}

/** The normalizations the wizard offers for a folder of images (undefined: the readers' default, pixels / 255). */
export const IMAGE_PRESETS: ReadonlyArray<{ label: string; detail: string; images?: ImageJob }> = [
  { label: "Pixels in [0, 1]", detail: "pixel / 255 (the default)" },
  { label: "ImageNet mean and std", detail: "(pixel / 255 − [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225] (torchvision classifiers and backbones)", images: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } },
  { label: "Pixels in [−1, 1]", detail: "(pixel / 255 − 0.5) / 0.5 (TensorFlow's Inception/MobileNet preprocessing, PaddleOCR's recognisers)", images: { mean: [0.5], std: [0.5] } },
  { label: "Pixels centred, [−0.5, 0.5]", detail: "pixel / 255 − 0.5 (imgly's ISNet background removal feeds (pixel − 128) / 256)", images: { mean: [0.5] } },
  { label: "Pixels in [0, 255]", detail: "pixel unscaled", images: { scale: 1 } },
];

export const SCHEMES: ReadonlyArray<{ scheme: Scheme; label: string; detail: string; suffix: string }> = [
  { scheme: "int8-static", label: "INT8 static", detail: "Weights and activations in int8, ranges calibrated on sample inputs (QDQ). Best speed on CPU.", suffix: "int8" },
  { scheme: "int8-dynamic", label: "INT8 dynamic", detail: "Weights int8, activation ranges computed at run time. No calibration data needed; samples, if given, keep float the layers int8 would ruin.", suffix: "int8-dynamic" },
  { scheme: "int4-weights", label: "INT4 weights", detail: "MatMul, Gemm and Conv weights in int4 blocks (MatMulNBits; Convs through DequantizeLinear); activations stay float.", suffix: "int4" },
  { scheme: "fp4-weights", label: "FP4 weights", detail: "MatMul, Gemm and Conv weights in FP4 (E2M1) blocks; decoded to float by ONNX Runtime on CPU.", suffix: "fp4" },
];

/** The `ptq quantize --mode` each scheme runs. */
export const SCHEME_MODE: Record<Scheme, QuantizeMode> = { "int8-static": "static", "int8-dynamic": "dynamic", "int4-weights": "int4", "fp4-weights": "fp4" };

/** The block sizes int4 takes (the table's --block-size values). */
export const BLOCK_SIZES = optionByKey("lowBit.blockSize").values as readonly number[];

export function defaultOptions(input: string, scheme: Scheme = "int8-static"): QuantizeOptions {
  const d = engineDefaults();
  return {
    input, output: outputPath(input, scheme), scheme, randomData: false,
    perChannel: d.perChannel, calibrationMethod: d.calibration.method, exclude: [], blockSize: LOWBIT_DEFAULTS.blockSize,
  };
}

/** `dir/model.onnx` → `dir/model.int8.onnx` (the scheme's suffix), beside the input. */
export function outputPath(input: string, scheme: Scheme): string {
  const suffix = SCHEMES.find((s) => s.scheme === scheme)!.suffix;
  const dir = path.dirname(input);
  const base = path.basename(input).replace(/\.onnx$/i, "");
  return path.join(dir, `${base}.${suffix}.onnx`);
}

/** A free name: `model.int8.onnx`, else `model.int8-2.onnx`, … (for "keep both"). */
export function freePath(wanted: string, exists: (p: string) => boolean): string {
  if (!exists(wanted)) return wanted;
  const stem = wanted.replace(/\.onnx$/i, "");
  for (let i = 2; ; i++) if (!exists(`${stem}-${i}.onnx`)) return `${stem}-${i}.onnx`;
}

/**
 * The run as a `ptq quantize --config` job: what the wizard chose, under the table's keys (engine/quant/options).
 * `calib` is the calibration data the config names (the user's folder, or the random samples kept beside OUT).
 * Excluded nodes are exact names (a node may be named "a,b" or "/x/").
 */
export function quantizeJob(o: QuantizeOptions, calib = o.calibrationDir): QuantizeJob {
  const job: QuantizeJob = { mode: SCHEME_MODE[o.scheme] };
  if (o.scheme === "int8-static") {
    if (!calib) throw new Error("INT8 static needs calibration data: a folder of samples or random data");
    job.calib = calib;
  }
  if (o.scheme.startsWith("int8") && !o.perChannel) job.perChannel = false;
  if (o.scheme === "int8-static") job.calibration = { method: o.calibrationMethod };
  if (o.rounding && (o.scheme === "int8-static" || ((o.scheme === "fp4-weights" || o.scheme === "int4-weights") && calib))) job.rounding = o.rounding;
  if (o.exclude.length) job.exclude = [...o.exclude];
  // FP4's block size is fixed by its format (NVFP4: 16).
  if (o.scheme === "int4-weights") job.lowBit = { blockSize: o.blockSize };
  // Low-bit weights and dynamic INT8 with samples: the outputs are measured and protected (engine/lowbit/protect,
  // engine/quant/protect).
  if (o.scheme !== "int8-static" && calib) job.calib = calib;
  if (o.images && job.calib) job.images = structuredClone(o.images);
  if (o.judgeOutputs?.length && o.scheme.startsWith("int8") && job.calib) job.calibration = { ...job.calibration, outputs: [...o.judgeOutputs] };
  return job;
}

/**
 * The wizard's choice of the outputs the measurements compare, for a model with several: each output, picked unless
 * other nodes of the model read it too (an intermediate tensor exported beside the result: a feature map kept for
 * training, as ISNet's decoder stages). Empty when there is nothing to choose: one output, or none read inside.
 */
export function judgedOutputChoices(model: ModelProto): Array<{ label: string; description?: string; name: string; picked: boolean }> {
  const graph = model.graph;
  const outputs = graph?.output.map((o) => o.name) ?? [];
  const inner = new Set(graph ? intermediateOutputs(graph) : []);
  if (outputs.length < 2 || inner.size === 0) return [];
  return outputs.map((name) => ({
    label: name,
    ...(inner.has(name) ? { description: "also read inside the model (an intermediate tensor)" } : {}),
    name,
    picked: !inner.has(name),
  }));
}

/** Where the wizard writes a run's config: beside OUT, `model.int8.onnx` → `model.int8.ptq.json`. */
export function configPath(o: QuantizeOptions): string {
  return o.output.replace(/\.onnx$/i, "") + ".ptq.json";
}

/** The config file's text. */
export const configText = (job: QuantizeJob): string => JSON.stringify(job, null, 2) + "\n";

/**
 * Arguments for `ptq quantize` (out/cli.js) running the config: `output` is where the CLI writes (a temp name we
 * rename on success); `calib`, when given, is the data this run calibrates on instead of the config's (the
 * wizard's split of the user's folder, the rest held out for the report).
 */
export function quantizeArgs(o: QuantizeOptions, output: string, config: string, calib?: string): string[] {
  return ["quantize", o.input, "-o", output, "--config", config, ...(calib ? ["--calib", calib] : []), "--json"];
}

/** The same run from a terminal: `ptq quantize MODEL -o OUT --config OUT.ptq.json`. */
export function reproduceCommand(o: QuantizeOptions): string {
  const sh = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return `ptq quantize ${sh(o.input)} -o ${sh(o.output)} --config ${sh(configPath(o))}`;
}

/** The wizard's choices of nodes to keep in float: every named node, its name kept apart from what is shown. */
export function excludeChoices(model: ModelProto): Array<{ label: string; description: string; name: string }> {
  return (model.graph?.node ?? []).filter((n) => n.name !== "").map((n) => ({ label: n.name, description: n.opType, name: n.name }));
}

/** The --image-* flags that say what `images` says (the table's flags for images.*). */
export function imageFlags(images: ImageJob | undefined): string[] {
  if (!images) return [];
  return QUANT_OPTIONS.filter((r) => r.key.startsWith("images.")).flatMap((r) => {
    const v = images[r.key.slice("images.".length) as keyof ImageJob];
    return v === undefined ? [] : [r.flag!, Array.isArray(v) ? v.join(r.key === "images.size" ? "x" : ",") : String(v)];
  });
}

/**
 * Arguments for `ptq report` comparing the two models (size, latency, throughput, agreement) on `data`: the held-out
 * samples (reportData.ts), never the calibration folder itself unless nothing could be held out.
 */
export function reportArgs(o: QuantizeOptions, data: { heldout?: string; metric?: string } = {}): string[] {
  const args = ["report", o.input, o.output, "--runs", "30", "--json"];
  if (data.heldout) args.push("--data", data.heldout, ...imageFlags(o.images));
  // Without data the report makes inputs from the model's shapes: symbolic dims need the user's sizes.
  else for (const [name, dims] of Object.entries(o.shapes ?? {})) args.push("--shape", `${name}=${dims.join("x")}`);
  if (data.metric) args.push("--metric", data.metric);
  return args;
}
