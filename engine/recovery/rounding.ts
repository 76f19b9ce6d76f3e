// Learned rounding for static INT8: the weight codes of each quantized Conv/Gemm/MatMul are chosen again against
// the layer's outputs on the calibration data instead of each weight rounded to its nearest code. The scales stay
// as convert() chose them; only the codes move (GPTQ's error feedback on that fixed grid, engine/lowbit/gptq), and a
// bias absorbs what the codes could not: its input is a constant 1, the last row rounded, left in float (int32).
// The layer's inputs are read from the quantized model by default (what the layer will see; "float" reads the
// float model's), through sampled rows: input patches for a Conv (im2col), tokens for a MatMul/Gemm. Layers inside
// If/Loop/Scan bodies are fitted on the rows that ran their body (their weights sit in an enclosing graph, as
// exporters and convert() keep them); a body no row ran keeps nearest rounding.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import type { CalibrationData } from "../data/feeds";
import { DataType } from "../onnx/dtype";
import type { Model } from "../onnx/model";
import { lookUpInScope, readersAnywhere, scopedNodes, type Scope } from "../onnx/graph";
import { attrFloat, attrInt } from "../onnx/proto";
import { makeTensor, readTensor, tensorToFloat32 } from "../onnx/tensor";
import { roundHalfEven } from "../quant/math";
import { GPTQ_WINDOW, gptqRoundGroups, outputSqnrDbGroups, type LayerHessian } from "../lowbit/gptq";
import { convGeometry, forEachLayerHessian, groupHessians, type ConvGeometry, type LayerHessianOptions, type LayerTarget } from "../lowbit/hessian";
import { floatInit, producerOf, qdqWorkingCopy, WEIGHT_DQ } from "./tensors";

export interface RoundingOptions extends LayerHessianOptions {
  /** Whose activations the layers are fitted on: the quantized model's (default: what each layer will see, its
   *  quantized predecessors included) or the float model's. docs/recovery.md has both measured. */
  inputs?: "quantized" | "float";
  /** Node names to leave alone. */
  exclude?: readonly string[];
  /** adaRound: layers with more weight rows than this (K = C·kh·kw) keep their codes, its K×K steps grow as K²·N
   *  (default 2304). refineRounding takes every layer: a longer K gets `window`s. */
  maxK?: number;
  /** refineRounding: a layer with more weight rows than this gets a block-diagonal Hessian, one matrix per window of
   *  this many rows, and error feedback within each (memory K·window instead of K², time K·window² instead of K³;
   *  default GPTQ_WINDOW). */
  window?: number;
  /** Damping share of the Hessian's mean diagonal (default 0.01). */
  damping?: number;
  onProgress?(layers: number, total: number): void;
}

export interface RoundedLayer {
  node: string;
  opType: string;
  /** The int8/uint8 weight initializer rewritten. */
  weight: string;
  k: number;
  n: number;
  /** The bias corrected: its int32 codes (or float values), absent when the layer has none of its own. */
  bias?: string;
  /** Layer output SQNR (dB) on the sampled inputs: nearest rounding, and the codes chosen here. */
  beforeDb: number;
  afterDb: number;
  /** Share of the weight codes that changed. */
  changed: number;
  /** Rows (patches, tokens) the layer's Hessian was summed over. */
  rows: number;
  /** Output channels the fit left at nearest rounding because its codes were no better there (adaRound). */
  keptNearest?: number;
}

export interface RoundingReport {
  kind: "rounding";
  /** How the codes were chosen: GPTQ's error feedback (refineRounding) or AdaRound's gradient fit (adaRound). */
  method: "gptq" | "adaround";
  inputs: "quantized" | "float";
  layers: RoundedLayer[];
  skipped: { node: string; reason: string }[];
  /** Mean layer output SQNR over the layers rounded, before → after (dB). */
  meanBeforeDb: number;
  meanAfterDb: number;
  seconds: number;
}

const label = (n: NodeProto) => n.name || n.output[0] || n.opType;

/** A quantized layer whose codes can be chosen again. */
export interface Site {
  node: NodeProto;
  codes: TensorProto;
  /** The graph holding `codes` (the node's, or an enclosing one for a layer inside a body). */
  owner: GraphProto;
  /** Per output channel (N), the scale and zero point of the weight's DequantizeLinear. */
  scale: Float32Array;
  zp: Int32Array;
  /** Where element (kRow, nCol) of the [K, N] view sits in the stored tensor. */
  at: (r: number, c: number) => number;
  k: number;
  n: number;
  /** [K(+1), N] float weights (and float bias row). */
  w: Float64Array;
  bias?: ({ kind: "int32"; codes: TensorProto; scale: Float32Array } | { kind: "float"; name: string }) & { owner: GraphProto };
  target: LayerTarget;
}

