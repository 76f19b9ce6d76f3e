// Rewrites a model's MatMul, Gemm and Conv weights to low-bit forms. One pass: find the weight-bearing
// nodes, quantize each weight with the pure code in this folder, splice in the replacement nodes.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import type { Model } from "../onnx/model";
import { DataType, elementCount } from "../onnx/dtype";
import { attrFloat, attrInt, attr, makeNode } from "../onnx/proto";
import { constantValue, forEachGraph, lookUpInScope, removeNodes, replaceNode, subgraphs, uniqueName, usedNames, topologicalSort, type Scope } from "../onnx/graph";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { smallConvReason, smallestConvs } from "../quant/dynamic";
import { sqnr as sqnrDb, transpose2d } from "../quant/math";
import { GraphScope } from "../quant/subgraph";
import { LONG_NAME, rewriteFp4, runnableFp4Bytes, type LearnedFp4 } from "./fp4-rewrite";
import { int8WeightBytes, rewriteInt8, rewriteLstmInt8 } from "./int8-rewrite";
import { findGatherSites, rewriteGather } from "./gather";
import { GPTQ_WINDOW, gptqQuantizeGroups, kWindows, outputSqnrDbGroups, type GptqOptions, type LayerHessian } from "./gptq";
import { convGeometry, type ConvGeometry, type HessianTarget, type LayerTarget } from "./hessian";
import { dequantizeBlockwise, quantizeBlockwise, type BlockQuantized } from "./intblock";
import { packMatMulNBits } from "./pack";
import { QDQ_TYPES, constTensor, layerReport, sharedTensor, qdqOpset, nodeName, type Int4Options, type LowBitLayer, type LowBitOptions, type LowBitReport, type RewriteContext, type WeightSite } from "./types";

export type { Fp4Options, Int4Options, LowBitLayer, LowBitOptions, LowBitReport } from "./types";

/** Per activation tensor (a quantized node's input 0), Σ xᵀx over calibration data, K×K or one matrix per window of
 *  K (gptqWindow): what GPTQ needs. A Conv's sit under convHessianKey, one entry per group and window. */
export type HessianMap = ReadonlyMap<string, LayerHessian>;

/** What GPTQ rounds from: one calibrated pass's Hessians, or GptqCodes (rounded in passes). */
export type GptqSource = HessianMap | GptqCodes;

