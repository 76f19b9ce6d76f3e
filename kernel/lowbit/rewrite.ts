// Rewrites a model's MatMul/Gemm (and, for FP4, Conv) weights to low-bit forms. One pass: find the weight-bearing
// nodes, quantize each weight with the pure code in this folder, splice in the replacement nodes.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import type { Model } from "../onnx/model";
import { DataType } from "../onnx/dtype";
import { attrFloat, attrInt, attr, makeNode } from "../onnx/proto";
import { constantValue, removeNodes, replaceNode, uniqueName, usedNames, topologicalSort } from "../onnx/graph";
import { makeTensor, packBits, tensorToFloat32 } from "../onnx/tensor";
import { E2M1_TABLE, decodeE4M3, dequantizeFp4, quantizeFp4, type Fp4Format } from "./fp4";
import { sqnr as sqnrDb, transpose2d } from "../quant/math";
import { dequantizeBlockwise, quantizeBlockwise, type BlockAlgorithm } from "./intblock";
import { packMatMulNBits } from "./pack";

export interface Int4Options {
  mode: "int4";
  /** Rows of K per block: a power of two, 16–256. Default 32 (see docs/BENCHMARKS.md, low-bit section). */
  blockSize?: number;
  symmetric?: boolean;
  algorithm?: BlockAlgorithm;
  /** matmulnbits: com.microsoft.MatMulNBits (fast on CPU). qdq: opset-21 blocked DequantizeLinear → MatMul. */
  format?: "matmulnbits" | "qdq";
  /** MatMulNBits accuracy_level: 0 (unset, float activations) … 4 (int8 activations, fastest). Default 0. */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
}

export interface Fp4Options {
  mode: "fp4";
  fp4Format?: Fp4Format;
  /** runnable: packed codes decoded by a small subgraph that onnxruntime CPU runs. native: opset-23 FLOAT4E2M1
   *  DequantizeLinear (no CPU kernel in onnxruntime). fake: weights replaced by their FP4-rounded float values. */
  export?: "runnable" | "native" | "fake";
}

export type LowBitOptions = (Int4Options | Fp4Options) & {
  /** Node names to leave in float. */
  exclude?: readonly string[];
};

export interface LowBitLayer {
  node: string;
  opType: string;
  weight: string;
  k: number;
  n: number;
  blockSize: number;
  /** K was not a multiple of the block size: the last block is partial (padded with zeros where a layout needs it). */
  partialBlock: boolean;
  /** Weight SQNR in dB of the stored weights vs the float ones. */
  sqnrDb: number;
  /** For int4 with algorithm hqq: what round-to-nearest would have given, for comparison. */
  rtnSqnrDb?: number;
}

export interface LowBitReport {
  layers: LowBitLayer[];
  skipped: { node: string; opType: string; reason: string }[];
  /** Present when the result cannot run on onnxruntime's CPU provider. */
  warning?: string;
  /** What else was done to the model on the way (opset upgrades). */
  notes: string[];
}

interface WeightSite {
  node: NodeProto;
  weight: TensorProto;
  /** [K, N] float values, K being the reduction axis. */
  values: Float32Array;
  k: number;
  n: number;
}

const nodeName = (n: NodeProto) => n.name || n.output[0] || n.opType;

