// The quantization API a notebook cell and the CLI use (PyTorch's shape: prepare → calibrate → convert):
//   const prepared = await prepare(model, config); await calibrate(prepared, data); const int8 = await convert(prepared);
// or one-shot quantizeStatic / quantizeDynamic from file to file.
import type { GraphProto } from "onnx-buf";
import { checkFeeds, fixedBatchSize, modelInputs, type CalibrationData, type Feeds } from "../data/feeds";
import { DataType } from "../onnx/dtype";
import { consumers, initializerSizes, onCompared, producers } from "../onnx/graph";
import { Model } from "../onnx/model";
import type { ExecutionProvider } from "../runtime/session";
import { Calibrator, chooseWideActivations, type AutoCandidate, type AutoChoice, type CollectOptions, type TensorHistogram, type TensorRange } from "../calibrate/index";
import { comparedOutputs, ctcAgreement, energiesOn, noiseDb, outputsOn, rowEnergies, type Judged, type MeasureOptions, type RowEnergies } from "../calibrate/activation-precision";
import { commonRows, copyRows, eachRow, firstRows, measuredRows } from "../calibrate/rows";
import { phaseProgress } from "../calibrate/progress";
import { quantizeDynamicModel } from "./dynamic";
import { preprocess } from "./preprocess";
import { clipsWidened, ConvertCache, MS_QDQ_NOTE, QdqRewriter } from "./qdq";
import { lowerToQOperator } from "./qoperator";
import { annotateGraph } from "./registry";
import { mseThreshold } from "../calibrate/thresholds";
import { qBits } from "./math";
import { nestedWeightedNodes } from "./scope";
import { BODY_QUANTIZED_OPS, bodyObservations } from "./subgraph";
import { verifyRunnable } from "../runtime/verify";
import { resolveConfig, WIDE_AUTO_ABOVE_DB, WIDE_AUTO_BELOW_DB, WIDE_AUTO_SHARE, type QConfig, type QuantizationSummary, type ResolvedQConfig, type RoundingChoice } from "./types";
import { chooseWeightFormat, layerWork, summed, type WeightFormat } from "./weight-format";
import { assignmentLine, chooseAssignment, gainText, holdsAcross, OUTPUT_RULE, OUTPUT_TIE } from "./assignment-choice";
import { chooseProtected, protectCandidates, PROTECT_ROWS } from "./protect";
import { SIXTEEN_BIT_QDQ_OPSET, standardQdq } from "./standard-qdq";
import { clipSixteenBitPairs } from "./wide-clip";
import { decodeUnfusedWeightsNote } from "./unfused-weights";
import { CHECK_ROWS, checkOutputs } from "./output-check";
import { intermediateOutputs } from "./output-check-text";
import { ROUNDING_ROWS } from "./cross-fit";
import { checkSequences, sequenceNote, sequenceOutputs, softmaxOutputs, type SequenceCheck } from "./sequence-check";

export * from "./types";
export type { QType, QuantParams } from "./math";
export { decodeUnfusedWeights } from "./unfused-weights";

export interface PrepareOptions {
  /** Run onnxruntime's 'basic' graph optimizer first (fold BatchNorm into Conv, constant-fold shapes). Default true. */
  optimize?: boolean;
  /** Execution provider for calibration runs. Default "cpu". */
  ep?: ExecutionProvider;
}

/** A float model ready for calibration: what will be quantized, what must be observed, and what was observed. */
export interface PreparedModel {
  /** The preprocessed float model (not the caller's: that is never modified). */
  readonly model: Model;
  /** The file the caller's model was loaded from, if any (the preprocessed copy has none); for labels and views. */
  readonly source: string | undefined;
  readonly config: ResolvedQConfig;
  /** Activations calibration observes. */
  readonly observe: readonly string[];
  /** Clipping range per observed tensor chosen by the calibration method; refreshed by every calibrate() call. */
  ranges: Map<string, TensorRange>;
  /** Per-tensor histograms (histogram methods), for the histogram view and analysis. */
  histograms: Map<string, TensorHistogram>;
  /** calibration.method "auto": the method chosen per tensor, and why (empty for the fixed methods). */
  choices: Map<string, AutoChoice>;
  /** calibration.method "auto": the assignment chosen at the model's outputs, in one line (undefined: not measured). */
  autoAtOutputs?: { assignment: string; why: string };
  /** calibration.wideActivations: the activations given 16 bits, and why (undefined: not asked for). */
  wide: { tensors: string[]; why: string } | undefined;
  /** weightType "auto" (config.measureWeights): the weights chosen at the outputs, and why (undefined: not measured). */
  weights?: WeightFormat & { why: string; byTensor?: ReadonlyMap<string, WeightFormat> };
  /** config.protect: the weighted nodes kept float because each alone makes a quarter or more of the model's output error (engine/quant/protect). */
  protected?: { nodes: string[]; why: string };
  /**
   * A sequence model's readings on the kept calibration rows (engine/quant/sequence-check), measured on the
   * conversion of `config`, the config it was measured with: convert() reports it only for that config (a search's
   * configurations are other conversions).
   */
  sequences?: SequenceCheck & { config: ResolvedQConfig };
  /** Batches observed so far. */
  batches: number;
  /** Calibration warnings (NaN/Inf values skipped, tensors that could not be observed, CUDA fallback). */
  readonly warnings: string[];
  /** The input model's ai.onnx opset (the prepared copy may have been upgraded). */
  readonly originalOpset: number;
  readonly ep: ExecutionProvider;
  /** The calibration session(s), kept so calibrate() can add data; freed by release(). */
  calibrator: Calibrator | undefined;
  /** The first calibration rows (up to CHECK_ROWS), which quantizeStatic runs the written model on against the float one. */
  checkRows?: Feeds[];
  /** QConfig.rounding other than "nearest": the first calibration rows (up to ROUNDING_ROWS, one each where the batch
   *  axis is free), which quantizeStatic fits learned rounding on (and, for "auto", judges it by). */
  roundingRows?: Feeds[];
  /** QConfig.rounding not given (static INT8): what the default became for this model at the first calibration
   *  batch (roundingDefault), and why: for "nearest" the summary's whole line, for "auto" the clause its choice's line
   *  opens with. */
  roundingDefault?: { rounding: "auto" | "nearest"; why: string };
}

export async function prepare(model: Model, config: QConfig = {}, options: PrepareOptions = {}): Promise<PreparedModel> {
  const resolved = resolveConfig(config);
  checkJudgedOutputs(model, resolved);
  const notes: string[] = [];
  const pre = await preprocess(model, options.optimize ?? true, notes);
  const marks = annotateGraph(pre.graph, resolved);
  const inits = new Set(pre.graph.initializer.map((t) => t.name));
  return {
    model: pre,
    source: model.path,
    config: resolved,
    // Tensors inside If/Loop/Scan bodies too: calibration threads them out (engine/quant/subgraph-observe.ts).
    observe: [...new Set([...marks.observed((n) => inits.has(n)), ...bodyObservations(pre.graph, resolved)])],
    ranges: new Map(),
    histograms: new Map(),
    choices: new Map(),
    wide: undefined,
    batches: 0,
    warnings: notes,
    ep: options.ep ?? "cpu",
    calibrator: undefined,
    originalOpset: model.opset() ?? 0,
  };
}

