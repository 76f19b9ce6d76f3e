// Op quantizers. Each one only marks (through QuantizerContext) which of its node's tensors to quantize and how,
// following ONNX Runtime's QDQ registry so that onnxruntime's CPU fusions fire on the result: a Conv gets a Q on
// its output (no QLinearConv without it), data-movement ops share their input's parameters (so ORT can drop their
// Q/DQ pair), Softmax's output uses the fixed range [0, 1]. A quantizer returns a reason when it declines.
import type { NodeProto } from "onnx-buf";
import { behindMovement, SHAPE_ONLY_OPS } from "../onnx/graph";
import { attrFloat, attrInt } from "../onnx/proto";
import type { QuantizerContext } from "./annotate";

/** Marks a node's tensors; returns undefined when the node is quantized, or why it stays float. */
export type OpQuantizer = (node: NodeProto, ctx: QuantizerContext) => string | undefined;

const allFloat = (ctx: QuantizerContext, names: string[]): boolean => names.every((n) => ctx.isFloat(n));

/**
 * Conv / ConvTranspose: input, per-channel weight, int32 bias, and the output (QLinearConv needs its Q), except an
 * output that is a graph output, directly or through data movement (QConfig.keepFinalConvFloat): written in float.
 */
function convLike(weightAxis: (node: NodeProto) => number | undefined): OpQuantizer {
  return (node, ctx) => {
    const [x = "", w = "", b = ""] = node.input;
    if (!allFloat(ctx, [x, w])) return "input or weight is not float32";
    if (!ctx.isConstant(w)) return "weight is not a constant (initializer or Constant node)";
    if (!ctx.canQuantizeWeight(w)) return "weight kept float (override, or NaN/Inf values)";
    ctx.activation(x);
    ctx.weight(w, weightAxis(node));
    if (b) ctx.bias(b, x, w, node);
    if (!finalOutput(ctx, node.output[0]!)) ctx.activation(node.output[0]!);
    return undefined;
  };
}

export const conv = convLike(() => 0);
// ConvTranspose weights are [C_in, C_out / group, k...]: output channels are axis 1, and only when group is 1.
export const convTranspose = convLike((n) => (attrInt(n, "group", 1) === 1 ? 1 : undefined));

/** MatMul: both inputs; a constant right side is a per-channel weight along its last axis (the output columns). */
export const matMul: OpQuantizer = (node, ctx) => {
  const [a = "", b = ""] = node.input;
  if (!allFloat(ctx, [a, b])) return "inputs are not float32";
  if (ctx.isConstant(b) && !ctx.canQuantizeWeight(b)) return "weight kept float (override, or NaN/Inf values)";
  ctx.activation(a);
  const dims = ctx.dims(b);
  if (dims && dims.length >= 2) ctx.weight(b, dims.length - 1);
  else ctx.activation(b);
  return undefined;
};

/** Gemm: A, B as a weight (axis = output features), C as an int32 bias when beta is 1 and C is a vector. */
export const gemm: OpQuantizer = (node, ctx) => {
  const [a = "", b = "", c = ""] = node.input;
  if (!allFloat(ctx, [a, b])) return "inputs are not float32";
  if (!ctx.isConstant(b)) return "B is not a constant";
  if (attrInt(node, "transA", 0) !== 0) return "transA = 1 is not quantized (QGemm needs A untransposed)";
  if (!ctx.canQuantizeWeight(b)) return "weight kept float (override, or NaN/Inf values)";
  ctx.activation(a);
  ctx.weight(b, attrInt(node, "transB", 0) ? 0 : 1);
  const cDims = ctx.dims(c);
  if (c && cDims && cDims.length === 1 && attrFloat(node, "beta", 1) === 1) ctx.bias(c, a, b, node);
  return undefined;
};

/** Ops computed on quantized values with their own output range (QLinearAdd, QLinearSigmoid, ...). */
function inputsAndOutput(inputIdx: number[] | "all"): OpQuantizer {
  return (node, ctx) => {
    const ins = inputIdx === "all" ? node.input.filter((i) => i !== "") : inputIdx.map((i) => node.input[i] ?? "");
    const out = node.output[0] ?? "";
    if (!allFloat(ctx, [...ins, out])) return "inputs or output are not float32";
    for (const i of ins) ctx.activation(i);
    ctx.activation(out);
    return undefined;
  };
}

export const elementwise = inputsAndOutput("all");
export const unary = inputsAndOutput([0]);
export const where = inputsAndOutput([1, 2]);

