// `ptq quantize MODEL -o OUT [--config FILE] [options]`: static (calibrated) or dynamic INT8, an accuracy target, or
// low-bit weights. Options come from engine/quant/options' table (flags and --config file alike, see
// quantize-options.ts); progress goes to stderr on a terminal; --json prints the summary on stdout; exit code 0
// only on success.
import { openData } from "../engine/data/readers";
import { Model } from "../engine/onnx/model";
import type { QuantizationSummary } from "../engine/quant/index";
import { exactInt8Target } from "../engine/quant/cpu";
import { jobQConfig, jobReaderOptions } from "../engine/quant/options";
import { checkOutput, errorMessage } from "./files";
import { calibrationProgress, terminalProgress, type ProgressPrinter } from "./progress";
import { describeOutputCheck } from "../engine/quant/output-check-text";
import { imageReadingNote, parseQuantizeArgs, quantizeHelp, type QuantizeCall } from "./quantize-options";
import { floatLines } from "./summary-lines";

/**
 * Advice for a static file whose weight type was left to the target's default (weightType auto, target any or avx2:
 * uint8 weights) on a machine that runs int8 weights exactly and faster (`here`: its target, vnni or arm). Only
 * advice: the file written is the same on every machine. Dynamic mode and a weight type given by the user get none:
 * --target-cpu would not change their weights.
 */
export function targetHint(s: QuantizationSummary, here: "vnni" | "arm" | undefined): string | undefined {
  const w = s.weights;
  if (!here || s.mode !== "static" || !w?.why || w.type !== "uint8" || (w.targetCpu !== "any" && w.targetCpu !== "avx2")) return undefined;
  return `this CPU runs int8 weights exactly: --target-cpu ${here} writes them and is faster here (the PP-OCR recognisers on ` +
    `an AVX-512 VNNI CPU, batch 8: 1.9–2.0× FP32 instead of 1.15–1.26× widened, 2.2× instead of 1.2× at 8 bits), but the file is ` +
    `then not exact on x86 CPUs without VNNI (docs/quantization.md "Defaults, and why")`;
}

function describe(s: QuantizationSummary, out: string): string {
  const lines = [`wrote ${out} (${s.mode}, ${s.format}): ${s.quantized.length} nodes quantized, ${s.float.length} left in float`];
  if (s.weights) {
    lines.push(`  weights ${s.weights.type}${s.weights.reduceRange ? " (7 bits)" : ""} for target CPU "${s.weights.targetCpu}" (--target-cpu to change)`);
    if (s.weights.why) lines.push(`  ${s.weights.why}`);
    const hint = targetHint(s, exactInt8Target());
    if (hint) lines.push(`  ${hint}`);
  }
  const unsupported = Object.entries(s.unsupportedOps);
  if (unsupported.length) lines.push(`  no quantizer (float): ${unsupported.map(([k, v]) => `${k} ×${v}`).join(", ")}`);
  lines.push(...floatLines(s.float.filter((x) => !x.reason.startsWith("no quantizer"))));
  if (s.foldedActivations.length) lines.push(`  folded into the preceding Q: ${s.foldedActivations.length} Relu/Clip`);
  if (s.biasOverflow.length) lines.push(`  int32 bias overflow avoided by widening the weight scale: ${s.biasOverflow.join(", ")}`);
  const choices = Object.values(s.calibrationChoices ?? {});
  if (s.calibrationAuto) lines.push(`  calibration auto: ${s.calibrationAuto.why} (per tensor: --json calibrationChoices)`);
  else if (choices.length) {
    const counts = new Map<string, number>();
    for (const c of choices) counts.set(c.method, (counts.get(c.method) ?? 0) + 1);
    lines.push(`  calibration auto chose: ${[...counts].map(([m, n]) => `${m} ×${n}`).join(", ")} (per tensor and why: --json calibrationChoices)`);
  }
  if (s.wideActivations) lines.push(`  16-bit activations (--wide-activations): ${s.wideActivations.why}`);
  if (s.protectedLayers?.nodes.length) lines.push(`  ${s.protectedLayers.why}`);
  if (s.rounding) lines.push(`  ${s.rounding.why}${s.rounding.asked === "default" ? "" : ` (${s.rounding.seconds.toFixed(1)} s)`}`);
  if (s.outputCheck) lines.push(`  ${describeOutputCheck(s.outputCheck)}`);
  for (const w of s.warnings) lines.push(`  note: ${w}`);
  return lines.join("\n");
}

