// FP4 (MXFP4 / NVFP4) weight rewrites: the runnable decode subgraph, the native opset-23 form, and fake-quant.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { attrInt, attr, makeNode } from "../onnx/proto";
import { uniqueName } from "../onnx/graph";
import { makeTensor, packBits } from "../onnx/tensor";
import { transpose2d } from "../quant/math";
import { E2M1_TABLE, FP4_BLOCK_SIZE, decodeE4M3, dequantizeFp4, quantizeFp4, type Fp4Blocks } from "./fp4";
import { constTensor, layerReport, type Fp4Options, type LowBitLayer, type RewriteContext, type WeightSite } from "./types";

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

/** Bytes of a [K, N] weight in the runnable form: packed codes (K padded to the block), one scale code per block,
 *  the 256-entry scale table and 16-entry value table, shape constants, and about 1 KB of nodes and names. */
export function runnableFp4Bytes(k: number, n: number, o: Pick<Fp4Options, "fp4Format">): number {
  const block = FP4_BLOCK_SIZE[o.fp4Format ?? "nvfp4"];
  const kBlocks = Math.ceil(k / block);
  return (kBlocks * block * n) / 2 + kBlocks * n + 256 * 4 + 16 * 4 + 64 + 1000;
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