/** QConfig.calibration.outputs must name outputs of the model: an unknown name is refused with the outputs it has. */
function checkJudgedOutputs(model: Model, config: ResolvedQConfig): void {
  const outputs = model.graph.output.map((o) => o.name);
  const unknown = config.calibration.outputs.filter((o) => !outputs.includes(o));
  if (unknown.length === 0) return;
  const list = (names: readonly string[]) => names.map((o) => `"${o}"`).join(", ");
  throw new Error(`QConfig.calibration.outputs: ${list(unknown)} ${unknown.length > 1 ? "are not outputs" : "is not an output"} of ${model.path ?? "the model"} (its outputs: ${list(outputs)})`);
}

/** Runs calibration data through the model and updates the ranges; call again to add more data. */
export async function calibrate(prepared: PreparedModel, data: CalibrationData, options: CollectOptions = {}): Promise<void> {
  if (prepared.observe.length === 0) {
    // Nothing to observe (silero-vad: its weights sit in If bodies, quantized dynamically or weight-only; every op
    // excluded): convert() needs no ranges, but the data is still the user's inputs: checked, the written file
    // compared with the float model on its first rows, as dynamic mode does with data, and learned rounding fitted
    // on them (weight-only Convs).
    const rows = await firstBatches(data, prepared.config.rounding !== "nearest" || prepared.config.roundingByDefault ? ROUNDING_ROWS : CHECK_ROWS, options.signal);
    if (rows[0]) roundingDefault(prepared, rows[0]);
    const specs = modelInputs(prepared.model.proto);
    rows.forEach((f, i) => checkFeeds(f, specs, `calibration batch ${i + 1}`));
    keepCheckRows(prepared, rows, fixedBatchSize(prepared.model));
    return;
  }
  const c = prepared.config.calibration;
  prepared.calibrator ??= new Calibrator(prepared.model, [...prepared.observe], {
    method: c.method,
    percentile: c.percentile,
    numBins: c.numBins,
    numQuantizedBins: c.numQuantizedBins,
    movingAverage: c.movingAverage,
    averagingConstant: c.averagingConstant,
    symmetric: prepared.config.activationSymmetric,
    bits: qBits(prepared.config.activationType),
    ep: prepared.ep,
    outputRows: c.yardstick === "ctc" ? CTC_OUTPUT_ROWS : undefined,
    onWarning: (m) => prepared.warnings.push(m),
  });
  const before = prepared.calibrator.batches;
  const rows: Feeds[] = [];
  const wide = c.wideActivations > 0 || (prepared.config.wideAuto && qBits(prepared.config.activationType) === 8);
  const keep = (first: Feeds) => {
    const rounding = roundingDefault(prepared, first);
    return Math.max(CHECK_ROWS, wide ? WIDE_ROWS : 0, prepared.config.measureWeights ? WEIGHT_ROWS : 0, prepared.config.protect ? PROTECT_ROWS : 0, rounding !== "nearest" ? ROUNDING_ROWS : 0);
  };
  const batch = fixedBatchSize(prepared.model);
  await prepared.calibrator.collect(keepingFirstRows(data, rows, keep, batch), options);
  if (prepared.calibrator.batches === before) throw new Error("calibration data is empty: give at least one batch of inputs");
  prepared.batches = prepared.calibrator.batches;
  prepared.ranges = prepared.calibrator.ranges();
  prepared.histograms = prepared.calibrator.histograms();
  prepared.choices = prepared.calibrator.choices();
  // The measurements below open sessions of their own: the calibration sessions' memory (their activations, on a
  // 1024×1024 model several GB) is given back first; a later calibrate() opens them again.
  await prepared.calibrator.releaseSessions();
  // Each measurement below runs the model (and converts it) again: on a large model they take longer than the
  // batches, so each says what it is doing, and the signal stops them between steps.
  const phase = (name: string, unit = "steps") => phaseProgress(options, name, unit);
  if (c.method === "auto") await measuring(phase("calibration auto: measuring methods at the outputs"), () => chooseAtOutputs(prepared));
  if (wide) await chooseWide(prepared, measuredRows(prepared.model.proto, rows, WIDE_ROWS, batch), phase("measuring 16-bit activations", "measurements"), options.signal);
  if (prepared.config.protect) await chooseProtection(prepared, measuredRows(prepared.model.proto, rows, PROTECT_ROWS, batch), phase("measuring protected layers", "nodes"), options.signal);
  if (prepared.config.measureWeights) {
    // On the first WEIGHT_ROWS rows, however many rounding auto keeps: the same choice with or without it.
    const weightRows = firstRows(rows, WEIGHT_ROWS, batch);
    await chooseWeights(prepared, batch === undefined ? weightRows.flatMap(eachRow) : weightRows, phase("measuring the weight type", "runs"), options.signal);
  }
  keepCheckRows(prepared, rows, batch);
  if (rows.length && softmaxOutputs(prepared.model).length) await measuring(phase("decoding sequence outputs"), () => checkSequenceOutputs(prepared, measuredRows(prepared.model.proto, rows, SEQUENCE_ROWS, batch)));
}

/**
 * How the measurements at the outputs run: the calibration's provider; the outputs QConfig.calibration.outputs names
 * (all where it names none), a classifier's final Softmax output on the logits it reads (comparedOutputs). Each
 * model's, found once.
 */
const measureOn = (prepared: PreparedModel): MeasureOptions => ({ ep: prepared.ep, judged: judgedOn(prepared.model, prepared.config.calibration.outputs) });

const judgedOnce = new WeakMap<Model, { outputs: string; judged: Judged }>();
function judgedOn(model: Model, outputs: readonly string[]): Judged {
  const key = outputs.join("\0");
  const known = judgedOnce.get(model);
  if (known?.outputs === key) return known.judged;
  const judged = comparedOutputs(model, outputs);
  judgedOnce.set(model, { outputs: key, judged });
  return judged;
}

/** A phase of one step, reported before and after it runs. */
async function measuring<T>(step: (done: number, total: number) => void, run: () => Promise<T>): Promise<T> {
  step(0, 1);
  const result = await run();
  step(1, 1);
  return result;
}

/**
 * Dynamic mode's protected layers: engine/quant/protect's measurement on `rows` (the first PROTECT_ROWS of the data),
 * each candidate a dynamic conversion of the preprocessed model with only that node. On ppocr-v4-rec-en it keeps its
 * two stem Convs float (0.04 % of the weights): 55.1 → 96.7 % of 512 lines read (FP32 96.7 %).
 */
async function dynamicProtection(model: Model, config: ResolvedQConfig, rows: Feeds[], optimize: boolean, ep: ExecutionProvider | undefined, onStep: (done: number, total: number) => void): Promise<{ nodes: string[]; why: string }> {
  const pre = await preprocess(model, optimize);
  const first = await quantizeDynamicModel(pre.clone(), config, false);
  const convertWith = async (only?: readonly string[]) => (only ? (await quantizeDynamicModel(pre.clone(), { ...config, include: [...only] }, false)).model : first.model);
  const choice = await chooseProtected(model, rows, protectCandidates(first.summary.quantized, initializerSizes(pre.graph)), convertWith, { ep, judged: judgedOn(model, config.calibration.outputs) }, onStep);
  return { nodes: choice.nodes, why: choice.why };
}

