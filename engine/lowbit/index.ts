// Low-bit weight quantization (INT4 blockwise, FP4 MXFP4/NVFP4): the public entry.
import { comparedOutputs, worstRatio } from "../calibrate/activation-precision";
import { commonRows, singleRows } from "../calibrate/rows";
import { phaseProgress } from "../calibrate/progress";
import type { CollectOptions } from "../calibrate/types";
import { fixedBatchSize, rereadable, type CalibrationData, type Feeds } from "../data/feeds";
import { dropUnreadInitializers, onCompared } from "../onnx/graph";
import { Model } from "../onnx/model";
import { upgradeOpset } from "../onnx/upgrade";
import { dropUnreadWeights, flushDenormalWeights, initializersOutOfInputs } from "../quant/preprocess";
import { foldIntoConvs } from "../quant/fold-conv-transpose";
import { verifyRunnable } from "../runtime/verify";
import { crossFit, crossFitLines, learnedWins, ROUNDING_BOUND_DB, ROUNDING_ROWS, splitRows } from "../quant/cross-fit";
import type { QConfig } from "../quant/types";
import { db, differenceText } from "../quant/weight-format";
import type { LearnedFp4 } from "./fp4-rewrite";
import type { LayerHessian } from "./gptq";
import { learnFp4Rounding, type Fp4Rounding } from "./fp4-rounding";
import { batchesForRows, collectHessians, collectLayerHessians, hessianTargetBytes, inPasses, layerTargetBytes, PASS_BYTES, type HessianCollectOptions, type HessianTarget, type Hessians, type LayerTarget } from "./hessian";
import { INT8_WEIGHT_OPSET } from "./int8-rewrite";
import { protectLowBit, take, takeRows, type OutputReport } from "./protect";
import { qdqOpset } from "./types";
import { convHessianKey, GptqCodes, int4ConvTargets, lowBitActivations, lowBitForms, quantizeWeightsLowBit, type GptqSource, type HessianMap, type LowBitOptions, type LowBitReport } from "./rewrite";

export { lowBitActivations, quantizeWeightsLowBit } from "./rewrite";
export { GptqCodes } from "./rewrite";
export type { Fp4Options, GptqSource, HessianMap, Int4Options, LowBitLayer, LowBitOptions, LowBitReport } from "./rewrite";
export { DEFAULT_PROTECT_DB, DEFAULT_PROTECT_MAX_SIZE, protectLowBit } from "./protect";
export type { OutputReport, ProtectOptions } from "./protect";
export { E2M1_TABLE, FP4_BLOCK_SIZE, dequantizeFp4, quantizeFp4 } from "./fp4";
export type { Fp4Blocks, Fp4Format } from "./fp4";
export { dequantizeBlockwise, quantizeBlockwise } from "./intblock";
export type { BlockAlgorithm, BlockQuantOptions, BlockQuantized } from "./intblock";
export { HessianAccumulator, gptqQuantize, outputSqnrDb } from "./gptq";
export type { GptqOptions, GptqResult } from "./gptq";
export { collectHessians } from "./hessian";
export type { HessianCollectOptions, Hessians } from "./hessian";

export { learnFp4Rounding } from "./fp4-rounding";
export type { Fp4Rounding, Fp4RoundingOptions } from "./fp4-rounding";

/** QConfig.rounding for the low-bit modes: "learned" chooses each weight's code against its layer's outputs on the
 *  calibration data (int4: GPTQ; FP4: fp4-rounding.ts). Needs lowBitModelCalibrated. */
export interface LearnedRoundingOption {
  rounding?: QConfig["rounding"];
}

const RUNNABLE_FP4_OPSET = 10;

const needsData = (o: LowBitOptions) => o.mode === "int4" && o.algorithm === "gptq";

/**
 * Returns a copy of `model` with low-bit weights; the input model is left untouched. Nodes whose weights cannot be
 * quantized (not constant, not 2-D, shared, excluded) stay float and are listed in `report.skipped`. GPTQ needs
 * calibration data: use lowBitModelCalibrated.
 */
export function lowBitModel(model: Model, options: LowBitOptions & LearnedRoundingOption, hessians?: GptqSource, learned?: ReadonlyMap<string, LearnedFp4>): { model: Model; report: LowBitReport } {
  if (needsData(options) && !hessians) throw new Error("GPTQ needs calibration data: use lowBitModelCalibrated(model, options, data)");
  if ((options.rounding === "learned" || options.rounding === "auto") && !learned && !hessians) throw new Error(`${options.rounding === "auto" ? "rounding auto measures learned rounding, which" : "learned rounding"} needs calibration data: use lowBitModelCalibrated(model, options, data) (--calib)`);
  return lowBitFrom(lowBitBase(model), model, options, hessians, learned);
}