/** Quantizes the weights of `model` in place (pass a clone) and returns what was done and what was left alone. */
export function quantizeWeightsLowBit(model: Model, options: LowBitOptions, source?: GptqSource, learned?: ReadonlyMap<string, LearnedFp4>): LowBitReport {
  const graph = model.graph;
  const gptq = source && codesOf(source);
  // Refuse before touching anything: these forms need types that only newer opsets define.
  if (options.mode === "int4" && ![undefined, 2, 4, 8].includes(options.bits)) {
    throw new Error(`bits must be 2, 4 or 8 (the widths MatMulNBits and DequantizeLinear store), not ${options.bits}`);
  }
  if (options.mode === "int4" && options.format === "qdq") requireOpset(model, qdqOpset(options.bits ?? 4), `uint${options.bits ?? 4} DequantizeLinear`);
  if (options.mode === "fp4" && options.export === "native") requireOpset(model, 23, "FLOAT4E2M1 DequantizeLinear");
  const report: LowBitReport = { layers: [], skipped: [], notes: [] };
  const sites = findSites(model, options, report);
  // Still before anything is touched: a Conv written in int4 stores uint4 codes (uint2: opset 25) in either format.
  if (options.mode === "int4" && options.format !== "qdq" && int4Convs(sites, options).length) {
    requireOpset(model, qdqOpset(options.bits ?? 4), `a Conv weight's uint${options.bits ?? 4} code type`);
  }
  // One name set and one list of replaced weights over every graph; each site is rewritten in its own graph.
  const taken = usedNames(graph);
  const dead = new Set<string>();
  const shared = new Map<GraphProto, Map<string, string>>();
  const touched = new Set<GraphProto>();
  const int8 = new Set(options.int8 ?? []);
  // Conv weights decoded by ops onnxruntime folds at load (Cast, Mul: see convInt4) rather than by a
  // DequantizeLinear, which it never folds; the standard forms (int4's qdq format, FP4's native export) keep it.
  const foldable = options.mode === "int4" ? options.format !== "qdq" : options.export !== "native";
  let small = 0;
  let nearest = 0;
  let nearestConvs = 0;
  for (const site of sites) {
    // A conversion that rounds one pass's GPTQ codes (GptqCodes.pass) is not kept: it rewrites that pass's layers only.
    if (gptq?.partial && !(options.mode === "int4" && gptq.pending(site, options))) continue;
    const ctx: RewriteContext = { graph: site.graph, taken, dead, shared };
    touched.add(site.graph);
    const smaller = !int8.has(nodeName(site.node)) && smallerAsInt8(site, options);
    if (smaller) small++;
    if (site.recurrent) report.layers.push(rewriteLstmInt8(ctx, site, site.recurrent));
    else if ((smaller || int8.has(nodeName(site.node))) && site.node.opType !== "Gather") report.layers.push(rewriteInt8(ctx, site, foldable));
    else if (options.mode === "fp4") report.layers.push(rewriteFp4(ctx, site, options, learned?.get(nodeName(site.node))));
    else if (site.node.opType === "Gather") report.layers.push(rewriteGather(ctx, site, options));
    else {
      // Under GPTQ, a Conv whose patches were not collected is rounded to nearest, as is a body's weight whose input
      // no calibration batch computed (an If branch the data never took): neither has a Hessian.
      const missing = options.algorithm === "gptq" && !gptq?.has(site, options);
      const conv = site.node.opType === "Conv";
      if (missing && conv && (site.graph === graph || typeof patchesCut(site) === "string")) nearestConvs++;
      else if (missing && site.graph !== graph) nearest++;
      report.layers.push(rewriteInt4(ctx, site, missing && (conv || site.graph !== graph) ? { ...options, algorithm: "rtn" } : options, gptq));
    }
    dead.add(site.weight.name);
    if (site.recurrent) dead.add(site.recurrent.name);
  }
  if (small) {
    report.notes.push(
      options.mode === "fp4"
        ? `${small} small weight(s) stored int8 per channel: their FP4 form with its decode tables would be larger (smallLayers "fp4" keeps them FP4)`
        : `${small} small weight(s) stored int8 per channel (smallLayers "int8"): their ${options.bits ?? 4}-bit blocks (K padded to the block, a scale per block) would be no smaller`,
    );
  }
  const lstms = sites.filter((s) => s.recurrent).length;
  if (lstms) report.notes.push(`${lstms} LSTM(s) with W and R stored int8 per gate row (weight-only; there is no ${options.mode === "fp4" ? "FP4" : "low-bit"} LSTM)`);
  if (nearest) report.notes.push(`${nearest} weight(s) inside If/Loop/Scan bodies rounded to nearest: no calibration batch ran the body that holds them (an If branch the data never took, or a body that cannot be observed), so GPTQ has no Hessian for them`);
  if (nearestConvs) report.notes.push(`${nearestConvs} Conv weight(s) rounded to nearest: their input patches were not collected (im2col reads 1-D and 2-D Convs)`);
  const inBodies = sites.filter((s) => s.graph !== graph).length;
  if (inBodies) report.notes.push(`${inBodies} of the ${sites.length} weights quantized sit inside If/Loop/Scan bodies`);
  // Drop the float weights nothing reads any more (initializers or Constant nodes), in every graph: a body's weight
  // is often a main-graph initializer.
  const stillRead = new Set<string>();
  forEachGraph(graph, (g) => {
    for (const n of g.node) for (const i of n.input) stillRead.add(i);
    for (const o of g.output) stillRead.add(o.name);
  });
  forEachGraph(graph, (g) => {
    const before = g.initializer.length;
    g.initializer = g.initializer.filter((t) => !dead.has(t.name) || stillRead.has(t.name));
    const constants = g.node.filter((n) => n.opType === "Constant" && dead.has(n.output[0]) && !stillRead.has(n.output[0]));
    removeNodes(g, constants);
    if (before !== g.initializer.length || constants.length) touched.add(g);
  });
  for (const g of touched) topologicalSort(g);
  if (options.mode === "int4" && options.format !== "qdq" && model.opset("com.microsoft") === undefined) model.setOpset(1, "com.microsoft");
  if (options.mode === "int4" && options.format !== "qdq" && (options.bits ?? 4) !== 4 && !options.accuracyLevel && report.layers.length) {
    report.notes.push(
      `${options.bits}-bit MatMulNBits at accuracy_level 0 has no fast onnxruntime CPU kernel (measured 5–25× slower than ` +
        "float, docs/BENCHMARKS.md); accuracy level 4 runs at float speed or faster",
    );
  }
  if (options.mode === "fp4" && options.export === "native") {
    report.warning =
      "native FP4 (FLOAT4E2M1) has no onnxruntime CPU kernel: this model is for runtimes that support opset 23 FP4 " +
      "(e.g. TensorRT); use export 'runnable' to run it with onnxruntime-node";
  }
  return report;
}

