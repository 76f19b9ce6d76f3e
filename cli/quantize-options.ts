// `ptq quantize`'s command line and --config file, both read through engine/quant/options' table: node:util
// parseArgs with the table's flags, the file read by the table's schema, flags over the file, then the checks
// between options (which mode an option applies to, what needs --calib). The help text is generated from the table.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  getKey, jobReaderOptions, keysSet, mergeJobs, optionByFlag, OptionError, QUANT_OPTIONS, QUANTIZE_MODES, readJob, setKey, valueFromText, defaultText,
  type JobKey, type QuantizeJob, type QuantizeMode, type QuantOption,
} from "../engine/quant/options";
import { dataKind } from "../engine/data/kind";
import { describeImagePlan, imagePlan } from "../engine/data/images";
import type { ModelInputsSource } from "../engine/data/feeds";
import { UsageError } from "./args";
import { flagLines, HELP_FLAG, helpLine, parseOptions, usageError, type Flag } from "./flags";

/** A parsed `ptq quantize` call: the model, where to write, and the job (file and flags merged). */
export interface QuantizeCall {
  model: string;
  output: string;
  overwrite: boolean;
  json: boolean;
  mode: QuantizeMode;
  job: QuantizeJob;
  /** The --config file, if any. */
  configFile?: string;
}

/** The command's own flags, apart from the job's options. */
const OUTPUT_FLAGS = [
  { name: "output", short: "o", arg: "OUT", help: "where to write the quantized model (required)" },
  { name: "config", arg: "FILE", help: "the options below as a JSON file (docs/config.md); flags given here override it" },
] as const satisfies Flag[];
const COMMAND_FLAGS = [
  { name: "overwrite", help: "replace OUT if it exists" },
  { name: "json", help: "print the summary as JSON on stdout" },
  HELP_FLAG,
] as const satisfies Flag[];

/** The table's flags (each may repeat: the tokens say which came last) and the command's own. */
const FLAG_OPTIONS = parseOptions([
  ...OUTPUT_FLAGS,
  ...QUANT_OPTIONS.filter((o) => o.flag).map((o): Flag => ({ name: o.flag!.slice(2), arg: o.arg, multiple: true, help: o.help })),
  ...COMMAND_FLAGS,
]);

/** Reads argv (and the --config file it names); "help" for -h/--help. Usage errors are UsageErrors. */
export function parseQuantizeArgs(argv: readonly string[]): QuantizeCall | "help" {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: FLAG_OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (e) {
    throw usageError(e);
  }
  const { values: v, positionals, tokens } = parsed;
  if (v.help) return "help";
  const configFile = v.config as string | undefined;
  try {
    const file = configFile !== undefined ? readConfigFile(configFile) : {};
    // The mode first: it decides how --exclude reads "/re/" (a pattern for INT8, a name for the low-bit modes).
    const modeFlag = (v.mode as string[] | undefined)?.at(-1);
    const mode = (modeFlag !== undefined ? valueFromText(optionByFlag("--mode")!, modeFlag) : file.mode ?? defaultText(optionByFlag("--mode")!)) as QuantizeMode;
    const flags: QuantizeJob = {};
    const fromFlags = new Map<JobKey, string>();
    for (const t of tokens) {
      if (t.kind !== "option") continue;
      const row = optionByFlag(`--${t.name}`);
      if (!row) continue;
      const value = valueFromText(row, t.value ?? "", mode === "static" || mode === "dynamic");
      const prior = fromFlags.has(row.key) ? getKey(flags, row.key) : undefined;
      setKey(flags, row.key, row.repeat && Array.isArray(prior) ? [...prior, ...(value as unknown[])] : value);
      fromFlags.set(row.key, row.flag!);
      for (const other of row.replaces ?? []) {
        setKey(flags, other, undefined);
        fromFlags.set(other, row.flag!);
      }
    }
    const job = mergeJobs(file, flags, [...fromFlags.keys()]);
    job.mode = mode;
    const where = (key: JobKey) => fromFlags.get(key) ?? `${configFile}: ${key}`;
    checkJob(job, mode, where);
    if (positionals.length !== 1) throw new UsageError("give exactly one MODEL file");
    if (!v.output) throw new UsageError("-o OUT is required");
    return { model: positionals[0]!, output: v.output as string, overwrite: v.overwrite === true, json: v.json === true, mode, job, configFile };
  } catch (e) {
    if (e instanceof OptionError) throw new UsageError(e.message);
    throw e;
  }
}

