// What quantization covers, as facts both the engine and the editor's Quantize Model wizard read (pure: no
// onnxruntime, so the extension host may import it): the opset older models are upgraded to, the ops that mark a
// model already quantized, the ops whose weights are quantized, and how many of those sit inside subgraphs (quantized
// inside their bodies: calibrated Q/DQ for MatMul/Gemm in static mode, weight-only Conv, dynamic LSTM; see
// engine/quant/subgraph.ts).
import type { GraphProto } from "onnx-buf";
import { forEachGraph } from "../onnx/graph";

/** Standard per-axis QuantizeLinear/DequantizeLinear need opset 13; older models are upgraded to it. */
export const QUANT_OPSET = 13;

/** Ops of a model that is already quantized (static or dynamic INT8). */
export const QUANTIZED_OPS: ReadonlySet<string> = new Set(["QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"]);

/** Ops whose weights the quantizers store in fewer bits. */
export const WEIGHTED_OPS: ReadonlySet<string> = new Set(["Conv", "ConvTranspose", "MatMul", "Gemm", "LSTM", "GRU", "RNN"]);

/** Weighted nodes inside If/Loop/Scan bodies, at any depth. */
export function nestedWeightedNodes(graph: GraphProto): number {
  let nested = 0;
  forEachGraph(graph, (g, depth) => {
    if (depth > 0) nested += g.node.filter((n) => WEIGHTED_OPS.has(n.opType)).length;
  });
  return nested;
}