/** The weights the pass will quantize; what it leaves alone goes to `report.skipped` with the reason. */
function findSites(model: Model, options: LowBitOptions, report: LowBitReport): WeightSite[] {
  const graph = model.graph;
  const exclude = new Set(options.exclude ?? []);
  const sites: WeightSite[] = [];
  // The smallest Convs keep float weights, as dynamic mode's do: a low-bit Conv runs in float either way (its weight
  // decoded at load), so 4 or 8 bits there buy only a few bytes, and a small Conv is where rounding costs most.
  // blazeface-back's 16 × 16 score head (96 × 2 weights) in int8 alone lost 16 % of FP32's face anchors.
  const small = smallestConvs(new GraphScope(graph));
  // Every graph, bodies included (outermost first, in node order): a body's weight may sit in an enclosing graph.
  const visit = (scope: Scope) => {
    for (const node of scope.graph.node) {
      for (const body of subgraphs(node)) visit({ graph: body, parent: scope });
      if (node.domain !== "" && node.domain !== "ai.onnx") continue;
      if (!["MatMul", "Gemm", "Conv", "LSTM"].includes(node.opType)) continue;
      if (node.opType === "Conv" && !(options.mode === "int4" || options.export !== "native")) continue;
      if (node.opType === "LSTM" && !(options.mode === "int4" || (options.export ?? "runnable") === "runnable")) continue;
      if (exclude.has(nodeName(node))) {
        report.skipped.push({ node: nodeName(node), opType: node.opType, reason: "excluded by the user" });
        continue;
      }
      const site = node.opType === "LSTM" ? findLstmWeights(scope, node) : findWeight(scope, node);
      if (typeof site === "string") report.skipped.push({ node: nodeName(node), opType: node.opType, reason: site });
      else if (node.opType === "Conv" && small.weights.has(site.weight)) {
        report.skipped.push({ node: nodeName(node), opType: node.opType, reason: smallConvReason(elementCount(site.weight.dims), small.share, "onnxruntime runs a low-bit Conv in float (its weight decoded at load)") });
      } else sites.push(site);
    }
  };
  visit({ graph });
  // A weight is the name in the graph holding it (a body may shadow an outer name with its own).
  const readers = new Map<GraphProto, Map<string, number>>();
  const count = (s: WeightSite) => Math.max(...[s.weight, s.recurrent].map((w) => (w ? (readers.get(s.owner)?.get(w.name) ?? 0) : 0)));
  for (const s of sites) {
    if (!readers.has(s.owner)) readers.set(s.owner, new Map());
    for (const w of [s.weight, s.recurrent]) if (w) readers.get(s.owner)!.set(w.name, (readers.get(s.owner)!.get(w.name) ?? 0) + 1);
  }
  const matmuls = sites.filter((site) => {
    if (count(site) === 1) return true;
    report.skipped.push({ node: nodeName(site.node), opType: site.node.opType, reason: `weight "${site.weight.name}" is shared by several nodes` });
    return false;
  });
  return options.mode === "int4" && options.includeGather ? [...matmuls, ...findGatherSites(graph, exclude, options.bits ?? 4, report)] : matmuls;
}

/** The constant `name` refers to from `scope` (an initializer or Constant node of this graph or an enclosing one),
 *  with the graph holding it. */
function lookUpConstant(scope: Scope, name: string): { tensor: TensorProto; owner: GraphProto } | undefined {
  const found = lookUpInScope(scope, name, constantValue);
  return found && { tensor: found.value, owner: found.owner };
}

/** FP4's runnable form with its decode tables would take more bytes than int8 per channel (options.smallLayers). */
function smallerAsInt8(site: WeightSite, options: LowBitOptions): boolean {
  if (site.node.opType === "Gather" || site.recurrent) return false;
  // int4 keeps its blocks unless asked (on the corpus int8 read +8.1 dB on oww-hello-deepa and −3.9 dB on
  // oww-hey-jarvis held out: docs/lowbit.md §6); FP4's form is much larger, so it stores them int8 by default.
  if (options.mode === "int4") return options.smallLayers === "int8" && (options.bits ?? 4) <= 4 && int8WeightBytes(site.k, site.n) <= blockedWeightBytes(site.k, site.n, options);
  return (options.smallLayers ?? "int8") === "int8" && (options.export ?? "runnable") === "runnable" && int8WeightBytes(site.k, site.n) <= runnableFp4Bytes(site.k, site.n, options);
}

/** Bytes of a [K, N] weight in int4's blocked forms: codes with K padded to the block, a float scale per block (and a
 *  zero point where asymmetric), and about 150 bytes of node and names (a Conv's decode nodes a little more). */
function blockedWeightBytes(k: number, n: number, o: Int4Options): number {
  const block = o.blockSize ?? INT4_BLOCK;
  const bits = o.bits ?? 4;
  const kBlocks = Math.ceil(k / block);
  return (kBlocks * block * n * bits) / 8 + kBlocks * n * 4 + (o.symmetric === false ? Math.ceil((kBlocks * n * bits) / 8) : 0) + 150;
}

/**
 * The forms the pass will write that need a newer opset, from one look at the sites: a Conv weight in int4 (blocked
 * DequantizeLinear, opset 21, 25 for 2 bits) and a weight stored int8 (protected, small or recurrent: opset 13's
 * per-axis DequantizeLinear).
 */