/** Quantizes the weights of `model` in place (pass a clone) and returns what was done and what was left alone. */
export function quantizeWeightsLowBit(model: Model, options: LowBitOptions): LowBitReport {
  const graph = model.graph;
  // Refuse before touching anything: these forms need types that only newer opsets define.
  if (options.mode === "int4" && options.format === "qdq") requireOpset(model, 21, "int4 DequantizeLinear");
  if (options.mode === "fp4" && options.export === "native") requireOpset(model, 23, "FLOAT4E2M1 DequantizeLinear");
  const report: LowBitReport = { layers: [], skipped: [], notes: [] };
  const exclude = new Set(options.exclude ?? []);
  const taken = usedNames(graph);
  const sites: WeightSite[] = [];
  for (const node of graph.node) {
    if (node.domain !== "" && node.domain !== "ai.onnx") continue;
    if (!["MatMul", "Gemm", "Conv"].includes(node.opType)) continue;
    if (node.opType === "Conv" && !(options.mode === "fp4" && options.export !== "native")) continue;
    if (exclude.has(nodeName(node))) {
      report.skipped.push({ node: nodeName(node), opType: node.opType, reason: "excluded by the user" });
      continue;
    }
    const site = findWeight(graph, node);
    if (typeof site === "string") report.skipped.push({ node: nodeName(node), opType: node.opType, reason: site });
    else sites.push(site);
  }
  const shared = new Map<string, number>();
  for (const s of sites) shared.set(s.weight.name, (shared.get(s.weight.name) ?? 0) + 1);
  const ctx: RewriteContext = { graph, taken, dead: new Set() };
  for (const site of sites) {
    if ((shared.get(site.weight.name) ?? 0) > 1) {
      report.skipped.push({ node: nodeName(site.node), opType: site.node.opType, reason: `weight "${site.weight.name}" is shared by several nodes` });
      continue;
    }
    report.layers.push(options.mode === "int4" ? rewriteInt4(ctx, site, options) : rewriteFp4(ctx, site, options));
    ctx.dead.add(site.weight.name);
  }
  // Drop the float weights nothing reads any more (initializers or Constant nodes).
  const stillRead = new Set(graph.node.flatMap((n) => n.input));
  graph.initializer = graph.initializer.filter((t) => !ctx.dead.has(t.name) || stillRead.has(t.name));
  removeNodes(graph, graph.node.filter((n) => n.opType === "Constant" && ctx.dead.has(n.output[0]) && !stillRead.has(n.output[0])));
  topologicalSort(graph);
  if (options.mode === "int4" && options.format !== "qdq" && model.opset("com.microsoft") === undefined) model.setOpset(1, "com.microsoft");
  if (options.mode === "fp4" && options.export === "native") {
    report.warning =
      "native FP4 (FLOAT4E2M1) has no onnxruntime CPU kernel: this model is for runtimes that support opset 23 FP4 " +
      "(e.g. TensorRT); use export 'runnable' to run it with onnxruntime-node";
  }
  return report;
}

interface RewriteContext {
  graph: GraphProto;
  taken: Set<string>;
  dead: Set<string>;
}

function findWeight(graph: GraphProto, node: NodeProto): WeightSite | string {
  const wName = node.input[1];
  const weight = wName ? constantValue(graph, wName) : undefined;
  if (!weight) return "its weight is not a constant (initializer or Constant node)";
  if (weight.dataType !== DataType.FLOAT && weight.dataType !== DataType.FLOAT16) return "its weight is not float or float16";
  const dims = weight.dims.map(Number);
  const w = tensorToFloat32(weight);
  if (node.opType === "MatMul") {
    if (dims.length !== 2) return `its weight has rank ${dims.length}; only 2-D MatMul weights are quantized`;
    return { node, weight, values: w, k: dims[0], n: dims[1] };
  }
  if (node.opType === "Gemm") {
    if (attrInt(node, "transA", 0) !== 0) return "Gemm with transA=1";
    if (attrFloat(node, "alpha", 1) !== 1 || attrFloat(node, "beta", 1) !== 1) return "Gemm with alpha or beta other than 1";
    const transB = attrInt(node, "transB", 0) === 1;
    const [k, n] = transB ? [dims[1], dims[0]] : [dims[0], dims[1]];
    return { node, weight, values: transB ? transpose2d(w, [dims[0], dims[1]]) : w, k, n };
  }
  // Conv: [O, I/g, kh, kw] viewed as [O, K] rows, quantized along K = I/g·kh·kw.
  if (dims.length < 3) return `Conv weight of rank ${dims.length}`;
  const o = dims[0];
  const k = dims.slice(1).reduce((a, b) => a * b, 1);
  return { node, weight, values: transpose2d(w, [o, k]), k, n: o };
}

