// Which layers hurt? Each quantized node is scored with only it restored to float (everything else quantized),
// and optionally with only its activations at 16 bits, against the all-quantized baseline: a strategy's ranking.
import type { Feeds } from "../../data/feeds";
import { convert, type PreparedModel } from "../../quant/index";
import { convertMixed, type MixConfig } from "./mixed-model";
import { modelOutputs, outputSqnr, type BatchOutput, type RunOptions } from "./outputs";
import type { LayerSensitivity, SensitivityRanking } from "./types";

export interface SensitivityOptions extends RunOptions {
  /**
   * Also measure each node with 16-bit activations instead of float (`int16GainDb`): a second conversion and run
   * per node. The search does this unless its remedy is "float".
   */
  rankInt16?: boolean;
  /** Called after each candidate model is measured. */
  onProgress?(done: number, total: number): void;
}

/** A configuration's score, higher is better (output SQNR in dB). */
export type Score = (config: MixConfig) => Promise<number>;

/** Ranks `nodes` by what restoring each alone gains on `score`, most first. */
export async function rankNodes(
  nodes: readonly { name: string; opType: string }[],
  score: Score,
  options: Pick<SensitivityOptions, "rankInt16" | "onProgress"> = {},
): Promise<SensitivityRanking> {
  const baselineDb = await score({ keepFloat: [], int16: [] });
  const layers: LayerSensitivity[] = [];
  for (const [i, n] of nodes.entries()) {
    const db = await score({ keepFloat: [n.name], int16: [] });
    const layer: LayerSensitivity = { node: n.name, opType: n.opType, outputSqnrDb: db, gainDb: db - baselineDb };
    if (options.rankInt16) layer.int16GainDb = (await score({ keepFloat: [], int16: [n.name] })) - baselineDb;
    layers.push(layer);
    options.onProgress?.(i + 1, nodes.length);
  }
  layers.sort((a, b) => b.gainDb - a.gainDb);
  return { baselineDb, layers };
}

/** Output SQNR of each configuration against the float model on `data` (its outputs computed once unless given). */
export async function outputSqnrScore(prepared: PreparedModel, data: readonly Feeds[], options: RunOptions = {}, reference?: BatchOutput[][]): Promise<Score> {
  const ref = reference ?? (await modelOutputs(prepared.model, data, options));
  return async (config) => outputSqnr(ref, await modelOutputs((await convertMixed(prepared, config)).model, data, options));
}

export async function rankSensitivity(
  prepared: PreparedModel,
  data: readonly Feeds[],
  options: SensitivityOptions = {},
  reference?: BatchOutput[][],
): Promise<SensitivityRanking> {
  if (prepared.ranges.size === 0 && prepared.observe.length > 0) throw new Error("rankSensitivity: calibrate the prepared model first");
  if (data.length === 0) throw new Error("rankSensitivity: no data; give at least one batch of inputs");
  const nodes = (await convert(prepared)).summary.quantized;
  return rankNodes(nodes, await outputSqnrScore(prepared, data, options, reference), options);
}

/** The ranking reordered by what 16-bit activations alone gain (rankInt16), most first. */
export function byInt16Gain(layers: readonly LayerSensitivity[]): LayerSensitivity[] {
  return [...layers].sort((a, b) => (b.int16GainDb ?? 0) - (a.int16GainDb ?? 0));
}