export function lowBitForms(model: Model, options: LowBitOptions): { int4Convs: boolean; int8Weights: boolean } {
  const sites = findSites(model, options, { layers: [], skipped: [], notes: [] });
  return {
    int4Convs: options.mode === "int4" && int4Convs(sites, options).length > 0,
    int8Weights: (options.int8?.length ?? 0) > 0 || sites.some((s) => s.recurrent || smallerAsInt8(s, options)),
  };
}

/** The top-level weights the pass stores FP4 (neither small nor stepped up to int8): what learned rounding refines
 *  (it observes top-level activations; a body's weights are rounded to nearest). */
export function fp4Sites(model: Model, options: LowBitOptions): WeightSite[] {
  const int8 = new Set(options.int8 ?? []);
  return findSites(model, options, { layers: [], skipped: [], notes: [] }).filter(
    (s) => !s.recurrent && s.node.opType !== "Gather" && !int8.has(nodeName(s.node)) && !smallerAsInt8(s, options),
  );
}

/** The activations (input 0 of each top-level weight the pass will quantize), their K and GPTQ's Hessian window:
 *  what GPTQ's calibration observes. */
export function lowBitActivations(model: Model, options: LowBitOptions): HessianTarget[] {
  const int8 = new Set(options.mode === "int4" ? (options.int8 ?? []) : []);
  return findSites(model, options, { layers: [], skipped: [], notes: [] })
    // A lookup's input is the table itself, and a Conv's K is not its input's channels: neither gets a Hessian. A
    // body's input is observed where it is computed (collectHessians threads it out). An int4 layer stepped up to
    // int8 weights is not GPTQ'd.
    .filter((s) => !s.recurrent && s.node.opType !== "Gather" && !(options.mode === "int4" && (s.node.opType === "Conv" || int8.has(nodeName(s.node)))))
    .map((s) => ({ tensor: s.node.input[0]!, k: s.k, ...(options.mode === "int4" && { window: gptqWindow(options) }) }));
}


/** An LSTM's W and R, constant and float, held by one graph. */
function findLstmWeights(scope: Scope, node: NodeProto): WeightSite | string {
  const w = node.input[1] ? lookUpConstant(scope, node.input[1]) : undefined;
  const r = node.input[2] ? lookUpConstant(scope, node.input[2]) : undefined;
  if (!w || !r) return "its W or R is not a constant (initializer or Constant node)";
  if (w.owner !== r.owner) return "its W and R sit in different graphs";
  const float = (t: TensorProto) => t.dataType === DataType.FLOAT || t.dataType === DataType.FLOAT16;
  if (!float(w.tensor) || !float(r.tensor)) return "its W or R is not float or float16";
  const [dirs, rows, input] = w.tensor.dims.map(Number);
  const hidden = Number(r.tensor.dims[2]);
  if (w.tensor.dims.length !== 3 || r.tensor.dims.length !== 3) return "its W or R is not 3-D";
  return { node, weight: w.tensor, recurrent: r.tensor, graph: scope.graph, owner: w.owner, values: new Float32Array(0), k: input! + hidden, n: dirs! * rows! };
}

function findWeight(scope: Scope, node: NodeProto): WeightSite | string {
  const wName = node.input[1];
  const found = wName ? lookUpConstant(scope, wName) : undefined;
  if (!found) return "its weight is not a constant (initializer or Constant node)";
  const { tensor: weight, owner } = found;
  const graph = scope.graph;
  if (weight.dataType !== DataType.FLOAT && weight.dataType !== DataType.FLOAT16) return "its weight is not float or float16";
  const dims = weight.dims.map(Number);
  const w = tensorToFloat32(weight);
  if (node.opType === "MatMul") {
    if (dims.length !== 2) return `its weight has rank ${dims.length}; only 2-D MatMul weights are quantized`;
    return { node, weight, graph, owner, values: w, k: dims[0], n: dims[1] };
  }
  if (node.opType === "Gemm") {
    if (attrInt(node, "transA", 0) !== 0) return "Gemm with transA=1";
    if (attrFloat(node, "alpha", 1) !== 1 || attrFloat(node, "beta", 1) !== 1) return "Gemm with alpha or beta other than 1";
    const transB = attrInt(node, "transB", 0) === 1;
    const [k, n] = transB ? [dims[1], dims[0]] : [dims[0], dims[1]];
    return { node, weight, graph, owner, values: transB ? transpose2d(w, [dims[0], dims[1]]) : w, k, n };
  }
  // Conv: [O, I/g, kh, kw] viewed as [O, K] rows, quantized along K = I/g·kh·kw.
  if (dims.length < 3) return `Conv weight of rank ${dims.length}`;
  const o = dims[0];
  const k = dims.slice(1).reduce((a, b) => a * b, 1);
  return { node, weight, graph, owner, values: transpose2d(w, [o, k]), k, n: o };
}