/** The batches of `data` up to its first `max` rows; the rest is not read. */
async function firstBatches(data: CalibrationData, max: number, signal?: AbortSignal): Promise<Feeds[]> {
  const kept: Feeds[] = [];
  for await (const f of data) {
    signal?.throwIfAborted();
    kept.push(f);
    if (rowsIn(kept) >= max) break;
  }
  return kept;
}

/**
 * The written file's outputs against the input model on `rows` (engine/quant/output-check), with the outputs the
 * measurements judged and the ones other nodes read too: the summary's outputCheck.
 */
async function outputCheckOf(model: Model, quantized: Model, rows: readonly Feeds[], config: ResolvedQConfig, ep: ExecutionProvider | undefined, options: CollectOptions, warnings: string[]): Promise<QuantizationSummary["outputCheck"]> {
  let check: Awaited<ReturnType<typeof checkOutputs>>;
  try {
    check = await measuring(phaseProgress(options, "checking the outputs against the float model", "steps"), () => checkOutputs(model, quantized, rows, { ep: ep ?? "cpu" }));
  } catch (e) {
    if (options.signal?.aborted) throw e; // stopped, not failed
    // The file was loaded and run already (verifyRunnable): a check that fails on the data is said, not fatal.
    warnings.push(`the outputs were not checked against the float model (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`);
    return undefined;
  }
  if (!check) return undefined;
  const judged = config.calibration.outputs;
  const inner = intermediateOutputs(model.graph);
  return { ...check, ...(judged.length ? { judged: [...judged] } : {}), ...(inner.length ? { intermediate: inner } : {}) };
}

const rowsIn = (kept: readonly Feeds[]) => kept.reduce((a, f) => a + (commonRows(f) ?? 1), 0);

/** Dynamic mode without data: what protection would have measured, and how to ask for it. */
const NOT_MEASURED_NOTE =
  "protected layers not measured (no data): given samples (--calib DATA, or { data }), dynamic mode also measures which layers int8 would ruin and keeps them float, as static mode does; without them only the model's smallest Convs stay float (ppocr-v4-rec-en: 81 → 98 % of text lines read)";

/** What the summary says of a node protection kept float. */
const PROTECTED_REASON = "protected: quantized alone it makes a quarter or more of the model's output error (--no-protect to quantize it)";

/** Kept calibration rows the sequence check decodes (all that weightType auto keeps). */
const SEQUENCE_ROWS = 16;

/** A sequence model's readings under the default conversion, for the summary (nothing for other models). */
async function checkSequenceOutputs(prepared: PreparedModel, rows: Feeds[]): Promise<void> {
  prepared.sequences = undefined;
  if (softmaxOutputs(prepared.model).length === 0) return;
  try {
    const check = await checkSequences(prepared.model, async () => (await convert(prepared)).model, rows, prepared.ep);
    if (check) prepared.sequences = { ...check, config: prepared.config };
  } catch (e) {
    prepared.warnings.push(`sequence outputs could not be decoded on the calibration rows (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`);
  }
}

/**
 * onnxruntime's CPU provider has no 16-bit QLinear kernels: a node reading or writing a 16-bit activation runs in float
 * between conversions. On PP-OCRv3's Chinese recogniser (36 activations widened, the stem) the file ran at 0.84× FP32
 * where all-8-bit ran 1.84× (and lost the lines): docs/activation-precision.md.
 */
const WIDE_SPEED_NOTE = "; onnxruntime has no 16-bit kernels on CPU, so the nodes around them run in float and the file may be slower than FP32 (time it: ptq bench)";

/**
 * calibration.wideForm "clip": the same activations written as a Clip to their 16-bit range instead of a 16-bit Q/DQ
 * pair (engine/quant/wide-clip). The PP-OCR recognisers (16 lines s1, 4096 held-out): the Q/DQ file's lines within a
 * line, batch 8 on one thread 0.98 → 1.17× (v4) and 0.99 → 1.13× (v3) of FP32 (docs/calibration.md "Widened
 * activations as a Clip").
 */
const WIDE_CLIP_NOTE =
  "; written as a Clip to each one's 16-bit range, float around it (onnxruntime has no 16-bit kernels on CPU: the same outputs within a 16-bit step, faster than 16-bit Q/DQ; --wide-form qdq writes those), so the nodes around them run in float and the file may be slower than all 8 bits (time it: ptq bench)";

/**
 * The activations a 16-bit DequantizeLinear reads back: its output keeps the float tensor's name, except after a
 * graph input, whose pair's QuantizeLinear reads the input by its own name (listed by that name).
 */
function sixteenBitActivations(g: GraphProto): Set<string> {
  const wide = new Set(g.initializer.filter((t) => t.dataType === DataType.UINT16 || t.dataType === DataType.INT16).map((t) => t.name));
  const inputs = new Set(g.input.map((v) => v.name));
  const made = producers(g);
  const out = new Set<string>();
  for (const n of g.node) {
    if (n.opType !== "DequantizeLinear" || !wide.has(n.input[2] ?? "")) continue;
    out.add(n.output[0]!);
    const read = made.get(n.input[0]!)?.input[0];
    if (read && inputs.has(read)) out.add(read);
  }
  return out;
}

/** calibration.wideActivations measures the outputs on this many of the first calibration rows (one run per group). */
const WIDE_ROWS = 4;
/**
 * weightType "auto" measures on this many (three runs in all). On the corpus 4 rows misjudged two of 13 models by
 * more than 1 dB against 32 held-out samples (blazeface-front: +0.8 dB for U8S7 on 4 rows, −1.4 dB held out).
 */
const WEIGHT_ROWS = 16;

/** The kept rows the output check compares the written file on and learned rounding is fitted on (single rows where
 *  the batch axis is free), for convert() and quantizeStatic after calibrate(). */
function keepCheckRows(prepared: PreparedModel, rows: readonly Feeds[], batch: number | undefined): void {
  prepared.checkRows = measuredRows(prepared.model.proto, rows, CHECK_ROWS, batch);
  prepared.roundingRows = roundingOf(prepared) !== "nearest" ? firstRows(rows, ROUNDING_ROWS, batch).flatMap((f) => (batch === undefined ? eachRow(f) : [f])) : undefined;
}

/**
 * Static INT8's weight rounding where QConfig.rounding is not given: "auto" (learned rounding written where rows it was
 * not fitted on measure it better at the outputs, engine/recovery/rounding-choice) where the quantized layers do at
 * most this many multiply-adds a calibration row, "nearest" above. Learned rounding's fits grow with that work: on the
 * corpus, `--rounding auto` added 1.3× to blazeface-back's conversion (189 M a row), 2.0–2.8× to the PP-OCR models'
 * and mlsd-320-large's (530 M–10 G a row), and seconds to the wake-word heads (under 1 M a row), where its learned
 * codes took oww-hey-jarvis from 98.4 to 100 % of 64 held-out decisions (docs/recovery.md "rounding auto").
 */
export const ROUNDING_AUTO_MACS = 200e6;

/** The rounding static INT8 applies: QConfig.rounding, or what the default became (roundingDefault). */
export function roundingOf(prepared: PreparedModel): ResolvedQConfig["rounding"] {
  return prepared.config.roundingByDefault ? (prepared.roundingDefault?.rounding ?? "nearest") : prepared.config.rounding;
}

/**
 * Decides the default rounding (QConfig.rounding not given) on the first calibration batch, once: the quantized
 * layers' multiply-adds on one of its rows (engine/quant/weight-format layerWork; the whole batch where the model's
 * batch axis is fixed) against ROUNDING_AUTO_MACS. Q/DQ only: learned rounding chooses a Q/DQ model's codes.
 */