/** A model made ready for the low-bit rewrite (its weights cleaned once), and what was done to it. */
interface LowBitBase {
  model: Model;
  notes: readonly string[];
}

/** The cleaning every low-bit conversion of `model` starts from: done once for the many conversions of one pass. */
function lowBitBase(model: Model): LowBitBase {
  // Sharing the model's initializers: the cleaning below replaces a weight it changes (denormals flushed) instead of
  // changing it in place, as the rewrite does, so the pass holds no second copy of the float weights.
  const copy = model.cloneSharingInitializers();
  // Weights an old exporter also lists as graph inputs (IR < 4) could be fed at run time, so they cannot be stored
  // in low bits: they become weights only, as for INT8.
  const notes: string[] = [];
  initializersOutOfInputs(copy, notes);
  dropUnreadWeights(copy, notes);
  // BatchNormalization into the Conv before it, as onnxruntime's optimizer does for INT8: the 4-bit weights are the
  // folded ones, and no float BatchNormalization with its parameters stays behind in the file.
  const folded = foldIntoConvs(copy);
  if (folded.length) dropUnreadInitializers(copy.graph, new Set(folded));
  // As prepare() does for INT8: the weights that stay float (biases, layers kept float) keep no denormal values,
  // on which x86 float kernels run slowly (ppocr-v3-det-en's low-bit files held 725).
  flushDenormalWeights(copy, notes);
  return { model: copy, notes };
}

/** lowBitModel from a base: the rewrite replaces initializers and never changes one in place, so the copy shares
 *  the base's (Model.cloneSharingInitializers). `model` is the one the base was made from (for the report). */
function lowBitFrom(base: LowBitBase, model: Model, options: LowBitOptions & LearnedRoundingOption, hessians?: GptqSource, learned?: ReadonlyMap<string, LearnedFp4>): { model: Model; report: LowBitReport } {
  const copy = base.model.cloneSharingInitializers();
  const notes = [...base.notes];
  // The standard ONNX forms need newer types: uint4/uint8 codes and blocked DequantizeLinear (opset 21), uint2 (25),
  // FLOAT4E2M1 (23); the runnable FP4 decode subgraph needs Mod and Slice with inputs (10).
  const writes = lowBitForms(copy, options);
  const form =
    options.mode === "int4" && (options.format === "qdq" || writes.int4Convs)
      ? qdqOpset(options.bits ?? 4)
      : options.mode === "fp4"
        ? options.export === "native" ? 23 : options.export === "fake" ? 0 : RUNNABLE_FP4_OPSET
        : 0;
  // Layers stepped up to int8 weights, and FP4's small layers, need per-axis DequantizeLinear.
  const needs = Math.max(form, writes.int8Weights ? INT8_WEIGHT_OPSET : 0);
  const upgraded = needs > (copy.opset() ?? 0);
  if (upgraded) upgradeOpset(copy, needs);
  const report = quantizeWeightsLowBit(copy, options, hessians, learned);
  report.notes.unshift(...notes);
  if (upgraded) report.notes.push(`upgraded the model from opset ${model.opset()} to ${needs} for this form`);
  return { model: copy, report };
}

/** What lowBitModelCalibrated reports as it goes, and the signal that stops it between steps. */
export interface LowBitCollectOptions extends HessianCollectOptions {
  /** Protection's measurement of each layer alone, layers done of their total. */
  onRankProgress?(layers: number, total: number): void;
  /** FP4 learned rounding's fits (and rounding auto's measurement) done of their total. */
  onRoundingProgress?(done: number, total: number): void;
  /** GPTQ's Hessians collected and held at once, in bytes (default PASS_BYTES, 256 MiB): where the int4 layers'
   *  need more and the data reads again, they are collected and rounded in passes (collectGptq). */
  passBytes?: number;
}

/**
 * lowBitModelCalibrated's progress as one calibrate()-style `onProgress(done, total, phase)`: each stage under the
 * name `ptq quantize` and the notebook show, with the seconds left once a step of it has been timed. `signal` stops
 * the work between steps.
 */
export function lowBitProgress(options: LearnedRoundingOption & { mode?: LowBitOptions["mode"] }, onProgress: CollectOptions["onProgress"], signal?: AbortSignal): LowBitCollectOptions {
  const rounding = `${options.mode === "int4" ? "GPTQ int4 rounding" : "learned FP4 rounding"}${options.rounding === "learned" ? "" : " (rounding auto: fitted on half the rows, judged on the others)"}`;
  const reporting = { onProgress, signal };
  return {
    onProgress: (batches) => onProgress?.(batches, undefined, { phase: "GPTQ calibration", unit: "batches" }),
    onRankProgress: phaseProgress(reporting, "protection: measuring each layer alone", "layers"),
    onRoundingProgress: phaseProgress(reporting, rounding, "steps"),
    ...(signal && { signal }),
  };
}