function rewriteInt4(ctx: RewriteContext, site: WeightSite, o: Int4Options, gptq: GptqCodes | undefined): LowBitLayer {
  const blockSize = o.blockSize ?? INT4_BLOCK;
  const algorithm = o.algorithm ?? "rtn";
  const symmetric = o.symmetric ?? true;
  const bits = o.bits ?? 4;
  const name = site.weight.name;
  const rtn = () => quantizeBlockwise(site.values, site.k, site.n, { bits, blockSize, symmetric, algorithm: "rtn" }, name);
  let q: BlockQuantized;
  let layer: LowBitLayer;
  if (algorithm === "gptq") {
    // No codes at all: lowBitModel refuses GPTQ without data before this; the error names the layer's input.
    const g = (gptq ?? new GptqCodes()).layer(site, o, rtn);
    q = g.quantized;
    layer = { ...layerReport(site, blockSize, dequantizeBlockwise(q)), ...g.measured };
  } else {
    // RTN or HQQ; under GPTQ the caller asks RTN for a layer without Hessians (a body's, or a Conv im2col cannot read).
    q = quantizeBlockwise(site.values, site.k, site.n, { bits, blockSize, symmetric, algorithm }, name);
    layer = layerReport(site, blockSize, dequantizeBlockwise(q));
    if (algorithm !== "rtn") layer.rtnSqnrDb = sqnrDb(site.values, dequantizeBlockwise(rtn()));
  }
  const { graph, taken } = ctx;
  const base = site.weight.name;
  const scaleType = site.weight.dataType; // MatMulNBits and DQ want scales in the activation's float type
  if (site.node.opType === "Conv") {
    convInt4(ctx, site, q, { bits, blockSize, label: layer.node, decode: o.format !== "qdq" });
    return layer;
  }
  const out = site.node.output[0];
  const matmulOut = site.node.opType === "Gemm" && site.node.input[2] ? uniqueName(graph, `${out}_matmul`, taken) : out;
  let nodes: NodeProto[];
  if (o.format === "qdq") {
    const dtype = QDQ_TYPES[bits];
    const wq = makeTensor(uniqueName(graph, `${base}_uint${bits}`, taken), dtype, [site.k, site.n], q.codes);
    const sc = makeTensor(uniqueName(graph, `${base}_scale`, taken), scaleType, [Math.ceil(site.k / blockSize), site.n], q.scales);
    const zp = makeTensor(uniqueName(graph, `${base}_zero_point`, taken), dtype, [Math.ceil(site.k / blockSize), site.n], q.zeroPoints);
    graph.initializer.push(wq, sc, zp);
    const deq = uniqueName(graph, `${base}_dequantized`, taken);
    nodes = [
      makeNode("DequantizeLinear", [wq.name, sc.name, zp.name], [deq], {
        name: uniqueName(graph, `${layer.node}_DequantizeLinear`, taken),
        attributes: [attr.int("axis", 0), attr.int("block_size", blockSize)],
      }),
      makeNode("MatMul", [site.node.input[0], deq], [matmulOut], { name: uniqueName(graph, `${layer.node}_MatMul`, taken) }),
    ];
  } else {
    const p = packMatMulNBits(q);
    const b = makeTensor(uniqueName(graph, `${base}_Q${bits}`, taken), DataType.UINT8, p.bDims, p.b);
    const sc = makeTensor(uniqueName(graph, `${base}_scales`, taken), scaleType, [p.scales.length], p.scales);
    graph.initializer.push(b, sc);
    const inputs = [site.node.input[0], b.name, sc.name];
    if (p.zeroPoints) {
      const zp = makeTensor(uniqueName(graph, `${base}_zero_points`, taken), DataType.UINT8, [p.zeroPoints.length], p.zeroPoints);
      graph.initializer.push(zp);
      inputs.push(zp.name);
    }
    nodes = [
      makeNode("MatMulNBits", inputs, [matmulOut], {
        name: uniqueName(graph, `${layer.node}_MatMulNBits`, taken),
        domain: "com.microsoft",
        attributes: [
          attr.int("K", site.k),
          attr.int("N", site.n),
          attr.int("bits", bits),
          attr.int("block_size", blockSize),
          attr.int("accuracy_level", o.accuracyLevel ?? 0),
        ],
      }),
    ];
  }
  if (matmulOut !== out) nodes.push(makeNode("Add", [matmulOut, site.node.input[2]], [out], { name: uniqueName(graph, `${layer.node}_bias`, taken) }));
  replaceNode(graph, site.node, nodes);
  return layer;
}


