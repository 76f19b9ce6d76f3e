// The step between low bits and float: a weight stored int8, per output channel, behind a DequantizeLinear that
// feeds the unchanged node (weight-only, activations stay float). Protection (engine/lowbit/protect) gives it to
// the layers 4 bits would ruin: a quarter of the float bytes instead of all of them, at weight SQNRs near 40 dB.
import { DataType } from "../onnx/dtype";
import { uniqueName } from "../onnx/graph";
import { attr, attrInt, makeNode } from "../onnx/proto";
import { makeTensor } from "../onnx/tensor";
import { dequantize, paramsForWeight, quantize, transpose2d } from "../quant/math";
import { layerReport, type LowBitLayer, type RewriteContext, type WeightSite } from "./types";

/** opset of per-axis DequantizeLinear. */
export const INT8_WEIGHT_OPSET = 13;

/** Bytes of a [K, N] weight in this form: codes, a float scale and an int8 zero point per channel, and the node. */
export function int8WeightBytes(k: number, n: number): number {
  return k * n + 5 * n + 120;
}

export function rewriteInt8(ctx: RewriteContext, site: WeightSite): LowBitLayer {
  const { graph, taken } = ctx;
  // Quantized in the [N, K] view (one row per output channel), stored in the weight's own layout.
  const nk = transpose2d(site.values, [site.k, site.n]);
  const params = paramsForWeight(nk, [site.n, site.k], { type: "int8", symmetric: true, axis: 0 }, () => `weight "${site.weight.name}"`);
  const codesNk = quantize(nk, [site.n, site.k], params);
  const layer = layerReport(site, site.k, transpose2d(dequantize(codesNk, [site.n, site.k], params), [site.n, site.k]));
  const dims = site.weight.dims.map(Number);
  // MatMul and Gemm(transB=0) keep [K, N] (channels on axis 1); Conv and Gemm(transB=1) keep [N, …] (axis 0).
  const channelsFirst = site.node.opType === "Conv" || (site.node.opType === "Gemm" && attrInt(site.node, "transB", 0) === 1);
  const codes = channelsFirst ? codesNk : transpose2d(Float32Array.from(codesNk), [site.n, site.k]);
  const base = site.weight.name;
  const wq = makeTensor(uniqueName(graph, `${base}_int8`, taken), DataType.INT8, dims, codes);
  const sc = makeTensor(uniqueName(graph, `${base}_scale`, taken), DataType.FLOAT, [site.n], params.scale);
  const zp = makeTensor(uniqueName(graph, `${base}_zero_point`, taken), DataType.INT8, [site.n], new Int8Array(site.n));
  graph.initializer.push(wq, sc, zp);
  const deq = uniqueName(graph, `${base}_dequantized`, taken);
  const nodes = [
    makeNode("DequantizeLinear", [wq.name, sc.name, zp.name], [deq], {
      name: uniqueName(graph, `${layer.node}_DequantizeLinear`, taken),
      attributes: [attr.int("axis", channelsFirst ? 0 : dims.length - 1)],
    }),
  ];
  let weightInput = deq;
  if (site.weight.dataType === DataType.FLOAT16) {
    weightInput = uniqueName(graph, `${base}_fp16`, taken);
    nodes.push(makeNode("Cast", [deq], [weightInput], { name: uniqueName(graph, `${layer.node}_Cast`, taken), attributes: [attr.int("to", DataType.FLOAT16)] }));
  }
  graph.node.splice(graph.node.indexOf(site.node), 0, ...nodes);
  site.node.input[1] = weightInput;
  return { ...layer, bits: 8 };
}
