// What a graph nested in If/Loop/Scan sees: its own values and initializers, then those of every enclosing graph,
// innermost first. Exporters keep weights as main-graph initializers read from inside the bodies (silero-vad: all
// 18 Convs of each branch), so a quantizer working on a body looks weights up through this chain, and stores
// their quantized form next to the float original (one copy however many bodies read it).
import type { GraphProto, TensorProto } from "onnx-buf";
import { outerScopeInputs, subgraphs } from "../onnx/graph";
import { makeValueInfo } from "../onnx/proto";
import type { Annotations } from "./annotate";
import { inferElemTypes } from "./graph";
import { annotateGraph } from "./registry";
import type { ResolvedQConfig } from "./types";

/** Ops whose weights are quantized inside If/Loop/Scan bodies in dynamic mode (and where calibration did not reach). */
export const BODY_QUANTIZED_OPS: ReadonlySet<string> = new Set(["Conv", "MatMul", "Gemm", "LSTM"]);

/**
 * Ops that a statically quantized body still quantizes the dynamic way unless QConfig.opTypes names them. LSTM has
 * no Q/DQ form (DynamicQuantizeLSTM). Conv: Q/DQ Convs in silero-vad's branches measured worse than int8 weights
 * behind a DequantizeLinear with float activations (docs/subgraphs.md, "Static Q/DQ inside bodies").
 */
export const BODY_DYNAMIC_BY_DEFAULT: ReadonlySet<string> = new Set(["LSTM", "Conv"]);

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

/**
 * The op types a static body leaves to the dynamic pass under `config`: those of BODY_DYNAMIC_BY_DEFAULT it does
 * not name, and GRU/RNN (no quantized kernel either way: the dynamic pass says so in the summary).
 */
export function bodyDynamicOps(config: ResolvedQConfig): ReadonlySet<string> {
  const named = config.opTypes ?? [];
  return new Set([...[...BODY_DYNAMIC_BY_DEFAULT].filter((op) => op === "LSTM" || !named.includes(op)), "GRU", "RNN"]);
}

/**
 * The op quantizers' marks for one body: they see the body as a graph whose initializers include the enclosing
 * graphs' weights it reads, and whose value types include the outer values it reads; ops left to the dynamic pass
 * are excluded. Marks point at the body's own nodes.
 */
export function annotateBody(scope: GraphScope, config: ResolvedQConfig): Annotations {
  const g = scope.graph;
  const initializer = [...g.initializer];
  const valueInfo = [...g.valueInfo];
  for (const name of outerScopeInputs(g)) {
    const init = scope.initializer(name);
    if (init) initializer.push(init.tensor);
    else {
      const type = scope.types.get(name);
      if (type !== undefined) valueInfo.push(makeValueInfo(name, type));
    }
  }
  const dynamic = bodyDynamicOps(config);
  const view: GraphProto = { ...g, initializer, valueInfo };
  return annotateGraph(view, dynamic.size ? { ...config, exclude: [...config.exclude, (n) => dynamic.has(n.opType)] } : config);
}

/**
 * Tensors inside If/Loop/Scan bodies (and outer values they read) that a static conversion quantizes, at any depth:
 * what calibration must observe besides the main graph's (prepare()'s list).
 */
export function bodyObservations(graph: GraphProto, config: ResolvedQConfig): string[] {
  if (!hasSubgraphs(graph)) return [];
  const out = new Set<string>();
  const visit = (scope: GraphScope) => {
    for (const body of scope.bodies()) {
      const marks = annotateBody(body, config);
      for (const t of marks.observed((n) => body.initializer(n) !== undefined)) out.add(t);
      visit(body);
    }
  };
  visit(new GraphScope(graph));
  return [...out];
}
