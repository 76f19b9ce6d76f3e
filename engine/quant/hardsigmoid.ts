// HardSigmoid on the integer codes. onnxruntime's CPU provider has no int8 HardSigmoid, so a quantized
// DQ → HardSigmoid → Q runs as two conversions around a float op (ppocr-v3-det-en: 28 of them, a quarter of its INT8
// time). HardSigmoid(x) = clip(αx + β, 0, 1) is affine between two knees, and on x's codes q (scale s, zero point z)
// the knees sit at c0 = z − β/(αs) (h = 0) and c1 = z + (1 − β)/(αs) (h = 1). Rounded to codes lo and hi, the op is
// an integer Clip(q, lo, hi) read with scale 1/(hi − lo) and zero point lo: no conversion, and the Mul of a HardSwish
// (x · HardSigmoid(x)) still fuses into a QLinearMul.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { consumers, producers } from "../onnx/graph";
import { attrFloat, makeNode } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { qRange, qtypeFromOnnx } from "./math";

/** ai.onnx Clip takes integer tensors from opset 12. */
const MIN_OPSET = 12;

/**
 * Each DQ → HardSigmoid → Q whose knees both fall on x's code range replaced by Clip on the codes; the DQs of the
 * output read the clipped codes with the new scale and zero point. Moving each knee to the nearest code shifts it by
 * at most half an input step, so h differs from HardSigmoid of the dequantized input by at most α·s/2 (the same
 * bound the input's own rounding puts on h). Left as they were: per-axis parameters, a lower knee below the lowest
 * code (its zero point would not fit the type: the range never reaches where h is 0), outputs read by anything but
 * one Q whose output only DQs read, a Q of another type than the input. Returns the nodes it replaced, each with its
 * input and output activations (the names their parameters go by).
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
    const out = hs.output[0] ?? "";
    const q = readers.get(out);
    if (dq?.opType !== "DequantizeLinear" || q?.length !== 1 || q[0]!.opType !== "QuantizeLinear" || outputs.has(out)) continue;
    const qh = q[0]!;
    const hCodes = qh.output[0] ?? "";
    const hReaders = readers.get(hCodes) ?? [];
    if (outputs.has(hCodes) || !hReaders.length || hReaders.some((r) => r.opType !== "DequantizeLinear" || r.domain !== dq.domain)) continue;
    const [s, z, zh] = [scalar(dq.input[1]), scalar(dq.input[2]), scalar(qh.input[2])];
    if (!s || !z || !zh || !scalar(qh.input[1]) || z.dataType !== zh.dataType) continue;
    const type = qtypeFromOnnx(z.dataType);
    if (!type || (type !== "uint8" && type !== "int8")) continue;
    const alpha = attrFloat(hs, "alpha", 0.2);
    const beta = attrFloat(hs, "beta", 0.5);
    const step = tensorToFloat32(s)[0]!;
    const zero = tensorToFloat32(z)[0]!;
    if (!(alpha > 0) || !(step > 0)) continue;
    const lo = Math.round(zero - beta / (alpha * step));
    const hi = Math.round(zero + (1 - beta) / (alpha * step));
    const [qmin, qmax] = qRange(type);
    if (lo < qmin || lo >= qmax || hi <= lo) continue;
    const base = hs.name || out;
    const names = [name(`${base}_clip_min`), name(`${base}_clip_max`), name(`${base}_codes_scale`), name(`${base}_codes_zero_point`)] as const;
    added.push(
      makeTensor(names[0], z.dataType, [], [lo]),
      makeTensor(names[1], z.dataType, [], [Math.min(hi, qmax)]),
      makeTensor(names[2], s.dataType, [], Float32Array.of(1 / (hi - lo))),
      makeTensor(names[3], z.dataType, [], [lo]),
    );
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