/**
 * A copy of `quantized` (convert()'s QDQ model from `float`, i.e. `prepared.model`) whose weight codes are chosen
 * against each layer's outputs on `data` (iterated once per pass; an array, or a reader that can be read again).
 */
export async function refineRounding(float: Model, quantized: Model, data: CalibrationData, options: RoundingOptions = {}): Promise<{ model: Model; report: RoundingReport }> {
  const windowed = { ...options, maxK: Infinity, window: options.window ?? GPTQ_WINDOW };
  return fitRounding("refineRounding", "gptq", float, quantized, data, windowed, (s, h, grid) => ({
    values: gptqRoundGroups(s.w, s.k + (s.bias ? 1 : 0), s.n, h, (x, _r, c) => grid.toGrid(x, c), { damping: options.damping, floatRows: s.bias ? 1 : 0 }, s.codes.name),
  }));
}

/** A layer's fixed grid, as convert() left it. */
export interface LayerGrid {
  /** The lowest and highest code the tensor uses (convert()'s range: reduced, symmetric); codes stay within. */
  lo: number;
  hi: number;
  /** x's nearest value on output channel c's grid, within [lo, hi]. */
  toGrid(x: number, c: number): number;
  /** [K(+1), N]: the values convert() stored (nearest rounding, then the bias as stored). */
  nearest: Float64Array;
}

/** Chooses a layer's values: [K(+1), N] row-major, weights on the grid and the bias row in float; `keptNearest`
 *  counts output channels left as stored. `hessians`: one per group, in windows where the options ask for them.
 *  Called once per layer, its Hessians then dropped. */
export type LayerFit = (site: Site, hessians: LayerHessian[], grid: LayerGrid) => { values: Float64Array; keptNearest?: number } | Promise<{ values: Float64Array; keptNearest?: number }>;

/** The layers of `quantized` whose codes can be chosen, their Hessians collected in passes and each handed to `fit`;
 *  the codes and bias it chooses written into a copy. `who` names the caller in errors. */
export async function fitRounding(who: string, method: RoundingReport["method"], float: Model, quantized: Model, data: CalibrationData, options: RoundingOptions, fit: LayerFit): Promise<{ model: Model; report: RoundingReport }> {
  const start = performance.now();
  const { q, done: result } = qdqWorkingCopy(who, quantized);
  const inputs = options.inputs ?? "quantized";
  const g = q.graph;
  const report: RoundingReport = { kind: "rounding", method, inputs, layers: [], skipped: [], meanBeforeDb: NaN, meanAfterDb: NaN, seconds: 0 };
  const exclude = new Set(options.exclude ?? []);
  const sites: Site[] = [];
  const floatNodes = scopedNodes(float.graph);
  const observed = inputs === "float" ? float : quantized;
  // Every graph, bodies included: a body's layers are fitted on what the rows that ran it computed there.
  for (const { node: n, scope } of scopedNodes(g)) {
    if (n.domain !== "" || !["Conv", "Gemm", "MatMul"].includes(n.opType) || exclude.has(label(n))) continue;
    if (!n.input[1]?.endsWith(WEIGHT_DQ)) continue;
    const site = findSite(g, scope, float, floatNodes, n, { inputs, maxK: options.maxK ?? 2304, window: options.window });
    if (typeof site === "string") report.skipped.push({ node: label(n), reason: site });
    else sites.push(site);
  }
  // Keys the layers apart where two bodies (an If's branches) use the same node name.
  const taken = new Set<string>();
  for (const s of sites) {
    let key = s.target.key;
    for (let i = 2; taken.has(key); i++) key = `${s.target.key}#${i}`;
    taken.add(key);
    s.target.key = key;
  }
  let done = 0;
  const byKey = new Map(sites.map((s) => [s.target.key, s]));
  await forEachLayerHessian(observed, sites.map((s) => s.target), data, options, async (t, layer) => {
    const site = byKey.get(t.key)!;
    if (layer.rows === 0) report.skipped.push({ node: label(site.node), reason: "no calibration row ran the body that holds it (an If branch they never took): nearest rounding kept" });
    else report.layers.push(await round(site, groupHessians(t, layer), layer.rows, fit));
    options.onProgress?.(++done, sites.length);
  });
  const mean = (f: (l: RoundedLayer) => number) => report.layers.reduce((a, l) => a + f(l), 0) / report.layers.length;
  report.meanBeforeDb = mean((l) => l.beforeDb);
  report.meanAfterDb = mean((l) => l.afterDb);
  report.seconds = (performance.now() - start) / 1000;
  return { model: result(), report };
}

const initializer = (g: GraphProto, name: string) => g.initializer.find((t) => t.name === name);

