// SmoothQuant (Xiao et al. 2022): activations with outlier channels quantize badly per tensor, weights do not mind a
// per-row scale. For each MatMul/Gemm fed an activation X with constant weights W, s_j = max|X_j|^α / max|W_j|^(1−α)
// per input channel j; X is divided by s (folded into the op that makes X when it can be: a LayerNorm's final
// scale and shift, a LayerNormalization op, a Mul by a constant; otherwise a Mul by 1/s is inserted) and row j of W
// multiplied by s_j. Exact in float: (X·diag(1/s))·(diag(s)·W) = X·W.
import type { GraphProto, NodeProto } from "onnx-buf";
import type { CalibrationData } from "../data/feeds";
import { Model } from "../onnx/model";
import { attrInt, makeNode } from "../onnx/proto";
import { preprocess } from "../quant/preprocess";
import { channelStats, floatConstant, floatInit, freshName, producerOf, readerCount, readersOf, setFloatInit, spread, type FloatInit, type StatsOptions } from "./tensors";

export interface SmoothQuantOptions extends StatsOptions {
  /** Migration strength: 0 keeps everything on the activation, 1 moves it all to the weights. Default 0.5. */
  alpha?: number;
  /** Only smooth activations whose per-channel max |x| spread (max / median) is at least this. Default 1 (all). */
  minOutlierRatio?: number;
  /** Node names to leave alone. */
  exclude?: string[];
}

export interface SmoothedTensor {
  /** The activation smoothed. */
  tensor: string;
  /** The MatMul/Gemm nodes whose weights took the scales. */
  consumers: string[];
  /** How 1/s was applied: folded into a LayerNorm's scale/shift, into a Mul by a constant, or by a new Mul node. */
  foldedInto: "layernorm" | "mul-constant" | "inserted-mul";
  /** The node that took 1/s. */
  node: string;
  /** max / median of the per-channel max |x|, before and after. */
  outlierRatio: { before: number; after: number };
  scale: [number, number];
}

export interface SmoothQuantReport {
  alpha: number;
  smoothed: SmoothedTensor[];
  skipped: { tensor: string; reason: string }[];
}

interface Target {
  node: NodeProto;
  weight: FloatInit;
  /** W is [K, N] (rows are input channels) or [N, K] (Gemm transB=1). */
  rowsAreInputs: boolean;
}

const label = (n: NodeProto) => n.name || n.output[0] || n.opType;
const SHAPE_ONLY = new Set(["Shape", "Size"]);

function targetOf(g: GraphProto, n: NodeProto, dir: string | undefined): Target | undefined {
  if (n.domain !== "" || (n.opType !== "MatMul" && n.opType !== "Gemm")) return undefined;
  const w = floatInit(g, n.input[1] ?? "", dir);
  if (!w || w.dims.length !== 2 || floatInit(g, n.input[0] ?? "")) return undefined;
  if (n.opType === "Gemm" && attrInt(n, "transA", 0) !== 0) return undefined;
  return { node: n, weight: w, rowsAreInputs: !(n.opType === "Gemm" && attrInt(n, "transB", 0) === 1) };
}

function ratio(x: Float64Array): number {
  const s = [...x].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)]!;
  return med > 0 ? s[s.length - 1]! / med : Infinity;
}

/** max |W| per input channel (over everything the channel multiplies, across all targets sharing X). */
function weightRanges(targets: Target[], K: number): Float64Array {
  const r = new Float64Array(K);
  for (const t of targets) {
    const d1 = t.weight.dims[1]!;
    for (let i = 0; i < t.weight.data.length; i++) {
      const j = t.rowsAreInputs ? Math.floor(i / d1) : i % d1;
      r[j] = Math.max(r[j]!, Math.abs(t.weight.data[i]!));
    }
  }
  return r;
}

/** A per-channel copy of a constant (scalar or [K]) divided by s, as a new initializer; undefined if not [K]-able. */
function dividedConstant(g: GraphProto, name: string, s: Float64Array, dir: string | undefined, replaced: Set<string>): { name: string; data: Float32Array } | undefined {
  const c = floatConstant(g, name, dir);
  replaced.add(name);
  const K = s.length;
  if (!c || (c.data.length !== 1 && c.data.length !== K) || (c.dims.length > 1 && c.dims.slice(0, -1).some((d) => d !== 1))) return undefined;
  const data = new Float32Array(K);
  for (let j = 0; j < K; j++) data[j] = c.data[c.data.length === 1 ? 0 : j]! / s[j]!;
  return { name: freshName(g, `${name}_smooth`), data };
}

