// Low bits that keep the model working. Weight SQNR says little about what 4-bit weights do to a real model's
// outputs (a recogniser's FP4 weights at 21 dB left 20 % of its lines right), so with calibration data the low-bit
// pass measures the outputs against the float model's and, when they fall short of a target, steps up the layers
// that cost the most output error per byte they save (to int8 weights, or float) until the target is met.
//
// The ranking measures each layer alone (only that layer in low bits): errors of 4-bit layers compound, and a
// ranking taken inside the fully quantized model credits a layer with damage the others do. Output noise powers of
// separate layers add roughly, so the layers are taken in order of noise per weight element; how many is then
// found by a binary search on the measured model (each step a real conversion and run). Int8 weights come first (a
// quarter of the float bytes); a model that even all-int8 weights leave short of the target (a text recogniser on
// the corpus: 18 dB) gets its worst layers float, the rest int8.
//
// Protection is on by default with calibration data, within a size cap: a low-bit file the size of the float one
// would defeat the mode, so the ladder stops at the last step within DEFAULT_PROTECT_MAX_SIZE of the float model's
// size (all weights int8 and some float fit; the written report says when the target was not met within it).
import type { CalibrationData, Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import { comparedOutputs, noiseToDb, outputsOn, worstNoiseRatio, type MeasureOptions } from "../calibrate/activation-precision";
import { commonRows } from "../calibrate/rows";

/** What the protection aims for; see LowBitOptions.protect. */
export interface ProtectOptions {
  /** Worst output SQNR (dB) against the float model, over the model's float outputs. Default DEFAULT_PROTECT_DB. */
  minOutputSqnrDb?: number;
  /** Batches of the data used for measuring (default 8). */
  maxBatches?: number;
  /** What a protected layer becomes: int8 weights per output channel (default; a quarter of the float bytes) or
   *  float. */
  fallback?: "int8" | "float";
  /** The largest the protected model may be, as a share of the float model's size (default
   *  DEFAULT_PROTECT_MAX_SIZE): the ladder takes no step above it, and below the target writes the last step within
   *  it. Infinity lifts the cap. */
  maxSize?: number;
}

/** The target when none is given. No one output SQNR suits every model (a face detector's decisions survive 5 dB, a
 *  text recogniser's need ~18: docs/lowbit.md); the size cap keeps the default from undoing the mode. */
export const DEFAULT_PROTECT_DB = 20;
/** The size cap when none is given: all weights int8 (about a quarter of float) and a few layers float. */
export const DEFAULT_PROTECT_MAX_SIZE = 0.35;

/** How the low-bit model's outputs compare with the float model's on the data. */
export interface OutputReport {
  /** Worst output SQNR (dB) of the written model. */
  sqnrDb: number;
  /** ... and with every eligible layer in low bits, before any was protected. */
  allLowBitDb: number;
  /** The target, when protection ran. */
  targetDb?: number;
  /** When protection ran: the written model's size (encoded, external data included) as a share of the float
   *  model's, the cap, and whether the cap stopped the ladder short of the target. */
  size?: number;
  maxSize?: number;
  capped?: boolean;
  /** The cap asked for, where every layer in low bits already made a larger file and `maxSize` is that file's share. */
  askedMaxSize?: number;
  /** Outputs a final Softmax makes, compared on the logits it reads, and outputs a comparison masks, compared on the
   *  values behind the mask (comparedOutputs). */
  logits?: number;
  unmasked?: number;
  /** Layers stepped up to meet it, float ones first, each with the output SQNR it gives alone in low bits. */
  protected: { node: string; opType: string; aloneDb: number; as: "int8" | "float" }[];
  /** Samples batches measured on, and models converted and run. */
  batches: number;
  measured: number;
}

/** A conversion of the model with some layers stepped up to int8 weights and some kept float (the caller's low-bit
 *  pass); `layers` are the ones it put in low bits. */
export type LowBitBuild = (up: { int8: readonly string[]; float: readonly string[] }) => {
  model: Model;
  /** bits 8: a layer the pass stores int8 anyway (FP4's small ones): the ladder can only keep it float. */
  layers: readonly { node: string; opType: string; k: number; n: number; bits?: 8 }[];
};

export interface ProtectRunOptions extends ProtectOptions {
  /** Measure only: report the outputs' SQNR, step nothing up. */
  measureOnly?: boolean;
  threads?: number;
  onProgress?(done: number, total: number): void;
  signal?: AbortSignal;
}

/**
 * Measures the all-low-bit conversion against `float` on `data` and, unless it meets the target, finds the first
 * step of the ladder below (int8 weights first, then float) that does. Returns the chosen model and what was measured.
 */
export async function protectLowBit(
  float: Model,
  build: LowBitBuild,
  data: CalibrationData,
  options: ProtectRunOptions = {},
): Promise<{ model: Model; output: OutputReport; sqnrOf: (m: Model) => Promise<number> }> {
  const batches = await take(data, options.maxBatches ?? 8);
  if (batches.length === 0) throw new Error(`${float.path ?? "the model"}: the calibration data is empty: give at least one batch to measure the low-bit outputs on`);
  const judged = comparedOutputs(float);
  const measure: MeasureOptions = { ...(options.threads ? { threads: options.threads } : {}), judged };
  const { logits, unmasked } = judged;
  const reference = await outputsOn(float, batches, measure);
  let measured = 0;
  // Another model's worst output SQNR on the same batches against the same float outputs (the caller's written one).
  const sqnrOf = async (m: Model) => {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error("low-bit protection cancelled");
    return noiseToDb(worstNoiseRatio(reference, await outputsOn(m, batches, measure)));
  };
  const score = (m: Model) => {
    measured++;
    return sqnrOf(m);
  };
  const full = build({ int8: [], float: [] });
  const allLowBitDb = await score(full.model);
  const output: OutputReport = { sqnrDb: allLowBitDb, allLowBitDb, protected: [], batches: batches.length, measured, ...(logits && { logits }), ...(unmasked && { unmasked }) };
  const targetDb = options.minOutputSqnrDb ?? DEFAULT_PROTECT_DB;
  const asked = options.maxSize ?? DEFAULT_PROTECT_MAX_SIZE;
  const floatBytes = float.fileBytes();
  const share = (m: Model) => m.fileBytes() / floatBytes;
  const fullShare = share(full.model);
  // A model whose every layer in low bits already makes a file above the cap (a small one: its blocks' scales and
  // padding weigh more) may still step layers up, as long as the file grows no larger: a small layer's int8 weights
  // can take fewer bytes than its blocks (the orientation classifier: 0.385× all int4, 0.367× protected).
  const maxSize = Math.max(asked, fullShare);
  const cap = { maxSize, ...(maxSize > asked && { askedMaxSize: asked }) };
  if (options.measureOnly || allLowBitDb >= targetDb || full.layers.length === 0) {
    output.measured = measured;
    if (!options.measureOnly) Object.assign(output, { targetDb, size: fullShare, ...cap, capped: allLowBitDb < targetDb && full.layers.length > 0 });
    return { model: full.model, output, sqnrOf };
  }
  // Each layer alone in low bits (every other float): its own output error.
  const names = full.layers.map((l) => l.node);
  const alone: { node: string; opType: string; aloneDb: number; noisePerElement: number }[] = [];
  for (const [i, l] of full.layers.entries()) {
    const db = await score(build({ int8: [], float: names.filter((n) => n !== l.node) }).model);
    alone.push({ node: l.node, opType: l.opType, aloneDb: db, noisePerElement: 10 ** (-db / 10) / Math.max(1, l.k * l.n) });
    options.onProgress?.(i + 1, full.layers.length);
  }
  alone.sort((a, b) => b.noisePerElement - a.noisePerElement);
  const ranked = alone.map((a) => a.node);
  const stored8 = new Set(full.layers.filter((l) => l.bits === 8).map((l) => l.node));
  const lowBit = ranked.filter((node) => !stored8.has(node));
  const n = ranked.length;
  // The ladder, each step one conversion: the first k of the ranking's low-bit layers stepped up to int8 weights,
  // then, when even all of them at int8 fall short, the first k of the ranking float and the other low-bit ones int8
  // (k = 1 … n; n is the float model, which always meets it). With fallback "float" only the second half, without int8.
  const int8 = options.fallback !== "float";
  const steps: { int8: string[]; float: string[] }[] = [];
  if (int8) for (let k = 0; k <= lowBit.length; k++) steps.push({ int8: lowBit.slice(0, k), float: [] });
  for (let k = int8 ? 1 : 0; k <= n; k++) {
    const float = ranked.slice(0, k);
    steps.push({ int8: int8 ? lowBit.filter((node) => !float.includes(node)) : [], float });
  }
  const built = new Map<number, Model>([[0, full.model]]);
  const model = (i: number) => {
    let m = built.get(i);
    if (!m) built.set(i, (m = build(steps[i]!).model));
    return m;
  };
  const scored = new Map<number, number>([[0, allLowBitDb]]);
  const at = async (i: number) => {
    let db = scored.get(i);
    if (db === undefined) scored.set(i, (db = await score(model(i))));
    return db;
  };
  // Each step only moves the model towards float, so (near enough) output SQNRs grow along the ladder, and sizes
  // mostly do: the last step within the size cap, then the first step up to it that meets the target, by binary
  // search. A small layer's int8 weights can take fewer bytes than its padded blocks, so a step before the last one
  // within the cap may be over it: such a step does not count as meeting the target (the search then ends on a step
  // within the cap, at worst the last).
  // Each step's share once: fileBytes encodes the whole model.
  const shares = new Map<number, number>([[0, fullShare]]);
  const shareAt = (i: number) => {
    let s = shares.get(i);
    if (s === undefined) shares.set(i, (s = share(model(i))));
    return s;
  };
  const within = (i: number) => shareAt(i) <= maxSize;
  let last = steps.length - 1;
  if (!within(last)) {
    let [fits, over] = [0, last];
    while (over - fits > 1) {
      const mid = (fits + over) >> 1;
      if (within(mid)) fits = mid;
      else over = mid;
    }
    last = fits;
  }
  let hi = last;
  if ((await at(last)) >= targetDb) {
    let lo = 0;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (within(mid) && (await at(mid)) >= targetDb) hi = mid;
      else lo = mid;
    }
  }
  const chosen = { model: model(hi), db: await at(hi) };
  const step = steps[hi]!;
  const byNode = new Map(alone.map((a) => [a.node, a]));
  const entry = (node: string, as: "int8" | "float") => {
    const { opType, aloneDb } = byNode.get(node)!;
    return { node, opType, aloneDb, as };
  };
  return {
    sqnrOf,
    model: chosen.model,
    output: {
      sqnrDb: chosen.db,
      allLowBitDb,
      targetDb,
      size: shareAt(hi),
      ...cap,
      capped: chosen.db < targetDb,
      protected: [...step.float.map((node) => entry(node, "float")), ...step.int8.map((node) => entry(node, "int8"))],
      batches: batches.length,
      measured,
      ...(logits && { logits }),
      ...(unmasked && { unmasked }),
    },
  };
}

/** The first batches of `data`, in memory: at least `batches` of them, and more until they hold `rows` rows (a batch's
 *  first axis), so a folder of single samples gives `rows` samples and one of large batches no more than `batches`. */
export async function takeRows(data: CalibrationData, batches: number, rows: number): Promise<Feeds[]> {
  const out: Feeds[] = [];
  let held = 0;
  for await (const feeds of data) {
    out.push(feeds);
    held += commonRows(feeds) ?? 1;
    if (out.length >= batches && held >= rows) break;
  }
  return out;
}

/** The first `max` batches of `data`, in memory. */
export function take(data: CalibrationData, max: number): Promise<Feeds[]> {
  return takeRows(data, max, 0);
}