interface SiteOptions {
  inputs: "quantized" | "float";
  maxK: number;
  window: number | undefined;
}

/** Node `n` of `scope` (in the working copy whose main graph is `main`) as a layer whose codes can be chosen, or why
 *  not. */
function findSite(main: GraphProto, scope: Scope, float: Model, floatNodes: readonly { node: NodeProto; scope: Scope }[], n: NodeProto, o: SiteOptions): Site | string {
  const g = scope.graph;
  const dq = producerOf(g, n.input[1]!);
  const found = dq && lookUpInScope(scope, dq.input[0]!, initializer);
  if (!dq || dq.opType !== "DequantizeLinear" || !found) return "its weight is not an initializer behind a DequantizeLinear";
  const codes = found.value;
  if (codes.dataType !== DataType.INT8 && codes.dataType !== DataType.UINT8) return `weight "${codes.name}" is not int8 or uint8`;
  if (readersAnywhere(main, n.input[1]!) !== 1 || readersAnywhere(main, codes.name) !== 1) return `weight "${codes.name}" is shared with other nodes`;
  const weight = n.input[1]!.slice(0, -WEIGHT_DQ.length);
  const f = floatNodes.find(({ node: x }) => x.opType === n.opType && x.input[1] === weight);
  // The float model's initializer `name` as the float node sees it (a body's weight sits in an enclosing graph).
  const floatOf = (name: string) => (f ? lookUpInScope(f.scope, name, (fg, nm) => floatInit(fg, nm, float.dir))?.value : undefined);
  const fw = floatOf(weight);
  const fNode = f?.node;
  if (!fw || !fNode) return `the float model has no ${n.opType} reading a float initializer "${weight}"`;
  const tensor = o.inputs === "float" ? fNode.input[0]! : n.input[0]!;
  const dims = codes.dims.map(Number);
  let k: number;
  let nOut: number;
  let at: Site["at"];
  let axis: number;
  let conv: ConvGeometry[] | undefined;
  if (n.opType === "Conv") {
    const geo = convGeometry(n, dims);
    if (typeof geo === "string") return geo;
    conv = geo;
    [nOut, k] = [dims[0]!, dims.slice(1).reduce((a, b) => a * b, 1)];
    at = (r, c) => c * k + r;
    axis = 0;
  } else {
    if (dims.length !== 2) return `${n.opType} weight of rank ${dims.length}`;
    const transB = n.opType === "Gemm" && attrInt(n, "transB", 0) === 1;
    if (n.opType === "Gemm" && (attrInt(n, "transA", 0) !== 0 || attrFloat(n, "alpha", 1) !== 1 || attrFloat(n, "beta", 1) !== 1)) return "Gemm with transA, alpha or beta other than the defaults";
    [k, nOut] = transB ? [dims[1]!, dims[0]!] : [dims[0]!, dims[1]!];
    at = transB ? (r, c) => c * k + r : (r, c) => r * nOut + c;
    axis = transB ? 0 : 1;
  }
  if (k > o.maxK) return `K = ${k} weight rows: above maxK ${o.maxK} (the K×K solve grows as K³); nearest rounding kept`;
  const scaleT = lookUpInScope(scope, dq.input[1]!, initializer)?.value;
  const zpT = dq.input[2] ? lookUpInScope(scope, dq.input[2], initializer)?.value : undefined;
  if (!scaleT || (dq.input[2] && !zpT)) return "its weight's scale or zero point is not an initializer";
  const sc = tensorToFloat32(scaleT);
  const zps = zpT ? Int32Array.from(readTensor(zpT).data as ArrayLike<number>) : new Int32Array(1);
  if (sc.length !== 1 && (sc.length !== nOut || attrInt(dq, "axis", 1) !== axis)) return `its weight's scales (${sc.length}) are neither per tensor nor per output channel`;
  const scale = Float32Array.from({ length: nOut }, (_, c) => sc[sc.length === 1 ? 0 : c]!);
  const zp = Int32Array.from({ length: nOut }, (_, c) => zps[zps.length === 1 ? 0 : c]!);
  const bias = biasOf(main, scope, n);
  const fb = bias && fNode.input[2] ? floatOf(fNode.input[2]) : undefined;
  const withBias = bias !== undefined && fb?.data.length === nOut;
  const w = new Float64Array((k + (withBias ? 1 : 0)) * nOut);
  for (let r = 0; r < k; r++) for (let c = 0; c < nOut; c++) w[r * nOut + c] = fw.data[at(r, c)]!;
  if (withBias) for (let c = 0; c < nOut; c++) w[k * nOut + c] = fb!.data[c]!;
  return { node: n, codes, owner: found.owner, scale, zp, at, k, n: nOut, w, bias: withBias ? bias : undefined, target: { key: label(n), tensor, k, conv, bias: withBias, window: o.window } };
}