/**
 * lowBitModel with calibration data (any iterable of feeds, e.g. openData(dir, model)). For GPTQ, the activations
 * feeding each quantized weight are run through the model batch by batch and folded into Σ xᵀx first. Then the
 * outputs are measured against the float model's on the first batches and, unless `options.protect` is false,
 * the layers that cost the outputs most get int8 weights or stay float until they meet its target, within its size
 * cap (engine/lowbit/protect).
 */
export async function lowBitModelCalibrated(
  model: Model,
  requested: LowBitOptions & LearnedRoundingOption,
  given: CalibrationData,
  collect: LowBitCollectOptions = {},
): Promise<{ model: Model; report: LowBitReport }> {
  // Rows, not batches: protection's 8, rounding's 32 and GPTQ's runs are the same rows from a stacked file as from a
  // folder of single samples.
  const data = singleRows(given, fixedBatchSize(model) === undefined);
  const { rounding: asked, ...rest } = requested;
  // FP4 and int4 with calibration data round "auto" unless asked otherwise (int4: unless an algorithm is asked):
  // fitted codes where rows they were not fitted on measure them better (docs/lowbit.md §4, §6: FP4 on two calibration
  // sets of the corpus took them on 7 of 19 models × sets, int4 on 9 of 24, each level or a gain held out; neither lost on one).
  const byDefault = rest.mode === "fp4" || (rest.mode === "int4" && rest.algorithm === undefined);
  const rounding = asked ?? (byDefault ? "auto" : undefined);
  if (rounding === "adaround") throw new Error(`rounding "adaround" is not for ${rest.mode} weights: static INT8 takes it; for ${rest.mode} use rounding "learned" or "auto"`);
  // Learned rounding for int4 is GPTQ (error feedback on the block grid; "auto" writes its codes where rows they were
  // not fitted on measure them better than nearest ones); for FP4, fp4-rounding.ts.
  const options: LowBitOptions = (rounding === "learned" || rounding === "auto") && rest.mode === "int4" ? { ...rest, algorithm: "gptq" } : rest;
  const protect = options.protect || {};
  const measureBatches = protect.maxBatches ?? 8;
  let kept: Feeds[] = [];
  let hessians: GptqSource | undefined;
  let gptqNote: string | undefined;
  const gptq = needsData(options);
  // Protection chooses on nearest codes when codes fitted on the calibration rows will be written (learned FP4 codes,
  // GPTQ's int4 ones): measured on the rows they were fitted on, they read better than rows they were not fitted on
  // do, and protection stepped up fewer layers than its target needs held out (docs/lowbit.md §4). Then learned FP4
  // codes are fitted for the layers it leaves FP4 only. Measure-only (protect false) measures what is written, fitted
  // first, but rounding auto's nearest side is measured first (the written model after it).
  const wantsLearned = (rounding === "learned" || rounding === "auto") && options.mode === "fp4";
  const onNearest = (wantsLearned || gptq) && (options.protect !== false || rounding === "auto");
  // Rounding auto judges on ROUNDING_ROWS rows, as FP4's does (takeRows).
  const autoRows = rounding === "auto" ? ([Math.max(measureBatches, batchesForRows()), ROUNDING_ROWS] as const) : undefined;
  // GPTQ's Hessians wait for protection's choice where data read again starts over (an array, openData's readers):
  // then only the layers it leaves int4 get them (none on ppocr-v4-rec-en, whose every layer it steps up: 19.4 →
  // 12.2 s). Data that reads once is read in one pass that keeps the rows protection measures on.
  const deferred = gptq && onNearest && rereadable(data);
  // Every conversion below starts from one cleaned copy of the model.
  const base = lowBitBase(model);
  // The cleaned copy (BatchNormalizations folded) is the float model every fit and measurement below reads: GPTQ's and
  // learned FP4 codes are fitted to its weights, which the conversions write.
  const float = base.model;
  const convert = (o: LowBitOptions, h: GptqSource | undefined, codes: Fp4Rounding["learned"] | undefined) => lowBitFrom(base, model, o, h, codes);
  // GPTQ's codes for the layers `o` leaves int4, in passes where their Hessians would not fit one (collectGptq).
  const gptqFor = (o: LowBitOptions, rows: CalibrationData, convRows: readonly Feeds[], reporting: LowBitCollectOptions) =>
    collectGptq(float, o, rows, convRows, reporting, rounding, (codes) => convert(o, codes, undefined));
  if (gptq && !deferred && rereadable(data) && gptqPasses(float, options, collect.passBytes).length > 1) {
    kept = autoRows ? await takeRows(data, ...autoRows) : await take(data, measureBatches);
    ({ source: hessians, note: gptqNote } = await gptqFor(options, data, kept.slice(0, measureBatches), collect));
  } else if (gptq && !deferred) {
    const h = await collectHessians(float, lowBitActivations(float, options), recordFirst(data, autoRows?.[0] ?? measureBatches, kept, autoRows?.[1]), collect);
    // No MatMul/Gemm to observe (a convolutional model): the data was not read, protection still needs its batches.
    if (h.batches === 0) kept = autoRows ? await takeRows(data, ...autoRows) : await take(data, measureBatches);
    ({ source: hessians, note: gptqNote } = await withConvHessians(float, options, h, kept.slice(0, measureBatches), collect, rounding));
  } else if (gptq) {
    kept = autoRows ? await takeRows(data, ...autoRows) : await take(data, measureBatches);
  } else {
    // FP4's learned rounding (and auto's judging) reads at least the batches its row budget samples, and more until
    // they hold ROUNDING_ROWS rows: oww-hello-deepa's codes fitted on its first 8 samples lost 1.9 dB held out, on 16
    // they gain 0.55 dB (docs/lowbit.md §4).
    if (rounding === "learned" || rounding === "auto") kept = await takeRows(data, Math.max(measureBatches, batchesForRows()), ROUNDING_ROWS);
    else kept = await take(data, measureBatches);
  }
  let learnedOnNearest: string | undefined;
  // Learned FP4 codes for the layers `o` leaves FP4 (each layer's codes are fitted on its inputs from the float model,
  // so fitting fewer layers changes none of theirs).
  const fit = (o: Parameters<typeof learnFp4Rounding>[1]) => (rows: readonly Feeds[]) => learnFp4Rounding(float, o, rows, { threads: collect.threads, signal: collect.signal });
  // Protected layers get int8 weights or stay float, as protection's ladder asks; `codes`: learned FP4 codes, or
  // undefined for nearest rounding.
  const stepped = <T extends LowBitOptions>(o: T, up: { int8: readonly string[]; float: readonly string[] }): T =>
    up.int8.length || up.float.length ? { ...o, exclude: [...(o.exclude ?? []), ...up.float], int8: [...(o.int8 ?? []), ...up.int8] } : o;
  const converting = (o: LowBitOptions, h: GptqSource | undefined, codes: Fp4Rounding["learned"] | undefined) => {
    let full: ReturnType<typeof lowBitModel> | undefined;
    return (up: { int8: readonly string[]; float: readonly string[] }) =>
      up.int8.length || up.float.length ? convert(stepped(o, up), h, codes) : (full ??= convert(o, h, codes));
  };
  const keepingWith = (codes: Fp4Rounding["learned"] | undefined) => converting(options, hessians, codes);
  let learned = wantsLearned && !onNearest && options.mode === "fp4" ? await fit(options)(kept) : undefined;
  const nearestOptions: LowBitOptions = options.mode === "int4" ? { ...options, algorithm: "rtn" } : options;
  const judge = onNearest ? converting(nearestOptions, undefined, undefined) : keepingWith(learned?.learned);
  // The ladder covers every layer the pass stores in fewer bits than float, FP4's small int8 layers too (a model that
  // cannot afford 8-bit weights in its stem, as the corpus's ppocr-v4-rec-en, needs them float), but not those the
  // caller asked int8.
  const askedInt8 = new Set(options.int8 ?? []);
  const chosen = await protectLowBit(
    float,
    (up) => {
      const b = judge(up);
      return { model: b.model, layers: b.report.layers.filter((l) => !askedInt8.has(l.node)) };
    },
    kept,
    { ...protect, measureOnly: options.protect === false, signal: collect.signal, threads: collect.threads, onProgress: collect.onRankProgress },
  );
  // The chosen conversion again, for its report (conversions are deterministic); protected layers kept float are
  // listed as skipped, with why.
  const step = protectedAs(chosen.output);
  const atStep = judge(step);
  const lowBitLayers = new Set(atStep.report.layers.filter((l) => l.bits !== 8).map((l) => l.node));
  // The options at protection's step: the layers learned codes and GPTQ's Hessians are for (int4 on ppocr-v3-rec-en:
  // 20 of 45 left int4).
  const left = stepped(options, step);
  let gptqWritten = gptq;
  // Deferred: the data read again for the Hessians of the codes written, the MatMuls' over all of it, the Convs' over
  // the batches protection measured on, as the one pass gives them (the same codes); under rounding auto only once
  // it has chosen GPTQ (its half fits collect their own: nothing is collected for codes not written).
  const collectWritten = async () => {
    ({ source: hessians, note: gptqNote } = await gptqFor(left, data, kept.slice(0, measureBatches), collect));
  };
  if (deferred && !lowBitLayers.size) {
    gptqWritten = false;
    gptqNote = "GPTQ calibration skipped: protection left no layer int4 (each one has int8 weights or stays float)";
  } else if (deferred && rounding !== "auto") await collectWritten();
  let autoNote: string | undefined;
  if (wantsLearned && onNearest && left.mode === "fp4" && lowBitLayers.size) {
    // Learned codes for the layers left FP4 at protection's step (not its int8 ones, protected or small, nor float ones).
    const fitFp4 = fit({ ...left, exclude: [...(left.exclude ?? []), ...atStep.report.layers.filter((l) => l.bits === 8).map((l) => l.node)] });
    // Progress in steps: auto's two fits and its measurement, then the fit on all rows where it takes them; learned's fit.
    const steps = rounding === "auto" ? 4 : 1;
    const onStep = (done: number) => collect.onRoundingProgress?.(done, steps);
    onStep(0);
    if (rounding === "auto") {
      // Learned codes at protection's step, against nearest ones at the same step, judged on rows they were not fitted
      // on; fitted on all the rows only where they are taken.
      const choice = await chooseLearnedRounding(float, atStep.model, (codes: Fp4Rounding["learned"]) => keepingWith(codes)(step).model, kept, async (rows) => (await fitFp4(rows)).learned, FP4_CODES, collect.threads, onStep);
      autoNote = asked ? choice.why : `${choice.why}. ${DEFAULT_AUTO_NOTE}`;
      if (choice.learned) learned = await fitFp4(kept);
    } else learned = await fitFp4(kept);
    onStep(steps);
  }
  // int4 rounding auto: GPTQ codes (Hessians of every other kept row, then of the rows between) against nearest ones
  // at protection's step, judged on rows each fit did not see; the codes written are GPTQ's from all the data.
  if (gptq && rounding === "auto" && lowBitLayers.size) {
    const onStep = (done: number) => collect.onRoundingProgress?.(done, 3);
    onStep(0);
    // Hessians for the layers left int4 at protection's step only, the Convs' on all the fit's rows.
    const fitGptq = async (rows: readonly Feeds[]) => (await gptqFor(left, rows, rows, { threads: collect.threads, signal: collect.signal, passBytes: collect.passBytes })).source;
    const choice = await chooseLearnedRounding(float, atStep.model, (h) => converting(options, h, undefined)(step).model, kept, fitGptq, INT4_CODES, collect.threads, onStep);
    autoNote = asked ? choice.why : `${choice.why}. ${DEFAULT_AUTO_NOTE}`;
    gptqWritten = choice.learned;
    if (deferred && choice.learned) await collectWritten();
  }
  if (wantsLearned && !autoNote && ![...(learned?.learned.keys() ?? [])].some((n) => lowBitLayers.has(n))) {
    learned = undefined;
    autoNote = `${rounding === "auto" ? "rounding auto" : "learned rounding"} wrote nearest FP4 codes: no layer is left in FP4 for learned codes (each one is int8, protected or small, or float)`;
  }
  // What is written: the codes at the step protection chose (nearest where it chose on them and nothing was learned).
  let out = onNearest && (learned || gptqWritten) ? keepingWith(learned?.learned)(step) : atStep;
  const written = learned;
  if (onNearest && (written || (gptqWritten && out.report.layers.some((l) => l.bits !== 8)))) {
    // What the written model reads on the same rows (its codes were fitted on them: held out reads less).
    const [nearestDb, writtenDb] = [chosen.output.sqnrDb, await chosen.sqnrOf(out.model)];
    const on = `worst output SQNR on those ${chosen.output.batches} batch(es) ${nearestDb.toFixed(1)} dB with nearest codes, ${writtenDb.toFixed(1)} dB with the ${gptq ? "GPTQ" : "learned"} codes`;
    if (gptq && writtenDb < nearestDb) {
      // GPTQ codes that read worse than nearest ones even on the rows their Hessians came from read worse held out
      // too (corpus, int4 at protection's step, 64 held-out: blazeface-back 15.85 → 14.52 dB, oww-melspectrogram
      // 22.26 → 15.73): nearest codes are written.
      out = atStep;
      learnedOnNearest = `GPTQ codes not written, nearest ones are: at protection's choice (made with nearest codes), ${on}, on rows GPTQ was fitted on (where its codes read better than held out)`;
    } else {
      const [what, codes] = gptq ? ["GPTQ", "GPTQ ones, measured on the rows their Hessians came from"] : ["learned rounding", "learned ones, measured on the rows they were fitted on"];
      learnedOnNearest = `${what} on protection's choice, which was made with nearest codes (${codes}, read better than they are): ${on} written`;
      chosen.output.sqnrDb = writtenDb;
    }
  }
  out.report.output = chosen.output;
  for (const p of chosen.output.protected.filter((p) => p.as === "float")) {
    const i = out.report.skipped.findIndex((s) => s.node === p.node);
    const reason = `kept float: alone in low bits it brings the outputs to ${p.aloneDb.toFixed(1)} dB (target ${chosen.output.targetDb} dB)`;
    if (i >= 0) out.report.skipped[i] = { ...out.report.skipped[i]!, reason };
  }
  if (gptqNote) out.report.notes.push(gptqNote);
  if (written) out.report.notes.push(written.note);
  if (learnedOnNearest) out.report.notes.push(learnedOnNearest);
  if (autoNote) out.report.notes.push(autoNote);
  return out;
}

