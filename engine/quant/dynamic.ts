// Dynamic quantization (ORT's quantize_dynamic form): weights stored int8 offline, activations quantized per batch
// at run time by DynamicQuantizeLinear, then MatMulInteger → Cast → Mul by (activation scale × weight scale).
// onnxruntime fuses this chain into com.microsoft.DynamicQuantizeMatMul. No calibration data is needed.
// Convolutions keep float activations: their weights are stored int8 per output channel and decoded by Cast → Sub →
// Mul, which onnxruntime folds at load, so they run as float Convs (ConvInteger, ORT's quantize_dynamic form, ran the
// corpus's conv models at 0.42–0.89× FP32 and lost accuracy; see weightOnlyConv). LSTMs become
// com.microsoft.DynamicQuantizeLSTM. The same rewrite runs inside If/Loop/Scan bodies, recursively,
// with weights looked up through enclosing graphs (subgraph.ts) and names unique across the whole model.
import { create } from "@bufbuild/protobuf";
import { OperatorSetIdProtoSchema, type ModelProto, type NodeProto, type TensorProto } from "onnx-buf";
import { DataType, elementCount } from "../onnx/dtype";
import { outerScopeInputs, subgraphs, uniqueName, usedNames } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { attr, attrFloat, attrInt, makeNode } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { ONNX_DTYPE, paramsForWeight, quantize, quantizeKernels, transpose2d, type QuantParams } from "./math";
import { preprocess } from "./preprocess";
import { withinBudget } from "./protect";
import { WEIGHTED_OPS } from "./scope";
import { decodeUnfusedWeightsNote } from "./unfused-weights";
import { BODY_QUANTIZED_OPS, GraphScope } from "./subgraph";
import { emptySummary, matchesSelector, type QuantizationSummary, type ResolvedQConfig } from "./types";

const MS_DOMAIN = "com.microsoft";

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
  const taken = usedNames(g);
  const root = new GraphScope(g);
  const smallConvs = smallestConvs(root);
  quantizeGraph(root, { proto: m.proto, dir: m.dir, config, summary, name: (b) => uniqueName(g, b, taken), shared: new Map(), smallConvs });
  const decoded = decodeUnfusedWeightsNote(m);
  if (decoded) summary.warnings.push(decoded);
  return { model: m, summary };
}

/**
 * The static quantizer's companion for If/Loop/Scan bodies it does not quantize with Q/DQ (a body calibration did
 * not reach, LSTMs, body Convs by default): one dynamic pass over the model's `proto`, its names drawn from `taken`
 * (every name in use), what was quantized or kept float added to `summary`, the Convs of `smallConvs` left float.
 */
export function bodyDynamicPass(model: ModelProto, config: ResolvedQConfig, taken: Set<string>, summary: QuantizationSummary, smallConvs?: SmallConvs): DynamicPass {
  const g = model.graph!;
  return { proto: model, dir: undefined, config, summary, name: (b) => uniqueName(g, b, taken), shared: new Map(), smallConvs };
}

/** Quantizes `scope`'s graph dynamically, and its bodies; with `only`, just the nodes it accepts, bodies left alone. */
export function quantizeGraphDynamic(scope: GraphScope, pass: DynamicPass, only?: (node: NodeProto) => boolean): void {
  quantizeGraph(scope, pass, only);
}

/** One dynamic quantization of a model: what every graph of it shares. */
export interface DynamicPass {
  proto: ModelProto;
  /** Where external tensor data lives. */
  dir: string | undefined;
  config: ResolvedQConfig;
  summary: QuantizationSummary;
  /** A name unused anywhere in the model (subgraphs included). */
  name: (base: string) => string;
  /**
   * Tensors already stored, by source tensor and layout: a weight several nodes share, in one graph or in several
   * bodies, is quantized and stored once, next to its float original.
   */
  shared: Map<TensorProto, Map<string, Stored>>;
  /** Conv weights left float as the model's smallest (smallestConvs), with the share of its weights they hold together. */
  smallConvs?: SmallConvs;
}

/** The smallest Conv weights (smallestConvs) and the share of all weight elements they hold together. */
export interface SmallConvs {
  weights: ReadonlySet<TensorProto>;
  share: number;
  /** The model's weight elements the share is of. */
  total: number;
}

/**
 * Why a Conv among the model's smallest keeps its float weight: `size` its weight elements, `share` what it and the
 * others kept so hold of the model's, `runs` why the Conv runs in float either way.
 */