/** Static or dynamic INT8 without a target. */
async function runInt8(call: QuantizeCall, progress: ProgressPrinter): Promise<number> {
  const q = await import("../engine/quant/index");
  const { job } = call;
  const options = { overwrite: call.overwrite, optimize: job.optimize, ep: job.ep };
  let summary: QuantizationSummary;
  // The model is loaded here only to read the calibration data for its inputs.
  const model = job.calib ? await Model.load(call.model) : undefined;
  if (call.mode === "dynamic") {
    // --calib with dynamic mode: the data protection measures on (none is needed otherwise).
    const data = model ? openData(job.calib!, model.proto, jobReaderOptions(job)) : undefined;
    summary = await q.quantizeDynamic(call.model, call.output, jobQConfig(job), { ...options, ...(data ? { data, onProgress: calibrationProgress(progress) } : {}) });
  } else {
    const data = openData(job.calib!, model!.proto, jobReaderOptions(job));
    const { quantizeStatic } = await import("../engine/recovery/rounding-choice");
    summary = await quantizeStatic(model!, call.output, data, jobQConfig(job), { ...options, onProgress: calibrationProgress(progress) });
  }
  const images = model && imageReadingNote(job, model.proto);
  if (images) summary.warnings.push(images);
  progress.done();
  process.stdout.write((call.json ? JSON.stringify(summary, null, 2) : describe(summary, call.output)) + "\n");
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  let call: QuantizeCall;
  try {
    const parsed = parseQuantizeArgs(argv);
    if (parsed === "help") {
      process.stdout.write(quantizeHelp() + "\n");
      return 0;
    }
    call = parsed;
    const { job } = call;
    checkOutput(call.output, { flag: "-o", overwrite: call.overwrite, inputs: [call.model, job.calib, job.target?.eval, call.configFile], sideFiles: [".data"] });
  } catch (e) {
    process.stderr.write(`ptq quantize: ${(e as Error).message}\n\nRun \`ptq quantize --help\` for the options.\n`);
    return 2;
  }
  const progress = terminalProgress(call.json);
  try {
    if (call.mode === "int4" || call.mode === "fp4") return await (await import("./quantize-lowbit")).runLowBit(learnedLowBit(call), progress);
    const t = call.job.target;
    const rounding = call.job.rounding;
    if (rounding && rounding !== "nearest" && (t?.sqnr !== undefined || t?.drop !== undefined || t?.agreement !== undefined)) {
      throw new Error(`--rounding ${rounding} is not applied by the accuracy-target search: drop --rounding ${rounding} or the --target option`);
    }
    if (t?.sqnr !== undefined || t?.drop !== undefined || t?.agreement !== undefined) return await (await import("./quantize-target")).runTargeted(call, progress);
    return await runInt8(call, progress);
  } catch (e) {
    progress.done();
    process.stderr.write(`ptq quantize: ${errorMessage(e, { path: call.output, flag: "-o" })}\n`);
    return 1;
  }
}

/** --rounding learned in the low-bit modes needs the calibration data; for int4 it is GPTQ (so another --algorithm
 *  is refused), for FP4 engine/lowbit/fp4-rounding; --rounding auto measures it against nearest. */
function learnedLowBit(call: QuantizeCall): QuantizeCall {
  if (call.job.rounding === "adaround") throw new Error(`--rounding adaround is for static INT8 (it fits int8 codes per channel); for ${call.mode} weights use --rounding learned or auto`);
  if (call.job.rounding !== "learned" && call.job.rounding !== "auto") return call;
  if (!call.job.calib) throw new Error(`--rounding ${call.job.rounding} chooses each weight's code against its layer's outputs on the calibration data: give --calib`);
  if (call.mode === "fp4") return call;
  const algorithm = call.job.lowBit?.algorithm;
  if (algorithm && algorithm !== "gptq") throw new Error(`--rounding ${call.job.rounding} is GPTQ for int4: drop --algorithm ${algorithm} (or --rounding)`);
  return { ...call, job: { ...call.job, lowBit: { ...call.job.lowBit, algorithm: "gptq" } } };
}