function readConfigFile(file: string): QuantizeJob {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`--config ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return readJob(text, file);
}

/** What options need of each other: the mode each applies to, --calib where calibration happens, a target's data. */
function checkJob(job: QuantizeJob, mode: QuantizeMode, where: (key: JobKey) => string): void {
  const misplaced = keysSet(job).filter((k) => k !== "mode" && !QUANT_OPTIONS.find((o) => o.key === k)!.modes.includes(mode));
  if (misplaced.length) {
    const modes = QUANT_OPTIONS.find((o) => o.key === misplaced[0])!.modes;
    throw new UsageError(`${misplaced.map(where).join(", ")}: ${modes.join("/")} options given with --mode ${mode}`);
  }
  const low = mode === "int4" || mode === "fp4";
  if (low && job.exclude?.some((s) => typeof s !== "string")) {
    throw new UsageError(`${where("exclude")}: { "regex" } patterns apply to --mode static and dynamic; --mode ${mode} takes node names`);
  }
  if (mode === "static" && !job.calib) throw new UsageError("static quantization needs --calib PATH (or use --mode dynamic)");
  if (low) {
    const gptq = job.lowBit?.algorithm === "gptq";
    if (gptq && !job.calib) throw new UsageError("--algorithm gptq needs calibration data: --calib PATH");
    if (!gptq && job.lowBit?.gptq) throw new UsageError("--damping and --act-order apply to --algorithm gptq");
    const asked = job.lowBit?.protect !== undefined ? "--protect" : job.lowBit?.protectMaxSize !== undefined ? "--protect-max-size" : undefined;
    if (asked && !job.calib) throw new UsageError(`${asked} measures the outputs on calibration data: give --calib PATH`);
    if (asked && job.protect === false) throw new UsageError(`${asked} and --no-protect contradict each other: give one`);
  }
  const image = (["images.mean", "images.std", "images.scale", "images.layout", "images.size"] as const).find((k) => getKey(job, k) !== undefined);
  if (image && !job.calib) throw new UsageError(`${where(image)} says how --calib images become the input: give --calib with a folder of images`);
  if (image && dataKind(job.calib!) !== "images") throw new UsageError(`${where(image)} applies to a folder of .png/.jpg images; --calib ${job.calib} holds ${dataKind(job.calib!) ?? "no data ptq reads"}`);
  const t = job.target;
  if (t) {
    if (t.drop !== undefined && !t.eval) throw new UsageError(`${where("target.drop")} "drop<=PP" needs --eval DIR with labelled data (x.npy, y.npy)`);
    if (t.sqnr === undefined && t.drop === undefined && t.agreement === undefined) {
      const k = (["target.remedy", "target.minInt8WeightShare", "target.tradeoff"] as const).find((key) => getKey(job, key) !== undefined);
      if (k) throw new UsageError(`${where(k)} needs --target, --target-sqnr or --target-agreement`);
    }
  }
}

function optionLine(o: QuantOption): string {
  const d = defaultText(o);
  return helpLine(`${o.flag}${o.arg ? ` ${o.arg}` : ""}`, `${o.help}${d ? ` (default ${d})` : ""}`);
}

const section = (s: QuantOption["section"]) => QUANT_OPTIONS.filter((o) => o.section === s && o.flag).map(optionLine);

export function quantizeHelp(): string {
  const configOnly = QUANT_OPTIONS.filter((o) => o.section === "config").map((o) => `${o.key}${defaultText(o) ? ` (default ${defaultText(o)})` : ""}`);
  return [
    "Usage: ptq quantize MODEL -o OUT [--config FILE] [options]",
    "",
    "Quantizes an ONNX model. Static mode calibrates activation ranges on --calib data and writes a QDQ model that",
    "onnxruntime runs with fused int8 kernels; dynamic mode quantizes MatMul/Gemm/Conv weights and needs no data;",
    "int4 and fp4 quantize weights only. The input file is never modified; OUT is written atomically.",
    "",
    "Options:",
    ...flagLines(OUTPUT_FLAGS),
    ...section("quantize"),
    ...flagLines(COMMAND_FLAGS),
    "",
    "Accuracy target (static mode): give the most sensitive nodes 16-bit activations, or keep them in float, until it is met",
    ...section("target"),
    "",
    `Low-bit weights (--mode ${QUANTIZE_MODES.filter((m) => m === "int4" || m === "fp4").join(" | ")}), MatMul, Gemm and Conv weights:`,
    ...section("lowbit"),
    "",
    helpLine("In --config only:", configOnly.join(", ")),
  ].join("\n");
}

/**
 * How a folder of calibration images was read, for the summary ("calibration images in DIR: input "x" = (pixel ×
 * 1/255 − 0) / 1, RGB, NCHW 224×224 (bilinear resize)"), with what to give when the job left the normalization at
 * its default: calibration ranges follow the inputs, so pixels normalized unlike the model's training are ranges
 * measured on inputs it never sees. Undefined when --calib is not a folder of images.
 */
export function imageReadingNote(job: QuantizeJob, model: ModelInputsSource): string | undefined {
  if (!job.calib || dataKind(job.calib) !== "images") return undefined;
  const plan = imagePlan(job.calib, model, jobReaderOptions(job).images);
  const told = job.images?.mean !== undefined || job.images?.std !== undefined || job.images?.scale !== undefined;
  return `calibration images in ${job.calib}: ${describeImagePlan(plan)}` +
    (told ? "" : "; if the model was trained on normalized pixels, say how with --image-mean/--image-std (ImageNet: --image-mean 0.485,0.456,0.406 --image-std 0.229,0.224,0.225) or --image-scale: the ranges are calibrated on these values");
}
