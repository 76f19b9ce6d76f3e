// What a graph nested in If/Loop/Scan sees: its own values and initializers, then those of every enclosing graph,
// innermost first. Exporters keep weights as main-graph initializers read from inside the bodies (silero-vad: all
// 18 Convs of each branch), so a quantizer working on a body looks weights up through this chain, and stores
// their quantized form next to the float original (one copy however many bodies read it).
import type { GraphProto, TensorProto } from "onnx-buf";
import { subgraphs } from "../onnx/graph";
import { inferElemTypes } from "./graph";

/** Ops whose weights are quantized inside If/Loop/Scan bodies (dynamically: no calibration reaches body tensors). */
export const BODY_QUANTIZED_OPS: ReadonlySet<string> = new Set(["Conv", "MatMul", "Gemm", "LSTM"]);

export class GraphScope {
  /** Element types of every value visible here (enclosing graphs' values included). */
  readonly types: Map<string, number>;
  private readonly own: Map<string, TensorProto>;
  /** Values this graph defines that are not initializers (inputs, node outputs): they shadow outer names. */
  private readonly computed: Set<string>;

  constructor(
    readonly graph: GraphProto,
    readonly parent?: GraphScope,
  ) {
    this.types = inferElemTypes(graph, parent?.types);
    this.own = new Map(graph.initializer.map((t) => [t.name, t]));
    this.computed = new Set([...graph.input.map((v) => v.name), ...graph.node.flatMap((n) => n.output)]);
  }

  get depth(): number {
    return this.parent ? this.parent.depth + 1 : 0;
  }

  /** The initializer `name` refers to from this graph, and the graph holding it; undefined for a computed value. */
  initializer(name: string): { tensor: TensorProto; owner: GraphProto } | undefined {
    const t = this.own.get(name);
    if (t) return { tensor: t, owner: this.graph };
    if (this.computed.has(name)) return undefined;
    return this.parent?.initializer(name);
  }

  /** Scopes of the bodies of this graph's nodes (one level down), in node order. */
  bodies(): GraphScope[] {
    return this.graph.node.flatMap((n) => subgraphs(n).map((g) => new GraphScope(g, this)));
  }
}

/** Whether any node of `graph` holds a subgraph. */
export function hasSubgraphs(graph: GraphProto): boolean {
  return graph.node.some((n) => subgraphs(n).length > 0);
}
