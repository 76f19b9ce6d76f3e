// `ptq quantize MODEL -o OUT --mode int4|fp4 …`: weight-only low-bit quantization (calibration data only for GPTQ).
import { openData } from "../engine/data/readers";
import { Model } from "../engine/onnx/model";
import type { LowBitOptions, LowBitReport } from "../engine/lowbit/index";
import { commaList, eachArg, oneOf, UsageError } from "./args";
import { checkOutput, errorMessage } from "./files";

export const LOWBIT_HELP = `Low-bit weights (--mode int4 | fp4), MatMul/Gemm weights (FP4 also Conv):
  --block-size N            int4: rows of K per block, a power of two 16–256 (default 32); FP4 fixes it (32/16)
  --algorithm rtn|hqq|gptq  int4 rounding: round-to-nearest (default), HQQ refinement (never worse per block), or
                            GPTQ (error feedback through the activations' Hessian; needs --calib)
  --calib PATH              GPTQ calibration data, as for static mode (.npy folder, .npz, test_data_set_*)
  --batch-size N            GPTQ: split calibration arrays into batches of N samples (default 32)
  --damping D               GPTQ: damping as a share of the Hessian's mean diagonal (default 0.01)
  --act-order               GPTQ: quantize inputs in order of decreasing activation energy (default off)
  --asymmetric              int4 with per-block zero points (default symmetric)
  --bits 2|4|8              int4 mode's width (default 4); MatMulNBits and DequantizeLinear (uint2 needs opset 25,
                            upgraded) run all three on onnxruntime CPU
  --include-gather          int4: also embedding tables (Gather on axis 0) → com.microsoft.GatherBlockQuantized
                            (off by default: on the fixture LM it adds 11–16 points of perplexity increase to
                            save 13 % of the file; worth it when the table is a large share of the model)
  --int4-format F           matmulnbits (default, com.microsoft.MatMulNBits) or qdq (opset-21 blocked DequantizeLinear)
  --accuracy-level N        MatMulNBits accuracy_level 0–4 (default 0: float activations; 4: int8, fastest)
  --fp4-format F            nvfp4 (default: blocks of 16, E4M3 scales) or mxfp4 (blocks of 32, power-of-two scales)
  --fp4-export E            runnable (default: packed codes + decode subgraph, runs on onnxruntime CPU),
                            native (opset-23 FLOAT4E2M1; onnxruntime CPU cannot run it), fake (FP4-rounded float weights)
  --exclude NAMES           comma-separated node names to keep in float, no /regex/ here (--exclude-node NAME:
                            one name, verbatim)`;


interface LowBitArgs {
  model: string;
  output: string;
  options: LowBitOptions;
  overwrite: boolean;
  json: boolean;
  calib?: string;
  batchSize: number;
}

export function parseLowBitArgs(argv: string[]): LowBitArgs {
  const files: string[] = [];
  let output: string | undefined;
  let mode: "int4" | "fp4" | undefined;
  let overwrite = false;
  let json = false;
  let calib: string | undefined;
  let batchSize = 32;
  const int4: Omit<Extract<LowBitOptions, { mode: "int4" }>, "mode"> = {};
  const fp4: Omit<Extract<LowBitOptions, { mode: "fp4" }>, "mode"> = {};
  const exclude: string[] = [];
  eachArg(argv, (arg, next) => {
    switch (arg) {
      case "-o":
      case "--output":
        output = next();
        break;
      case "--mode":
        mode = oneOf(arg, next(), ["int4", "fp4"] as const);
        break;
      case "--block-size": {
        const n = Number(next());
        if (!Number.isInteger(n) || n < 16 || n > 256 || (n & (n - 1)) !== 0) throw new UsageError("--block-size takes a power of two from 16 to 256");
        int4.blockSize = n;
        break;
      }
      case "--algorithm":
        int4.algorithm = oneOf(arg, next(), ["rtn", "hqq", "gptq"] as const);
        break;
      case "--calib":
        calib = next();
        break;
      case "--batch-size": {
        const n = Number(next());
        if (!Number.isInteger(n) || n < 1) throw new UsageError("--batch-size takes a positive integer");
        batchSize = n;
        break;
      }
      case "--damping": {
        const d = Number(next());
        if (!(d > 0 && d < 1)) throw new UsageError("--damping takes a number between 0 and 1 (e.g. 0.01)");
        int4.gptq = { ...int4.gptq, damping: d };
        break;
      }
      case "--act-order":
        int4.gptq = { ...int4.gptq, actOrder: true };
        break;
      case "--asymmetric":
        int4.symmetric = false;
        break;
      case "--bits":
        int4.bits = Number(oneOf(arg, next(), ["2", "4", "8"] as const)) as 2 | 4 | 8;
        break;
      case "--include-gather":
        int4.includeGather = true;
        break;
      case "--int4-format":
        int4.format = oneOf(arg, next(), ["matmulnbits", "qdq"] as const);
        break;
      case "--accuracy-level":
        int4.accuracyLevel = Number(oneOf(arg, next(), ["0", "1", "2", "3", "4"] as const)) as 0 | 1 | 2 | 3 | 4;
        break;
      case "--fp4-format":
        fp4.fp4Format = oneOf(arg, next(), ["mxfp4", "nvfp4"] as const);
        break;
      case "--fp4-export":
        fp4.export = oneOf(arg, next(), ["runnable", "native", "fake"] as const);
        break;
      case "--exclude":
        exclude.push(...commaList(next()));
        break;
      case "--exclude-node":
        exclude.push(next());
        break;
      case "--overwrite":
        overwrite = true;
        break;
      case "--json":
        json = true;
        break;
      default:
        if (arg.startsWith("-")) throw new UsageError(`${arg} does not apply to --mode int4/fp4 (see --help)`);
        files.push(arg);
    }
  });
  if (!mode) throw new UsageError("--mode int4 or fp4 is required here");
  if (files.length !== 1) throw new UsageError("give exactly one MODEL file");
  if (!output) throw new UsageError("-o OUT is required");
  if (mode === "fp4" && Object.keys(int4).length) throw new UsageError(`${Object.keys(int4).join(", ")}: int4 options given with --mode fp4`);
  if (mode === "int4" && Object.keys(fp4).length) throw new UsageError(`${Object.keys(fp4).join(", ")}: fp4 options given with --mode int4`);
  if (int4.algorithm === "gptq" && !calib) throw new UsageError("--algorithm gptq needs calibration data: --calib PATH");
  if (int4.algorithm !== "gptq" && (calib || int4.gptq)) throw new UsageError("--calib, --damping and --act-order apply to --algorithm gptq");
  const options: LowBitOptions = mode === "int4" ? { mode, ...int4, exclude } : { mode, ...fp4, exclude };
  return { model: files[0]!, output, options, overwrite, json, calib, batchSize };
}