function roundingDefault(prepared: PreparedModel, first: Feeds): ResolvedQConfig["rounding"] {
  if (!prepared.config.roundingByDefault) return prepared.config.rounding;
  if (prepared.roundingDefault) return prepared.roundingDefault.rounding;
  const fixed = fixedBatchSize(prepared.model) !== undefined;
  const rows = fixed ? 1 : Math.max(1, commonRows(first) ?? 1);
  const macs = layerWork(prepared.model, first).reduce((a, l) => a + l.macs, 0) / rows;
  const per = fixed ? "calibration batch" : "calibration row";
  const amount = macs >= 1e9 ? `${(macs / 1e9).toPrecision(3)} G` : `${(macs / 1e6).toPrecision(3)} M`;
  const work = `the quantized layers do ${amount} multiply-adds a ${per}`;
  const limit = `${ROUNDING_AUTO_MACS / 1e6} M`;
  prepared.roundingDefault =
    prepared.config.format === "qoperator" ? { rounding: "nearest", why: "nearest rounding, the default with --format qoperator (learned rounding chooses a Q/DQ model's codes)" }
    : macs <= ROUNDING_AUTO_MACS ? { rounding: "auto", why: `the default: ${work}, at most ${limit}, where its fits cost little` }
    : { rounding: "nearest", why: `nearest rounding, static INT8's default here: ${work}, over ${limit}, where learned rounding's fits take 2–3× the conversion (--rounding auto measures them anyway)` };
  return prepared.roundingDefault.rounding;
}

/**
 * Passes `data` on, keeping a copy of its first `keep(first batch)` rows (whole batches where a batch has no row axis; the
 * first `batch` rows of a batch where the model's batch axis is fixed, so at least one such batch).
 */
async function* keepingFirstRows(data: CalibrationData, kept: Feeds[], keep: (first: Feeds) => number, batch: number | undefined): AsyncGenerator<Feeds> {
  let n = 0;
  let max: number | undefined;
  for await (const feeds of data) {
    max ??= keep(feeds);
    if (n < max) {
      const rows = commonRows(feeds);
      const take = rows === undefined ? 1 : Math.min(rows, batch ?? max - n);
      kept.push(rows === undefined ? feeds : copyRows(feeds, 0, take));
      n += take;
    }
    yield feeds;
  }
}

/**
 * calibration.wideActivations: which activations get 16 bits, measured at the outputs with every other activation at
 * the calibration's 8 bits (engine/calibrate/activation-precision: on the PP-OCR recognisers 20 % of them took
 * agreement with FP32 from 82 to 92 %, docs/activation-precision.md). A later calibrate() call measures again.
 */
async function chooseWide(prepared: PreparedModel, rows: Feeds[], onStep?: (done: number, total: number) => void, signal?: AbortSignal): Promise<void> {
  const config = prepared.config;
  if (qBits(config.activationType) !== 8) return;
  if (rows.length === 0 && prepared.wide) return; // more data, none kept: the earlier choice stands
  const finite = new Map([...prepared.ranges].filter(([, r]) => !r.nonFinite && Number.isFinite(r.min) && Number.isFinite(r.max)));
  try {
    const auto = config.wideAuto;
    // A sequence model is widened whatever its outputs' SQNR: it reads each row whole, and one changed step loses a line.
    const sequence = auto ? await sequenceOutputs(prepared.model, rows[0], prepared.ep) : [];
    const w = await chooseWideActivations(prepared.model, finite, rows, {
      bits: 8,
      symmetric: config.activationSymmetric,
      ...measureOn(prepared),
      maxShare: auto ? WIDE_AUTO_SHARE : config.calibration.wideActivations,
      onlyBetweenDb: auto && sequence.length === 0 ? [WIDE_AUTO_ABOVE_DB, WIDE_AUTO_BELOW_DB] : undefined,
      onStep,
    });
    const reason = sequence.length
      ? `automatic (sequence outputs ${sequence.join(", ")}; --wide-activations 0 to keep 8 bits and INT8's speed)`
      : `automatic (8-bit outputs below ${WIDE_AUTO_BELOW_DB} dB; --wide-activations 0 to keep 8 bits)`;
    // Unasked, a model that needs nothing says nothing.
    prepared.wide = auto && w.tensors.length === 0 ? undefined : { tensors: w.tensors, why: auto ? `${reason}: ${w.why}` : w.why };
  } catch (e) {
    if (signal?.aborted) throw e; // stopped, not failed
    prepared.wide = undefined;
    prepared.warnings.push(`calibration.wideActivations could not measure the outputs (${e instanceof Error ? e.message.split("\n")[0] : String(e)}): every activation stays at ${config.activationType}`);
  }
}

/**
 * weightType "auto": U8U8 or U8S7 weights, measured at the outputs on the kept rows (one at a time: the choice
 * bounds the per-row difference) with everything else as convert() will write it (the ranges chosen above, wide activations included; engine/quant/weight-format). A later
 * calibrate() call measures again on its own first rows.
 */
async function chooseWeights(prepared: PreparedModel, rows: Feeds[], onStep?: (done: number, total: number) => void, signal?: AbortSignal): Promise<void> {
  if (rows.length === 0) return; // more data, none kept: the earlier choice (or the target's default) stands
  try {
    const w = await chooseWeightFormat(prepared.model, rows, async (format, byTensor) => (await convert({ ...prepared, weights: { ...format, why: "", byTensor } })).model, measureOn(prepared), onStep);
    prepared.weights = { type: w.type, reduceRange: w.reduceRange, why: w.why, byTensor: w.byTensor };
  } catch (e) {
    if (signal?.aborted) throw e; // stopped, not failed
    prepared.weights = undefined;
    prepared.warnings.push(`weightType auto could not measure the outputs (${e instanceof Error ? e.message.split("\n")[0] : String(e)}): the weights stay ${prepared.config.weightType}`);
  }
}

/**
 * config.protect: the weighted nodes whose quantization alone makes a quarter or more of the whole model's error stay
 * float (engine/quant/protect), measured with the ranges chosen above and the weights as the target's default writes
 * them; weightType auto then measures with them float. A later calibrate() call measures again on its own first rows.
 */
async function chooseProtection(prepared: PreparedModel, rows: Feeds[], onStep?: (done: number, total: number) => void, signal?: AbortSignal): Promise<void> {
  if (rows.length === 0) return; // more data, none kept: the earlier choice stands
  const base = { ...prepared, protected: undefined, weights: undefined };
  const cache = new ConvertCache();
  try {
    const first = await convert(base, { cache });
    const convertWith = async (only?: readonly string[]) => (only ? (await convert({ ...base, config: { ...base.config, include: [...only] } }, { cache })).model : first.model);
    const sizes = initializerSizes(prepared.model.graph);
    const candidates = protectCandidates(first.summary.quantized, sizes);
    const choice = await chooseProtected(prepared.model, rows, candidates, convertWith, measureOn(prepared), onStep);
    prepared.protected = { nodes: choice.nodes, why: choice.why };
  } catch (e) {
    if (signal?.aborted) throw e; // stopped, not failed
    prepared.protected = undefined;
    prepared.warnings.push(`protected layers could not be measured (${e instanceof Error ? e.message.split("\n")[0] : String(e)}): every node stays quantized`);
  }
}

