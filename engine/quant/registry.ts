// The registry (a plain record op type → quantizer, with a fallback for everything else) and the annotation
// driver that runs it over a graph, honouring the config's op-type and include/exclude selections.
import type { GraphProto, NodeProto } from "onnx-buf";
import { consumers as consumerMap } from "../onnx/graph";
import { Annotations, QuantizerContext } from "./annotate";
import * as op from "./operators";
import { matchesSelector, type ResolvedQConfig } from "./types";

export const registry: Record<string, op.OpQuantizer> = {
  Conv: op.conv,
  ConvTranspose: op.convTranspose,
  MatMul: op.matMul,
  Gemm: op.gemm,
  Add: op.elementwise,
  Mul: op.elementwise,
  Concat: op.elementwise,
  Relu: op.relu,
  Clip: op.relu,
  AveragePool: op.unary,
  GlobalAveragePool: op.unary,
  MaxPool: op.dataMovement,
  GlobalMaxPool: op.dataMovement,
  Reshape: op.dataMovement,
  Transpose: op.dataMovement,
  Squeeze: op.dataMovement,
  Unsqueeze: op.dataMovement,
  Flatten: op.dataMovement,
  Gather: op.dataMovement,
  Slice: op.dataMovement,
  Split: op.dataMovement,
  Resize: op.dataMovement,
  Pad: op.dataMovement,
  DepthToSpace: op.dataMovement,
  SpaceToDepth: op.dataMovement,
  Sigmoid: op.sigmoid,
  Softmax: op.softmax,
  LeakyRelu: op.unary,
  HardSigmoid: op.unary,
  HardSwish: op.unary,
  ReduceMean: op.unary,
  Where: op.where,
  BatchNormalization: op.unary,
  InstanceNormalization: op.unary,
  LayerNormalization: op.unary,
};

/** The fallback: ops without a quantizer stay float and are counted in the summary. */
const fallback: op.OpQuantizer = (node) => `no quantizer for op type ${node.opType}`;

const CONTROL_FLOW = new Set(["If", "Loop", "Scan"]);

/**
 * Ops onnxruntime's CPU provider has no int8 kernel for (it runs them as DQ → float op → Q). Quantizing them buys
 * no speed; it only adds their output's rounding error (measured: the ViT fixture's LayerNorm ReduceMean). Their
 * neighbours still quantize the tensors they need, so the graph stays int8 around them. Listing one in
 * QConfig.opTypes quantizes it anyway.
 */
const NO_INT8_KERNEL = new Set(["ReduceMean", "HardSigmoid", "HardSwish", "BatchNormalization", "InstanceNormalization", "LayerNormalization"]);

/** Ops that bring their own int8 kernel whatever their neighbours: always quantized (their inputs get a Q). */
const ANCHORS = new Set(["Conv", "ConvTranspose", "MatMul", "Gemm"]);

/**
 * Any other op is quantized only when something quantized feeds it (a marked input, a quantized producer, or a
 * graph input). Quantizing an op that sits among float ops buys no int8 kernel and only adds rounding error; this
 * is what keeps decomposed LayerNorm pieces (ReduceMean → Add(eps) → Sqrt → Div → Mul(γ) → Add(β)) in float, where
 * quantizing the variance and ε destroys accuracy.
 */
function fedByQuantized(node: NodeProto, ctx: QuantizerContext, graphInputs: ReadonlySet<string>): boolean {
  return node.input.some((i) => {
    if (!i || ctx.isConstant(i)) return false;
    if (ctx.marks.activations.has(i) || graphInputs.has(i)) return true;
    const p = ctx.producerOf(i);
    return p !== undefined && ctx.marks.nodes.has(p);
  });
}

/**
 * Runs the op quantizers over the top-level graph (in order, so producers are annotated before consumers), then
 * again with the nodes `readOnlyByFloat` finds kept in float (annotation is deterministic, and marks are shared
 * between nodes, so a second pass is simpler than unmarking).
 */
