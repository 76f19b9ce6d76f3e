// The graph view's data: what the extension host extracts from a model (src/editor/graphModel.ts) and sends to the
// webview (media/graph/main.ts) as JSON. Plain data, no functions: it crosses the webview boundary.
import type { QuantStateEntry } from "../../kernel/display-types";

/** What a node's tensors were quantized to; "float" when nothing feeding it is quantized. */
export type QuantKind = "int8" | "int16" | "int4" | "fp4" | "float";

export const QUANT_KINDS: readonly QuantKind[] = ["int8", "int16", "int4", "fp4", "float"];

/** A tensor as the details pane and the hover show it. */
export interface TensorInfo {
  name: string;
  /**
   * `float[1,3,224,224]` from value_info, graph inputs/outputs, initializers or Constant values; `~float[1,16,?,?]`
   * when the file declares no shape and engine/onnx/shape-infer.ts inferred it (`?`: a dimension it cannot tell);
   * "?" if unknown.
   */
  type: string;
  /** Where its data comes from: another node or a graph input ("edge"), a weight ("initializer" / "constant"). */
  kind: "edge" | "initializer" | "constant";
  /** Element count and bytes, for initializers and constants. */
  elements?: number;
  bytes?: number;
}

export interface GraphNodeData {
  /** Unique in the whole model: "n12", "n3/then_branch/n0". */
  id: string;
  kind: "node" | "input" | "output";
  /** The node's name (or its first output's when it has none); for inputs/outputs, the tensor's. */
  name: string;
  /** Op type with its domain when not the default (`com.microsoft.QGemm`); "Input"/"Output" for graph values. */
  op: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Attribute name and a short text of its value (subgraph attributes are listed in `subgraphs`). */
  attributes: Array<{ name: string; value: string }>;
  doc?: string;
  /** Names of the QuantizeLinear/DequantizeLinear/Constant nodes folded into this one. */
  folded?: string[];
  /** The node's quantization state (quantized models only) and its tensors' scales and zero points. */
  state?: QuantKind;
  quant?: Array<QuantStateEntry & { /** One line: "int8 per-channel · scale 0.0021–0.013 · zp 0". */ text: string }>;
  /** If/Loop/Scan bodies, drawn collapsed until the user expands the node. */
  subgraphs?: Array<{ attribute: string; graph: GraphData }>;
}

export interface GraphEdgeData {
  from: string;
  to: string;
  tensor: string;
  /** The tensor's type and shape when known (a leading `~`: inferred, not declared; see TensorInfo.type). */
  type?: string;
}

export interface GraphData {
  name: string;
  nodes: GraphNodeData[];
  edges: GraphEdgeData[];
}

/** What the editor page's script gets (in the page's #ptq-data element). */
export interface GraphPageData {
  graph: GraphData;
  /** True when the model has any quantized tensor: the overlay and legend are drawn. */
  quantized: boolean;
  /** Node names already kept in float by the model's override file. */
  excluded: string[];
  /** The view shown first: the graph for models under the size limit, else the summary. */
  initialView: "summary" | "graph";
  /** Set when the model has too many nodes to draw (its graph is then left out of the page): how many. */
  omittedNodes?: number;
  /** Node names whose activations the override file makes 16-bit. */
  sixteenBit?: string[];
}

/** A node's analysis from the kernel (analyze() in a notebook): its worst tensor's SQNR and its rank. */
export interface NodeAnalysis {
  node: string;
  /** The lowest SQNR among the node's tensors, and that tensor. */
  sqnrDb: number;
  /** The SQNR as the views write it ("12.3 dB", "exact"). */
  text: string;
  tensor: string;
  /** 1 = the largest error among the analysed nodes of this graph. */
  rank: number;
}

/** What the extension sends the page when the kernel holds an analysis of this model (message "analysis"). Lists,
 *  not records keyed by model strings: a node named "__proto__" is data, never a key. */
export interface GraphAnalysis {
  nodes: NodeAnalysis[];
  /** SQNR below this is flagged in the views (analyze's warnBelowDb). */
  warnBelowDb: number;
}
