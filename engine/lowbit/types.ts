// The low-bit pass's typed options and report, and the small pieces every rewrite (int, FP4, Gather) shares.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { uniqueName } from "../onnx/graph";
import { makeTensor } from "../onnx/tensor";
import { sqnr as sqnrDb } from "../quant/math";
import type { Fp4Format } from "./fp4";
import type { OutputReport, ProtectOptions } from "./protect";
import type { BlockAlgorithm } from "./intblock";

export interface Int4Options {
  mode: "int4";
  /** Bits per weight (default 4): 2 and 8 as well, in both formats (the mode keeps its name "int4"). */
  bits?: 2 | 4 | 8;
  /** Rows of K per block: a power of two, 16–256. Default 32 (see docs/BENCHMARKS.md, low-bit section). */
  blockSize?: number;
  symmetric?: boolean;
  /** rtn (default), hqq, or gptq (needs calibration data: lowBitModelCalibrated / `--calib`). */
  algorithm?: BlockAlgorithm;
  /** GPTQ settings: damping share of H's mean diagonal (default 0.01), act-order (default off), and the Hessian
   *  window of a Conv: K rows per block-diagonal part (default GPTQ_WINDOW, 2048; rounded down to whole blocks). */
  gptq?: { damping?: number; actOrder?: boolean; window?: number };
  /** matmulnbits: com.microsoft.MatMulNBits (fast on CPU), a Conv's codes decoded by Cast/Sub/Mul (onnxruntime folds
   *  them at load). qdq: opset-21 blocked DequantizeLinear → MatMul or Conv (the standard form). */
  format?: "matmulnbits" | "qdq";
  /** Also quantize embedding tables (constant data of Gather on axis 0), blocks along the embedding axis, to
   *  com.microsoft.GatherBlockQuantized (qdq format: DequantizeLinear → Gather). */
  includeGather?: boolean;
  /** MatMulNBits accuracy_level: 0 (unset, float activations) … 4 (int8 activations, fastest). Default 0. */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
  /** 2 and 4 bits, "int8": a weight whose int8-per-channel form takes no more bytes than its blocked form (depthwise
   *  and other convolutions of small K: K padded to a block, a scale per block) is stored int8 instead. Default "int4":
   *  every weight in blocks (on the corpus int8 there was a draw held out: docs/lowbit.md §6). */
  smallLayers?: "int8" | "int4";
}

export interface Fp4Options {
  mode: "fp4";
  fp4Format?: Fp4Format;
  /** runnable: packed codes decoded by a small subgraph that onnxruntime CPU runs. native: opset-23 FLOAT4E2M1
   *  DequantizeLinear (no CPU kernel in onnxruntime). fake: weights replaced by their FP4-rounded float values. */
  export?: "runnable" | "native" | "fake";
  /** runnable: a weight whose packed FP4 form with its decode subgraph would take more bytes than int8 per channel
   *  (depthwise and other small convolutions: K padded to a block, a 1 KB scale table per weight) is stored int8
   *  instead (default "int8"); "fp4" keeps every weight FP4. */
  smallLayers?: "int8" | "fp4";
}

export type LowBitOptions = (Int4Options | Fp4Options) & {
  /** Node names to leave in float. */
  exclude?: readonly string[];
  /** Node names whose weights are stored int8 per output channel instead (weight-only; what protection uses). */
  int8?: readonly string[];
  /**
   * With calibration data (lowBitModelCalibrated, `--calib`) the outputs are always measured against the float
   * model's and reported, and below the target (default DEFAULT_PROTECT_DB) the layers that cost the outputs most per
   * weight element get int8 weights or stay float, within a size cap (default DEFAULT_PROTECT_MAX_SIZE of the float
   * model's size; engine/lowbit/protect). false: measure and report only.
   */
  protect?: ProtectOptions | false;
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
  /** 8 for a layer protection stepped up to int8 weights (engine/lowbit/int8-rewrite); absent: the mode's bits. */
  bits?: 8;
  /** Weight SQNR in dB of the stored weights vs the float ones. */
  sqnrDb: number;
  /** For int4 with algorithm hqq or gptq: what round-to-nearest would have given, for comparison. */
  rtnSqnrDb?: number;
  /** GPTQ: the layer's output SQNR over the calibration activations, ‖XW‖² / ‖X(W − Ŵ)‖² in dB ... */
  outputSqnrDb?: number;
  /** ... and what round-to-nearest gives there. */
  rtnOutputSqnrDb?: number;
  /** GPTQ: the damping share used (raised when H was not positive definite). */
  damping?: number;
}

export interface LowBitReport {
  layers: LowBitLayer[];
  skipped: { node: string; opType: string; reason: string }[];
  /** Present when the result cannot run on onnxruntime's CPU provider. */
  warning?: string;
  /** What else was done to the model on the way (opset upgrades). */
  notes: string[];
  /** The outputs against the float model's, and the layers protected, when calibration data was given. */
  output?: OutputReport;
}

/** The unsigned type an opset-21+ blocked DequantizeLinear reads codes of each width from (uint2: opset 25). */
export const QDQ_TYPES: Record<2 | 4 | 8, DataType> = { 2: DataType.UINT2, 4: DataType.UINT4, 8: DataType.UINT8 };

/** The opset the qdq form of a width needs. */
export const qdqOpset = (bits: number) => (bits === 2 ? 25 : 21);

export interface WeightSite {
  node: NodeProto;
  weight: TensorProto;
  /** The graph `node` is in (the main graph, or an If/Loop/Scan body at any depth) and the graph holding its weight
   *  (the same, or an enclosing graph: exporters keep a body's weights as main-graph initializers). */
  graph: GraphProto;
  owner: GraphProto;
  /** LSTM only: R, the recurrence weights (`weight` is W); both are stored int8 (int8-rewrite's rewriteLstmInt8). */
  recurrent?: TensorProto;
  /** [K, N] float values, K being the reduction axis. */
  values: Float32Array;
  k: number;
  n: number;
}

export const nodeName = (n: NodeProto) => n.name || n.output[0] || n.opType;

export interface RewriteContext {
  graph: GraphProto;
  taken: Set<string>;
  dead: Set<string>;
  /** Constants every rewrite in a graph can read (FP4's decode tables): per graph, by key, the initializer's name. */
  shared?: Map<GraphProto, Map<string, string>>;
}

/** The initializer `key` names in ctx.graph, made once per graph by `make` (under `base`) and read by every rewrite. */
export function sharedTensor(ctx: RewriteContext, key: string, make: (name: string) => TensorProto): string {
  const byGraph = (ctx.shared ??= new Map()).get(ctx.graph) ?? new Map<string, string>();
  ctx.shared.set(ctx.graph, byGraph);
  let name = byGraph.get(key);
  if (!name) {
    name = uniqueName(ctx.graph, key, ctx.taken);
    ctx.graph.initializer.push(make(name));
    byGraph.set(key, name);
  }
  return name;
}

export function layerReport(site: WeightSite, blockSize: number, stored: Float32Array): LowBitLayer {
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

export function constTensor(ctx: RewriteContext, base: string, dtype: DataType, dims: number[], data: ArrayLike<number>): string {
  const name = uniqueName(ctx.graph, base, ctx.taken);
  ctx.graph.initializer.push(makeTensor(name, dtype, dims, data));
  return name;
}