export function smallConvReason(size: number, share: number, runs: string): string {
  return `one of the model's smallest Convs (${size} weights; with the others kept so, ${(100 * share).toFixed(2)} % of its weights): ${runs}, so int8 would save only these bytes, while small Convs (stems, depthwise) are where its rounding costs most`;
}

/**
 * In dynamic mode a Conv runs in float either way: its int8 weight is decoded at load (weightOnlyConv), so storing
 * it in int8 buys only its bytes, while its rounding reaches the outputs. The smallest Convs, which together hold at
 * most this share of the model's weight elements, stay float: 3 bytes more per weight, so the file grows by at most
 * ~0.75 % of FP32's size. They are where int8 weights cost most: a CNN's stem and early depthwise Convs, a few hundred
 * weights each. ppocr-v4-rec-en without data: 81.3 → 97.9 % of 1024 held-out lines (FP32 97.5 %) with its 11 smallest
 * Convs float, 2.04 → 2.08 MB; the PP-OCR detectors and M-LSD gain 2.2–5.6 dB, BlazeFace ±0.2 dB (a 0.25 % share
 * left the detectors as they were); docs/quantization.md "Dynamic mode: the smallest Convs stay float". A static
 * file's Convs that onnxruntime runs in float take the same share: the weight-only ones inside bodies (bodyDynamicPass)
 * and the top-level ones it cannot fuse into QLinearConv (QdqRewriter.planSmallestFloat).
 */
export const SMALL_CONV_SHARE = 0.01;

/** Weighted ops whose W and R (inputs 1 and 2) are both weights. */
const RECURRENT: ReadonlySet<string> = new Set(["LSTM", "GRU", "RNN"]);

/**
 * The Conv weights of `root` and its bodies that stay float by SMALL_CONV_SHARE: smallest first (graph order on
 * ties), while their sum stays within the share of every weighted node's constant weight elements (Conv,
 * ConvTranspose, MatMul, Gemm; W and R of LSTM, GRU and RNN; a tensor read by several nodes counted once). With
 * `bodiesOnly`, only Convs inside If/Loop/Scan bodies are candidates (static mode, whose top-level Convs are Q/DQ).
 */
export function smallestConvs(root: GraphScope, options: { bodiesOnly?: boolean } = {}): SmallConvs {
  const sizes = new Map<TensorProto, number>();
  const convs: TensorProto[] = [];
  const visit = (scope: GraphScope) => {
    for (const node of scope.graph.node) {
      if (!WEIGHTED_OPS.has(node.opType)) continue;
      const inputs = RECURRENT.has(node.opType) ? node.input.slice(1, 3) : node.input.slice(1, 2);
      for (const name of inputs) {
        const t = name ? scope.initializer(name)?.tensor : undefined;
        if (!t || t.dataType !== DataType.FLOAT || sizes.has(t)) continue;
        sizes.set(t, elementCount(t.dims, `initializer "${t.name}"`));
        if (node.opType === "Conv" && t.dims.length >= 3 && (!options.bodiesOnly || scope.depth > 0)) convs.push(t);
      }
    }
    for (const body of scope.bodies()) visit(body);
  };
  visit(root);
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  // Smallest first: once one does not fit, no larger one does.
  const ranked = convs.map((t, i) => ({ t, i })).sort((a, b) => sizes.get(a.t)! - sizes.get(b.t)! || a.i - b.i).map(({ t }) => t);
  const { float } = withinBudget(ranked, sizes, SMALL_CONV_SHARE * total);
  const sum = float.reduce((a, t) => a + sizes.get(t)!, 0);
  return { weights: new Set(float), share: total > 0 ? sum / total : 0, total };
}

interface Stored {
  p: QuantParams;
  names: [string, string, string];
}

function storedFor(pass: DynamicPass, t: TensorProto, layout: string): Stored | undefined {
  return pass.shared.get(t)?.get(layout);
}

function remember(pass: DynamicPass, t: TensorProto, layout: string, s: Stored): void {
  let m = pass.shared.get(t);
  if (!m) pass.shared.set(t, (m = new Map()));
  m.set(layout, s);
}

/**
 * Rewrites the nodes of `scope`'s graph, then of its bodies, then drops float initializers no graph reads any more.
 * With `only`: the nodes it accepts, and no body (the static pass rewrote the rest and handles the bodies).
 */