/** What rounding auto's note adds where it was not asked. */
const DEFAULT_AUTO_NOTE = `Rounding auto is the low-bit modes' default with calibration data; rounding "nearest" skips its fits`;

/** How rounding auto's note names the codes it weighs: the mode's, and what the fitted ones are. */
interface AutoCodes {
  mode: string;
  fitted: string;
}
const FP4_CODES: AutoCodes = { mode: "FP4", fitted: "learned" };
const INT4_CODES: AutoCodes = { mode: "int4", fitted: "GPTQ" };

/**
 * Rounding "auto" for the low-bit modes: codes fitted on every other kept row (learned FP4 codes, GPTQ's int4 ones),
 * then on the rows between, against nearest ones, both at protection's step (`build` converts with what a fit
 * gives), judged by crossFit on rows each fit did not see. The fitted codes are taken where the per-row difference's
 * lower bound is above ROUNDING_BOUND_DB (learnedWins) and, on a sequence model, where no fewer judged rows decode as
 * the float model's (crossFitLines).
 */
async function chooseLearnedRounding<F>(
  float: Model,
  nearest: Model,
  build: (fitted: F) => Model,
  kept: readonly Feeds[],
  fit: (rows: readonly Feeds[]) => Promise<F>,
  names: AutoCodes,
  threads?: number,
  onStep?: (done: number) => void,
): Promise<{ learned: boolean; why: string }> {
  const start = performance.now();
  const free = fixedBatchSize(float) === undefined;
  // Single rows where the batch axis is free: lowBitModelCalibrated reads the data through singleRows.
  const rows = kept.slice(0, ROUNDING_ROWS);
  const { fit: even, judge: odd } = splitRows(rows);
  const seconds = () => ((performance.now() - start) / 1000).toFixed(1);
  const { mode, fitted } = names;
  if (odd.length < 2) {
    onStep?.(3);
    return { learned: false, why: `rounding auto kept nearest ${mode} rounding: ${rows.length} calibration row(s), too few to fit on some and judge on the others (it needs 4 or more)` };
  }
  // Each fit is built into its model before the next one runs, so that one fit's data (int4: a Hessian map, several
  // hundred MB on ppocr-v3-rec-en) is released before the other's is collected.
  const fittedEven = build(await fit(even));
  onStep?.(1);
  const fittedOdd = build(await fit(odd));
  onStep?.(2);
  // Judged as protection measures: a classifier's final Softmax output on its logits (oww-timer's int4 on a second
  // calibration set: GPTQ's +12.5 dB held out, passed up on its probabilities, taken on its logits).
  const judged = comparedOutputs(float);
  const c = await crossFit(float, nearest, fittedEven, fittedOdd, rows, { ...(threads ? { threads } : {}), judged });
  onStep?.(3);
  const d = c.difference;
  const seq = learnedWins(d) ? await crossFitLines(float, nearest, fittedEven, fittedOdd, c) : undefined;
  const learned = learnedWins(d) && (seq?.keep ?? true);
  const [per, pers] = free ? ["row", "rows"] : ["batch", "batches"];
  return {
    learned,
    why:
      `rounding auto ${learned ? `chose ${fitted}` : "kept nearest"} ${mode} rounding: ${fitted} codes fitted on every other of ${rows.length} calibration ${pers} and judged on the ${pers} between, and the other way round, ` +
      `on the layers protection left ${mode}: worst-output SQNR${onCompared(judged)} nearest ${db(worstRatio(c.near.pooled))}, ${fitted} ${db(worstRatio(c.learned.pooled))}; ${fitted} − nearest ${differenceText(d, per)} ` +
      `(${fitted} is taken where either bound is above ${ROUNDING_BOUND_DB} dB${seq ? ", and on a sequence model where no fewer judged rows decode as the float model's" : ""}; ${seconds()} s)${seq?.note.replace(/ with learned codes/, ` with ${fitted} codes`) ?? ""}`,
  };
}

