// The registry (a plain record op type → quantizer, with a fallback for everything else) and the annotation
// driver that runs it over a graph, honouring the config's op-type and include/exclude selections.
import type { GraphProto } from "onnx-buf";
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
  Sigmoid: op.unary,
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

/** Runs the op quantizers over the top-level graph (in order, so producers are annotated before consumers). */
export function annotateGraph(graph: GraphProto, config: ResolvedQConfig): Annotations {
  const marks = new Annotations();
  const ctx = new QuantizerContext(graph, config, marks);
  for (const node of graph.node) {
    const reason = skipReason(node, config);
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

function skipReason(node: GraphProto["node"][number], config: ResolvedQConfig): string | undefined {
  if (node.domain !== "" && node.domain !== "ai.onnx") return `custom-domain op ${node.domain}.${node.opType}`;
  if (CONTROL_FLOW.has(node.opType)) return "control flow: its subgraphs are left in float and run unchanged";
  if (config.opTypes && !config.opTypes.includes(node.opType)) return "op type not in QConfig.opTypes";
  if (config.include && !config.include.some((s) => matchesSelector(node, s))) return "not selected by QConfig.include";
  if (config.exclude.some((s) => matchesSelector(node, s))) return "excluded by QConfig.exclude";
  return undefined;
}