/** Tries to fold 1/s into X's producer; returns what it folded into, or undefined. */
function foldIntoProducer(g: GraphProto, x: string, s: Float64Array, dir: string | undefined, replaced: Set<string>): { kind: SmoothedTensor["foldedInto"]; node: string } | undefined {
  const p = producerOf(g, x);
  if (!p || p.domain !== "") return undefined;
  const K = s.length;
  const constIdx = (n: NodeProto) => n.input.findIndex((i, k) => k < 2 && floatConstant(g, i, dir) !== undefined);
  if (p.opType === "LayerNormalization") {
    const edits = [1, 2].filter((k) => p.input[k]).map((k) => ({ k, c: dividedConstant(g, p.input[k]!, s, dir, replaced) }));
    if (edits.some((e) => !e.c)) return undefined;
    for (const e of edits) {
      setFloatInit(g, e.c!.name, [K], e.c!.data);
      p.input[e.k] = e.c!.name;
    }
    return { kind: "layernorm", node: label(p) };
  }
  // LayerNorm decomposed: ... Mul(normalized, gamma) → Add(·, beta) = X. Scale gamma and beta together.
  if (p.opType === "Add") {
    const ci = constIdx(p);
    if (ci < 0) return undefined;
    const mulOut = p.input[1 - ci]!;
    const mul = producerOf(g, mulOut);
    if (!mul || mul.opType !== "Mul" || readerCount(g, mulOut) !== 1) return undefined;
    const mi = constIdx(mul);
    if (mi < 0) return undefined;
    const beta = dividedConstant(g, p.input[ci]!, s, dir, replaced);
    const gamma = dividedConstant(g, mul.input[mi]!, s, dir, replaced);
    if (!beta || !gamma) return undefined;
    setFloatInit(g, beta.name, [K], beta.data);
    setFloatInit(g, gamma.name, [K], gamma.data);
    p.input[ci] = beta.name;
    mul.input[mi] = gamma.name;
    return { kind: "layernorm", node: label(mul) };
  }
  if (p.opType === "Mul") {
    const ci = constIdx(p);
    if (ci < 0) return undefined;
    const c = dividedConstant(g, p.input[ci]!, s, dir, replaced);
    if (!c) return undefined;
    setFloatInit(g, c.name, [K], c.data);
    p.input[ci] = c.name;
    return { kind: "mul-constant", node: label(p) };
  }
  return undefined;
}

/**
 * A copy of the float `model` (preprocessed as prepare() does) with SmoothQuant applied to every MatMul/Gemm
 * whose weight is a 2-D float initializer, grouped by input activation (Q, K and V projections of one X share s).
 * `data` is iterated once (give an array, not a spent generator).
 */
export async function smoothQuant(model: Model, data: CalibrationData, options: SmoothQuantOptions = {}): Promise<{ model: Model; report: SmoothQuantReport }> {
  const alpha = options.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`smoothQuant: alpha must be in [0, 1], got ${alpha}`);
  const m = await preprocess(model, true);
  const g = m.graph;
  const report: SmoothQuantReport = { alpha, smoothed: [], skipped: [] };
  const exclude = new Set(options.exclude ?? []);
  const replaced = new Set<string>();
  const groups = new Map<string, Target[]>();
  for (const n of g.node) {
    if (exclude.has(label(n))) continue;
    const t = targetOf(g, n, m.dir);
    if (t) groups.set(n.input[0]!, [...(groups.get(n.input[0]!) ?? []), t]);
  }
  for (const [x, ts] of groups) {
    const shared = ts.find((t) => readerCount(g, t.weight.name) > 1);
    if (shared) {
      groups.delete(x);
      report.skipped.push({ tensor: x, reason: `weight "${shared.weight.name}" is shared with other nodes` });
    }
  }
  const stats = await channelStats(m, [...groups.keys()].map((tensor) => ({ tensor, axis: "last" as const })), data, options);
  for (const [x, ts] of groups) {
    const xs = stats.get(x)!;
    const K = xs.absMax.length;
    const wr = weightRanges(ts, K);
    const before = ratio(xs.absMax);
    if (before < (options.minOutlierRatio ?? 1)) {
      report.skipped.push({ tensor: x, reason: `outlier ratio ${before.toFixed(2)} below minOutlierRatio` });
      continue;
    }
    const s = new Float64Array(K);
    for (let j = 0; j < K; j++) {
      const v = Math.pow(xs.absMax[j]!, alpha) / Math.pow(wr[j]!, 1 - alpha);
      s[j] = Number.isFinite(v) && v > 0 ? v : 1;
    }
    // 1/s goes into X's producer when every other reader of X only reads its shape; else a Mul of our own.
    const others = readersOf(g, x).filter((n) => !ts.some((t) => t.node === n));
    const onlyShape = others.every((n) => SHAPE_ONLY.has(n.opType)) && !g.output.some((o) => o.name === x);
    let folded = onlyShape ? foldIntoProducer(g, x, s, m.dir, replaced) : undefined;
    if (!folded) {
      const inv = freshName(g, `${x}_smooth_inv_scale`);
      const out = freshName(g, `${x}_smoothed`);
      setFloatInit(g, inv, [K], Float32Array.from(s, (v) => 1 / v));
      const mul = makeNode("Mul", [x, inv], [out], { name: freshName(g, `${x}_smooth_mul`) });
      const at = g.node.indexOf(ts.map((t) => t.node).sort((a, b) => g.node.indexOf(a) - g.node.indexOf(b))[0]!);
      g.node.splice(at, 0, mul);
      for (const t of ts) t.node.input[0] = out;
      folded = { kind: "inserted-mul", node: mul.name };
    }
    for (const t of ts) {
      const d1 = t.weight.dims[1]!;
      const w = t.weight.data;
      for (let i = 0; i < w.length; i++) w[i] = w[i]! * s[t.rowsAreInputs ? Math.floor(i / d1) : i % d1]!;
      setFloatInit(g, t.weight.name, t.weight.dims, w);
    }
    const after = Float64Array.from(xs.absMax, (v, j) => v / s[j]!);
    report.smoothed.push({ tensor: x, consumers: ts.map((t) => label(t.node)), foldedInto: folded.kind, node: folded.node, outlierRatio: { before, after: ratio(after) }, scale: spread(s) });
  }
  // The constants 1/s was folded into were copied (they may be shared); drop originals nothing reads any more.
  // (Only those: an If/Loop body may read an outer initializer, which readerCount does not see.)
  g.initializer = g.initializer.filter((t) => !replaced.has(t.name) || readerCount(g, t.name) > 0);
  return { model: Model.fromProto(m.proto, m.dir), report };
}
