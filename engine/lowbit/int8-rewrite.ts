// The step between low bits and float: a weight stored int8, per output channel, behind a DequantizeLinear that
// feeds the unchanged node (weight-only, activations stay float). Protection (engine/lowbit/protect) gives it to
// the layers 4 bits would ruin: a quarter of the float bytes instead of all of them, at weight SQNRs near 40 dB.
import type { NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { uniqueName } from "../onnx/graph";
import { attr, attrInt, makeNode } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { dequantize, paramsForWeight, quantize, quantizeKernels, sqnr, transpose2d } from "../quant/math";
import { LONG_NAME } from "./fp4-rewrite";
import { layerReport, nodeName, type LowBitLayer, type RewriteContext, type WeightSite } from "./types";

/** opset of per-axis DequantizeLinear. */
export const INT8_WEIGHT_OPSET = 13;

/** Bytes of a [K, N] weight in this form: codes, a float scale and an int8 zero point per channel, and the node. */
export function int8WeightBytes(k: number, n: number): number {
  return k * n + 5 * n + 120;
}

/**
 * With `foldable`, a Conv's weight is decoded by Cast → Mul(per-channel scale) instead of a DequantizeLinear: the same
 * values (zero points are 0), but onnxruntime folds those ops into a float initializer when the session is made, so
 * the Conv runs as FP32's does (pre-packed, NCHWc, its activation fused), where it never folds a DequantizeLinear
 * (engine/lowbit/rewrite.ts convInt4). MatMul and Gemm keep the DequantizeLinear, which onnxruntime fuses.
 */
export function rewriteInt8(ctx: RewriteContext, site: WeightSite, foldable = false): LowBitLayer {
  const { graph, taken } = ctx;
  // Quantized in the [N, K] view (one row per output channel), stored in the weight's own layout.
  const nk = transpose2d(site.values, [site.k, site.n]);
  const params = paramsForWeight(nk, [site.n, site.k], { type: "int8", symmetric: true, axis: 0 }, () => `weight "${site.weight.name}"`);
  const dims = site.weight.dims.map(Number);
  // A Conv's [N, K] view is its own layout [N, C/group, k…]: each kernel's sum kept, as static INT8's Convs keep it
  // (quantizeKernels; blazeface-back int4 15.0 → 16.1 dB, its faces' boxes at IoU 0.854 → 0.914: docs/lowbit.md §10).
  const codesNk = site.node.opType === "Conv" ? quantizeKernels(nk, dims, params) : quantize(nk, [site.n, site.k], params);
  const layer = layerReport(site, site.k, transpose2d(dequantize(codesNk, [site.n, site.k], params), [site.n, site.k]));
  // MatMul and Gemm(transB=0) keep [K, N] (channels on axis 1); Conv and Gemm(transB=1) keep [N, …] (axis 0).
  const channelsFirst = site.node.opType === "Conv" || (site.node.opType === "Gemm" && attrInt(site.node, "transB", 0) === 1);
  const codes = channelsFirst ? codesNk : transpose2d(Float32Array.from(codesNk), [site.n, site.k]);
  // A long weight name is not repeated in the five names of its form: a short stem instead (as FP4's decode does;
  // blazeface-back stores 50 small Convs this way, and their TensorFlow names were 7 % of its FP4 file).
  const long = site.weight.name.length > LONG_NAME;
  const base = long ? uniqueName(graph, "w8", taken) : site.weight.name;
  const label = long ? base : layer.node;
  const wq = makeTensor(uniqueName(graph, `${base}_int8`, taken), DataType.INT8, dims, codes);
  graph.initializer.push(wq);
  const deq = uniqueName(graph, `${base}_dequantized`, taken);
  const nodes: NodeProto[] = [];
  if (foldable && site.node.opType === "Conv") {
    const sc = makeTensor(uniqueName(graph, `${base}_scale`, taken), DataType.FLOAT, [site.n, ...dims.slice(1).map(() => 1)], params.scale);
    const values = uniqueName(graph, `${base}_codes`, taken);
    graph.initializer.push(sc);
    nodes.push(
      makeNode("Cast", [wq.name], [values], { name: uniqueName(graph, `${label}_Cast`, taken), attributes: [attr.int("to", DataType.FLOAT)] }),
      makeNode("Mul", [values, sc.name], [deq], { name: uniqueName(graph, `${label}_Mul`, taken) }),
    );
  } else {
    const sc = makeTensor(uniqueName(graph, `${base}_scale`, taken), DataType.FLOAT, [site.n], params.scale);
    const zp = makeTensor(uniqueName(graph, `${base}_zero_point`, taken), DataType.INT8, [site.n], new Int8Array(site.n));
    graph.initializer.push(sc, zp);
    nodes.push(
      makeNode("DequantizeLinear", [wq.name, sc.name, zp.name], [deq], {
        name: uniqueName(graph, `${label}_DequantizeLinear`, taken),
        attributes: [attr.int("axis", channelsFirst ? 0 : dims.length - 1)],
      }),
    );
  }
  let weightInput = deq;
  if (site.weight.dataType === DataType.FLOAT16) {
    weightInput = uniqueName(graph, `${base}_fp16`, taken);
    nodes.push(makeNode("Cast", [deq], [weightInput], { name: uniqueName(graph, `${label}_Cast`, taken), attributes: [attr.int("to", DataType.FLOAT16)] }));
  }
  graph.node.splice(graph.node.indexOf(site.node), 0, ...nodes);
  site.node.input[1] = weightInput;
  return { ...layer, bits: 8 };
}

/**
 * An LSTM's W [dirs, 4·hidden, input] and R [dirs, 4·hidden, hidden] stored int8, one scale per gate row, each behind
 * a DequantizeLinear (through [dirs·4·hidden, cols] and a Reshape when there are two directions: per-axis scales are
 * 1-D). The LSTM runs in float. FP4 has no LSTM form (its decode gives a [K, N] matrix per weight and the recurrence
 * compounds each step's error), and these weights are most of a small recurrent model's file (silero-vad: 59 %).
 * `site.weight` is W; `recurrent` is R, looked up the same way.
 */
export function rewriteLstmInt8(ctx: RewriteContext, site: WeightSite, recurrent: TensorProto): LowBitLayer {
  const { graph, taken } = ctx;
  const stored: Float32Array[] = [];
  const originals: Float32Array[] = [];
  const nodes: NodeProto[] = [];
  for (const [slot, weight] of [[1, site.weight], [2, recurrent]] as const) {
    const [dirs, rows, cols] = weight.dims.map(Number) as [number, number, number];
    const values = tensorToFloat32(weight);
    const params = paramsForWeight(values, [dirs * rows, cols], { type: "int8", symmetric: true, axis: 0 }, () => `weight "${weight.name}"`);
    const codes = quantize(values, [dirs * rows, cols], params);
    originals.push(values);
    stored.push(dequantize(codes, [dirs * rows, cols], params));
    const one = dirs === 1;
    const base = weight.name;
    const wq = makeTensor(uniqueName(graph, `${base}_int8`, taken), DataType.INT8, one ? [dirs, rows, cols] : [dirs * rows, cols], codes);
    const sc = makeTensor(uniqueName(graph, `${base}_scale`, taken), DataType.FLOAT, [dirs * rows], params.scale);
    const zp = makeTensor(uniqueName(graph, `${base}_zero_point`, taken), DataType.INT8, [dirs * rows], new Int8Array(dirs * rows));
    graph.initializer.push(wq, sc, zp);
    let out = uniqueName(graph, `${base}_dequantized`, taken);
    nodes.push(
      makeNode("DequantizeLinear", [wq.name, sc.name, zp.name], [out], {
        name: uniqueName(graph, `${nodeName(site.node)}_${slot === 1 ? "W" : "R"}_DequantizeLinear`, taken),
        attributes: [attr.int("axis", one ? 1 : 0)],
      }),
    );
    if (!one) {
      const shape = makeTensor(uniqueName(graph, `${base}_shape`, taken), DataType.INT64, [3], [dirs, rows, cols]);
      graph.initializer.push(shape);
      const r = uniqueName(graph, `${base}_reshaped`, taken);
      nodes.push(makeNode("Reshape", [out, shape.name], [r], { name: uniqueName(graph, `${nodeName(site.node)}_${slot === 1 ? "W" : "R"}_Reshape`, taken) }));
      out = r;
    }
    if (weight.dataType === DataType.FLOAT16) {
      const c = uniqueName(graph, `${base}_fp16`, taken);
      nodes.push(makeNode("Cast", [out], [c], { name: uniqueName(graph, `${nodeName(site.node)}_${slot === 1 ? "W" : "R"}_Cast`, taken), attributes: [attr.int("to", DataType.FLOAT16)] }));
      out = c;
    }
    site.node.input[slot] = out;
  }
  graph.node.splice(graph.node.indexOf(site.node), 0, ...nodes);
  const all = (xs: Float32Array[]) => {
    const r = new Float32Array(xs.reduce((a, x) => a + x.length, 0));
    let at = 0;
    for (const x of xs) (r.set(x, at), (at += x.length));
    return r;
  };
  return {
    node: nodeName(site.node),
    opType: "LSTM",
    weight: `${site.weight.name}, ${recurrent.name}`,
    k: site.k,
    n: site.n,
    blockSize: site.k,
    partialBlock: false,
    bits: 8,
    sqnrDb: sqnr(all(originals), all(stored)),
  };
}