/**
 * The Hessians of the int4 pass's Conv weights `convs` (Σ xᵀx of their input patches, im2col, sampled; one per group)
 * from `rows`, added to `matrices`; undefined where there is no Conv.
 */
async function addConvHessians(matrices: Map<string, LayerHessian>, model: Model, convs: readonly LayerTarget[], rows: readonly Feeds[], collect: LowBitCollectOptions): Promise<{ layers: number; rows: number } | undefined> {
  if (!convs.length) return undefined;
  const layers = await collectLayerHessians(model, convs, rows, { threads: collect.threads, signal: collect.signal });
  let most = 0;
  for (const [node, l] of layers) {
    if (l.rows === 0) continue; // in a body no batch ran: rounded to nearest
    l.matrices.forEach((m, i) => matrices.set(convHessianKey(node, i), m));
    most = Math.max(most, l.rows);
  }
  return { layers: convs.length, rows: most };
}

/** What GPTQ's calibration read, as its note says it. */
function gptqNoteOf(rounding: LearnedRoundingOption["rounding"], main: { batches: number; rows: number }, convs: { layers: number; rows: number } | undefined, passes?: { passes: number; cap: number }): string {
  const what = main.batches ? [`${main.batches} batches, ${main.rows} activation rows per layer`] : [];
  if (convs) what.push(`${convs.layers} Conv(s) on ${convs.rows} sampled input patches each`);
  if (passes) what.push(`in ${passes.passes} passes over the data, each collecting up to ${passes.cap >= 2 ** 20 ? `${+(passes.cap / 2 ** 20).toFixed(1)} MiB` : `${+(passes.cap / 1024).toFixed(1)} KiB`} of Hessians (a larger layer's alone) and rounding its layers before the next`);
  return `${rounding === "learned" ? "learned rounding (GPTQ) calibration" : "GPTQ calibration"}: ${what.join("; ")}`;
}