/**
 * A Conv's weight [O, I/g, kh, kw] as uint codes [O, K] (K = I/g·kh·kw) in blocks along K; the Conv itself is
 * unchanged and its activations stay float. There is no MatMulNBits for convolutions and no int4 Conv kernel, so the
 * weight is decoded to float before the Conv in either format:
 * - `decode` (the matmulnbits format's): codes [O, blocks, block] → Cast → Sub(zero points) → Mul(block scales) →
 *   Reshape to the weight's shape; with a partial last block the codes stay [O, K] and the block parameters are
 *   spread over K (Expand → Reshape → Slice). onnxruntime folds that chain into
 *   a float initializer when the session is made (optimization 'basic' and up), so the Conv runs as FP32's does
 *   (pre-packed, NCHWc, its activation fused) from the small file; the values are the DequantizeLinear's bit for bit.
 * - otherwise (the qdq format): the standard opset-21 blocked DequantizeLinear (axis 1) and a Reshape. onnxruntime
 *   never folds a DequantizeLinear (it keeps QDQ units for its fusions), so the weight is decoded on every run and
 *   the Conv loses pre-packing: ppocr-v3-det-en ran at 0.62× FP32 that way (docs/lowbit.md).
 * A long weight name is replaced by a short stem in the form's names (as FP4's decode does).
 */
function convInt4(ctx: RewriteContext, site: WeightSite, q: BlockQuantized, o: { bits: 2 | 4 | 8; blockSize: number; label: string; decode: boolean }): void {
  const { graph, taken } = ctx;
  const { k, n } = site;
  const kBlocks = Math.ceil(k / o.blockSize);
  const long = site.weight.name.length > LONG_NAME;
  const stem = long ? uniqueName(graph, `w${o.bits}`, taken) : site.weight.name;
  const label = long ? stem : o.label;
  const dtype = QDQ_TYPES[o.bits];
  const floatType = site.weight.dataType;
  // The block quantizer works on [K, N] (blocks along K, per output channel); the Conv wants its channels first.
  const byChannel = (a: Uint8Array | Float32Array, rows: number) => Float32Array.from(transpose2d(Float32Array.from(a), [rows, n]));
  const codes = Uint8Array.from(byChannel(q.codes, k));
  const zeroPoints = Uint8Array.from(byChannel(q.zeroPoints, kBlocks));
  const scales = byChannel(q.scales, kBlocks);
  const named = (s: string) => uniqueName(graph, `${stem}_${s}`, taken);
  const node = (op: string, ins: string[], out: string, attributes: ReturnType<typeof attr.int>[] = []) =>
    makeNode(op, ins, [out], { name: uniqueName(graph, `${label}_${op}`, taken), attributes });
  const weight = named("weight");
  const nodes: NodeProto[] = [];
  if (!o.decode) {
    const wq = makeTensor(named(`uint${o.bits}`), dtype, [n, k], codes);
    const sc = makeTensor(named("scale"), floatType, [n, kBlocks], scales);
    const zp = makeTensor(named("zero_point"), dtype, [n, kBlocks], zeroPoints);
    const shape = makeTensor(named("shape"), DataType.INT64, [site.weight.dims.length], site.weight.dims.map(Number));
    graph.initializer.push(wq, sc, zp, shape);
    const deq = named("dequantized");
    nodes.push(node("DequantizeLinear", [wq.name, sc.name, zp.name], deq, [attr.int("axis", 1), attr.int("block_size", o.blockSize)]), node("Reshape", [deq, shape.name], weight));
  } else {
    const kPad = kBlocks * o.blockSize;
    const whole = kPad === k;
    // Whole blocks: codes [O, blocks, block] against [O, blocks, 1] parameters. A partial last block: codes [O, K]
    // against parameters spread over [O, blocks·block] (Expand) and cut to K (Slice), which onnxruntime folds too;
    // padding the codes instead would store a 3×3 depthwise Conv's 9 codes per channel as 32.
    const wq = constTensor(ctx, `${stem}_uint${o.bits}`, dtype, whole ? [n, kBlocks, o.blockSize] : [n, k], codes);
    let spreadShapes: string[] | undefined;
    const perElement = (p: string, what: string) => {
      if (whole) return p;
      // One set of shapes per layer, read by both spreads (scales, and zero points when asymmetric).
      spreadShapes ??= [
        ...[[3, [n, kBlocks, o.blockSize]], [2, [n, kPad]], [1, [k]]].map(([d, v], i) =>
          constTensor(ctx, `${stem}_${["spread", "rows", "ends"][i]}`, DataType.INT64, [d as number], v as number[]),
        ),
        ...[0, 1].map((v) => sharedTensor(ctx, `int4_conv_${v ? "axes" : "starts"}`, (name) => makeTensor(name, DataType.INT64, [1], [v]))),
      ];
      const [spread, rows, ends, starts, axes] = spreadShapes as [string, string, string, string, string];
      const [e, r, out] = [named(`${what}_spread`), named(`${what}_rows`), named(`${what}_elementwise`)];
      nodes.push(node("Expand", [p, spread], e), node("Reshape", [e, rows], r), node("Slice", [r, starts, ends, axes], out));
      return out;
    };
    const values = named("codes");
    nodes.push(node("Cast", [wq], values, [attr.int("to", floatType)]));
    // Symmetric blocks (the default) share one zero point: a scalar; asymmetric ones keep theirs as codes.
    let zp: string;
    if (zeroPoints.every((z) => z === zeroPoints[0])) {
      const z = zeroPoints[0] ?? 0;
      zp = sharedTensor(ctx, `int4_conv_zero_point_${z}_${floatType}`, (name) => makeTensor(name, floatType, [], [z]));
    }
    else {
      const zq = constTensor(ctx, `${stem}_zero_point`, dtype, [n, kBlocks, 1], zeroPoints);
      const zf = named("zero_point_float");
      nodes.push(node("Cast", [zq], zf, [attr.int("to", floatType)]));
      zp = perElement(zf, "zero_point");
    }
    const sc = perElement(constTensor(ctx, `${stem}_scale`, floatType, [n, kBlocks, 1], scales), "scale");
    const [centred, scaled] = [named("centred"), named("scaled")];
    nodes.push(node("Sub", [values, zp], centred), node("Mul", [centred, sc], scaled));
    const shape = constTensor(ctx, `${stem}_shape`, DataType.INT64, [site.weight.dims.length], site.weight.dims.map(Number));
    nodes.push(node("Reshape", [scaled, shape], weight));
  }
  graph.node.splice(graph.node.indexOf(site.node), 0, ...nodes);
  site.node.input[1] = weight;
}