/** The node's own bias: int32 codes behind a DequantizeLinear, or a float initializer, with the graph holding it. */
function biasOf(main: GraphProto, scope: Scope, n: NodeProto): Site["bias"] {
  const b = n.opType === "MatMul" ? undefined : n.input[2];
  if (!b || readersAnywhere(main, b) !== 1) return undefined;
  const dq = producerOf(scope.graph, b);
  if (dq?.opType === "DequantizeLinear") {
    const codes = lookUpInScope(scope, dq.input[0]!, initializer);
    const scale = lookUpInScope(scope, dq.input[1]!, initializer)?.value;
    if (codes?.value.dataType !== DataType.INT32 || !scale || readersAnywhere(main, codes.value.name) !== 1) return undefined;
    return { kind: "int32", codes: codes.value, scale: tensorToFloat32(scale), owner: codes.owner };
  }
  const owner = lookUpInScope(scope, b, floatInit)?.owner;
  return owner ? { kind: "float", name: b, owner } : undefined;
}

async function round(s: Site, h: LayerHessian[], rows: number, fit: LayerFit): Promise<RoundedLayer> {
  const { k, n } = s;
  const kk = k + (s.bias ? 1 : 0);
  const stored = readTensor(s.codes).data as Int8Array | Uint8Array;
  let [lo, hi] = [Infinity, -Infinity];
  for (const v of stored) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  // The codes stay in the range convert() used for this tensor (reduced range, symmetric) and the scales stay.
  const toGrid = (x: number, c: number) => {
    const sc = s.scale[c]!;
    return sc === 0 ? 0 : (Math.min(hi, Math.max(lo, roundHalfEven(x / sc) + s.zp[c]!)) - s.zp[c]!) * sc;
  };
  const before = new Float64Array(kk * n);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) before[r * n + c] = (stored[s.at(r, c)]! - s.zp[c]!) * s.scale[c]!;
  if (s.bias) before.set(biasValues(s), k * n);
  const { values, keptNearest } = await fit(s, h, { lo, hi, toGrid, nearest: before });
  const next = s.codes.dataType === DataType.INT8 ? new Int8Array(stored.length) : new Uint8Array(stored.length);
  let changed = 0;
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < n; c++) {
      const sc = s.scale[c]!;
      const code = sc === 0 ? stored[s.at(r, c)]! : roundHalfEven(values[r * n + c]! / sc) + s.zp[c]!;
      next[s.at(r, c)] = code;
      if (code !== stored[s.at(r, c)]) changed++;
    }
  }
  replace(s.owner, makeTensor(s.codes.name, s.codes.dataType, s.codes.dims.map(Number), next));
  let bias: string | undefined;
  if (s.bias) {
    const b = Float32Array.from({ length: n }, (_, c) => values[k * n + c]!);
    if (s.bias.kind === "float") {
      replace(s.bias.owner, makeTensor(s.bias.name, DataType.FLOAT, [n], b));
      bias = s.bias.name;
    } else {
      const sc = s.bias.scale;
      const codes = Int32Array.from(b, (v, c) => {
        const bs = sc[sc.length === 1 ? 0 : c]!;
        return bs === 0 ? 0 : Math.max(-2147483648, Math.min(2147483647, roundHalfEven(v / bs)));
      });
      replace(s.bias.owner, makeTensor(s.bias.codes.name, DataType.INT32, s.bias.codes.dims.map(Number), codes));
      bias = s.bias.codes.name;
    }
  }
  const after = new Float64Array(kk * n);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) after[r * n + c] = (next[s.at(r, c)]! - s.zp[c]!) * s.scale[c]!;
  if (s.bias) after.set(biasValues(s), k * n);
  return {
    node: label(s.node),
    opType: s.node.opType,
    weight: s.codes.name,
    k,
    n,
    ...(bias && { bias }),
    beforeDb: outputSqnrDbGroups(s.w, before, h, kk, n, kk - k),
    afterDb: outputSqnrDbGroups(s.w, after, h, kk, n, kk - k),
    changed: changed / (k * n),
    rows,
    ...(keptNearest !== undefined && { keptNearest }),
  };
}

/** The bias as the graph now stores it, in float. */
function biasValues(s: Site): Float64Array {
  const b = s.bias!;
  if (b.kind === "float") return Float64Array.from(floatInit(b.owner, b.name)!.data);
  const codes = readTensor(initializer(b.owner, b.codes.name)!).data as Int32Array;
  return Float64Array.from(codes, (v, c) => v * b.scale[b.scale.length === 1 ? 0 : c]!);
}

function replace(g: GraphProto, t: TensorProto): void {
  g.initializer[g.initializer.findIndex((x) => x.name === t.name)] = t;
}
