// `ptq quantize MODEL -o OUT [options]`: static (calibrated) or dynamic INT8 quantization from the command line.
// Progress goes to stderr on a terminal; --json prints the QuantizationSummary on stdout; exit code 0 only on success.
import { openData } from "../engine/data/readers";
import { Model } from "../engine/onnx/model";
import type { ExecutionProvider } from "../engine/runtime/session";
import type { QConfig, QuantizationSummary, QType } from "../engine/quant/index";
import { TARGET_CPUS, type CalibrationMethod, type NodeSelector, type QuantFormat, type TargetCpu, type WeightType } from "../engine/quant/types";
import { LOWBIT_HELP } from "./quantize-lowbit";
import { TARGET_HELP, extractTarget, runTargeted, type CliTarget } from "./quantize-target";
import { commaList, eachArg, oneOf, UsageError } from "./args";
import { checkOutput, errorMessage } from "./files";

const HELP = `Usage: ptq quantize MODEL -o OUT [options]

Quantizes an ONNX model to INT8. Static mode (default) calibrates activation ranges on --calib data and writes a
QDQ model that onnxruntime runs with fused int8 kernels; dynamic mode quantizes MatMul/Gemm/Conv weights and needs no
data.
The input file is never modified; OUT is written atomically.

Options:
  -o, --output OUT          where to write the quantized model (required)
  --calib PATH              calibration data: a folder of .npy files, an .npz file or folder, or ONNX test_data_set_* folders
  --batch-size N            split calibration arrays into batches of N samples (default 32)
  --mode M                  static (default), dynamic, int4 or fp4 (weight-only low bits, see below)
  --method M                calibration: mse (default), minmax, entropy, percentile
  --percentile P            for --method percentile (default 99.999)
  --per-tensor              per-tensor weights (default: per-channel for Conv/MatMul/Gemm)
  --format qdq|qoperator    default qdq (portable); qoperator = QLinear* ops, onnxruntime only
  --activation-type T       uint8 (default), int8, uint16, int16
  --target-cpu C            the CPU the model is for: any (default), avx2, vnni, arm, native (this machine's);
                            decides the default weight type, never the machine that quantizes
  --weight-type T           int8 or uint8 (default: uint8 for any/avx2, exact on every CPU; int8 for vnni/arm)
  --reduce-range            7-bit weights: with --weight-type int8 on CPUs without VNNI, ~1.5x faster than the
                            default and within 0.3 pp on our fixtures (docs/int8-speed.md)
  --exclude NODES           comma-separated node names to keep in float; /regex/ matches names
  --exclude-node NAME       one node to keep in float, its name taken exactly as given (commas, slashes and
                            all); repeat for more
  --op-types OPS            comma-separated op types to quantize (default: all supported)
  --ep cpu|cuda             execution provider for calibration (default cpu)
  --no-optimize             skip onnxruntime's 'basic' pre-optimization (BatchNorm folding, constant folding)
  --overwrite               replace OUT if it exists
  --json                    print the summary as JSON on stdout
  -h, --help                show this help

${TARGET_HELP}

${LOWBIT_HELP}`;

interface Args {
  model: string;
  output: string;
  calib: string | undefined;
  batchSize: number;
  mode: "static" | "dynamic";
  json: boolean;
  overwrite: boolean;
  optimize: boolean;
  ep: ExecutionProvider;
  config: QConfig;
}


/** --exclude's list: comma-separated, "/re/" a regular expression. --exclude-node takes one name verbatim instead. */
function selectors(list: string): NodeSelector[] {
  return commaList(list).map((s) => (s.length > 2 && s.startsWith("/") && s.endsWith("/") ? new RegExp(s.slice(1, -1)) : s));
}

export function parseArgs(argv: string[]): Args {
  const files: string[] = [];
  const a: Omit<Args, "model" | "output"> & { output?: string } = {
    calib: undefined,
    batchSize: 32,
    mode: "static",
    json: false,
    overwrite: false,
    optimize: true,
    ep: "cpu",
    config: {},
  };
  const calibration: NonNullable<QConfig["calibration"]> = {};
  eachArg(argv, (arg, next) => {
    switch (arg) {
      case "-o":
      case "--output":
        a.output = next();
        break;
      case "--calib":
        a.calib = next();
        break;
      case "--batch-size": {
        const n = Number(next());
        if (!Number.isInteger(n) || n < 1) throw new UsageError("--batch-size takes a positive integer");
        a.batchSize = n;
        break;
      }
      case "--mode":
        a.mode = oneOf(arg, next(), ["static", "dynamic"] as const);
        break;
      case "--method":
        calibration.method = oneOf<CalibrationMethod>(arg, next(), ["minmax", "entropy", "percentile", "mse"]);
        break;
      case "--percentile":
        calibration.percentile = Number(next());
        break;
      case "--per-tensor":
        a.config.perChannel = false;
        break;
      case "--format":
        a.config.format = oneOf<QuantFormat>(arg, next(), ["qdq", "qoperator"]);
        break;
      case "--activation-type":
        a.config.activationType = oneOf<QType>(arg, next(), ["uint8", "int8", "uint16", "int16"]);
        break;
      case "--weight-type":
        a.config.weightType = oneOf<WeightType>(arg, next(), ["int8", "uint8"]);
        break;
      case "--target-cpu":
        a.config.targetCpu = oneOf<TargetCpu>(arg, next(), TARGET_CPUS);
        break;
      case "--reduce-range":
        a.config.reduceRange = true;
        break;
      case "--exclude":
        a.config.exclude = [...(a.config.exclude ?? []), ...selectors(next())];
        break;
      case "--exclude-node":
        a.config.exclude = [...(a.config.exclude ?? []), next()];
        break;
      case "--op-types":
        a.config.opTypes = commaList(next());
        break;
      case "--ep":
        a.ep = oneOf<ExecutionProvider>(arg, next(), ["cpu", "cuda"]);
        break;
      case "--no-optimize":
        a.optimize = false;
        break;
      case "--overwrite":
        a.overwrite = true;
        break;
      case "--json":
        a.json = true;
        break;
      default:
        if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
        files.push(arg);
    }
  });
  if (Object.keys(calibration).length) a.config.calibration = calibration;
  if (files.length !== 1) throw new UsageError("give exactly one MODEL file");
  if (!a.output) throw new UsageError("-o OUT is required");
  if (a.mode === "static" && !a.calib) throw new UsageError("static quantization needs --calib PATH (or use --mode dynamic)");
  return { ...a, model: files[0]!, output: a.output };
}

