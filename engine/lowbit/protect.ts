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
import type { CalibrationData, Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import { noiseToDb, outputsOn, worstNoiseRatio } from "../calibrate/activation-precision";

/** What the protection aims for; see LowBitOptions.protect. */
export interface ProtectOptions {
  /** Worst output SQNR (dB) against the float model, over the model's float outputs. Default DEFAULT_PROTECT_DB. */
  minOutputSqnrDb?: number;
  /** Batches of the data used for measuring (default 8). */
  maxBatches?: number;
  /** What a protected layer becomes: int8 weights per output channel (default; a quarter of the float bytes) or
   *  float. */
  fallback?: "int8" | "float";
}

/** The target when `protect` is given without one. Protection itself is opt-in: no one output SQNR suits every
 *  model (docs/lowbit.md). */
export const DEFAULT_PROTECT_DB = 20;

/** How the low-bit model's outputs compare with the float model's on the data. */
export interface OutputReport {
  /** Worst output SQNR (dB) of the written model. */
  sqnrDb: number;
  /** ... and with every eligible layer in low bits, before any was protected. */
  allLowBitDb: number;
  /** The target, when protection ran. */
  targetDb?: number;
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
  layers: readonly { node: string; opType: string; k: number; n: number }[];
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
): Promise<{ model: Model; output: OutputReport }> {
  const batches = await take(data, options.maxBatches ?? 8);
  if (batches.length === 0) throw new Error(`${float.path ?? "the model"}: the calibration data is empty: give at least one batch to measure the low-bit outputs on`);
  const session = options.threads ? { threads: options.threads } : {};
  const reference = await outputsOn(float, batches, session);
  let measured = 0;
  const score = async (m: Model) => {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error("low-bit protection cancelled");
    measured++;
    return noiseToDb(worstNoiseRatio(reference, await outputsOn(m, batches, session)));
  };
  const full = build({ int8: [], float: [] });
  const allLowBitDb = await score(full.model);
  const output: OutputReport = { sqnrDb: allLowBitDb, allLowBitDb, protected: [], batches: batches.length, measured };
  const targetDb = options.minOutputSqnrDb ?? DEFAULT_PROTECT_DB;
  if (options.measureOnly || allLowBitDb >= targetDb || full.layers.length === 0) {
    output.measured = measured;
    if (!options.measureOnly) output.targetDb = targetDb;
    return { model: full.model, output };
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
  const n = ranked.length;
  // The ladder, each step one conversion: the first k of the ranking stepped up to int8 weights (k = 0 … n), then,
  // when even all of them at int8 fall short, the first k float and the rest int8 (k = 1 … n; n is the float model,
  // which always meets it). With fallback "float" only the second half, without int8.
  const int8 = options.fallback !== "float";
  const steps: { int8: string[]; float: string[] }[] = [];
  if (int8) for (let k = 0; k <= n; k++) steps.push({ int8: ranked.slice(0, k), float: [] });
  for (let k = int8 ? 1 : 0; k <= n; k++) steps.push({ int8: int8 ? ranked.slice(k) : [], float: ranked.slice(0, k) });
  const results = new Map<number, { model: Model; db: number }>([[0, { model: full.model, db: allLowBitDb }]]);
  const at = async (i: number) => {
    let r = results.get(i);
    if (!r) {
      const m = build(steps[i]!).model;
      r = { model: m, db: await score(m) };
      results.set(i, r);
    }
    return r;
  };
  // The first step that meets the target, by binary search (each step only moves the model towards float).
  let lo = 0;
  let hi = steps.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((await at(mid)).db >= targetDb) hi = mid;
    else lo = mid;
  }
  const chosen = await at(hi);
  const step = steps[hi]!;
  const byNode = new Map(alone.map((a) => [a.node, a]));
  const entry = (node: string, as: "int8" | "float") => {
    const { opType, aloneDb } = byNode.get(node)!;
    return { node, opType, aloneDb, as };
  };
  return {
    model: chosen.model,
    output: {
      sqnrDb: chosen.db,
      allLowBitDb,
      targetDb,
      protected: [...step.float.map((node) => entry(node, "float")), ...step.int8.map((node) => entry(node, "int8"))],
      batches: batches.length,
      measured,
    },
  };
}

/** The first `max` batches of `data`, in memory. */
export async function take(data: CalibrationData, max: number): Promise<Feeds[]> {
  const out: Feeds[] = [];
  for await (const feeds of data) {
    out.push(feeds);
    if (out.length >= max) break;
  }
  return out;
}
