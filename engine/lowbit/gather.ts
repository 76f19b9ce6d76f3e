// Embedding tables (the constant data input of Gather on axis 0) in 2, 4 or 8 bits, blocks along the embedding axis: each
// looked-up row is dequantized on its own. Exported as com.microsoft.GatherBlockQuantized (onnxruntime CPU runs it,
// and only the gathered rows are ever expanded) or, for the standard form, opset-21 blocked DequantizeLinear → Gather.
import type { GraphProto, NodeProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { attr, attrInt, makeNode } from "../onnx/proto";
import { constantValue, replaceNode, uniqueName } from "../onnx/graph";
import { tensorToFloat32 } from "../onnx/tensor";
import { sqnr as sqnrDb, transpose2d } from "../quant/math";
import { dequantizeBlockwise, quantizeBlockwise, type BlockQuantized } from "./intblock";
import { QDQ_TYPES, constTensor, layerReport, nodeName, type Int4Options, type LowBitLayer, type LowBitReport, type RewriteContext, type WeightSite } from "./types";

/**
 * Gathers whose data is a constant float table. Gathers over computed tensors (shape arithmetic, token selection)
 * are not weights and are passed over silently; constant tables that cannot be done are listed with the reason.
 */
export function findGatherSites(graph: GraphProto, exclude: ReadonlySet<string>, bits: number, report: LowBitReport): WeightSite[] {
  const readers = new Map<string, number>();
  for (const n of graph.node) for (const i of n.input) if (i) readers.set(i, (readers.get(i) ?? 0) + 1);
  const sites: WeightSite[] = [];
  for (const node of graph.node) {
    if (node.opType !== "Gather" || (node.domain !== "" && node.domain !== "ai.onnx")) continue;
    const table = node.input[0] ? constantValue(graph, node.input[0]) : undefined;
    if (!table || (table.dataType !== DataType.FLOAT && table.dataType !== DataType.FLOAT16)) continue;
    const skip = (reason: string) => report.skipped.push({ node: nodeName(node), opType: "Gather", reason });
    const dims = table.dims.map(Number);
    if (exclude.has(nodeName(node))) skip("excluded by the user");
    else if (dims.length !== 2) skip(`its table has rank ${dims.length}; only 2-D [rows, dim] tables are quantized`);
    else if (attrInt(node, "axis", 0) !== 0) skip("Gather on axis 1; only row lookups (axis 0) are quantized");
    else if ((readers.get(table.name) ?? 0) > 1) skip(`table "${table.name}" is also read by other nodes (tied weights)`);
    else if (dims[1]! % (8 / bits) !== 0) skip(`embedding dimension ${dims[1]} is not a multiple of ${8 / bits}; GatherBlockQuantized packs ${8 / bits} codes per byte`);
    else {
      const [rows, dim] = dims as [number, number];
      // Blocks run along the embedding axis, so quantize the table transposed: K = dim, N = rows.
      sites.push({ node, weight: table, graph, owner: graph, values: transpose2d(tensorToFloat32(table), [rows, dim]), k: dim, n: rows });
    }
  }
  return sites;
}

/** Replaces one Gather by its low-bit form. GPTQ has nothing to add for a lookup (its inputs are one-hot, so H is
 *  diagonal and GPTQ reduces to rounding): tables get HQQ when asked for, round-to-nearest otherwise. */
export function rewriteGather(ctx: RewriteContext, site: WeightSite, o: Int4Options): LowBitLayer {
  const blockSize = o.blockSize ?? 32;
  const symmetric = o.symmetric ?? true;
  const bits = o.bits ?? 4;
  const algorithm = o.algorithm === "hqq" ? "hqq" : "rtn";
  const q = quantizeBlockwise(site.values, site.k, site.n, { bits, blockSize, symmetric, algorithm }, site.weight.name);
  const layer = layerReport(site, blockSize, dequantizeBlockwise(q));
  if (algorithm === "hqq") {
    const rtn = quantizeBlockwise(site.values, site.k, site.n, { bits, blockSize, symmetric, algorithm: "rtn" });
    layer.rtnSqnrDb = sqnrDb(site.values, dequantizeBlockwise(rtn));
  }
  const nodes = o.format === "qdq" ? dqGatherNodes(ctx, site, q, layer.node) : gatherBlockQuantizedNodes(ctx, site, q, layer.node);
  replaceNode(ctx.graph, site.node, nodes);
  return layer;
}

/** Row-major [rows, dim] codes and [rows, blocks] scales/zero points from the transposed quantization. */
function rowLayout(q: BlockQuantized): { codes: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array; blocks: number } {
  const blocks = Math.ceil(q.k / q.blockSize);
  const codes = new Uint8Array(q.k * q.n);
  for (let d = 0; d < q.k; d++) for (let r = 0; r < q.n; r++) codes[r * q.k + d] = q.codes[d * q.n + r]!;
  const zeroPoints = new Uint8Array(blocks * q.n);
  for (let b = 0; b < blocks; b++) for (let r = 0; r < q.n; r++) zeroPoints[r * blocks + b] = q.zeroPoints[b * q.n + r]!;
  return { codes, scales: transpose2d(q.scales, [blocks, q.n]), zeroPoints, blocks };
}

/** GatherBlockQuantized with uint8 data in MatMulNBits' convention: 8/bits codes per byte along the row, lowest bits
 *  first; zero points packed the same way, left out only for 4 bits when all are the default 8 (the one default
 *  checked; the other widths always carry theirs). */
function gatherBlockQuantizedNodes(ctx: RewriteContext, site: WeightSite, q: BlockQuantized, label: string): NodeProto[] {
  const { codes, scales, zeroPoints, blocks } = rowLayout(q);
  const [rows, dim, bits] = [q.n, q.k, q.bits];
  const per = 8 / bits;
  const packed = new Uint8Array((rows * dim) / per);
  for (let i = 0; i < codes.length; i++) packed[Math.floor(i / per)] |= codes[i]! << ((i % per) * bits);
  const zpCols = Math.ceil(blocks / per);
  const zpPacked = new Uint8Array(rows * zpCols);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) zpPacked[r * zpCols + Math.floor(b / per)] |= zeroPoints[r * blocks + b]! << ((b % per) * bits);
  }
  const base = site.weight.name;
  const inputs = [
    constTensor(ctx, `${base}_Q${bits}`, DataType.UINT8, [rows, dim / per], packed),
    site.node.input[1]!,
    constTensor(ctx, `${base}_scales`, site.weight.dataType, [rows, blocks], scales),
  ];
  if (bits !== 4 || zeroPoints.some((z) => z !== 8)) inputs.push(constTensor(ctx, `${base}_zero_points`, DataType.UINT8, [rows, zpCols], zpPacked));
  return [
    makeNode("GatherBlockQuantized", inputs, [site.node.output[0]!], {
      name: uniqueName(ctx.graph, `${label}_GatherBlockQuantized`, ctx.taken),
      domain: "com.microsoft",
      attributes: [attr.int("gather_axis", 0), attr.int("quantize_axis", 1), attr.int("block_size", q.blockSize), attr.int("bits", bits)],
    }),
  ];
}