export function annotateGraph(graph: GraphProto, config: ResolvedQConfig): Annotations {
  const first = annotateOnce(graph, config, new Set());
  const demoted = readOnlyByFloat(graph, first);
  return demoted.size ? annotateOnce(graph, config, demoted) : first;
}

const READ_BY_FLOAT = "its output is read only by float ops: no int8 op reads its Q, which could only add rounding error";

/**
 * Non-anchor quantized nodes whose outputs only float ops read (directly, or through other such nodes). Their
 * output Q is a second rounding of values their quantized inputs already carry, and nothing int8 reads it. In a
 * DenseNet each Concat feeds a float BatchNorm and the next Concat: quantizing the chain re-rounds the early
 * features at every ever-wider range (the fixture densenet: 0.60 pp of top-1 lost, 0.10 pp without; the ViT's
 * residual Adds feeding LayerNorms likewise: logits SQNR 31.9 → 36.2 dB). Data-movement ops go too (their Q
 * shares the input's scale: no change). Kept: graph outputs, Relus folded into a Q the producer's output had anyway
 * (their Q replaces it, finer). A Relu folded into a Gemm/MatMul (no output Q of its own) goes like any other node.
 */
function readOnlyByFloat(graph: GraphProto, marks: Annotations): Set<NodeProto> {
  const consumers = consumerMap(graph);
  const outputs = new Set(graph.output.map((o) => o.name));
  const folded = new Set(marks.folds.filter((f) => f.replacesQ).map((f) => f.node));
  const demoted = new Set<NodeProto>();
  const quantized = (n: NodeProto) => marks.nodes.has(n) && !demoted.has(n);
  // Reverse order: a node's consumers are decided before it.
  for (let i = graph.node.length - 1; i >= 0; i--) {
    const node = graph.node[i]!;
    if (!marks.nodes.has(node) || ANCHORS.has(node.opType) || folded.has(node)) continue;
    const outs = node.output.filter((o) => o !== "");
    if (outs.some((o) => outputs.has(o) || (consumers.get(o) ?? []).some(quantized))) continue;
    demoted.add(node);
  }
  return demoted;
}

function annotateOnce(graph: GraphProto, config: ResolvedQConfig, demoted: ReadonlySet<NodeProto>): Annotations {
  const marks = new Annotations();
  const ctx = new QuantizerContext(graph, config, marks);
  const graphInputs = new Set(graph.input.map((i) => i.name));
  for (const node of graph.node) {
    let reason = skipReason(node, config) ?? (demoted.has(node) ? READ_BY_FLOAT : undefined);
    if (!reason && registry[node.opType] && !ANCHORS.has(node.opType) && !fedByQuantized(node, ctx, graphInputs))
      reason = "fed only by float ops: quantizing it alone adds error without an int8 kernel";
    if (reason) {
      marks.float.push({ node, reason });
      continue;
    }
    ctx.begin();
    const declined = (registry[node.opType] ?? fallback)(node, ctx);
    if (declined) marks.float.push({ node, reason: declined });
    else marks.nodes.set(node, ctx.end());
  }
  return marks;
}

function skipReason(node: NodeProto, config: ResolvedQConfig): string | undefined {
  if (node.domain !== "" && node.domain !== "ai.onnx") return `custom-domain op ${node.domain}.${node.opType}`;
  if (CONTROL_FLOW.has(node.opType)) return "control flow: its bodies are quantized inside it (static: MatMul/Gemm with calibrated Q/DQ, Conv weight-only, LSTM dynamic; docs/subgraphs.md)";
  if (config.opTypes && !config.opTypes.includes(node.opType)) return "op type not in QConfig.opTypes";
  if (!config.opTypes && NO_INT8_KERNEL.has(node.opType))
    return `onnxruntime has no int8 ${node.opType} kernel: quantizing it adds error without speed (list it in QConfig.opTypes to force)`;
  if (config.include && !config.include.some((s) => matchesSelector(node, s))) return "not selected by QConfig.include";
  if (config.exclude.some((s) => matchesSelector(node, s))) return "excluded by QConfig.exclude";
  return undefined;
}
