// ConvTranspose → Add(per-channel constant) → BatchNormalization, each read only by the next: folded into the
// ConvTranspose's weight and bias. onnxruntime folds BatchNormalization into Conv but not into ConvTranspose, and
// paddle2onnx writes a ConvTranspose's bias as a separate Add, so the DB text detectors' head (PP-OCR det) ran
// DQ → ConvTranspose → Q → DQ → Add → BatchNormalization → Q in float at half the input's resolution, and the last
// ConvTranspose's bias as a QLinearAdd at full resolution (docs/int8-speed.md). Folded, the float model computes the
// same values (float rounding only) and the quantized one rounds once per ConvTranspose. The low-bit passes fold
// into Convs as well (foldIntoConvs): they run no onnxruntime optimizer, which folds a Conv's for INT8.
import type { NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { constantNodeTensor, consumers, readersAnywhere, uniqueName, usedNames } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { attrInt, getAttribute } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";

/** A float initializer's values if it holds one value per output channel (shape [C], [C,1,1], [1,C,1,1], …) or one value. */
function perChannel(t: TensorProto | undefined, cout: number, rank: number, dir: string | undefined): Float32Array | undefined {
  if (t?.dataType !== DataType.FLOAT) return undefined;
  const dims = t.dims.map(Number);
  const n = dims.reduce((a, d) => a * d, 1);
  const v = tensorToFloat32(t, dir);
  if (n === 1 && dims.length <= rank) return new Float32Array(cout).fill(v[0]!);
  // Broadcast against [N, C, spatial…]: the channel axis is rank − 1 − (spatial dims) from the right.
  const spatial = rank - 2;
  if (n !== cout || dims.length < spatial + 1 || dims.length > rank) return undefined;
  const channelAxis = dims.length - 1 - spatial;
  if (dims[channelAxis] !== cout || dims.some((d, i) => i !== channelAxis && d !== 1)) return undefined;
  return v.every(Number.isFinite) ? v : undefined;
}

/** The BatchNormalization's per-channel factor and shift (inference form, one output), or undefined. */
function batchNorm(n: NodeProto, inits: ReadonlyMap<string, TensorProto>, cout: number, dir: string | undefined) {
  if (n.output.filter(Boolean).length !== 1 || attrInt(n, "training_mode", 0) !== 0) return undefined;
  // Its scale, bias, mean and variance are [C] whatever the input's rank.
  const [scale, bias, mean, variance] = n.input.slice(1, 5).map((i) => {
    const t = inits.get(i);
    return t?.dataType === DataType.FLOAT && t.dims.length === 1 && Number(t.dims[0]) === cout ? tensorToFloat32(t, dir) : undefined;
  });
  if (!scale || !bias || !mean || !variance) return undefined;
  const eps = getAttribute(n, "epsilon")?.f ?? 1e-5;
  const factor = scale.map((s, c) => s / Math.sqrt(variance[c]! + eps));
  if (!factor.every(Number.isFinite)) return undefined;
  return { factor, shift: bias.map((b, c) => b - mean[c]! * factor[c]!) };
}

/**
 * Folds each ConvTranspose's following per-channel Add and BatchNormalization into it. Returns the initializers the
 * folded nodes read (the caller drops those nothing reads any more).
 */
export function foldIntoConvTranspose(m: Model): string[] {
  return foldIntoConvs(m, new Set(["ConvTranspose"]));
}

/**
 * The same for Conv and ConvTranspose, their weights and the BatchNormalizations' parameters in initializers or
 * Constant nodes (a PaddlePaddle export keeps them in Constants): the low-bit passes, which run no onnxruntime
 * optimizer before their rewrite. A BatchNormalization left behind a low-bit Conv stays a float node in the file,
 * its four parameter vectors stored beside the 4-bit weights (the orientation classifier's 35: a quarter of its int4
 * file), and runs on every call. Constant nodes the folds leave unread are dropped; the unread initializers are
 * returned for the caller to drop.
 */
export function foldIntoConvs(m: Model, ops: ReadonlySet<"Conv" | "ConvTranspose"> = new Set(["Conv", "ConvTranspose"])): string[] {
  const drop = new Set<NodeProto>();
  const replaced = new Set<string>();
  const g = m.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const constants = new Map<string, NodeProto>();
  for (const n of g.node) {
    const t = n.opType === "Constant" ? constantNodeTensor(n) : undefined;
    if (t && !inits.has(n.output[0]!)) {
      inits.set(n.output[0]!, t);
      constants.set(n.output[0]!, n);
    }
  }
  const readers = consumers(g);
  const graphOutputs = new Set(g.output.map((o) => o.name));
  let taken: Set<string> | undefined;
  for (const ct of g.node) {
    const [x, w = "", b = ""] = ct.input;
    const weight = inits.get(w);
    const bias = b ? inits.get(b) : undefined;
    const transposed = ct.opType === "ConvTranspose";
    if (!ops.has(ct.opType as "Conv") || (ct.domain !== "" && ct.domain !== "ai.onnx") || !x || weight?.dataType !== DataType.FLOAT || (b && bias?.dataType !== DataType.FLOAT)) continue;
    const dims = weight.dims.map(Number);
    const group = attrInt(ct, "group", 1);
    const perGroup = dims[1]!;
    const cout = transposed ? perGroup * group : dims[0]!;
    const rank = dims.length;
    let factor = new Float32Array(cout).fill(1);
    let shift = bias ? tensorToFloat32(bias, m.dir).slice() : new Float32Array(cout);
    let out = ct.output[0]!;
    const absorbed: NodeProto[] = [];
    for (;;) {
      const next = readers.get(out);
      if (graphOutputs.has(out) || next?.length !== 1) break;
      const n = next[0]!;
      if (n.domain !== "" && n.domain !== "ai.onnx") break;
      if (n.opType === "Add" && n.input.length === 2 && n.input.includes(out)) {
        const c = perChannel(inits.get(n.input[n.input[0] === out ? 1 : 0]!), cout, rank, m.dir);
        if (!c || n.input[0] === n.input[1]) break;
        shift = shift.map((s, i) => s + c[i]!);
      } else if (n.opType === "BatchNormalization" && n.input[0] === out) {
        const bn = batchNorm(n, inits, cout, m.dir);
        if (!bn) break;
        factor = factor.map((f, i) => f * bn.factor[i]!);
        shift = shift.map((s, i) => s * bn.factor[i]! + bn.shift[i]!);
      } else break;
      absorbed.push(n);
      out = n.output[0]!;
    }
    if (!absorbed.length) continue;
    const wv = tensorToFloat32(weight, m.dir).slice();
    const k = dims.slice(2).reduce((a, d) => a * d, 1);
    if (transposed) {
      // Weight [Cin, Cout/group, k…]: input channel i belongs to group ⌊i / (Cin/group)⌋, its slice j to output channel group·(Cout/group) + j.
      const cin = dims[0]!;
      for (let i = 0; i < cin; i++) {
        const base = Math.floor(i / (cin / group)) * perGroup;
        for (let j = 0; j < perGroup; j++) {
          const f = factor[base + j]!;
          const at = (i * perGroup + j) * k;
          for (let e = 0; e < k; e++) wv[at + e] = wv[at + e]! * f;
        }
      }
    } else {
      // Weight [Cout, Cin/group, k…]: output channel o's values are row o.
      const row = perGroup * k;
      for (let o = 0; o < cout; o++) for (let e = o * row; e < (o + 1) * row; e++) wv[e] = wv[e]! * factor[o]!;
    }
    taken ??= usedNames(g);
    const wName = uniqueName(g, `${w}_folded`, taken);
    const bName = uniqueName(g, `${b || ct.name || w}_folded_bias`, taken);
    g.initializer.push(makeTensor(wName, DataType.FLOAT, dims, wv), makeTensor(bName, DataType.FLOAT, [cout], shift));
    ct.input = [x, wName, bName];
    ct.output = [out];
    for (const n of absorbed) drop.add(n);
    for (const t of [w, b, ...absorbed.flatMap((n) => n.input)]) if (t) replaced.add(t);
  }
  if (drop.size === 0) return [];
  g.node = g.node.filter((n) => !drop.has(n));
  g.node = g.node.filter((n) => !(constants.get(n.output[0] ?? "") === n && replaced.has(n.output[0]!) && readersAnywhere(g, n.output[0]!) === 0));
  return [...replaced].filter((t) => inits.has(t) && !constants.has(t));
}