/**
 * Rows the "ctc" yardstick measures on. On ppocr-v4-rec-en (five whole assignments, 64 calibration lines) their
 * decoded agreement ordered the assignments as 128 held-out lines read them; on 16 rows it did not, where the CTC
 * loss of the float model's reading did (docs/calibration.md "A yardstick for CTC models").
 */
const CTC_OUTPUT_ROWS = 64;

/**
 * auto, second stage. The calibrator chose per tensor by the error at each tensor's consumers, which cannot see
 * errors compound through the network (on the PP-OCR detector its choices lost 0.5 dB against mse at the outputs).
 * So whole assignments are measured at the model's outputs, quantized as convert() quantizes, on the calibrator's
 * first rows (autoRows): its per-tensor choices, and each candidate method for every tensor.
 * mse stays unless another assignment is measurably better (engine/quant/assignment-choice: its pooled worst-output
 * error lower by OUTPUT_TIE, its per-row SQNR gain with a lower bound above OUTPUT_BOUND_DB); of those, the least
 * pooled error wins. For yardstick "ctc" the CTC loss of the float model's decoded rows decides, each
 * assignment beating the best so far by OUTPUT_TIE. If this cannot run, the per-tensor choices stay, with a warning.
 * Those rows made the ranges they judge, so a winner other than mse is then judged across their halves
 * (acrossHalves), and written only where it holds there too (holdsAcross).
 */
async function chooseAtOutputs(prepared: PreparedModel): Promise<void> {
  const cal = prepared.calibrator!;
  prepared.autoAtOutputs = undefined;
  const candidates = cal.candidateRanges();
  const rows = [...cal.autoRows()];
  if (candidates.size === 0 || rows.length === 0) return;
  const assignments = assignmentsOf(prepared.ranges, candidates);
  const ctc = prepared.config.calibration.yardstick === "ctc";
  const measure = measureOn(prepared);
  let measured: Measured;
  try {
    measured = await measureAssignments(prepared, assignments, rows, ctc, measure);
  } catch (e) {
    prepared.warnings.push(`calibration method auto could not measure at the model's outputs (${e instanceof Error ? e.message.split("\n")[0] : String(e)}): its per-tensor choices stand`);
    return;
  }
  const { energies, decoded, twins } = measured;
  // Rows whose outputs decode as CTC sequences: the same for every assignment (mse is never another's twin).
  const counted = decoded.get("mse")?.rows ?? 0;
  if (ctc && counted === 0) prepared.warnings.push("calibration.yardstick ctc: no output is [batch, time, classes]; the choice at the outputs is by SQNR");
  const { best: bySqnr, scores } = chooseAssignment(energies);
  const ctcLoss = (name: string) => decoded.get(name)!.nll;
  let best = bySqnr;
  if (counted > 0) {
    // The lower CTC loss of what the float model reads wins, each assignment beating the best so far by OUTPUT_TIE.
    best = "mse";
    for (const name of energies.keys()) if (ctcLoss(name) < ctcLoss(best) * (1 - OUTPUT_TIE)) best = name;
  }
  const list = scores
    .map((s) => twins.has(s.name) ? `${s.name}: ${twins.get(s.name)}'s ranges` : `${s.name} ${counted > 0 ? `CTC loss ${ctcLoss(s.name).toFixed(3)}, ${decoded.get(s.name)!.same}/${counted} rows decoded alike, ${noiseDb(s.error)}` : `${noiseDb(s.error)}${gainText(s)}`}`)
    .join(", ");
  const rule = counted > 0 ? "" : `; ${OUTPUT_RULE}`;
  let why = assignmentLine(best, scores, twins, rows.length, counted > 0 ? ctcLoss : undefined);
  let across = "";
  if (best !== "mse") {
    try {
      const judged = await acrossHalves(prepared, best, counted > 0, measure);
      if (judged) {
        across = `; ${judged.text}`;
        if (!judged.holds) {
          why = `mse's ranges kept: ${why}, but not when ${judged.text}; --method mse skips this measurement`;
          best = "mse";
        } else why = `${why}${across}`;
      }
    } catch (e) {
      prepared.warnings.push(`calibration method auto could not judge ${best} across the halves of its rows (${e instanceof Error ? e.message.split("\n")[0] : String(e)}): it is written as judged on them`);
    }
  }
  prepared.autoAtOutputs = { assignment: best, why };
  const atOutputs = `${counted > 0 ? "the float model's decoded rows' CTC loss (nats per row)" : `worst-output SQNR${onCompared(measure.judged)}`} on the first ${rows.length} calibration row(s): ${list}${rule}${across}`;
  prepared.ranges = assignments.get(best)!;
  const choices = new Map<string, AutoChoice>();
  for (const [t, c] of prepared.choices) {
    choices.set(t, best === "per-tensor choices"
      ? { ...c, why: `${c.why}; kept at the outputs (${atOutputs})` }
      : { ...c, method: best as AutoChoice["method"], why: `${best} for every tensor, chosen at the outputs (${atOutputs}); at its consumers: ${c.why}` });
  }
  prepared.choices = choices;
}

/**
 * Assignment `name` (not mse) against mse judged across the halves of auto's first rows (Calibrator.halves): each
 * half calibrated alone, both assignments converted with that half's ranges and run on the other half's rows. What
 * decides (holdsAcross): SQNR, or with `ctc` the CTC loss of the float model's reading. Undefined with fewer than two
 * rows.
 */
async function acrossHalves(prepared: PreparedModel, name: string, ctc: boolean, measure: MeasureOptions): Promise<{ holds: boolean; text: string } | undefined> {
  const halves = await prepared.calibrator!.halves(name === "per-tensor choices" ? undefined : (name as AutoCandidate));
  if (halves.length === 0) return undefined;
  const energies = new Map<string, RowEnergies>();
  const nll = new Map<string, number>();
  for (const half of halves) {
    const local = assignmentsOf(half.ranges, half.candidates);
    const pair = new Map([["mse", local.get("mse")!], [name, local.get(name)!]]);
    const here = await measureAssignments(prepared, pair, half.judgedOn, ctc, measure);
    for (const a of pair.keys()) {
      // This half's rows after the earlier half's, and the pooled energies summed over both.
      const [before, e] = [energies.get(a), here.energies.get(a)!];
      energies.set(a, before ? { rows: [...before.rows, ...e.rows], pooled: summed([before.pooled, e.pooled]) } : e);
      nll.set(a, (nll.get(a) ?? 0) + (here.decoded.get(a)?.nll ?? 0));
    }
  }
  return holdsAcross(energies.get("mse")!, energies.get(name)!, ctc ? { mse: nll.get("mse")!, other: nll.get(name)! } : undefined);
}

/** What measureAssignments found: per assignment its output energies and (CTC yardstick) how its rows decode; an
 *  assignment with an earlier one's ranges is that one's twin, measured once. */
interface Measured {
  energies: Map<string, RowEnergies>;
  decoded: Map<string, { same: number; rows: number; nll: number }>;
  twins: Map<string, string>;
}

/**
 * Each of `assignments` converted as convert() converts and run on `rows` against the float model (with `ctc`, its
 * decoded rows compared with the float model's too). An assignment with an earlier one's ranges (per-tensor choices
 * all mse; percentile where it keeps the whole range, as minmax does) writes that one's file: measured once.
 */
