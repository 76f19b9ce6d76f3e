// FP4 (MXFP4 / NVFP4) weight rewrites: the runnable decode subgraph, the native opset-23 form, and fake-quant.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { attrInt, attr, makeNode } from "../onnx/proto";
import { uniqueName } from "../onnx/graph";
import { makeTensor, packBits } from "../onnx/tensor";
import { transpose2d } from "../quant/math";
import { E2M1_TABLE, FP4_BLOCK_SIZE, decodeE4M3, dequantizeFp4, quantizeFp4, type Fp4Blocks } from "./fp4";
import { constTensor, layerReport, sharedTensor, type Fp4Options, type LowBitLayer, type RewriteContext, type WeightSite } from "./types";

/** A weight's FP4 codes as learned rounding chose them (engine/lowbit/fp4-rounding), the bias it corrected (the
 *  node's own float initializer), and the layer's output SQNR (dB) on its sampled inputs, nearest → learned. */
export interface LearnedFp4 {
  blocks: Fp4Blocks;
  bias?: { name: string; values: Float32Array };
  beforeDb: number;
  afterDb: number;
}

export function rewriteFp4(ctx: RewriteContext, site: WeightSite, o: Fp4Options, learned?: LearnedFp4): LowBitLayer {
  const format = o.fp4Format ?? "nvfp4";
  const q = learned?.blocks ?? quantizeFp4(site.values, site.k, site.n, format, site.weight.name);
  const deq = dequantizeFp4(q);
  const layer = layerReport(site, q.blockSize, deq);
  const { graph, taken } = ctx;
  if (learned) {
    layer.outputSqnrDb = learned.afterDb;
    layer.rtnOutputSqnrDb = learned.beforeDb;
    if (learned.bias) replaceWeight(site.owner, learned.bias.name, makeTensor(learned.bias.name, DataType.FLOAT, [learned.bias.values.length], learned.bias.values));
  }
  const exportForm = o.export ?? "runnable";
  if (exportForm === "fake") {
    // Same ops, same weight name: only the values change to what FP4 can represent.
    const w = weightLayout(site, deq);
    const t = makeTensor(site.weight.name, site.weight.dataType, site.weight.dims.map(Number), w);
    replaceWeight(site.owner, site.weight.name, t);
    ctx.dead.delete(site.weight.name);
    return layer;
  }
  const base = site.weight.name;
  // The runnable form's names: the weight's own when short, else a short stem (they are repeated in every name).
  const runnable = exportForm !== "native";
  const stem = !runnable || base.length <= LONG_NAME ? `${base}_fp4` : uniqueName(graph, "fp4_w", taken);
  const named = (s: string) => uniqueName(graph, `${stem}_${s}`, taken);
  const nodeLabel = runnable && base.length > LONG_NAME ? stem : `${layer.node}_fp4`;
  const decoded = named("decoded");
  const nodes = runnable ? runnableFp4Nodes(ctx, q, stem, decoded) : nativeFp4Nodes(ctx, q, base, decoded);
  // The decoded weight is [K, N]; Gemm(transB) and Conv want their original layout back.
  let weightInput = decoded;
  if (site.node.opType !== "MatMul" && !(site.node.opType === "Gemm" && attrInt(site.node, "transB", 0) === 0)) {
    const t = named("transposed");
    nodes.push(makeNode("Transpose", [decoded], [t], { name: uniqueName(graph, `${nodeLabel}_Transpose`, taken), attributes: [attr.ints("perm", [1, 0])] }));
    weightInput = t;
    if (site.node.opType === "Conv") {
      const shape = constTensor(ctx, `${stem}_shape`, DataType.INT64, [site.weight.dims.length], site.weight.dims.map(Number));
      const r = named("reshaped");
      nodes.push(makeNode("Reshape", [t, shape], [r], { name: uniqueName(graph, `${nodeLabel}_Reshape`, taken) }));
      weightInput = r;
    }
  }
  if (site.weight.dataType === DataType.FLOAT16) {
    const c = named("fp16");
    nodes.push(makeNode("Cast", [weightInput], [c], { name: uniqueName(graph, `${nodeLabel}_Cast`, taken), attributes: [attr.int("to", DataType.FLOAT16)] }));
    weightInput = c;
  }
  const at = graph.node.indexOf(site.node);
  graph.node.splice(at, 0, ...nodes);
  site.node.input[1] = weightInput;
  return layer;
}

/** Bytes of a [K, N] weight in the runnable form: packed codes (K padded to the block), one scale code per block, and
 *  about 700 bytes of shape constants and decode nodes (the decode tables are shared by every weight of a graph). */
