// The vocabulary of the mixed-precision search, shared by its parts (measure, rank, strategy) and its result.
import type { Tensor } from "../../data/feeds";

/** What a mixed model does with a sensitive node: keep it float, or give its activations 16 bits. */
export type Remedy = "float" | "int16";

/**
 * An accuracy target: SQNR against the float model (on the compared tensors: search/outputs' Yardstick), a top-1
 * drop on labelled data, or argmax agreement with the float model on the first compared tensor without labels (per
 * "sample": every row of a sample agrees, a sequence model's whole line; per "row": each frame on its own).
 */
export type AccuracyTarget =
  | { kind: "sqnr"; minDb: number }
  | { kind: "drop"; maxPp: number; labels: Tensor }
  | { kind: "agreement"; minPct: number; per?: "row" | "sample" };

export interface LayerSensitivity {
  node: string;
  opType: string;
  /** Output SQNR (dB, all outputs together) with only this node restored to float. */
  outputSqnrDb: number;
  /** outputSqnrDb minus the all-quantized model's: how much this node's quantization costs. */
  gainDb: number;
  /** With rankInt16: the gain when only this node's activations get 16 bits (its weights stay int8). */
  int16GainDb?: number;
}

export interface SensitivityRanking {
  /** How the nodes were measured (search/rank): with only each restored to float, or with only each quantized. */
  method: "restore-one" | "quantize-one";
  /** SQNR of the fully quantized model. */
  baselineDb: number;
  /** Most sensitive first. */
  layers: LayerSensitivity[];
}

export interface SearchStep {
  /** How the nodes this step picked are treated ("both": some float, the others at 16 bits). */
  remedy: Remedy | "both";
  /** Nodes not quantized (remedy "float"). */
  keptFloat: string[];
  /** Nodes whose activations are 16-bit, weights still int8 (remedy "int16"). */
  int16: string[];
  /** SQNR in dB, top-1 accuracy in % for a drop target, agreement with the float model in % for an agreement one. */
  metric: number;
  met: boolean;
  /** Share of the quantizable nodes' weight parameters that stay int8. */
  int8WeightShare: number;
  /** Serialized size of this configuration's model. */
  bytes: number;
  /** Median latency (ms) with options.tradeoff. */
  latencyMs?: number;
}

/** Wall seconds a search spent converting configurations and running them (session creation included). */
export interface ConvertRunSeconds {
  convert: number;
  run: number;
}