async function measureAssignments(prepared: PreparedModel, assignments: ReadonlyMap<string, Map<string, TensorRange>>, rows: readonly Feeds[], ctc: boolean, measure: MeasureOptions): Promise<Measured> {
  const out: Measured = { energies: new Map(), decoded: new Map(), twins: new Map() };
  const ref = await outputsOn(prepared.model, rows, measure);
  for (const [name, ranges] of assignments) {
    const twin = [...out.energies.keys()].find((n) => sameRanges(assignments.get(n)!, ranges));
    if (twin !== undefined) {
      out.twins.set(name, twin);
      out.energies.set(name, out.energies.get(twin)!);
      if (ctc) out.decoded.set(name, out.decoded.get(twin)!);
      continue;
    }
    const model = (await convert({ ...prepared, ranges })).model;
    if (!ctc) {
      out.energies.set(name, await energiesOn(model, rows, ref, measure));
      continue;
    }
    const got = await outputsOn(model, rows, measure);
    out.energies.set(name, rowEnergies(ref, got));
    out.decoded.set(name, ctcAgreement(ref, got));
  }
  return out;
}

/** The assignments auto measures at the outputs, in order of preference on ties: mse, then the methods that clip
 *  least, entropy (which clips most) last; the per-tensor choices are `ranges` themselves. */
function assignmentsOf(ranges: ReadonlyMap<string, TensorRange>, candidates: ReadonlyMap<string, ReadonlyMap<AutoCandidate, TensorRange>>): Map<string, Map<string, TensorRange>> {
  const every = (m: AutoCandidate) => new Map([...ranges].map(([t, r]) => [t, candidates.get(t)?.get(m) ?? r]));
  return new Map([
    ["mse", every("mse")], ["minmax", every("minmax")], ["percentile", every("percentile")],
    ["per-tensor choices", new Map(ranges)], ["entropy", every("entropy")],
  ]);
}

/** Whether two assignments give every tensor the same range (and keep the same tensors float for NaN/±Inf). */
function sameRanges(a: ReadonlyMap<string, TensorRange>, b: ReadonlyMap<string, TensorRange>): boolean {
  if (a.size !== b.size) return false;
  for (const [t, r] of a) {
    const o = b.get(t);
    if (!o || o.min !== r.min || o.max !== r.max || (o.nonFinite ?? 0) !== (r.nonFinite ?? 0)) return false;
  }
  return true;
}

/** Frees the calibration sessions (calibrate() after this starts a fresh calibration). */
export async function release(prepared: PreparedModel): Promise<void> {
  await prepared.calibrator?.dispose();
  prepared.calibrator = undefined;
}

/** What convert() makes: the quantized model and what was done to it. */
export interface Quantized {
  readonly model: Model;
  readonly summary: QuantizationSummary;
}

export { ConvertCache };

export interface ConvertOptions {
  /**
   * Keeps what does not change between conversions of this PreparedModel's model (weights decoded, their
   * parameters and quantized values): one cache per prepared model, for callers that convert it many times under
   * other configurations (the mixed-precision search). The output is the same bytes with or without it.
   */
  cache?: ConvertCache;
}

/** The quantized model (QDQ, or QOperator when the config asks for it) and its summary; `prepared` is not changed,
 *  so a search may convert it under many configurations (with options.cache, faster). */
export async function convert(prepared: PreparedModel, options: ConvertOptions = {}): Promise<Quantized> {
  options.cache?.bind(prepared.model);
  const copy = prepared.model.clone();
  const { config, keptFloat } = floatWhereNonFinite(prepared, withProtected(prepared, withWeights(prepared, widened(prepared))));
  // Annotate the copy again (deterministic) so marks point at the copy's nodes.
  const marks = annotateGraph(copy.graph, config);
  const rewriter = new QdqRewriter(copy.proto, marks, rangesForWidths(prepared, config), config, options.cache);
  rewriter.run();
  const summary = rewriter.summary;
  summary.warnings.push(...prepared.warnings);
  for (const t of keptFloat) {
    summary.warnings.push(`kept "${t}" in float: calibration saw NaN/±Inf in it (an attention mask's -Inf, say), which no quantized value can represent`);
  }
  summary.opset.before = prepared.originalOpset;
  if (prepared.weights) summary.weights = { ...summary.weights!, why: prepared.weights.why };
  if (prepared.wide) {
    // Only what reached the file: a chosen tensor read only by float nodes (a protected layer's input) gets no Q/DQ.
    const written = sixteenBitActivations(copy.proto.graph!);
    // A Relu/Clip the rewrite folds into the Q after it hands its output's name to the tensor it read.
    const readers = consumers(prepared.model.graph);
    const reached = (t: string) => written.has(t) || (readers.get(t) ?? []).some((n) => (n.opType === "Relu" || n.opType === "Clip") && written.has(n.output[0]!));
    const tensors = prepared.wide.tensors.filter(reached);
    const lost = prepared.wide.tensors.length - tensors.length;
    if (tensors.length || !prepared.config.wideAuto) {
      const clip = tensors.length && clipsWidened(prepared.config) ? clipSixteenBitPairs(copy, summary) : undefined;
      if (clip?.standard) summary.warnings = summary.warnings.filter((w) => !w.includes(MS_QDQ_NOTE));
      const note = !clip?.clipped.length
        ? WIDE_SPEED_NOTE
        : WIDE_CLIP_NOTE + (clip.kept.length ? `; ${clip.kept.length} that a MatMul or Gemm reads keep 16-bit Q/DQ (onnxruntime would fuse the float input with the int8 weight into MatMulNBits, which rounds it to 8 bits)` : "");
      summary.wideActivations = { tensors, why: prepared.wide.why + (lost ? ` (${lost} of them read only by float nodes, so left without Q/DQ)` : "") + (tensors.length ? note : "") };
    }
  }
  rewriter.applySmallestFloat();
  if (prepared.protected) {
    const kept = new Set(prepared.protected.nodes);
    for (const f of summary.float) if (kept.has(f.name)) f.reason = PROTECTED_REASON;
    summary.protectedLayers = { nodes: [...prepared.protected.nodes], why: prepared.protected.why };
  }
  if (prepared.sequences && prepared.sequences.config === prepared.config) {
    const { outputs, rows, same } = prepared.sequences;
    summary.sequences = { outputs, rows, same };
    summary.warnings.push(sequenceNote(summary.sequences, sequenceWidening(prepared, summary)));
  }
  if (prepared.autoAtOutputs) summary.calibrationAuto = prepared.autoAtOutputs;
  if (prepared.choices.size) summary.calibrationChoices = Object.fromEntries([...prepared.choices].map(([t, c]) => [t, { method: c.method, why: c.why }]));
  let out = standardSixteenBit(Model.fromProto(copy.proto, copy.dir), summary);
  if (prepared.config.format === "qoperator") out = await lowerToQOperator(out);
  return { model: out, summary };
}

/** How a sequence model's note describes its 16-bit activations: chosen by default, asked for, or none. */
const sequenceWidening = (prepared: PreparedModel, summary: QuantizationSummary) =>
  (summary.wideActivations?.tensors.length ?? 0) > 0 ? (prepared.config.wideAuto ? "default" : "asked") : false;

/**
 * A file with 16-bit activations below opset 21 has com.microsoft Q/DQ (ai.onnx's take 16-bit types from 21): where
 * the model upgrades, it is written at opset 21 with standard Q/DQ instead (engine/quant/standard-qdq), and the
 * summary's note says so; where it does not, the note says why it stays onnxruntime-only.
 */