function quantizeGraph(scope: GraphScope, pass: DynamicPass, only?: (node: NodeProto) => boolean): void {
  const { config, summary, name } = pass;
  const g = scope.graph;
  const types = scope.types;
  const original = new Set(g.initializer.map((t) => t.name));
  const out: NodeProto[] = [];
  for (const node of g.node) {
    if (only && !only(node)) {
      out.push(node);
      continue;
    }
    const reason = declineReason(node, config, types, scope, pass.smallConvs);
    if (reason) {
      out.push(node);
      if (BODY_QUANTIZED_OPS.has(node.opType) || (scope.depth > 0 && WEIGHTED_OPS.has(node.opType)))
        summary.float.push({ name: node.name, opType: node.opType, reason });
      continue;
    }
    if (node.opType === "Conv") {
      out.push(...weightOnlyConv(node, scope, pass));
      continue;
    }
    if (node.opType === "LSTM") {
      out.push(dynamicLstm(node, scope, pass));
      continue;
    }
    const [a = "", b = "", c = ""] = node.input;
    const { tensor: w, owner } = scope.initializer(b)!;
    let dims = w.dims.map(Number);
    let data = tensorToFloat32(w, pass.dir);
    if (node.opType === "Gemm" && attrInt(node, "transB", 0)) [data, dims] = [transpose2d(data, dims), [dims[1]!, dims[0]!]];
    const layout = `${node.opType === "Gemm" ? attrInt(node, "transB", 0) : 0}`;
    const cached = storedFor(pass, w, layout);
    const p = cached?.p ?? paramsForWeight(data, dims, { type: config.weightType, symmetric: config.weightSymmetric, reduceRange: config.reduceRange, axis: config.perChannel ? 1 : undefined }, () => `initializer "${b}" of ${node.opType} node "${node.name}"`);
    const base = node.name || node.output[0]!;
    // A weight shared by several nodes is stored once.
    const [wq, wz, ws] = cached?.names ?? [name(`${b}_quantized`), name(`${b}_zero_point`), name(`${b}_scale`)];
    if (!cached) {
      const pd = p.axis === undefined ? [] : [p.scale.length];
      owner.initializer.push(
        makeTensor(wq, ONNX_DTYPE[p.type], dims, quantize(data, dims, p)),
        makeTensor(wz, ONNX_DTYPE[p.type], pd, p.zeroPoint),
        makeTensor(ws, DataType.FLOAT, pd, p.scale),
      );
      remember(pass, w, layout, { p, names: [wq, wz, ws] });
    }
    const y = node.output[0]!;
    const gemmTail = node.opType === "Gemm" && (c || attrFloat(node, "alpha", 1) !== 1);
    const mulOut = gemmTail ? name(`${base}_matmul`) : y;
    out.push(...integerChain(a, [wq, wz, ws], mulOut, base, name));
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
  if (!only) for (const body of scope.bodies()) quantizeGraph(body, pass);
  const used = new Set(g.node.flatMap((n) => n.input));
  g.initializer = g.initializer.filter((t) => used.has(t.name) || g.output.some((o) => o.name === t.name) || !original.has(t.name) || t.dataType !== DataType.FLOAT || usedBySubgraph(g, t.name));
}

/** x → DynamicQuantizeLinear → MatMulInteger with the stored int8 weight → Cast → × (x scale × weight scale) → `y`. */
function integerChain(
  x: string,
  [wq, wz, ws]: readonly [string, string, string],
  y: string,
  base: string,
  name: (base: string) => string,
): NodeProto[] {
  const op = "MatMulInteger";
  const [xq, xs, xz, acc, accf, sc] = ["quantized", "scale", "zero_point", op, "cast", "scale_product"].map((s) => name(`${base}_${s}`)) as string[];
  return [
    makeNode("DynamicQuantizeLinear", [x], [xq!, xs!, xz!], { name: name(`${base}_DynamicQuantizeLinear`) }),
    makeNode(op, [xq!, wq, xz!, wz], [acc!], { name: name(`${base}_${op}`) }),
    makeNode("Cast", [acc!], [accf!], { name: name(`${base}_Cast`), attributes: [attr.int("to", DataType.FLOAT)] }),
    makeNode("Mul", [xs!, ws], [sc!], { name: name(`${base}_scale_Mul`) }),
    makeNode("Mul", [accf!, sc!], [y], { name: name(`${base}_output_Mul`) }),
  ];
}

/**
 * Convs with fewer weights stay float. silero-vad's 7-tap smoothing filter (normalizing the log spectrum) cost 8 dB of
 * output SQNR in 8 bits, to save 21 bytes; its 64-weight output head likewise gains nothing measurable.
 */
const MIN_WEIGHT_ONLY_ELEMENTS = 128;

/**
 * A Conv keeps float activations: its weight is stored int8 behind a DequantizeLinear (per output channel), which
 * quantizeDynamicModel then writes as Cast → Sub → Mul (engine/quant/unfused-weights), and the convolution runs in
 * float. Measured against ConvInteger (DynamicQuantizeLinear → ConvInteger → scales), which this replaced: in
 * silero-vad's bodies ConvInteger ran at 0.63× FP32 and moved 3.6 % of streamed decisions (docs/subgraphs.md); at the
 * top level of the corpus's conv models it ran at 0.42–0.89× FP32 where weight-only runs at 0.99–1.16×, and
 * ppocr-v3-rec-en read 78.9 % of 512 lines where weight-only reads 96.7 % (FP32 96.9 %; docs/quantization.md).
 */
function weightOnlyConv(node: NodeProto, scope: GraphScope, pass: DynamicPass): NodeProto[] {
  const { config, name, summary } = pass;
  const [, b = ""] = node.input;
  const { tensor: w, owner } = scope.initializer(b)!;
  const dims = w.dims.map(Number);
  // Per-axis DequantizeLinear needs opset 13.
  const opset = Number(pass.proto.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0);
  const perAxis = config.perChannel && opset >= 13;
  let stored = storedFor(pass, w, "dq");
  if (!stored) {
    const data = tensorToFloat32(w, pass.dir);
    const p = paramsForWeight(data, dims, { type: config.weightType, symmetric: config.weightSymmetric, reduceRange: config.reduceRange, axis: perAxis ? 0 : undefined }, () => `initializer "${b}" of Conv node "${node.name}"`);
    stored = { p, names: [name(`${b}_quantized`), name(`${b}_zero_point`), name(`${b}_scale`)] };
    const pd = perAxis ? [p.scale.length] : [];
    owner.initializer.push(
      makeTensor(stored.names[0], ONNX_DTYPE[p.type], dims, quantizeKernels(data, dims, p)),
      makeTensor(stored.names[1], ONNX_DTYPE[p.type], pd, p.zeroPoint),
      makeTensor(stored.names[2], DataType.FLOAT, pd, p.scale),
    );
    remember(pass, w, "dq", stored);
  }
  const [wq, wz, ws] = stored.names;
  const wf = name(`${b}_DequantizeLinear_Output`);
  const dq = makeNode("DequantizeLinear", [wq, ws, wz], [wf], { name: name(`${node.name || node.output[0]!}_weight_DequantizeLinear`), attributes: perAxis ? [attr.int("axis", 0)] : [] });
  node.input = node.input.map((i, k) => (k === 1 ? wf : i));
  summary.quantized.push({ name: node.name, opType: node.opType, tensors: [{ name: b, type: stored.p.type, perChannel: perAxis }] });
  return [dq, node];
}

/**
 * LSTM → com.microsoft.DynamicQuantizeLSTM (what ORT's quantizer makes): W [dirs, 4·hidden, input] and R [dirs,
 * 4·hidden, hidden] stored int8/uint8 and transposed to [dirs, input, 4·hidden] / [dirs, hidden, 4·hidden], with
 * one scale per direction, or per direction and gate row when per-channel; the gate inputs are quantized per step
 * at run time.
 */
function dynamicLstm(node: NodeProto, scope: GraphScope, pass: DynamicPass): NodeProto {
  const { config, name, summary } = pass;
  const [x = "", wName = "", rName = "", ...rest] = node.input;
  const base = node.name || node.output[0]!;
  const stored = [wName, rName].map((n) => {
    const { tensor: t, owner } = scope.initializer(n)!;
    let s = storedFor(pass, t, "lstm");
    if (!s) {
      const [dirs, rows, cols] = t.dims.map(Number) as [number, number, number];
      const data = tensorToFloat32(t, pass.dir);
      const view = config.perChannel ? [dirs * rows, cols] : [dirs, rows * cols];
      const p = paramsForWeight(data, view, { type: config.weightType, symmetric: config.weightSymmetric, reduceRange: config.reduceRange, axis: 0 }, () => `initializer "${n}" of LSTM node "${node.name}"`);
      const q = quantize(data, view, p);
      // [dirs, rows, cols] → [dirs, cols, rows]
      const tq = q.slice();
      for (let d = 0; d < dirs; d++) for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) tq[(d * cols + j) * rows + i] = q[(d * rows + i) * cols + j]!;
      const pd = config.perChannel ? [dirs, rows] : [dirs];
      s = { p, names: [name(`${n}_quantized`), name(`${n}_zero_point`), name(`${n}_scale`)] };
      owner.initializer.push(
        makeTensor(s.names[0], ONNX_DTYPE[p.type], [dirs, cols, rows], tq),
        makeTensor(s.names[1], ONNX_DTYPE[p.type], pd, p.zeroPoint),
        makeTensor(s.names[2], DataType.FLOAT, pd, p.scale),
      );
      remember(pass, t, "lstm", s);
    }
    return s;
  });
  const [w, r] = stored as [Stored, Stored];
  if (!pass.proto.opsetImport.some((o) => o.domain === MS_DOMAIN)) pass.proto.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: MS_DOMAIN, version: 1n }));
  const optional = [0, 1, 2, 3, 4].map((i) => rest[i] ?? ""); // B, sequence_lens, initial_h, initial_c, P
  summary.quantized.push({
    name: node.name,
    opType: node.opType,
    tensors: [wName, rName].map((t) => ({ name: t, type: w.p.type, perChannel: config.perChannel })),
  });
  return makeNode("DynamicQuantizeLSTM", [x, w.names[0], r.names[0], ...optional, w.names[2], w.names[1], r.names[2], r.names[1]], node.output, {
    name: name(`${base}_quant`),
    domain: MS_DOMAIN,
    // `layout` (opset 14) is unknown to the contrib op; only its default (0) is accepted here.
    attributes: node.attribute.filter((a) => a.name !== "layout"),
  });
}