function progressBar(enabled: boolean): { onProgress?: (done: number, total?: number) => void; done(): void } {
  if (!enabled) return { done() {} };
  let drawn = false;
  return {
    onProgress(done, total) {
      const width = 30;
      const bar = total ? "#".repeat(Math.round((done / total) * width)).padEnd(width, ".") : "";
      process.stderr.write(`\rcalibrating ${total ? `[${bar}] ${done}/${total}` : `${done}`} batches`);
      drawn = true;
    },
    done() {
      if (drawn) process.stderr.write("\n");
    },
  };
}

function describe(s: QuantizationSummary, out: string): string {
  const lines = [`wrote ${out} (${s.mode}, ${s.format}): ${s.quantized.length} nodes quantized, ${s.float.length} left in float`];
  if (s.weights) lines.push(`  weights ${s.weights.type} for target CPU "${s.weights.targetCpu}" (--target-cpu to change)`);
  const unsupported = Object.entries(s.unsupportedOps);
  if (unsupported.length) lines.push(`  no quantizer (float): ${unsupported.map(([k, v]) => `${k} ×${v}`).join(", ")}`);
  for (const f of s.float.filter((x) => !x.reason.startsWith("no quantizer"))) lines.push(`  float: ${f.name || "(unnamed)"} (${f.opType}): ${f.reason}`);
  if (s.foldedActivations.length) lines.push(`  folded into the preceding Q: ${s.foldedActivations.length} Relu/Clip`);
  if (s.biasOverflow.length) lines.push(`  int32 bias overflow avoided by widening the weight scale: ${s.biasOverflow.join(", ")}`);
  for (const w of s.warnings) lines.push(`  note: ${w}`);
  return lines.join("\n");
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  const mode = argv[argv.indexOf("--mode") + 1];
  if (argv.includes("--mode") && (mode === "int4" || mode === "fp4")) return (await import("./quantize-lowbit")).runLowBit(argv);
  let args: Args;
  let target: CliTarget | undefined;
  let evalDir: string | undefined;
  try {
    const t = extractTarget(argv);
    target = t.target;
    evalDir = t.evalDir;
    args = parseArgs(t.rest);
    if (target && args.mode !== "static") throw new UsageError("--target/--target-sqnr apply to static quantization");
    checkOutput(args.output, { flag: "-o", overwrite: args.overwrite, inputs: [args.model, args.calib, evalDir], sideFiles: [".data"] });
  } catch (e) {
    process.stderr.write(`ptq quantize: ${(e as Error).message}\n\nRun \`ptq quantize --help\` for the options.\n`);
    return 2;
  }
  if (target) {
    try {
      const { model, output, calib, batchSize, overwrite, json, config, optimize, ep } = args;
      return await runTargeted({ model, output, calib: calib!, batchSize, overwrite, json, config, prepareOptions: { optimize, ep } }, target, evalDir);
    } catch (e) {
      process.stderr.write(`ptq quantize: ${errorMessage(e, { path: args.output, flag: "-o" })}\n`);
      return 1;
    }
  }
  const q = await import("../engine/quant/index");
  const bar = progressBar(process.stderr.isTTY === true && !args.json);
  try {
    let summary: QuantizationSummary;
    const options = { overwrite: args.overwrite, optimize: args.optimize, ep: args.ep };
    if (args.mode === "dynamic") {
      summary = await q.quantizeDynamic(args.model, args.output, args.config, options);
    } else {
      const model = await Model.load(args.model);
      const data = openData(args.calib!, model.proto, { batchSize: args.batchSize });
      summary = await q.quantizeStatic(args.model, args.output, data, args.config, { ...options, onProgress: bar.onProgress });
    }
    bar.done();
    process.stdout.write((args.json ? JSON.stringify(summary, null, 2) : describe(summary, args.output)) + "\n");
    return 0;
  } catch (e) {
    bar.done();
    process.stderr.write(`ptq quantize: ${errorMessage(e, { path: args.output, flag: "-o" })}\n`);
    return 1;
  }
}