/** Where a Conv's GPTQ Hessian for group `g` sits in the HessianMap (MatMul/Gemm ones sit under their input). */
export const convHessianKey = (node: string, g: number) => `\0conv ${node} #${g}`;

/** A MatMul/Gemm site's Hessian (of its input, whole or in windows), which GPTQ cannot do without. */
function matmulHessian(site: WeightSite, hessians: HessianMap): LayerHessian {
  const input = site.node.input[0]!;
  const h = hessians.get(input);
  if (!h) throw new Error(`${nodeName(site.node)}: GPTQ needs calibration activations for its input "${input}"; pass calibration data (lowBitModelCalibrated, or --calib)`);
  return h;
}

/** The int4 block along K when the options give none. */
const INT4_BLOCK = 32;

/** The Hessian window of int4 GPTQ: the options' (GPTQ_WINDOW by default) in whole quantization blocks. */
function gptqWindow(options: Pick<Int4Options, "blockSize" | "gptq">): number {
  const block = options.blockSize ?? INT4_BLOCK;
  return Math.max(block, Math.floor((options.gptq?.window ?? GPTQ_WINDOW) / block) * block);
}

/** Each group's Hessian of a Conv site (block-diagonal where K exceeds the window), or undefined unless all are
 *  there. The map holds them under convHessianKey(node, i), i counting each group's windows in order. */
function convHessiansOf(site: WeightSite, hessians: HessianMap, options: Pick<Int4Options, "blockSize" | "gptq">): LayerHessian[] | undefined {
  const groups = attrInt(site.node, "group", 1);
  const window = gptqWindow(options);
  const sizes = kWindows(site.k, window);
  const out: LayerHessian[] = [];
  for (let g = 0; g < groups; g++) {
    const hs = sizes.map((m, w) => hessians.get(convHessianKey(nodeName(site.node), g * sizes.length + w)));
    if (!hs.every((h, w) => h instanceof Float64Array && h.length === sizes[w]! ** 2)) return undefined;
    out.push(hs.length === 1 ? hs[0]! : (hs as Float64Array[]));
  }
  return out;
}

/** A layer's GPTQ codes and what they measure against round-to-nearest's. */
interface GptqLayer {
  quantized: BlockQuantized;
  measured: Pick<LowBitLayer, "rtnSqnrDb" | "outputSqnrDb" | "rtnOutputSqnrDb" | "damping">;
}

/** GPTQ's settings from the int4 options. */
function gptqOptions(o: Int4Options): GptqOptions {
  return { bits: o.bits ?? 4, blockSize: o.blockSize ?? INT4_BLOCK, symmetric: o.symmetric ?? true, damping: o.gptq?.damping, actOrder: o.gptq?.actOrder };
}

/**
 * GPTQ's codes per layer, each rounded from its Hessians when a conversion first meets it and kept: protection's
 * ladder converts the model once per step it measures, and a layer's GPTQ depends only on its weight, its Hessians
 * and the options, so each runs once. Collected in passes (lowBitModelCalibrated where the data reads again), each
 * pass's Hessians are rounded by a conversion (`pass`) and dropped before the next pass collects its own
 * (`finish`): GPTQ then holds one pass's matrices and every layer's codes, not every layer's Hessians.
 */
export class GptqCodes {
  private readonly done = new Map<string, GptqLayer>();
  /** While a pass's Hessians are rounded: the conversion (which is not kept) rewrites the layers they cover only. */
  partial = false;