function describe(r: LowBitReport, out: string, mode: string): string {
  const mean = r.layers.length ? r.layers.reduce((a, l) => a + l.sqnrDb, 0) / r.layers.length : NaN;
  const lines = [`wrote ${out} (${mode}): ${r.layers.length} weights quantized, mean weight SQNR ${mean.toFixed(1)} dB`];
  for (const l of r.layers) {
    const out = l.outputSqnrDb !== undefined ? `; output ${l.outputSqnrDb.toFixed(1)} dB (RTN ${l.rtnOutputSqnrDb!.toFixed(1)} dB)` : "";
    const rtn = (l.rtnSqnrDb !== undefined ? ` (RTN ${l.rtnSqnrDb.toFixed(1)} dB)` : "") + out;
    const shape = l.opType === "Gather" ? `[rows ${l.n}, dim ${l.k}]` : `[K ${l.k}, N ${l.n}]`;
    lines.push(`  ${l.node} (${l.opType}) ${l.weight} ${shape} block ${l.blockSize}${l.partialBlock ? ", last block partial (padded)" : ""}: ${l.sqnrDb.toFixed(1)} dB${rtn}`);
  }
  for (const s of r.skipped) lines.push(`  float: ${s.node} (${s.opType}): ${s.reason}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  if (r.warning) lines.push(`  warning: ${r.warning}`);
  return lines.join("\n");
}

export async function runLowBit(argv: string[]): Promise<number> {
  let args: LowBitArgs;
  try {
    args = parseLowBitArgs(argv);
    checkOutput(args.output, { flag: "-o", overwrite: args.overwrite, inputs: [args.model, args.calib], sideFiles: [".data"] });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`ptq quantize: ${e.message}\n\nRun \`ptq quantize --help\` for the options.\n`);
    return 2;
  }
  try {
    const { lowBitModel, lowBitModelCalibrated, saveLowBit } = await import("../engine/lowbit/index");
    const source = await Model.load(args.model);
    const { model, report } = args.calib
      ? await lowBitModelCalibrated(source, args.options, openData(args.calib, source.proto, { batchSize: args.batchSize }), {
          onProgress: (b) => process.stderr.isTTY && process.stderr.write(`\rGPTQ calibration: ${b} batches`),
        })
      : lowBitModel(source, args.options);
    if (args.calib && process.stderr.isTTY) process.stderr.write("\n");
    await saveLowBit(model, source, args.output, args.options, report, args.overwrite);
    process.stdout.write((args.json ? JSON.stringify(report, null, 2) : describe(report, args.output, args.options.mode)) + "\n");
    return 0;
  } catch (e) {
    process.stderr.write(`ptq quantize: ${errorMessage(e, { path: args.output, flag: "-o" })}\n`);
    return 1;
  }
}