function usedBySubgraph(g: Model["graph"], name: string): boolean {
  return g.node.some((n) => subgraphs(n).some((sg) => outerScopeInputs(sg).has(name)));
}

function declineReason(node: NodeProto, config: ResolvedQConfig, types: Map<string, number>, scope: GraphScope, small?: SmallConvs): string | undefined {
  const lstm = node.opType === "LSTM";
  if (node.opType !== "MatMul" && node.opType !== "Gemm" && node.opType !== "Conv" && !lstm) {
    return node.opType === "GRU" || node.opType === "RNN" ? `onnxruntime has no dynamically quantized ${node.opType} kernel` : "not a MatMul/Gemm/Conv";
  }
  if (config.opTypes && !config.opTypes.includes(node.opType)) return "op type not in QConfig.opTypes";
  if (config.include && !config.include.some((s) => matchesSelector(node, s))) return "not selected by QConfig.include";
  if (config.exclude.some((s) => matchesSelector(node, s))) return "excluded by QConfig.exclude";
  const [a = "", b = "", c = ""] = node.input;
  if (types.get(a) !== DataType.FLOAT) return "input is not float32";
  const constant = (n: string) => (types.get(n) === DataType.FLOAT ? scope.initializer(n)?.tensor : undefined);
  const w = constant(b);
  if (lstm) {
    const r = constant(c);
    if (!w || !r) return "W or R is not a float32 constant";
    if (w.dims.length !== 3 || r.dims.length !== 3) return "W or R is not 3-D";
    if (attrInt(node, "layout", 0) !== 0) return "layout = 1 (batch first): DynamicQuantizeLSTM takes sequence-first input only";
    return undefined;
  }
  if (node.opType === "Conv") {
    if (!w) return "weight is not a float32 constant";
    if (w.dims.length < 3) return "weight has fewer than 3 dimensions";
    if (c && (!scope.initializer(c) || scope.initializer(c)!.tensor.dims.length !== 1)) return "bias is not a 1-D constant";
    const size = w.dims.reduce((a, d) => a * Number(d), 1);
    if (size < MIN_WEIGHT_ONLY_ELEMENTS)
      return `weight has ${size} elements: stored in int8 behind a DequantizeLinear it saves under ${3 * MIN_WEIGHT_ONLY_ELEMENTS} bytes, not worth its rounding error`;
    if (small?.weights.has(w))
      return smallConvReason(size, small.share, "a weight-only Conv runs in float with its int8 weight decoded at load");
    return undefined;
  }
  if (!w) return "right side is not a float32 constant (activation × activation, e.g. attention): dynamic mode quantizes weights only";
  if (w.dims.length !== 2) return "weight is not 2-D";
  if (node.opType === "Gemm" && (attrInt(node, "transA", 0) !== 0 || attrFloat(node, "beta", 1) !== 1)) return "Gemm with transA or beta != 1";
  return undefined;
}
