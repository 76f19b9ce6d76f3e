// HardSigmoid on the integer codes. onnxruntime's CPU provider has no int8 HardSigmoid, so a quantized
// DQ → HardSigmoid → Q runs as two conversions around a float op (ppocr-v3-det-en: 28 of them, a quarter of its INT8
// time). HardSigmoid(x) = clip(αx + β, 0, 1) is affine between two knees, and on x's codes q (scale s, zero point z)
// it reads as the codes themselves with scale αs and zero point z − β/(αs), clipped between the knees' codes. With
// s widened to β/(αk), k = ⌊β/(αs)⌋, that zero point z − k is an integer, and HardSigmoid is exactly an integer
// Clip(q, z − k, z + k(1 − β)/β) read with scale αs: no conversion, and the Mul of a HardSwish (x · HardSigmoid(x))
// still fuses into a QLinearMul.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { consumers, producers } from "../onnx/graph";
import { attrFloat, makeNode } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { qRange, qtypeFromOnnx } from "./math";

/** ai.onnx Clip takes integer tensors from opset 12. */
const MIN_OPSET = 12;

/**
 * Each Q → DQ → HardSigmoid → Q whose input nothing else needs at its scale replaced by Clip on the codes; the DQs of
 * its output read the clipped codes with the new scale and zero point, and the input's scale widens by at most 1/k
 * (k = β/(αs): 23–115 on the PP-OCR detectors, a widening of 0.9–4.3 %). Exact, up to float32 rounding of the new
 * scales. Rounding the zero point instead of widening the scale was measured and dropped: it moves each knee by up
 * to half an input step, the same way for every value, and those biases add up over a network (ppocr-v3-det-en:
 * −0.58 dB on 32 held-out samples). Left as they were: an input whose scale another reader depends on (its codes or
 * its dequantized values read by anything but DQs, this HardSigmoid and Muls, e.g. a Conv whose bias was quantized
 * with it), per-axis parameters, an input range that does not reach the lower knee (z − k below the lowest code: the
 * zero point would not fit the type), outputs read by anything but one Q whose output only DQs read, a Q of another
 * type than the input, opsets below 12 (no integer Clip). Returns the nodes it replaced, each with its input and
 * output activations (the names their parameters go by).
 */