function standardSixteenBit(model: Model, summary: QuantizationSummary): Model {
  const r = standardQdq(model);
  if (!r) return model;
  const i = summary.warnings.findIndex((w) => w.includes(MS_QDQ_NOTE));
  if ("why" in r) {
    if (i >= 0) summary.warnings[i] += ` (the upgrade to opset ${SIXTEEN_BIT_QDQ_OPSET} for standard 16-bit Q/DQ failed: ${r.why})`;
    return model;
  }
  const note = `upgraded the quantized model from opset ${summary.opset.after} to ${SIXTEEN_BIT_QDQ_OPSET}, whose QuantizeLinear/DequantizeLinear take the 16-bit activations (standard ONNX, not onnxruntime's com.microsoft Q/DQ)`;
  // After the notes of what came before it (the upgrade to 13 among them).
  if (i >= 0) summary.warnings.splice(i, 1);
  summary.warnings.push(note);
  summary.opset.after = SIXTEEN_BIT_QDQ_OPSET;
  return r.model;
}

/**
 * MSE picks a range for one bit width (8 bits clip far more than 16 can afford): a tensor an override gives another
 * width than the calibration's gets its range chosen again from its histogram for that width. Other methods'
 * ranges do not depend on the width; auto's choices were measured at the calibration's width, so a tensor given
 * another one gets MSE's range for it.
 */
function rangesForWidths(prepared: PreparedModel, config: ResolvedQConfig): Map<string, TensorRange> {
  const method = prepared.config.calibration.method;
  if (method !== "mse" && method !== "auto") return prepared.ranges;
  const base = qBits(prepared.config.activationType);
  let out: Map<string, TensorRange> | undefined;
  for (const [t, o] of Object.entries(config.overrides)) {
    if (!o.type || qBits(o.type) === base || o.range || o.scale !== undefined) continue;
    const h = prepared.histograms.get(t);
    const r = prepared.ranges.get(t);
    if (!h || !r) continue;
    out ??= new Map(prepared.ranges);
    const wide = mseThreshold({ ...h, edges: Float64Array.from(h.edges) }, { bits: qBits(o.type), symmetric: o.symmetric ?? config.activationSymmetric });
    out.set(t, r.nonFinite ? { ...wide, nonFinite: r.nonFinite } : wide);
  }
  return out ?? prepared.ranges;
}

/**
 * Tensors whose calibration saw NaN/±Inf stay float: quantizing a causal mask's -Inf to the range minimum lets
 * masked positions leak into attention (measured on the fixture LM: perplexity 3.4 → 46). A user override that
 * gives the tensor a range or scale of its own wins.
 */
function floatWhereNonFinite(prepared: PreparedModel, base: ResolvedQConfig = prepared.config): { config: ResolvedQConfig; keptFloat: string[] } {
  const keptFloat: string[] = [];
  const overrides = { ...base.overrides };
  for (const [t, r] of prepared.ranges) {
    const o = overrides[t];
    if (!r.nonFinite || o?.range || o?.scale !== undefined || o?.keepFloat) continue;
    overrides[t] = { ...o, keepFloat: true };
    keptFloat.push(t);
  }
  return { config: keptFloat.length ? { ...base, overrides } : base, keptFloat };
}

/** The config with the protected nodes (config.protect's measurement) excluded. */
function withProtected(prepared: PreparedModel, config: ResolvedQConfig): ResolvedQConfig {
  const nodes = prepared.protected?.nodes ?? [];
  return nodes.length && config.protect ? { ...config, exclude: [...config.exclude, ...nodes] } : config;
}

/** The config with weightType auto's measured weights (none measured: the target's default stands). */
function withWeights(prepared: PreparedModel, config: ResolvedQConfig): ResolvedQConfig {
  const w = prepared.weights;
  return w && config.measureWeights ? { ...config, weightType: w.type, reduceRange: w.reduceRange, weightsByTensor: w.byTensor } : config;
}

/**
 * The config with calibration.wideActivations' choice as 16-bit overrides; a user's override of a tensor wins. A
 * tensor read only by a Relu/Clip widens that op's output too: the rewrite folds the Relu into the Q on its output.
 */
function widened(prepared: PreparedModel): ResolvedQConfig {
  const config = prepared.config;
  if (!prepared.wide?.tensors.length) return config;
  const type = config.activationType === "int8" ? "int16" : "uint16";
  const readers = consumers(prepared.model.graph);
  const overrides = { ...config.overrides };
  const added = new Set<string>();
  for (const t of prepared.wide.tensors) {
    const only = readers.get(t);
    const clamp = only?.length === 1 && (only[0]!.opType === "Relu" || only[0]!.opType === "Clip") ? only[0]!.output[0] : undefined;
    for (const name of clamp ? [t, clamp] : [t]) {
      if (overrides[name]) continue;
      overrides[name] = { type };
      added.add(name);
    }
  }
  return { ...config, overrides, engineOverrides: added };
}

export type { CollectOptions, TensorHistogram, TensorRange };

/** QConfig.rounding other than "nearest" (engine/recovery/rounding-choice's roundWeights): the model to write,
 *  `nearest` (convert()'s) or a copy with its weight codes chosen again on the calibration rows, and why. */
export type WeightRounder = (
  asked: Exclude<RoundingChoice["asked"], "default">,
  float: Model,
  nearest: Model,
  rows: readonly Feeds[],
  measure: MeasureOptions,
  onStep?: (done: number, total: number) => void,
) => Promise<{ model: Model; choice: RoundingChoice }>;

export { ROUNDING_ROWS } from "./cross-fit";

export interface QuantizeFileOptions extends PrepareOptions, CollectOptions {
  /** Replace OUTPUT if it exists. Default false. */
  overwrite?: boolean;
}

export interface StaticFileOptions extends QuantizeFileOptions {
  /**
   * QConfig.rounding other than "nearest". Learned rounding sits above this module (engine/recovery), so the
   * quantizeStatic that the library, the kernel and the CLI export (engine/recovery/rounding-choice) passes it.
   */
  roundWeights?: WeightRounder;
}

export interface DynamicFileOptions extends QuantizeFileOptions {
  /**
   * Inputs to measure protected layers on (QConfig.protect; its first PROTECT_ROWS rows), as static mode does with its
   * calibration data. Without data nothing is measured: dynamic mode needs none.
   */
  data?: CalibrationData;
}

/** Loads INPUT (or takes the model already loaded from it), calibrates on `data`, writes the static INT8 model to
 *  OUTPUT (atomically; never over INPUT). */