/**
 * GPTQ's Hessians from a collection of the MatMul/Gemm ones (`main`) and those of the int4 Convs `options` leaves
 * (addConvHessians, on `convRows`), and the note that says what they came from.
 */
async function withConvHessians(model: Model, options: LowBitOptions, main: Hessians, convRows: readonly Feeds[], collect: LowBitCollectOptions, rounding: LearnedRoundingOption["rounding"]): Promise<{ source: HessianMap; note: string }> {
  const matrices = new Map(main.matrices);
  // Conv weights: Σ xᵀx of their input patches (im2col, sampled), one per group, from `convRows` (for the codes
  // written, the batches protection measured on: rounding auto's extra rows are for its judging).
  const convs = await addConvHessians(matrices, model, int4ConvTargets(model, options), convRows, collect);
  return { source: matrices, note: gptqNoteOf(rounding, { batches: main.batches, rows: Math.max(0, ...main.rows.values()) }, convs) };
}

/** A GPTQ pass's Hessian targets: MatMul/Gemm inputs (the layers reading one input share its matrix) and Convs. */
interface GptqPass {
  matmuls: HessianTarget[];
  convs: LayerTarget[];
}

/** The int4 layers `options` leaves, as GPTQ's Hessian targets in passes whose matrices stay under `cap` bytes. */
function gptqPasses(model: Model, options: LowBitOptions, cap = PASS_BYTES): GptqPass[] {
  const byInput = new Map<string, HessianTarget[]>();
  for (const t of lowBitActivations(model, options)) byInput.set(t.tensor, [...(byInput.get(t.tensor) ?? []), t]);
  const parts: GptqPass[] = [...[...byInput.values()].map((matmuls) => ({ matmuls, convs: [] })), ...int4ConvTargets(model, options).map((c) => ({ matmuls: [], convs: [c] }))];
  return inPasses(parts, (p) => (p.matmuls.length ? hessianTargetBytes(p.matmuls[0]!) : layerTargetBytes(p.convs[0]!)), cap).map((pass) => ({
    matmuls: pass.flatMap((p) => p.matmuls),
    convs: pass.flatMap((p) => p.convs),
  }));
}