/** Ops that only move or select data: the outputs reuse the input's scale and zero point. */
export const dataMovement: OpQuantizer = (node, ctx) => {
  const x = node.input[0] ?? "";
  if (!ctx.marks.activations.has(x) && finalOutput(ctx, x)) return "moves a final Conv's float output to a graph output (keepFinalConvFloat)";
  // MaxPool's optional second output holds int64 indices.
  const outs = node.opType === "MaxPool" ? [node.output[0] ?? ""] : node.output.filter((o) => o !== "");
  if (!allFloat(ctx, [x, ...outs])) return "data is not float32";
  ctx.activation(x);
  for (const o of outs) ctx.activation(o, { sameAs: x });
  return undefined;
};

/**
 * Whether `name` is a graph output, or reaches one only through ops that move data (each the one reader of the
 * last): a Softmax before opset 13 upgraded at an unknown rank reads and writes through Flatten and Reshape.
 */
function onlyReachesOutput(ctx: QuantizerContext, name: string): boolean {
  for (let depth = 0; depth < 16; depth++) {
    if (ctx.isGraphOutput(name)) return true;
    const readers = ctx.consumersOf(name);
    if (readers.length !== 1 || !SHAPE_ONLY_OPS.has(readers[0]!.opType) || readers[0]!.input[0] !== name) return false;
    name = readers[0]!.output[0] ?? "";
  }
  return false;
}

/** Whether `name`, a Conv's output or data moved from it, stays float by QConfig.keepFinalConvFloat. */
function finalOutput(ctx: QuantizerContext, name: string): boolean {
  if (!ctx.config.keepFinalConvFloat || !onlyReachesOutput(ctx, name)) return false;
  return behindMovement((t) => ctx.producerOf(t), name, (p) => (p.opType === "Conv" || p.opType === "ConvTranspose" ? true : undefined)) === true;
}

/**
 * Softmax: output in [0, 1] by definition; a final Softmax (its output a graph output, directly or through data
 * movement) stays float by default.
 */
export const softmax: OpQuantizer = (node, ctx) => {
  const [x = ""] = node.input;
  const out = node.output[0] ?? "";
  if (ctx.config.keepOutputSoftmaxFloat && onlyReachesOutput(ctx, out)) return "final Softmax kept in float (keepOutputSoftmaxFloat)";
  if (!allFloat(ctx, [x, out])) return "input is not float32";
  ctx.activation(x);
  ctx.activation(out, { fixedRange: { min: 0, max: 1 } });
  return undefined;
};

/**
 * Sigmoid: like any unary op, but a final one (its output a graph or body output, directly or through data
 * movement) stays float by default, as a final Softmax does (QConfig.keepOutputSoftmaxFloat).
 */
export const sigmoid: OpQuantizer = (node, ctx) => {
  if (ctx.config.keepOutputSoftmaxFloat && onlyReachesOutput(ctx, node.output[0] ?? "")) return "final Sigmoid kept in float (keepOutputSoftmaxFloat)";
  return unary(node, ctx);
};

/**
 * Relu / Clip(0, max): removed when the producer is quantized (its output marked, or an anchor that marks none: Gemm,
 * MatMul) and the Relu is its output's only reader, activations are asymmetric (so the range starts at 0 and the Q's
 * zero point is qmin: Q itself clamps negatives away). The producer then writes the Relu's output, quantized once at
 * the Relu's range, as onnxruntime's quantizer does (QDQRemovableActivation): not at the producer's range, which
 * spends codes on negatives, and rounded again after the Relu (oww-timer's Gemm → Relu chain: 39.6 → 41.0 dB). Otherwise
 * quantized like any unary op.
 */
export const relu: OpQuantizer = (node, ctx) => {
  const x = node.input[0] ?? "";
  const out = node.output[0] ?? "";
  if (!allFloat(ctx, [x, out])) return "input is not float32";
  const producer = ctx.producerOf(x);
  const foldable =
    producer !== undefined &&
    (ctx.marks.activations.has(x) || ctx.marks.nodes.has(producer)) &&
    ctx.consumersOf(x).length === 1 &&
    !ctx.isGraphOutput(x) &&
    !ctx.config.activationSymmetric &&
    clipLowerBound(node, ctx) === 0;
  if (foldable) {
    ctx.fold(node, x, out);
    ctx.activation(out);
    return undefined;
  }
  return unary(node, ctx);
};

/** Lower bound of a Relu (0) or Clip (attribute before opset 11, constant input after); undefined if not constant. */
function clipLowerBound(node: NodeProto, ctx: QuantizerContext): number | undefined {
  if (node.opType === "Relu") return 0;
  const minName = node.input[1];
  if (minName === undefined || minName === "") {
    const a = node.attribute.find((x) => x.name === "min");
    return a ? a.f : -Infinity;
  }
  const t = ctx.initializers.get(minName);
  if (!t) return undefined;
  const v = t.rawData.length >= 4 ? new DataView(t.rawData.buffer, t.rawData.byteOffset).getFloat32(0, true) : t.floatData[0];
  return v;
}