/** The standard form: uint2/4/8 table, DequantizeLinear blocked along axis 1 (opset 21; 25 for uint2), then the
 *  original Gather. */
function dqGatherNodes(ctx: RewriteContext, site: WeightSite, q: BlockQuantized, label: string): NodeProto[] {
  const { codes, scales, zeroPoints, blocks } = rowLayout(q);
  const [rows, dim] = [q.n, q.k];
  const base = site.weight.name;
  const dtype = QDQ_TYPES[q.bits as 2 | 4 | 8];
  const w = constTensor(ctx, `${base}_uint${q.bits}`, dtype, [rows, dim], codes);
  const s = constTensor(ctx, `${base}_scale`, site.weight.dataType, [rows, blocks], scales);
  const z = constTensor(ctx, `${base}_zero_point`, dtype, [rows, blocks], zeroPoints);
  const deq = uniqueName(ctx.graph, `${base}_dequantized`, ctx.taken);
  return [
    makeNode("DequantizeLinear", [w, s, z], [deq], {
      name: uniqueName(ctx.graph, `${label}_DequantizeLinear`, ctx.taken),
      attributes: [attr.int("axis", 1), attr.int("block_size", q.blockSize)],
    }),
    makeNode("Gather", [deq, site.node.input[1]!], [site.node.output[0]!], {
      name: uniqueName(ctx.graph, `${label}_Gather`, ctx.taken),
      attributes: [attr.int("axis", 0)],
    }),
  ];
}