export function integerHardSigmoids(g: GraphProto, opset: number, name: (base: string) => string): { node: NodeProto; tensors: [string, string] }[] {
  if (opset < MIN_OPSET) return [];
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = producers(g);
  const readers = consumers(g);
  const outputs = new Set(g.output.map((o) => o.name));
  const drop = new Set<NodeProto>();
  const added: TensorProto[] = [];
  const replaced: { node: NodeProto; tensors: [string, string] }[] = [];
  const scalar = (n: string | undefined) => {
    const t = n ? inits.get(n) : undefined;
    return t && t.dims.every((d) => Number(d) === 1) ? t : undefined;
  };
  for (const hs of g.node) {
    if (hs.opType !== "HardSigmoid" || (hs.domain !== "" && hs.domain !== "ai.onnx")) continue;
    const dq = producer.get(hs.input[0] ?? "");
    const qx = producer.get(dq?.input[0] ?? "");
    const out = hs.output[0] ?? "";
    const q = readers.get(out);
    if (dq?.opType !== "DequantizeLinear" || qx?.opType !== "QuantizeLinear" || q?.length !== 1 || q[0]!.opType !== "QuantizeLinear" || outputs.has(out)) continue;
    const qh = q[0]!;
    const hCodes = qh.output[0] ?? "";
    const hReaders = readers.get(hCodes) ?? [];
    if (outputs.has(hCodes) || !hReaders.length || hReaders.some((r) => r.opType !== "DequantizeLinear" || r.domain !== dq.domain)) continue;
    const [sName, zName] = [dq.input[1] ?? "", dq.input[2] ?? ""];
    const [s, z, zh] = [scalar(sName), scalar(zName), scalar(qh.input[2])];
    if (!s || !z || !zh || !scalar(qh.input[1]) || z.dataType !== zh.dataType || !onlyScaleOf(qx, dq, readers, outputs)) continue;
    const type = qtypeFromOnnx(z.dataType);
    if (!type || (type !== "uint8" && type !== "int8")) continue;
    const alpha = attrFloat(hs, "alpha", 0.2);
    const beta = attrFloat(hs, "beta", 0.5);
    const step = tensorToFloat32(s)[0]!;
    const zero = tensorToFloat32(z)[0]!;
    if (!(alpha > 0) || !(beta > 0) || !(step > 0)) continue;
    // A knee exactly on a code stays there (float32 ratios land a hair below the integer).
    const k = Math.floor(beta / (alpha * step) + 1e-6);
    const [qmin, qmax] = qRange(type);
    const lo = zero - k;
    if (k < 1 || lo < qmin || lo >= qmax) continue;
    const widened = Math.fround(beta / (alpha * k));
    const hi = Math.round(zero + (1 - beta) / (alpha * widened));
    const base = hs.name || out;
    const names = [name(`${base}_clip_min`), name(`${base}_clip_max`), name(`${base}_codes_scale`), name(`${base}_codes_zero_point`)] as const;
    added.push(
      makeTensor(names[0], z.dataType, [], [lo]),
      makeTensor(names[1], z.dataType, [], [Math.min(hi, qmax)]),
      makeTensor(names[2], s.dataType, [], Float32Array.of(alpha * widened)),
      makeTensor(names[3], z.dataType, [], [lo]),
    );
    g.initializer[g.initializer.indexOf(s)] = makeTensor(sName, s.dataType, s.dims.map(Number), Float32Array.of(widened));
    const clip = makeNode("Clip", [dq.input[0]!, names[0], names[1]], [hCodes], { name: name(`${base}_integer`) });
    g.node[g.node.indexOf(qh)] = clip;
    for (const r of hReaders) r.input = [hCodes, names[2], names[3]];
    drop.add(hs);
    replaced.push({ node: hs, tensors: [hs.input[0]!, hReaders[0]!.output[0]!] });
    if (readers.get(dq.output[0] ?? "")!.length === 1 && !outputs.has(dq.output[0] ?? "")) drop.add(dq);
  }
  g.node = g.node.filter((n) => !drop.has(n));
  g.initializer.push(...added);
  return replaced;
}

/**
 * Whether x's scale can widen without changing anything but x's rounding: its Q and DQs share the scale initializer
 * and no one else reads it, its codes go only to such DQs, and their values only to one HardSigmoid and to Muls
 * (elementwise: no bias quantized with this scale, no data-movement output sharing its parameters).
 */
function onlyScaleOf(qx: NodeProto, dq: NodeProto, readers: ReadonlyMap<string, NodeProto[]>, outputs: ReadonlySet<string>): boolean {
  const dqs = dequantizersOf(qx, readers, outputs);
  const sName = qx.input[1] ?? "";
  if (!dqs?.includes(dq) || (readers.get(sName) ?? []).some((n) => n !== qx && !dqs.includes(n))) return false;
  const users = dqs.flatMap((d) => (outputs.has(d.output[0] ?? "") ? [undefined] : readers.get(d.output[0] ?? "") ?? []));
  return users.every((u) => u?.opType === "HardSigmoid" || u?.opType === "Mul") && users.filter((u) => u?.opType === "HardSigmoid").length === 1;
}

/**
 * The DequantizeLinears reading a QuantizeLinear's codes, each with the Q's own scale and zero point initializers;
 * undefined when anything else reads the codes (or they are a graph output). Also affine-codes.ts's.
 */
export function dequantizersOf(q: NodeProto, readers: ReadonlyMap<string, NodeProto[]>, outputs: ReadonlySet<string>): NodeProto[] | undefined {
  const [, sName, zName] = q.input;
  const codes = q.output[0];
  if (!codes || !sName || outputs.has(codes)) return undefined;
  const dqs = readers.get(codes) ?? [];
  return dqs.length && dqs.every((d) => d.opType === "DequantizeLinear" && d.input[1] === sName && d.input[2] === zName) ? dqs : undefined;
}
