// Low-bit weight quantization (INT4 blockwise, FP4 MXFP4/NVFP4): the public entry.
import { Model } from "../onnx/model";
import { upgradeOpset } from "../onnx/upgrade";
import { quantizeWeightsLowBit, type LowBitOptions, type LowBitReport } from "./rewrite";

export { quantizeWeightsLowBit } from "./rewrite";
export type { Fp4Options, Int4Options, LowBitLayer, LowBitOptions, LowBitReport } from "./rewrite";
export { E2M1_TABLE, FP4_BLOCK_SIZE, dequantizeFp4, quantizeFp4 } from "./fp4";
export type { Fp4Blocks, Fp4Format } from "./fp4";
export { dequantizeBlockwise, quantizeBlockwise } from "./intblock";
export type { BlockAlgorithm, BlockQuantOptions, BlockQuantized } from "./intblock";

/**
 * Returns a copy of `model` with low-bit weights; the input model is left untouched. Nodes whose weights cannot be
 * quantized (not constant, not 2-D, shared, excluded) stay float and are listed in `report.skipped`.
 */
export function lowBitModel(model: Model, options: LowBitOptions): { model: Model; report: LowBitReport } {
  const copy = model.clone();
  // The standard ONNX forms need newer types: uint4 DequantizeLinear (opset 21), FLOAT4E2M1 (opset 23).
  const needs = options.mode === "int4" && options.format === "qdq" ? 21 : options.mode === "fp4" && options.export === "native" ? 23 : 0;
  const upgraded = needs > (copy.opset() ?? 0);
  if (upgraded) upgradeOpset(copy, needs);
  const report = quantizeWeightsLowBit(copy, options);
  if (upgraded) report.notes.push(`upgraded the model from opset ${model.opset()} to ${needs} for this form`);
  return { model: copy, report };
}

/** Loads `input`, quantizes its weights and writes `output` atomically (never over `input`). */
export async function quantizeLowBit(input: string, output: string, options: LowBitOptions): Promise<LowBitReport> {
  const source = await Model.load(input);
  const { model, report } = lowBitModel(source, options);
  await model.save(output);
  return report;
}