/**
 * GPTQ's codes for the int4 layers `options` leaves: the MatMul/Gemm Hessians from `data`, the Convs' from
 * `convRows`. Where they would not fit one pass (PASS_BYTES) and the data reads again, in passes that each collect
 * some layers' Hessians, round them (`round`: a conversion with the pass's codes, which is not kept) and drop them
 * before the next pass reads the data again: GPTQ holds one pass's matrices, not every layer's (a chain of
 * 2048×2048 MatMuls held 32 MB of float64 Hessian a layer until the rewrite). Otherwise the Hessians of one pass,
 * each layer rounded when a conversion first meets it.
 */
async function collectGptq(
  model: Model,
  options: LowBitOptions,
  data: CalibrationData,
  convRows: readonly Feeds[],
  collect: LowBitCollectOptions,
  rounding: LearnedRoundingOption["rounding"],
  round: (codes: GptqCodes) => unknown,
): Promise<{ source: GptqSource; note: string }> {
  const cap = collect.passBytes ?? PASS_BYTES;
  const passes = gptqPasses(model, options, cap);
  if (passes.length <= 1 || !rereadable(data)) return withConvHessians(model, options, await collectHessians(model, lowBitActivations(model, options), data, collect), convRows, collect, rounding);
  const codes = new GptqCodes();
  const main = { batches: 0, rows: 0 };
  const convs = { layers: 0, rows: 0 };
  let read = 0;
  for (const pass of passes) {
    const matrices = new Map<string, LayerHessian>();
    if (pass.matmuls.length) {
      const h = await collectHessians(model, pass.matmuls, data, { ...collect, onProgress: (b) => collect.onProgress?.(read + b) });
      read += h.batches;
      main.batches = h.batches;
      main.rows = Math.max(main.rows, ...h.rows.values());
      h.matrices.forEach((m, t) => matrices.set(t, m));
    }
    const c = await addConvHessians(matrices, model, pass.convs, convRows, collect);
    if (c) [convs.layers, convs.rows] = [convs.layers + c.layers, Math.max(convs.rows, c.rows)];
    codes.pass(matrices);
    round(codes);
  }
  codes.finish();
  return { source: codes, note: gptqNoteOf(rounding, main, convs.layers ? convs : undefined, { passes: passes.length, cap }) };
}

