// `ptq quantize MODEL -o OUT --mode int4|fp4 …`: weight-only low-bit quantization. Calibration data, when given,
// feeds GPTQ and measures the outputs against the float model's, keeping them at a target (--protect, default on).
// The options are the table's lowBit.* rows (engine/quant/options), read by quantize-options.ts.
import { openData } from "../engine/data/readers";
import { Model } from "../engine/onnx/model";
import type { LearnedRoundingOption, LowBitOptions, LowBitReport } from "../engine/lowbit/index";
import { describeOutput } from "../engine/lowbit/describe";
import { DEFAULT_BATCH_SIZE, jobReaderOptions, type QuantizeJob } from "../engine/quant/options";
import { UsageError } from "./args";
import { calibrationProgress, type ProgressPrinter } from "./progress";
import { imageReadingNote, parseQuantizeArgs, type QuantizeCall } from "./quantize-options";
import { floatLines, layerLines } from "./summary-lines";

/** The job's low-bit options as engine/lowbit takes them (checkJob has refused the other mode's options). */
export function lowBitOptions(job: QuantizeJob, mode: "int4" | "fp4"): LowBitOptions & LearnedRoundingOption {
  const exclude = (job.exclude ?? []).filter((s): s is string => typeof s === "string");
  const { fp4Format, export: fp4Export, protect: db, protectMaxSize: maxSize, ...int4 } = job.lowBit ?? {};
  const protect = { protect: job.protect === false ? (false as const) : { ...(db !== undefined && { minOutputSqnrDb: db }), ...(maxSize !== undefined && { maxSize }) } };
  const rounding = job.rounding && { rounding: job.rounding };
  return mode === "int4"
    ? { mode, ...int4, exclude, ...protect, ...rounding }
    : { mode, ...(fp4Format && { fp4Format }), ...(fp4Export && { export: fp4Export }), exclude, ...protect, ...rounding };
}

/** argv as low-bit options (for tests and callers that only want the options). */
export function parseLowBitArgs(argv: string[]): { model: string; output: string; options: LowBitOptions; calib?: string; batchSize: number } {
  const c = parseQuantizeArgs(argv);
  if (c === "help" || (c.mode !== "int4" && c.mode !== "fp4")) throw new UsageError("--mode int4 or fp4 is required here");
  return { model: c.model, output: c.output, options: lowBitOptions(c.job, c.mode), calib: c.job.calib, batchSize: c.job.batchSize ?? DEFAULT_BATCH_SIZE };
}

function describe(r: LowBitReport, out: string, mode: string): string {
  const mean = r.layers.length ? r.layers.reduce((a, l) => a + l.sqnrDb, 0) / r.layers.length : NaN;
  const int8 = r.layers.filter((l) => l.bits === 8).length;
  // int8 layers are protected ones (the ladder stepped them up), LSTMs (no low-bit form) or small ones (FP4's form
  // would be larger).
  const stepped = new Set(r.output?.protected.filter((p) => p.as === "int8").map((p) => p.node));
  const why = (l: LowBitReport["layers"][number]) => (stepped.has(l.node) ? "protected" : l.opType === "LSTM" ? "LSTM" : "small");
  const kinds = ["protected", "small", "LSTM"].map((k) => [k, r.layers.filter((l) => l.bits === 8 && why(l) === k).length] as const).filter(([, n]) => n);
  const split = kinds.map(([k, n]) => `${n} ${k}`).join(", ");
  const lines = [`wrote ${out} (${mode}): ${r.layers.length} weights quantized${int8 ? ` (${int8} of them int8: ${split})` : ""}, mean weight SQNR ${mean.toFixed(1)} dB`];
  const o = r.output;
  if (o) {
    lines.push(`  ${describeOutput(o)}`);
  } else {
    lines.push("  outputs not measured: give --calib to measure them against the float model and keep them at a target (--protect DB)");
  }
  const layer = (l: LowBitReport["layers"][number]) => {
    const out = l.outputSqnrDb !== undefined ? `; output ${l.outputSqnrDb.toFixed(1)} dB (RTN ${l.rtnOutputSqnrDb!.toFixed(1)} dB)` : "";
    const rtn = (l.rtnSqnrDb !== undefined ? ` (RTN ${l.rtnSqnrDb.toFixed(1)} dB)` : "") + out;
    const shape = l.opType === "Gather" ? `[rows ${l.n}, dim ${l.k}]` : `[K ${l.k}, N ${l.n}]`;
    const form = l.bits === 8 ? `int8 per ${l.opType === "LSTM" ? "gate row" : "channel"} (${why(l)})` : `block ${l.blockSize}${l.partialBlock ? `, last block partial${l.opType === "Conv" && mode === "int4" ? "" : " (padded)"}` : ""}`;
    return `  ${l.node} (${l.opType}) ${l.weight} ${shape} ${form}: ${l.sqnrDb.toFixed(1)} dB${rtn}`;
  };
  lines.push(...layerLines(r.layers, layer));
  lines.push(...floatLines(r.skipped.map((s) => ({ name: s.node, opType: s.opType, reason: s.reason }))));
  for (const n of r.notes) lines.push(`  note: ${n}`);
  if (r.warning) lines.push(`  warning: ${r.warning}`);
  return lines.join("\n");
}

export async function runLowBit(call: QuantizeCall, progress: ProgressPrinter): Promise<number> {
  const options = lowBitOptions(call.job, call.mode as "int4" | "fp4");
  const { calib } = call.job;
  const { lowBitModel, lowBitModelCalibrated, lowBitProgress, saveLowBit } = await import("../engine/lowbit/index");
  const source = await Model.load(call.model);
  const { model, report } = calib
    ? await lowBitModelCalibrated(source, options, openData(calib, source.proto, jobReaderOptions(call.job)), lowBitProgress(options, calibrationProgress(progress)))
    : lowBitModel(source, options);
  progress.done();
  const images = imageReadingNote(call.job, source.proto);
  if (images) report.notes.push(images);
  await saveLowBit(model, source, call.output, options, report, call.overwrite);
  process.stdout.write((call.json ? JSON.stringify(report, null, 2) : describe(report, call.output, options.mode)) + "\n");
  return 0;
}
