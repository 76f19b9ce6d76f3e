// A scalar affine on the codes. onnxruntime has no int8 Div, so a chain of scalar Mul / Div / Add between a quantized
// op and the next QuantizeLinear runs in float (PP-OCRv4's recogniser: each HardSwish's /6, then a learnable scale
// and shift before a padded depthwise Conv; 21 such chains). The chain computes o = c·p + b from the float product p,
// and its QuantizeLinear writes q = round(o/s) + z, that is q = round(p/(s/c)) + z + b/s. Where b/s is a whole number
// n, that is one QuantizeLinear of p with scale s/c and zero point z + n, read by the same DequantizeLinears: the
// chain is gone and the op making p fuses with its Q. Where it is not, s moves to b/n (n = round(b/s)), when that
// changes it by at most MAX_SCALE_CHANGE, and the bias of each Conv reading it is re-expressed for the new scale.
// Rounding b to a step instead and moving the offset into the Conv's bias was measured and dropped: the Conv's
// padding never had the offset, so its border pixels drift the same way on every row (ppocr-v4-rec-en, 16 lines s1,
// no protected layers: 96.9 → 79.7 % of lines read; aligned 96.1 %).
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { consumers, dropUnreadInitializers, producers } from "../onnx/graph";
import { makeNode } from "../onnx/proto";
import { makeTensor, readTensor, tensorToFloat32 } from "../onnx/tensor";
import { dequantizersOf } from "./hardsigmoid";
import { qRange, qtypeFromOnnx } from "./math";
import { scalarOperand } from "./preprocess";

type Inits = ReadonlyMap<string, TensorProto>;

/**
 * How far a shift's alignment may move the output's scale. ppocr-v4-rec-en's 21 chains: 6–8 within 5 % (3.40× FP32
 * at batch 8, from 2.76×), 3 within 2 %; wider would move the step of activations that measurably matter (a 4–23 %
 * wider step on three of ppocr-v3-rec-en's stem activations cost 3.5 dB, docs/int8-speed.md).
 */
const MAX_SCALE_CHANGE = 0.05;

const isDefault = (n: NodeProto) => n.domain === "" || n.domain === "ai.onnx";
const elements = (t: TensorProto) => t.dims.reduce((a, d) => a * Number(d), 1);

/** For Mul / Add with one scalar constant, or Div by one: the other input, and how the op maps it (o = a·i + b). */
function affineStep(n: NodeProto, inits: Inits): { input: string; a: number; b: number } | undefined {
  if (n.opType !== "Mul" && n.opType !== "Div" && n.opType !== "Add") return undefined;
  const operand = scalarOperand(n, inits, undefined);
  if (!operand) return undefined;
  const [input, v] = operand;
  return n.opType === "Add" ? { input, a: 1, b: v } : { input, a: v, b: 0 };
}

/**
 * A Conv's bias re-expressed for an input scale multiplied by `ratio`: int32 codes behind a DequantizeLinear whose scale
 * is the input's times the weight's. Undefined where it is shared or not of that form; [] where nothing depends on
 * the input scale (no bias, or a float one).
 */
function biasForInputScale(conv: NodeProto, ratio: number, inits: Inits, producer: ReadonlyMap<string, NodeProto>, readers: ReadonlyMap<string, NodeProto[]>): TensorProto[] | undefined {
  const b = conv.input[2];
  if (!b || inits.get(b)?.dataType === DataType.FLOAT) return [];
  const dq = producer.get(b);
  const codes = dq?.opType === "DequantizeLinear" ? inits.get(dq.input[0] ?? "") : undefined;
  const scale = dq ? inits.get(dq.input[1] ?? "") : undefined;
  if (!codes || !scale || codes.dataType !== DataType.INT32 || readers.get(b)?.length !== 1 || readers.get(codes.name)?.length !== 1 || readers.get(scale.name)?.length !== 1) return undefined;
  const q = readTensor(codes).data as Int32Array;
  return [
    makeTensor(codes.name, DataType.INT32, codes.dims.map(Number), q.map((v) => Math.round(v / ratio))),
    makeTensor(scale.name, DataType.FLOAT, scale.dims.map(Number), tensorToFloat32(scale).map((v) => v * ratio)),
  ];
}