  constructor(private hessians: HessianMap = new Map()) {}

  /** The next pass's Hessians: their layers are rounded by the next conversion. */
  pass(hessians: HessianMap): void {
    this.hessians = hessians;
    this.partial = true;
  }

  /** Every pass rounded: the last pass's Hessians are dropped, the codes kept. */
  finish(): void {
    this.hessians = new Map();
    this.partial = false;
  }

  /** Layers rounded so far. */
  get size(): number {
    return this.done.size;
  }

  /** Whether `site` has its codes, or the Hessians to round them. */
  has(site: WeightSite, options: Int4Options): boolean {
    return this.done.has(layerKey(site, gptqOptions(options))) || this.pending(site, options);
  }

  /** Whether the Hessians held now cover `site` (a Conv's patches, a MatMul/Gemm's input). */
  pending(site: WeightSite, options: Int4Options): boolean {
    return site.node.opType === "Conv" ? convHessiansOf(site, this.hessians, options) !== undefined : this.hessians.has(site.node.input[0]!);
  }

  /** `site`'s codes, rounded now if they are not yet: a MatMul/Gemm's from its input's Hessian; a Conv's from its
   *  input patches', one per group (a depthwise Conv's per channel), each group on its own output columns. */
  layer(site: WeightSite, o: Int4Options, rtn: () => BlockQuantized): GptqLayer {
    const opts = gptqOptions(o);
    const key = layerKey(site, opts);
    const done = this.done.get(key);
    if (done) return done;
    const hessians = site.node.opType === "Conv" ? convHessiansOf(site, this.hessians, o) : [matmulHessian(site, this.hessians)];
    if (!hessians) throw new Error(`${nodeName(site.node)}: GPTQ has no Hessians for this Conv's input patches`);
    const g = gptqQuantizeGroups(site.values, site.k, site.n, hessians, opts, site.weight.name);
    const stored = dequantizeBlockwise(g.quantized);
    const base = dequantizeBlockwise(rtn());
    const layer: GptqLayer = {
      quantized: g.quantized,
      measured: {
        rtnSqnrDb: sqnrDb(site.values, base),
        outputSqnrDb: outputSqnrDbGroups(site.values, stored, hessians, site.k, site.n),
        rtnOutputSqnrDb: outputSqnrDbGroups(site.values, base, hessians, site.k, site.n),
        damping: g.damping,
      },
    };
    this.done.set(key, layer);
    return layer;
  }
}

const layerKey = (site: WeightSite, opts: GptqOptions) => `${nodeName(site.node)}\0${site.weight.name}\0${JSON.stringify(opts)}`;

/** One GptqCodes per Hessian map, so that every conversion from one calibrated pass shares its rounded layers. */
const codesOfMap = new WeakMap<HessianMap, GptqCodes>();

function codesOf(source: GptqSource): GptqCodes {
  if (source instanceof GptqCodes) return source;
  let codes = codesOfMap.get(source);
  if (!codes) codesOfMap.set(source, (codes = new GptqCodes(source)));
  return codes;
}

/**
 * The top-level Conv weights an int4 GPTQ pass writes in low bits, as Hessian targets: the Conv's input patches
 * (im2col, one Hessian per group), keyed by convHessianKey. A Conv whose geometry im2col cannot read is left out
 * (rounded to nearest).
 */
export function int4ConvTargets(model: Model, options: LowBitOptions): LayerTarget[] {
  if (options.mode !== "int4") return [];
  const targets: LayerTarget[] = [];
  for (const s of int4Convs(findSites(model, options, { layers: [], skipped: [], notes: [] }), options)) {
    const conv = patchesCut(s);
    if (typeof conv === "string") continue;
    targets.push({ key: nodeName(s.node), tensor: s.node.input[0]!, k: s.k, conv, bias: false, window: gptqWindow(options) });
  }
  return targets;
}

/** How im2col cuts a Conv site's input into patches, or why it cannot (a geometry it does not read): inside a
 *  Loop/Scan body too, its input stacked over the iterations. GPTQ's and FP4's learned rounding read Convs through it. */
export function patchesCut(s: WeightSite): ConvGeometry[] | string {
  return convGeometry(s.node, s.weight.dims.map(Number));
}

/** The Conv sites an int4 pass writes in low bits (not stepped up to int8, nor small enough to store int8). */
function int4Convs(sites: readonly WeightSite[], options: LowBitOptions): WeightSite[] {
  const int8 = new Set(options.int8 ?? []);
  return sites.filter((s) => s.node.opType === "Conv" && !int8.has(nodeName(s.node)) && !smallerAsInt8(s, options));
}

function requireOpset(model: Model, min: number, what: string): void {
  const v = model.opset() ?? 1;
  if (v < min) throw new Error(`${what} needs opset ${min} or later; this model is at opset ${v}. Upgrade it first (upgradeOpset).`);
}