/** The layers a protection report stepped up, as int8 weights or float. */
const protectedAs = (o: OutputReport) => ({ int8: o.protected.filter((p) => p.as === "int8").map((p) => p.node), float: o.protected.filter((p) => p.as === "float").map((p) => p.node) });

/**
 * Yields every batch of `data` and keeps the first `n` in `kept`, and more until they hold `rows` rows (GPTQ reads the
 * data once; protection and rounding auto reuse them, as takeRows would have read them).
 */
async function* recordFirst(data: CalibrationData, n: number, kept: Feeds[], rows = 0): AsyncGenerator<Feeds> {
  let held = 0;
  for await (const feeds of data) {
    if (kept.length < n || held < rows) {
      kept.push(feeds);
      held += commonRows(feeds) ?? 1;
    }
    yield feeds;
  }
}

/**
 * Loads `input`, quantizes its weights and writes `output` atomically (never over `input`). GPTQ needs `data`; with
 * it, `collect` reports progress (lowBitProgress) and stops on its signal.
 */
export async function quantizeLowBit(input: string, output: string, options: LowBitOptions & LearnedRoundingOption, data?: CalibrationData, collect: LowBitCollectOptions = {}): Promise<LowBitReport> {
  const source = await Model.load(input);
  const { model, report } = data ? await lowBitModelCalibrated(source, options, data, collect) : lowBitModel(source, options);
  await saveLowBit(model, source, output, options, report);
  return report;
}

/** Why a low-bit pass quantized no weight: which ops the mode covers, and what it passed over. */
function nothingQuantized(source: Model, options: LowBitOptions, report: LowBitReport): string {
  const covers =
    options.mode === "int4"
      ? "MatMul, Gemm, Conv and LSTM"
      : options.export !== "native" ? `MatMul, Gemm${(options.export ?? "runnable") === "runnable" ? ", Conv and LSTM" : " and Conv"}` : "MatMul and Gemm";
  const gather = options.mode === "int4" && !options.includeGather && source.graph.node.some((n) => n.opType === "Gather") ? " (Gather tables with --include-gather)" : "";
  const skipped = report.skipped.slice(0, 3).map((s) => `${s.node} (${s.opType}): ${s.reason}`);
  const why = skipped.length ? `; passed over: ${skipped.join("; ")}${report.skipped.length > 3 ? `; and ${report.skipped.length - 3} more` : ""}` : ` and ${source.path ?? "the model"} has no such weight (its If/Loop/Scan bodies included)`;
  const conv = source.graph.node.some((n) => n.opType === "Conv") && covers === "MatMul and Gemm" ? "; for a convolutional model use FP4's runnable export or static INT8" : "";
  return `no weight was quantized: --mode ${options.mode} covers ${covers} weights${gather}${why}${conv}`;
}

/**
 * Saves a low-bit model once onnxruntime has loaded and run it (runtime/verify). Native FP4 is the exception:
 * onnxruntime has no CPU kernel for FLOAT4E2M1, which the report already says.
 */
export async function saveLowBit(model: Model, source: Model, output: string, options: LowBitOptions, report: LowBitReport, overwrite = false): Promise<void> {
  if (report.layers.length === 0) throw new Error(`${nothingQuantized(source, options, report)}; nothing was written to ${output}`);
  if (!(options.mode === "fp4" && options.export === "native")) {
    const note = await verifyRunnable(model, source, output);
    if (note) report.notes.push(note);
  }
  await model.save(output, { overwrite });
}
