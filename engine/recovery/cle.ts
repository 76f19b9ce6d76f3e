// Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias
// Correction"). For Conv → (Relu | LeakyRelu | nothing) → Conv, output channel i of the first is divided by s_i and
// input channel i of the second multiplied by s_i, with s_i = sqrt(r1_i · r2_i) / r2_i (r = max |w| of the channel),
// so both end up with range sqrt(r1_i · r2_i). Exact in float because the activation between is positively
// homogeneous: f(x / s) = f(x) / s for s > 0. HardSwish, Sigmoid, Clip with a max (Relu6), GELU are not, so pairs
// across them are left alone (MobileNetV3-style blocks get nothing from CLE; say so in the report).
import type { GraphProto, NodeProto } from "onnx-buf";
import { Model } from "../onnx/model";
import { attrInt } from "../onnx/proto";
import { preprocess } from "../quant/preprocess";
import { floatInit, readerCount, readersOf, setFloatInit, spread, type FloatInit } from "./tensors";

export interface CleOptions {
  /** Passes over all pairs (chains of 3+ convs converge over passes). Default 8. */
  iterations?: number;
  /** Fold BatchNormalization into Conv first (onnxruntime's 'basic' optimizer, as prepare() does). Default true. */
  foldBatchNorm?: boolean;
}

export interface ClePair {
  first: string;
  second: string;
  /** The op between ("" when the two convs are adjacent). */
  activation: string;
  channels: number;
  /** Largest / smallest per-channel weight range of each conv, before and after (per-tensor quantization cares). */
  firstRatio: { before: number; after: number };
  secondRatio: { before: number; after: number };
  /** Range of the cumulative scales applied. */
  scale: [number, number];
}

export interface CleReport {
  pairs: ClePair[];
  /** Conv pairs considered and why they were left alone. */
  skipped: { first: string; second: string; reason: string }[];
}

const HOMOGENEOUS = new Set(["Relu", "LeakyRelu", "PRelu"]);
const label = (n: NodeProto) => n.name || n.output[0] || n.opType;

interface Pair {
  a: NodeProto;
  b: NodeProto;
  act: NodeProto | undefined;
}

/** The first conv's output channels seen by the second: plain (group 1) or depthwise. */
function secondKind(b: NodeProto, w2: FloatInit, channels: number): "dense" | "depthwise" | undefined {
  const group = attrInt(b, "group", 1);
  if (group === 1 && w2.dims[1] === channels) return "dense";
  if (group === channels && w2.dims[1] === 1 && w2.dims[0] === channels) return "depthwise";
  return undefined;
}

function findPairs(g: GraphProto, skipped: CleReport["skipped"]): Pair[] {
  const pairs: Pair[] = [];
  for (const a of g.node) {
    if (a.opType !== "Conv" || a.domain !== "") continue;
    const out = a.output[0]!;
    const readers = readersOf(g, out);
    if (readers.length !== 1 || readerCount(g, out) !== 1) {
      // Say why when a conv is near: x·HardSigmoid(x) (HardSwish at opset < 14) reads the conv output twice.
      const near = readers.flatMap((r) => [r, ...readersOf(g, r.output[0] ?? "")]).find((n) => n.opType === "Conv");
      if (near) skipped.push({ first: label(a), second: label(near), reason: `output read by ${readers.map((r) => r.opType).join(" and ")} (e.g. HardSwish as x·HardSigmoid(x)): not one positively homogeneous path` });
      continue;
    }
    let act: NodeProto | undefined;
    let b = readers[0]!;
    if (b.opType !== "Conv") {
      const nextReaders = readersOf(g, b.output[0] ?? "");
      const next = nextReaders[0];
      if (!next || next.opType !== "Conv" || nextReaders.length !== 1 || readerCount(g, b.output[0]!) !== 1) continue;
      if (!HOMOGENEOUS.has(b.opType)) {
        skipped.push({ first: label(a), second: label(next), reason: `${b.opType} between them is not positively homogeneous (f(x/s) ≠ f(x)/s)` });
        continue;
      }
      if (b.opType === "PRelu" && !isScalarSlope(g, b)) {
        skipped.push({ first: label(a), second: label(next), reason: "PRelu with per-channel slopes (kept simple: scalar slope only)" });
        continue;
      }
      act = b;
      b = next;
    }
    if (b.input[0] !== (act ? act.output[0] : out)) continue;
    pairs.push({ a, b, act });
  }
  return pairs;
}

function isScalarSlope(g: GraphProto, n: NodeProto): boolean {
  const s = floatInit(g, n.input[1] ?? "");
  return s !== undefined && s.data.length === 1;
}

/** max |w| per output channel (dim 0) of a conv weight. */
function outRanges(w: FloatInit): Float64Array {
  const C = w.dims[0]!;
  const inner = w.data.length / C;
  const r = new Float64Array(C);
  for (let i = 0; i < w.data.length; i++) r[(i / inner) | 0] = Math.max(r[(i / inner) | 0]!, Math.abs(w.data[i]!));
  return r;
}

