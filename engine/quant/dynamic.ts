// Dynamic quantization (ORT's quantize_dynamic form): weights stored int8 offline, activations quantized per batch
// at run time by DynamicQuantizeLinear, then MatMulInteger → Cast → Mul by (activation scale × weight scale).
// onnxruntime fuses this chain into com.microsoft.DynamicQuantizeMatMul. No calibration data is needed.
// Convolutions become ConvInteger → Cast → Mul (→ Add bias). onnxruntime's ConvInteger takes one weight zero point
// only, so per-channel convolution weights are made symmetric (every channel's zero point is then the same) and
// the per-channel scales are applied after the integer convolution, broadcast over the output channels.
import type { NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { outerScopeInputs, subgraphs, uniqueName, usedNames } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { attr, attrFloat, attrInt, makeNode } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { inferElemTypes } from "./graph";
import { ONNX_DTYPE, paramsForWeight, quantize, transpose2d } from "./math";
import { preprocess } from "./preprocess";
import { emptySummary, matchesSelector, type QuantizationSummary, type ResolvedQConfig } from "./types";

export async function quantizeDynamicModel(
  model: Model,
  config: ResolvedQConfig,
  optimize: boolean,
): Promise<{ model: Model; summary: QuantizationSummary }> {
  const notes: string[] = [];
  const m = await preprocess(model, optimize, notes);
  const g = m.graph;
  const opset = Number(m.opset() ?? 0);
  const summary = emptySummary(config, "dynamic", opset, "qoperator");
  summary.opset.before = model.opset() ?? 0;
  summary.warnings.push(...notes);
  const types = inferElemTypes(g);
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const taken = usedNames(g);
  const name = (b: string) => uniqueName(g, b, taken);
  const out: NodeProto[] = [];
  const shared: SharedWeights = { weights: new Map(), biases: new Map() };
  for (const node of g.node) {
    const reason = declineReason(node, config, types, inits);
    if (reason) {
      out.push(node);
      if (node.opType === "MatMul" || node.opType === "Gemm" || node.opType === "Conv") summary.float.push({ name: node.name, opType: node.opType, reason });
      continue;
    }
    if (node.opType === "Conv") {
      out.push(...convInteger(node, m, config, inits, name, summary, shared));
      continue;
    }
    const [a = "", b = "", c = ""] = node.input;
    const w = inits.get(b)!;
    let dims = w.dims.map(Number);
    let data = tensorToFloat32(w, m.dir);
    if (node.opType === "Gemm" && attrInt(node, "transB", 0)) [data, dims] = [transpose2d(data, dims), [dims[1]!, dims[0]!]];
    const key = `${b}|${node.opType === "Gemm" ? attrInt(node, "transB", 0) : 0}`;
    const cached = shared.weights.get(key);
    const p = cached?.p ?? paramsForWeight(data, dims, { type: config.weightType, symmetric: config.weightSymmetric, reduceRange: config.reduceRange, axis: config.perChannel ? 1 : undefined }, () => `initializer "${b}" of ${node.opType} node "${node.name}"`);
    const base = node.name || node.output[0]!;
    // A weight shared by several nodes is stored once.
    const [wq, wz, ws] = cached?.names ?? [name(`${b}_quantized`), name(`${b}_zero_point`), name(`${b}_scale`)];
    if (!cached) {
      const pd = p.axis === undefined ? [] : [p.scale.length];
      g.initializer.push(
        makeTensor(wq, ONNX_DTYPE[p.type], dims, quantize(data, dims, p)),
        makeTensor(wz, ONNX_DTYPE[p.type], pd, p.zeroPoint),
        makeTensor(ws, DataType.FLOAT, pd, p.scale),
      );
      shared.weights.set(key, { p, names: [wq, wz, ws] });
    }
    const y = node.output[0]!;
    const gemmTail = node.opType === "Gemm" && (c || attrFloat(node, "alpha", 1) !== 1);
    const mulOut = gemmTail ? name(`${base}_matmul`) : y;
    out.push(...integerChain("MatMulInteger", a, [wq, wz, ws], mulOut, base, name));
    if (gemmTail) {
      const alpha = attrFloat(node, "alpha", 1);
      let cur = mulOut;
      if (alpha !== 1) {
        const k = name(`${base}_alpha`);
        g.initializer.push(makeTensor(k, DataType.FLOAT, [], [alpha]));
        const next = c ? name(`${base}_scaled`) : y;
        out.push(makeNode("Mul", [cur, k], [next], { name: name(`${base}_alpha_Mul`) }));
        cur = next;
      }
      if (c) out.push(makeNode("Add", [cur, c], [y], { name: name(`${base}_bias_Add`) }));
    }
    summary.quantized.push({ name: node.name, opType: node.opType, tensors: [{ name: b, type: p.type, perChannel: p.axis !== undefined }] });
  }
  g.node = out;
  const used = new Set(g.node.flatMap((n) => n.input));
  g.initializer = g.initializer.filter((t) => used.has(t.name) || g.output.some((o) => o.name === t.name) || !inits.has(t.name) || t.dataType !== DataType.FLOAT || usedBySubgraph(g, t.name));
  return { model: m, summary };
}

/**
 * x → DynamicQuantizeLinear → `op` with the stored int8 weight → Cast → × (x scale × weight scale) → `y`: the chain
 * both MatMul/Gemm (MatMulInteger) and Conv (ConvInteger) become.
 */
/**
 * Tensors already stored, by source name and layout: a weight (or Conv bias) several nodes share is quantized (or
 * reshaped) and stored once.
 */
interface SharedWeights {
  weights: Map<string, { p: ReturnType<typeof paramsForWeight>; names: [string, string, string] }>;
  biases: Map<string, string>;
}

function integerChain(
  op: "MatMulInteger" | "ConvInteger",
  x: string,
  [wq, wz, ws]: readonly [string, string, string],
  y: string,
  base: string,
  name: (base: string) => string,
  attributes: NodeProto["attribute"] = [],
): NodeProto[] {
  const [xq, xs, xz, acc, accf, sc] = ["quantized", "scale", "zero_point", op, "cast", "scale_product"].map((s) => name(`${base}_${s}`)) as string[];
  return [
    makeNode("DynamicQuantizeLinear", [x], [xq!, xs!, xz!], { name: name(`${base}_DynamicQuantizeLinear`) }),
    makeNode(op, [xq!, wq, xz!, wz], [acc!], { name: name(`${base}_${op}`), attributes }),
    makeNode("Cast", [acc!], [accf!], { name: name(`${base}_Cast`), attributes: [attr.int("to", DataType.FLOAT)] }),
    makeNode("Mul", [xs!, ws], [sc!], { name: name(`${base}_scale_Mul`) }),
    makeNode("Mul", [accf!, sc!], [y], { name: name(`${base}_output_Mul`) }),
  ];
}

/** Conv → DynamicQuantizeLinear + ConvInteger + Cast + Mul(scales) [+ Add(bias)]; initializers added to the graph. */
function convInteger(
  node: NodeProto,
  m: Model,
  config: ResolvedQConfig,
  inits: Map<string, TensorProto>,
  name: (base: string) => string,
  summary: QuantizationSummary,
  shared: SharedWeights,
): NodeProto[] {
  const g = m.graph;
  const [x = "", b = "", bias = ""] = node.input;
  const w = inits.get(b)!;
  const dims = w.dims.map(Number);
  const perChannel = config.perChannel;
  const base = node.name || node.output[0]!;
  const key = `${b}|conv`;
  let stored = shared.weights.get(key);
  if (!stored) {
    const data = tensorToFloat32(w, m.dir);
    const p = paramsForWeight(data, dims, { type: config.weightType, symmetric: perChannel || config.weightSymmetric, reduceRange: config.reduceRange, axis: perChannel ? 0 : undefined }, () => `initializer "${b}" of Conv node "${node.name}"`);
    const zp = p.zeroPoint[0]!;
    if (p.zeroPoint.some((z) => z !== zp)) throw new Error(`dynamic quantization of ${node.name}: per-channel zero points differ (internal error: weights should be symmetric)`);
    // Scales shaped [M, 1, …] to broadcast over the output [N, M, spatial…].
    const channelShape = [p.scale.length, ...dims.slice(2).map(() => 1)];
    stored = { p, names: [name(`${b}_quantized`), name(`${b}_zero_point`), name(`${b}_scale`)] };
    const [wq, wz, ws] = stored.names;
    g.initializer.push(
      makeTensor(wq, ONNX_DTYPE[p.type], dims, quantize(data, dims, p)),
      makeTensor(wz, ONNX_DTYPE[p.type], [], [zp]),
      makeTensor(ws, DataType.FLOAT, perChannel ? channelShape : [], p.scale),
    );
    shared.weights.set(key, stored);
  }
  const [wq, wz, ws] = stored.names;
  const y = node.output[0]!;
  const scaled = bias ? name(`${base}_scaled`) : y;
  // The convolution's own attributes (pads, strides, dilations, group, kernel_shape, auto_pad) carry over.
  const nodes = integerChain("ConvInteger", x, [wq, wz, ws], scaled, base, name, node.attribute);
  if (bias) {
    let shaped = shared.biases.get(bias);
    if (!shaped) {
      const bt = inits.get(bias)!;
      shaped = name(`${bias}_channels`);
      g.initializer.push(makeTensor(shaped, DataType.FLOAT, [Number(bt.dims[0] ?? 1), ...dims.slice(2).map(() => 1)], tensorToFloat32(bt, m.dir)));
      shared.biases.set(bias, shaped);
    }
    nodes.push(makeNode("Add", [scaled, shaped], [y], { name: name(`${base}_bias_Add`) }));
  }
  summary.quantized.push({ name: node.name, opType: node.opType, tensors: [{ name: b, type: stored.p.type, perChannel }] });
  return nodes;
}

function usedBySubgraph(g: Model["graph"], name: string): boolean {
  return g.node.some((n) => subgraphs(n).some((sg) => outerScopeInputs(sg).has(name)));
}

function declineReason(node: NodeProto, config: ResolvedQConfig, types: Map<string, number>, inits: Map<string, TensorProto>): string | undefined {
  if (node.opType !== "MatMul" && node.opType !== "Gemm" && node.opType !== "Conv") return "not a MatMul/Gemm/Conv";
  if (config.opTypes && !config.opTypes.includes(node.opType)) return "op type not in QConfig.opTypes";
  if (config.include && !config.include.some((s) => matchesSelector(node, s))) return "not selected by QConfig.include";
  if (config.exclude.some((s) => matchesSelector(node, s))) return "excluded by QConfig.exclude";
  const [a = "", b = "", c = ""] = node.input;
  if (types.get(a) !== DataType.FLOAT) return "input is not float32";
  const w = inits.get(b);
  if (node.opType === "Conv") {
    if (!w || types.get(b) !== DataType.FLOAT) return "weight is not a float32 constant";
    if (w.dims.length < 3) return "weight has fewer than 3 dimensions";
    if (c && (!inits.has(c) || inits.get(c)!.dims.length !== 1)) return "bias is not a 1-D constant";
    return undefined;
  }
  if (!w || types.get(b) !== DataType.FLOAT) return "right side is not a float32 constant (activation × activation, e.g. attention): dynamic mode quantizes weights only";
  if (w.dims.length !== 2) return "weight is not 2-D";
  if (node.opType === "Gemm" && (attrInt(node, "transA", 0) !== 0 || attrFloat(node, "beta", 1) !== 1)) return "Gemm with transA or beta != 1";
  return undefined;
}