export async function quantizeStatic(
  input: string | Model,
  output: string,
  data: CalibrationData,
  config: QConfig = {},
  options: StaticFileOptions = {},
): Promise<QuantizationSummary> {
  const rounding = config.rounding ?? "nearest";
  if (rounding !== "nearest" && !options.roundWeights) {
    throw new Error(`QConfig.rounding "${rounding}" needs learned rounding, which this quantizeStatic (engine/quant) does not load: call the quantizeStatic of the library (engine/index), the notebook kernel or engine/recovery/rounding-choice`);
  }
  if ((rounding === "learned" || rounding === "adaround") && config.format === "qoperator") {
    throw new Error(`QConfig.rounding "${rounding}" rewrites the weight codes of a Q/DQ model: use format "qdq" (the default; --format qdq) with it`);
  }
  const model = typeof input === "string" ? await Model.load(input) : input;
  const prepared = await prepare(model, config, options);
  try {
    await calibrate(prepared, data, options);
  } finally {
    await release(prepared);
  }
  const converted = await convert(prepared);
  const { summary } = converted;
  refuseIfNothingQuantized(model, summary, output);
  const q = await withRounding(prepared, converted, options);
  const decoded = prepared.config.format === "qoperator" ? undefined : decodeUnfusedWeightsNote(q);
  if (decoded) summary.warnings.push(decoded);
  // Run once on a calibration row, which the model is known to take (zeros at symbolic sizes of 1 need not be).
  const note = await verifyRunnable(q, model, output, firstRows(prepared.checkRows ?? [], 1, fixedBatchSize(model))[0]);
  if (note) summary.warnings.push(note);
  if (prepared.checkRows?.length) {
    const check = await outputCheckOf(model, q, prepared.checkRows, prepared.config, prepared.ep, options, summary.warnings);
    if (check) summary.outputCheck = check;
  }
  await q.save(output, { overwrite: options.overwrite ?? false });
  return summary;
}

/**
 * QConfig.rounding: "learned" and "adaround" give convert()'s model with each layer's weight codes chosen again on the
 * kept calibration rows; "auto", convert()'s model or that learned copy, whichever rows the fit did not see measure
 * better (engine/recovery/rounding-choice). The summary's `rounding` says what was written and why.
 */
async function withRounding(prepared: PreparedModel, converted: Quantized, options: StaticFileOptions): Promise<Model> {
  const { model, summary } = converted;
  const asked = roundingOf(prepared);
  const byDefault = prepared.config.roundingByDefault ? prepared.roundingDefault : undefined;
  if (asked === "nearest" || !options.roundWeights) {
    if (byDefault && options.roundWeights) summary.rounding = { asked: "default", method: "nearest", why: byDefault.why, seconds: 0 };
    return model;
  }
  const kept = (why: string): Model => {
    summary.rounding = { asked, method: "nearest", why: `rounding ${asked} kept nearest rounding: ${why}`, seconds: 0 };
    return model;
  };
  // learned and adaround with qoperator are refused before calibrating (quantizeStatic).
  if (prepared.config.format === "qoperator") return kept("it chooses the codes of a Q/DQ model, and the format is qoperator");
  if (!prepared.roundingRows?.length) return kept("calibration kept no rows to fit learned rounding on");
  const step = phaseProgress(options, asked === "auto" ? "rounding auto: fitting learned rounding and measuring it" : `${asked} rounding`, asked === "auto" ? "fits" : "layers");
  const rows = prepared.roundingRows ?? [];
  const r = await options.roundWeights(asked, prepared.model, model, rows, measureOn(prepared), step);
  summary.rounding = byDefault ? { ...r.choice, why: r.choice.why.replace(/^rounding auto/, `rounding auto (${byDefault.why})`) } : r.choice;
  if (r.choice.method !== "nearest" && summary.sequences) {
    // The summary's readings were of the nearest codes: read the same first rows again with the codes written.
    const check = await checkSequences(prepared.model, r.model, rows.slice(0, SEQUENCE_ROWS), prepared.ep);
    const i = summary.warnings.findIndex((w) => w.startsWith("sequence outputs ("));
    if (check) summary.sequences = { outputs: check.outputs, rows: check.rows, same: check.same };
    if (check && i >= 0) summary.warnings[i] = sequenceNote(summary.sequences, sequenceWidening(prepared, summary));
  }
  return r.model;
}

/**
 * A file-level quantization that quantized no node writes nothing: a copy of the input reported as "quantized"
 * misleads. The error says why: every candidate kept float (with the first reasons, bodies of If/Loop/Scan
 * included), weighted ops inside bodies of a type not quantized there, or no op with a quantizer.
 */
function refuseIfNothingQuantized(model: Model, summary: QuantizationSummary, output: string): void {
  if (summary.quantized.length > 0) return;
  const nested = nestedWeightedNodes(model.graph);
  const unsupported = Object.entries(summary.unsupportedOps).map(([op, n]) => `${op} ×${n}`);
  const kept = summary.float.filter((f) => !f.reason.startsWith("no quantizer") && !f.reason.startsWith("control flow")).slice(0, 3).map((f) => `${f.name} (${f.opType}): ${f.reason}`);
  const why = kept.length
    ? `every candidate stayed float (${kept.join("; ")})`
    : nested
      ? `its ${nested} weighted node(s) sit inside If/Loop/Scan bodies, where only ${[...BODY_QUANTIZED_OPS].join(", ")} are quantized`
      : `none of its ops has a quantizer (${unsupported.join(", ") || "no nodes"})`;
  throw new Error(`${model.path ?? "the model"}: no node was quantized: ${why}; nothing was written to ${output}`);
}

/**
 * Dynamic quantization (weights int8 offline, activations quantized at run time): no calibration data needed. With
 * `options.data` (and QConfig.protect, the default) the weighted nodes whose quantization alone makes a quarter or
 * more of the model's output error on that data stay float, as in static mode.
 */
export async function quantizeDynamic(
  input: string,
  output: string,
  config: QConfig = {},
  options: DynamicFileOptions = {},
): Promise<QuantizationSummary> {
  const resolved = resolveConfig(config);
  if (resolved.rounding !== "nearest") {
    throw new Error(`QConfig.rounding "${resolved.rounding}" chooses weight codes against calibrated layer outputs: static INT8 and the low-bit modes take it, dynamic INT8 does not (its weights are rounded to nearest)`);
  }
  const model = await Model.load(input);
  checkJudgedOutputs(model, resolved);
  const optimize = options.optimize ?? true;
  const rows = options.data ? await firstBatches(options.data, Math.max(PROTECT_ROWS, CHECK_ROWS), options.signal) : [];
  // With data, protection and the output check run the model again and again: they report as static mode's do, and
  // the signal stops them between steps.
  const protect = phaseProgress(options, "measuring protected layers", "nodes");
  const protection = rows.length && resolved.protect ? await dynamicProtection(model, resolved, measuredRows(model.proto, rows, PROTECT_ROWS, fixedBatchSize(model)), optimize, options.ep, protect) : undefined;
  const kept = new Set(protection?.nodes ?? []);
  const final = kept.size ? { ...resolved, exclude: [...resolved.exclude, ...kept] } : resolved;
  const { model: q, summary } = await quantizeDynamicModel(model, final, optimize);
  if (protection) {
    summary.protectedLayers = protection;
    for (const f of summary.float) if (kept.has(f.name)) f.reason = PROTECTED_REASON;
  } else if (resolved.protect && summary.quantized.length) {
    summary.warnings.push(NOT_MEASURED_NOTE);
  }
  refuseIfNothingQuantized(model, summary, output);
  const note = await verifyRunnable(q, model, output, firstRows(rows, 1, fixedBatchSize(model))[0]);
  if (note) summary.warnings.push(note);
  if (rows.length) {
    const check = await outputCheckOf(model, q, measuredRows(model.proto, rows, CHECK_ROWS, fixedBatchSize(model)), resolved, options.ep, options, summary.warnings);
    if (check) summary.outputCheck = check;
  }
  await q.save(output, { overwrite: options.overwrite ?? false });
  return summary;
}

export { quantizeDynamicModel };