/** max |w| per input channel of the second conv (dim 1 for dense, dim 0 for depthwise). */
function inRanges(w: FloatInit, kind: "dense" | "depthwise", channels: number): Float64Array {
  if (kind === "depthwise") return outRanges(w);
  const r = new Float64Array(channels);
  const k = w.data.length / (w.dims[0]! * channels);
  for (let i = 0; i < w.data.length; i++) {
    const c = Math.floor(i / k) % channels;
    r[c] = Math.max(r[c]!, Math.abs(w.data[i]!));
  }
  return r;
}

const ratio = (r: Float64Array) => {
  const [lo, hi] = spread(r);
  return lo > 0 ? hi / lo : Infinity;
};

/**
 * A copy of `model` (BatchNorm folded first by default) with every eligible conv pair equalized. The input model is
 * not modified. Weights shared with other nodes are left alone.
 */
export async function equalizeCrossLayer(model: Model, options: CleOptions = {}): Promise<{ model: Model; report: CleReport }> {
  const m = await preprocess(model, options.foldBatchNorm ?? true);
  const g = m.graph;
  const report: CleReport = { pairs: [], skipped: [] };
  const candidates = findPairs(g, report.skipped);
  const pairs: (Pair & { kind: "dense" | "depthwise"; before: [number, number]; scale: Float64Array })[] = [];
  for (const p of candidates) {
    const [w1, w2] = [floatInit(g, p.a.input[1] ?? "", m.dir), floatInit(g, p.b.input[1] ?? "", m.dir)];
    const why = !w1 || !w2 ? "a weight is not a float initializer" : readerCount(g, w1.name) > 1 || readerCount(g, w2.name) > 1 ? "a weight is shared with other nodes" : undefined;
    const kind = w1 && w2 ? secondKind(p.b, w2, w1.dims[0]!) : undefined;
    const bias = p.a.input[2];
    if (why || !kind || (bias && (!floatInit(g, bias) || readerCount(g, bias) > 1))) {
      report.skipped.push({ first: label(p.a), second: label(p.b), reason: why ?? (kind ? "the first conv's bias is not a float initializer of its own" : "the second conv is grouped (neither dense nor depthwise)") });
      continue;
    }
    const C = w1!.dims[0]!;
    pairs.push({ ...p, kind, before: [ratio(outRanges(w1!)), ratio(inRanges(w2!, kind, C))], scale: new Float64Array(C).fill(1) });
  }
  const iterations = options.iterations ?? 8;
  for (let it = 0; it < iterations; it++) {
    let moved = 0;
    for (const p of pairs) {
      const w1 = floatInit(g, p.a.input[1]!)!;
      const w2 = floatInit(g, p.b.input[1]!)!;
      const C = w1.dims[0]!;
      const r1 = outRanges(w1);
      const r2 = inRanges(w2, p.kind, C);
      const s = new Float64Array(C);
      for (let i = 0; i < C; i++) s[i] = r1[i]! > 0 && r2[i]! > 0 ? Math.sqrt(r1[i]! * r2[i]!) / r2[i]! : 1;
      const inner1 = w1.data.length / C;
      for (let i = 0; i < w1.data.length; i++) w1.data[i] = w1.data[i]! / s[(i / inner1) | 0]!;
      if (p.kind === "depthwise") {
        const inner2 = w2.data.length / C;
        for (let i = 0; i < w2.data.length; i++) w2.data[i] = w2.data[i]! * s[(i / inner2) | 0]!;
      } else {
        const k = w2.data.length / (w2.dims[0]! * C);
        for (let i = 0; i < w2.data.length; i++) w2.data[i] = w2.data[i]! * s[Math.floor(i / k) % C]!;
      }
      setFloatInit(g, w1.name, w1.dims, w1.data);
      setFloatInit(g, w2.name, w2.dims, w2.data);
      if (p.a.input[2]) {
        const b1 = floatInit(g, p.a.input[2])!;
        for (let i = 0; i < C; i++) b1.data[i] = b1.data[i]! / s[i]!;
        setFloatInit(g, b1.name, b1.dims, b1.data);
      }
      for (let i = 0; i < C; i++) {
        p.scale[i] = p.scale[i]! * s[i]!;
        moved = Math.max(moved, Math.abs(Math.log(s[i]!)));
      }
    }
    if (moved < 1e-4) break;
  }
  for (const p of pairs) {
    const w1 = floatInit(g, p.a.input[1]!)!;
    const w2 = floatInit(g, p.b.input[1]!)!;
    report.pairs.push({
      first: label(p.a),
      second: label(p.b),
      activation: p.act?.opType ?? "",
      channels: w1.dims[0]!,
      firstRatio: { before: p.before[0], after: ratio(outRanges(w1)) },
      secondRatio: { before: p.before[1], after: ratio(inRanges(w2, p.kind, w1.dims[0]!)) },
      scale: spread(p.scale),
    });
  }
  return { model: Model.fromProto(m.proto, m.dir), report };
}