/**
 * Each float chain p → Mul/Div/Add by scalar constants → QuantizeLinear, with the chain's factor positive, p made by
 * a node (not a DequantizeLinear) and read only by the chain: replaced by one QuantizeLinear of p (see the top of the
 * file). Left as they are: a negative factor, per-axis or shared Q parameters, a zero point that would leave the
 * type's range, a shift under half a step, an alignment beyond MAX_SCALE_CHANGE or with a reader other than a Conv
 * whose bias can follow (int32 behind a DequantizeLinear, float, or none). Returns the nodes now quantized (the one making p, which
 * fuses with its new Q, and the chain's) with the activation whose parameters they go by.
 */
export function affinesOnCodes(g: GraphProto, name: (base: string) => string): { node: NodeProto; tensors: [string] }[] {
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = producers(g);
  const readers = consumers(g);
  const outputs = new Set(g.output.map((o) => o.name));
  const only = (t: string, n: NodeProto) => !outputs.has(t) && readers.get(t)?.length === 1 && readers.get(t)![0] === n;
  const drop = new Set<NodeProto>();
  const replace = new Map<NodeProto, NodeProto>();
  const done: { node: NodeProto; tensors: [string] }[] = [];
  for (const q of g.node) {
    if (q.opType !== "QuantizeLinear" || !isDefault(q)) continue;
    const [o = "", sName = "", zName = ""] = q.input;
    const [scale, zero] = [inits.get(sName), inits.get(zName)];
    if (!scale || !zero || elements(scale) !== 1 || elements(zero) !== 1) continue;
    const type = qtypeFromOnnx(zero.dataType);
    if (type !== "uint8" && type !== "int8") continue;
    // Walk back from the Q: o = c·t + b for the tensor t reached so far.
    const chain: NodeProto[] = [];
    let [c, b, t] = [1, 0, o];
    for (let n = producer.get(t); n && only(t, chain.at(-1) ?? q); n = producer.get(t)) {
      const step = affineStep(n, inits);
      if (!step) break;
      [b, c, t] = [b + c * step.b, c * step.a, step.input];
      chain.push(n);
    }
    const from = producer.get(t);
    if (!chain.length || !(c > 0) || !Number.isFinite(c) || !from || from.opType === "DequantizeLinear" || !only(t, chain.at(-1)!)) continue;
    const s = tensorToFloat32(scale)[0]!;
    const z = tensorToFloat32(zero)[0]!;
    const steps = Math.round(b / s);
    const codes = q.output[0] ?? "";
    const dqs = dequantizersOf(q, readers, outputs);
    if (!dqs) continue;
    const [lo, hi] = qRange(type);
    if (!(s > 0) || (b !== 0 && steps === 0) || z + steps < lo || z + steps > hi) continue;
    const aligned = b === 0 ? s : b / steps;
    if (aligned !== s) {
      if (Math.abs(aligned / s - 1) > MAX_SCALE_CHANGE || (readers.get(sName) ?? []).some((n) => n !== q && !dqs.includes(n))) continue;
      const convs = dqs.flatMap((d) => (outputs.has(d.output[0] ?? "") ? [undefined] : readers.get(d.output[0] ?? "") ?? []));
      const rescaled = convs.map((conv) => (conv?.opType === "Conv" && isDefault(conv) && dqs.some((d) => d.output[0] === conv.input[0]) ? biasForInputScale(conv, aligned / s, inits, producer, readers) : undefined));
      if (rescaled.some((r) => !r)) continue;
      for (const t of [...rescaled.flatMap((r) => r!), makeTensor(sName, scale.dataType, scale.dims.map(Number), Float32Array.of(aligned))]) {
        g.initializer[g.initializer.indexOf(inits.get(t.name)!)] = t;
        inits.set(t.name, t);
      }
    }
    const base = dqs[0]!.output[0]!;
    const [s1, z1] = [name(`${base}_product_scale`), name(`${base}_product_zero_point`)];
    g.initializer.push(makeTensor(s1, DataType.FLOAT, [], Float32Array.of(aligned / c)), makeTensor(z1, zero.dataType, [], [z + steps]));
    replace.set(q, makeNode("QuantizeLinear", [t, s1, z1], [codes], { name: q.name }));
    for (const n of chain) drop.add(n);
    for (const n of [from, ...chain]) done.push({ node: n, tensors: [base] });
  }
  g.node = g.node.flatMap((n) => (drop.has(n) ? [] : [replace.get(n) ?? n]));
  // The chains' constants (PP-OCRv4's learnable scales and shifts) and the replaced Qs' parameters where nothing else
  // reads them: left behind, onnxruntime warns about each one whenever it loads the file.
  dropUnreadInitializers(g, new Set([...drop, ...replace.keys()].flatMap((n) => n.input)));
  return done;
}