export function runnableFp4Bytes(k: number, n: number, o: Pick<Fp4Options, "fp4Format">): number {
  const block = FP4_BLOCK_SIZE[o.fp4Format ?? "nvfp4"];
  const kBlocks = Math.ceil(k / block);
  return (kBlocks * block * n) / 2 + kBlocks * n + 700;
}

/** Above this length a weight's name is not repeated in its decode's intermediate names (they would be most of a
 *  small model's file: blazeface's TensorFlow names run to 70 characters). The int8 form uses it too. */
export const LONG_NAME = 24;

/** Codes packed two per byte in uint8 (any opset), decoded through one 256-entry table of E2M1 value pairs (low nibble,
 *  high nibble), times per-block scales decoded from their 8-bit codes through a 256-entry table (NVFP4: then times
 *  the weight's FP32 global scale). Both tables are shared by every weight of the graph. onnxruntime folds all of it
 *  into a float constant at optimization level 'basic', so it runs at float speed from a ~7× smaller file. */
function runnableFp4Nodes(ctx: RewriteContext, q: ReturnType<typeof quantizeFp4>, stem: string, decoded: string): NodeProto[] {
  const { graph, taken } = ctx;
  const kBlocks = Math.ceil(q.k / q.blockSize);
  const kPad = kBlocks * q.blockSize;
  const codes = new Uint8Array(kPad * q.n);
  codes.set(q.codes);
  const pairs = sharedTensor(ctx, "fp4_e2m1_pairs", (name) =>
    makeTensor(name, DataType.FLOAT, [256, 2], Float32Array.from({ length: 512 }, (_, i) => E2M1_TABLE[i % 2 ? (i >> 1) >> 4 : (i >> 1) & 15]!)),
  );
  const sTable = sharedTensor(ctx, `fp4_${q.format}_scales`, (name) =>
    makeTensor(name, DataType.FLOAT, [256], Float32Array.from({ length: 256 }, (_, b) => (q.format === "mxfp4" ? (b === 255 ? 0 : 2 ** (b - 127)) : Number.isNaN(decodeE4M3(b)) ? 0 : decodeE4M3(b)))),
  );
  const packed = constTensor(ctx, `${stem}_codes`, DataType.UINT8, [codes.length / 2], packBits(codes, 4));
  const scaleCodes = constTensor(ctx, `${stem}_scale_codes`, DataType.UINT8, [kBlocks, 1, q.n], q.scaleBytes);
  const blockShape = constTensor(ctx, `${stem}_block_shape`, DataType.INT64, [3], [kBlocks, q.blockSize, q.n]);
  const outShape = constTensor(ctx, `${stem}_out_shape`, DataType.INT64, [2], [kPad, q.n]);
  const t = (s: string) => uniqueName(graph, `${stem}_${s}`, taken);
  const node = (op: string, ins: string[], outs: string[], attributes = [] as ReturnType<typeof attr.int>[]) =>
    makeNode(op, ins, outs, { name: uniqueName(graph, `${stem}_${op}`, taken), attributes });
  const [b32, vals, vals3, s32, sv, scaled] = ["i32", "vals", "vals3", "s32", "sv", "scaled"].map(t);
  const nodes = [
    node("Cast", [packed], [b32], [attr.int("to", DataType.INT32)]),
    node("Gather", [pairs, b32], [vals]),
    node("Reshape", [vals, blockShape], [vals3]),
    node("Cast", [scaleCodes], [s32], [attr.int("to", DataType.INT32)]),
    node("Gather", [sTable, s32], [sv]),
  ];
  let blockScales = sv;
  if (q.format !== "mxfp4") {
    const g = constTensor(ctx, `${stem}_global_scale`, DataType.FLOAT, [], [q.globalScale!]);
    blockScales = t("sv_global");
    nodes.push(node("Mul", [sv, g], [blockScales]));
  }
  nodes.push(node("Mul", [vals3, blockScales], [scaled]));
  if (kPad === q.k) {
    nodes.push(node("Reshape", [scaled, outShape], [decoded]));
  } else {
    const full = t("padded");
    nodes.push(node("Reshape", [scaled, outShape], [full]));
    const starts = constTensor(ctx, `${stem}_starts`, DataType.INT64, [1], [0]);
    const ends = constTensor(ctx, `${stem}_ends`, DataType.INT64, [1], [q.k]);
    const axes = constTensor(ctx, `${stem}_axes`, DataType.INT64, [1], [0]);
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