function layerReport(site: WeightSite, blockSize: number, stored: Float32Array): LowBitLayer {
  return {
    node: nodeName(site.node),
    opType: site.node.opType,
    weight: site.weight.name,
    k: site.k,
    n: site.n,
    blockSize,
    partialBlock: site.k % blockSize !== 0,
    sqnrDb: sqnrDb(site.values, stored),
  };
}

function rewriteInt4(ctx: RewriteContext, site: WeightSite, o: Int4Options): LowBitLayer {
  const blockSize = o.blockSize ?? 32;
  const algorithm = o.algorithm ?? "rtn";
  const q = quantizeBlockwise(site.values, site.k, site.n, { bits: 4, blockSize, symmetric: o.symmetric ?? true, algorithm }, site.weight.name);
  const layer = layerReport(site, blockSize, dequantizeBlockwise(q));
  if (algorithm !== "rtn") {
    const rtn = quantizeBlockwise(site.values, site.k, site.n, { bits: 4, blockSize, symmetric: o.symmetric ?? true, algorithm: "rtn" });
    layer.rtnSqnrDb = sqnrDb(site.values, dequantizeBlockwise(rtn));
  }
  const { graph, taken } = ctx;
  const base = site.weight.name;
  const scaleType = site.weight.dataType; // MatMulNBits and DQ want scales in the activation's float type
  const out = site.node.output[0];
  const matmulOut = site.node.opType === "Gemm" && site.node.input[2] ? uniqueName(graph, `${out}_matmul`, taken) : out;
  let nodes: NodeProto[];
  if (o.format === "qdq") {
    const wq = makeTensor(uniqueName(graph, `${base}_uint4`, taken), DataType.UINT4, [site.k, site.n], q.codes);
    const sc = makeTensor(uniqueName(graph, `${base}_scale`, taken), scaleType, [Math.ceil(site.k / blockSize), site.n], q.scales);
    const zp = makeTensor(uniqueName(graph, `${base}_zero_point`, taken), DataType.UINT4, [Math.ceil(site.k / blockSize), site.n], q.zeroPoints);
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
    const b = makeTensor(uniqueName(graph, `${base}_Q4`, taken), DataType.UINT8, p.bDims, p.b);
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
          attr.int("bits", 4),
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

function rewriteFp4(ctx: RewriteContext, site: WeightSite, o: Fp4Options): LowBitLayer {
  const format = o.fp4Format ?? "nvfp4";
  const q = quantizeFp4(site.values, site.k, site.n, format, site.weight.name);
  const deq = dequantizeFp4(q);
  const layer = layerReport(site, q.blockSize, deq);
  const { graph, taken } = ctx;
  const exportForm = o.export ?? "runnable";
  if (exportForm === "fake") {
    // Same ops, same weight name: only the values change to what FP4 can represent.
    const w = weightLayout(site, deq);
    const t = makeTensor(site.weight.name, site.weight.dataType, site.weight.dims.map(Number), w);
    replaceWeight(graph, site.weight.name, t);
    ctx.dead.delete(site.weight.name);
    return layer;
  }
  const base = site.weight.name;
  const decoded = uniqueName(graph, `${base}_fp4_decoded`, taken);
  const nodes = exportForm === "native" ? nativeFp4Nodes(ctx, q, base, decoded) : runnableFp4Nodes(ctx, q, base, decoded);
  // The decoded weight is [K, N]; Gemm(transB) and Conv want their original layout back.
  let weightInput = decoded;
  if (site.node.opType !== "MatMul" && !(site.node.opType === "Gemm" && attrInt(site.node, "transB", 0) === 0)) {
    const t = uniqueName(graph, `${base}_fp4_transposed`, taken);
    nodes.push(makeNode("Transpose", [decoded], [t], { name: uniqueName(graph, `${layer.node}_fp4_Transpose`, taken), attributes: [attr.ints("perm", [1, 0])] }));
    weightInput = t;
    if (site.node.opType === "Conv") {
      const shape = constTensor(ctx, `${base}_fp4_shape`, DataType.INT64, [site.weight.dims.length], site.weight.dims.map(Number));
      const r = uniqueName(graph, `${base}_fp4_reshaped`, taken);
      nodes.push(makeNode("Reshape", [t, shape], [r], { name: uniqueName(graph, `${layer.node}_fp4_Reshape`, taken) }));
      weightInput = r;
    }
  }
  if (site.weight.dataType === DataType.FLOAT16) {
    const c = uniqueName(graph, `${base}_fp4_fp16`, taken);
    nodes.push(makeNode("Cast", [weightInput], [c], { name: uniqueName(graph, `${layer.node}_fp4_Cast`, taken), attributes: [attr.int("to", DataType.FLOAT16)] }));
    weightInput = c;
  }
  const at = graph.node.indexOf(site.node);
  graph.node.splice(at, 0, ...nodes);
  site.node.input[1] = weightInput;
  return layer;
}

/** Codes packed two per byte in uint8 (any opset), unpacked with Mod/Div, decoded through the 16-entry E2M1 table,
 *  times per-block scales decoded from their 8-bit codes through a 256-entry table. onnxruntime folds all of it
 *  into a float constant at optimization level 'basic', so it runs at float speed from a ~7× smaller file. */
function runnableFp4Nodes(ctx: RewriteContext, q: ReturnType<typeof quantizeFp4>, base: string, decoded: string): NodeProto[] {
  const { graph, taken } = ctx;
  const kBlocks = Math.ceil(q.k / q.blockSize);
  const kPad = kBlocks * q.blockSize;
  const codes = new Uint8Array(kPad * q.n);
  codes.set(q.codes);
  const packed = constTensor(ctx, `${base}_fp4_codes`, DataType.UINT8, [codes.length / 2], packBits(codes, 4));
  const scaleCodes = constTensor(ctx, `${base}_fp4_scale_codes`, DataType.UINT8, [kBlocks, 1, q.n], q.scaleBytes);
  const scaleTable = Float32Array.from({ length: 256 }, (_, b) =>
    q.format === "mxfp4" ? (b === 255 ? 0 : 2 ** (b - 127)) : Number.isNaN(decodeE4M3(b)) ? 0 : decodeE4M3(b) * q.globalScale!,
  );
  const sTable = constTensor(ctx, `${base}_fp4_scale_table`, DataType.FLOAT, [256], scaleTable);
  const eTable = constTensor(ctx, `${base}_fp4_e2m1_table`, DataType.FLOAT, [16], E2M1_TABLE);
  const sixteen = constTensor(ctx, `${base}_fp4_16`, DataType.INT32, [], [16]);
  const pairShape = constTensor(ctx, `${base}_fp4_pair_shape`, DataType.INT64, [2], [codes.length / 2, 1]);
  const blockShape = constTensor(ctx, `${base}_fp4_block_shape`, DataType.INT64, [3], [kBlocks, q.blockSize, q.n]);
  const outShape = constTensor(ctx, `${base}_fp4_out_shape`, DataType.INT64, [2], [kPad, q.n]);
  const t = (s: string) => uniqueName(graph, `${base}_fp4_${s}`, taken);
  const node = (op: string, ins: string[], outs: string[], attributes = [] as ReturnType<typeof attr.int>[]) =>
    makeNode(op, ins, outs, { name: uniqueName(graph, `${base}_fp4_${op}`, taken), attributes });
  const [b32, lo, hi, lo2, hi2, idx, vals, vals3, s32, sv, scaled] = ["i32", "lo", "hi", "lo2", "hi2", "idx", "vals", "vals3", "s32", "sv", "scaled"].map(t);
  const nodes = [
    node("Cast", [packed], [b32], [attr.int("to", DataType.INT32)]),
    node("Mod", [b32, sixteen], [lo]),
    node("Div", [b32, sixteen], [hi]),
    node("Reshape", [lo, pairShape], [lo2]),
    node("Reshape", [hi, pairShape], [hi2]),
    node("Concat", [lo2, hi2], [idx], [attr.int("axis", 1)]),
    node("Gather", [eTable, idx], [vals]),
    node("Reshape", [vals, blockShape], [vals3]),
    node("Cast", [scaleCodes], [s32], [attr.int("to", DataType.INT32)]),
    node("Gather", [sTable, s32], [sv]),
    node("Mul", [vals3, sv], [scaled]),
  ];
  if (kPad === q.k) {
    nodes.push(node("Reshape", [scaled, outShape], [decoded]));
  } else {
    const full = t("padded");
    nodes.push(node("Reshape", [scaled, outShape], [full]));
    const starts = constTensor(ctx, `${base}_fp4_starts`, DataType.INT64, [1], [0]);
    const ends = constTensor(ctx, `${base}_fp4_ends`, DataType.INT64, [1], [q.k]);
    const axes = constTensor(ctx, `${base}_fp4_axes`, DataType.INT64, [1], [0]);
    nodes.push(node("Slice", [full, starts, ends, axes], [decoded]));
  }
  return nodes;
}

/** The standard form: a FLOAT4E2M1 initializer and blocked DequantizeLinear (opset 23). NVFP4's E4M3 block scales
 *  are themselves dequantized by the per-tensor FP32 scale, the two-level form TensorRT consumes. */
function nativeFp4Nodes(ctx: RewriteContext, q: ReturnType<typeof quantizeFp4>, base: string, decoded: string): NodeProto[] {
  const { graph, taken } = ctx;
  const kBlocks = Math.ceil(q.k / q.blockSize);
  const values = Array.from(q.codes, (c) => E2M1_TABLE[c]);
  const w = constTensor(ctx, `${base}_fp4`, DataType.FLOAT4E2M1, [q.k, q.n], values);
  const nodes: NodeProto[] = [];
  let scale: string;
  if (q.format === "mxfp4") {
    scale = constTensor(ctx, `${base}_fp4_scale`, DataType.FLOAT, [kBlocks, q.n], q.scales);
  } else {
    const s8 = constTensor(ctx, `${base}_fp4_scale_e4m3`, DataType.FLOAT8E4M3FN, [kBlocks, q.n], Array.from(q.scaleBytes, decodeE4M3));
    const g = constTensor(ctx, `${base}_fp4_global_scale`, DataType.FLOAT, [], [q.globalScale!]);
    scale = uniqueName(graph, `${base}_fp4_scale`, taken);
    nodes.push(makeNode("DequantizeLinear", [s8, g], [scale], { name: uniqueName(graph, `${base}_fp4_scale_DequantizeLinear`, taken) }));
  }
  nodes.push(
    makeNode("DequantizeLinear", [w, scale], [decoded], {
      name: uniqueName(graph, `${base}_fp4_DequantizeLinear`, taken),
      attributes: [attr.int("axis", 0), attr.int("block_size", q.blockSize)],
    }),
  );
  return nodes;
}

function constTensor(ctx: RewriteContext, base: string, dtype: DataType, dims: number[], data: ArrayLike<number>): string {
  const name = uniqueName(ctx.graph, base, ctx.taken);
  ctx.graph.initializer.push(makeTensor(name, dtype, dims, data));
  return name;
}

/** Back from [K, N] to the weight's own layout (Gemm transB and Conv store [N, K]). */
function weightLayout(site: WeightSite, kn: Float32Array): Float32Array {
  const transposed = site.node.opType === "Conv" || (site.node.opType === "Gemm" && attrInt(site.node, "transB", 0) === 1);
  return transposed ? transpose2d(kn, [site.k, site.n]) : kn;
}

function replaceWeight(graph: GraphProto, name: string, t: TensorProto): void {
  const i = graph.initializer.findIndex((x) => x.name === name);
  if (i >= 0) {
    graph.initializer[i] = t;
    return;
  }
  const c = graph.node.find((n) => n.opType === "Constant" && n.output[0] === name);
  if (c) c.attribute = [attr.tensor("value", t)];
}

function requireOpset(model: Model, min: number, what: string): void {
  const v = model.opset() ?? 1;
  if (v < min) throw new Error(`${what} needs opset ${min} or later; this model is at opset ${v}. Upgrade it first (upgradeOpset).`);
}
