// The graph view's data from a model (pure, for tests): one node per ONNX node plus the graph's inputs and outputs,
// edges labelled with their tensor's type where the model declares it, else with the shape engine/onnx/shape-infer.ts
// infers (marked `~`: most exported models carry no value_info). Folded away so a quantized model looks like
// its float twin: QuantizeLinear/DequantizeLinear pairs (an edge runs from the tensor's real producer to its
// consumer, the consumer lists the folded Q/DQ names and is coloured by what they quantize to), the low-bit files'
// weight decodes (Cast/Sub/Mul/… from integer codes, quantStateModel's weightDecode: the node reads the codes) and Constant nodes
// (their value becomes a weight of the node that reads it, as an initializer would). If/Loop/Scan bodies are kept
// as nested GraphData, drawn collapsed until expanded.
import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto } from "onnx-buf";
import type { QuantStateEntry } from "../../kernel/display-types";
import type { GraphData, GraphEdgeData, GraphNodeData, QuantKind, TensorInfo } from "../../media/graph/types";
import { elementCount, elemTypeName, tensorBytes, typeText } from "../../engine/onnx-text/types";
import { inferModelShapes, type InferredTensor, type ShapeInference } from "../../engine/onnx/shape-infer";
import { describeEntry, quantStateOfModel, weightDecodes } from "../views/quantStateModel";

const Q = "QuantizeLinear";
const DQ = "DequantizeLinear";
const QDQ_DOMAINS = new Set(["", "ai.onnx", "com.microsoft"]);

const isQdq = (n: NodeProto) => (n.opType === Q || n.opType === DQ) && QDQ_DOMAINS.has(n.domain);
const isConstant = (n: NodeProto) => n.opType === "Constant" && (n.domain === "" || n.domain === "ai.onnx") && n.input.length === 0;

/** The name a node is shown and addressed by (the Quantization State view and exclude lists use the same). */
export function nodeDisplayName(n: NodeProto): string {
  return n.name || n.output[0] || n.opType;
}

const opText = (n: NodeProto) => (n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${n.opType}` : n.opType);
const tensorType = (t: TensorProto) => `${elemTypeName(t.dataType)}[${t.dims.join(",")}]`;

const MAX_LIST = 16;
const MAX_TEXT = 200;

function clip(s: string, max = MAX_TEXT): string {
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
}

function list(xs: readonly unknown[]): string {
  const shown = xs.slice(0, MAX_LIST).map(String).join(", ");
  return `[${shown}${xs.length > MAX_LIST ? `, … ${xs.length} values` : ""}]`;
}

/** A short text of an attribute's value for the details pane (long strings and lists are cut, with their length). */
export function attributeText(a: AttributeProto): string {
  const dec = new TextDecoder();
  if (a.refAttrName) return `@${a.refAttrName}`;
  switch (a.type) {
    case 1: return String(Number(a.f.toPrecision(7)));
    case 2: return a.i.toString();
    case 3: return JSON.stringify(clip(dec.decode(a.s)));
    case 4: return a.t ? tensorType(a.t) : "tensor";
    case 6: return list(a.floats.map((f) => Number(f.toPrecision(7))));
    case 7: return list(a.ints);
    case 8: return list(a.strings.map((s) => JSON.stringify(clip(dec.decode(s), 40))));
    case 9: return list(a.tensors.map(tensorType));
    case 13: return typeText(a.tp);
    default: return "?";
  }
}

const subgraphsOf = (a: AttributeProto): GraphProto[] => (a.g ? [a.g] : a.graphs);

/** A Constant node's value as a tensor-like record (value_float(s)/value_int(s) included), or undefined. */
function constantInfo(n: NodeProto, name: string): TensorInfo {
  const a = n.attribute[0];
  if (a?.t) return { name, type: tensorType(a.t), kind: "constant", elements: elementCount(a.t), bytes: tensorBytes(a.t) };
  const scalar = (type: string, count: number, bytesEach: number, dims: string): TensorInfo =>
    ({ name, type: `${type}${dims}`, kind: "constant", elements: count, bytes: count * bytesEach });
  switch (a?.name) {
    case "value_float": return scalar("float", 1, 4, "[]");
    case "value_int": return scalar("int64", 1, 8, "[]");
    case "value_floats": return scalar("float", a.floats.length, 4, `[${a.floats.length}]`);
    case "value_ints": return scalar("int64", a.ints.length, 8, `[${a.ints.length}]`);
    default: return { name, type: "?", kind: "constant" };
  }
}

/** The dominant quantized type of a node's tensors: the narrowest wins (int4 weights with int8 activations: int4). */
export function quantKindOf(entries: readonly QuantStateEntry[], op?: string): QuantKind {
  if (op === "MatMulNBits") return "int4";
  const types = new Set(entries.filter((e) => e.quantized).map((e) => e.type ?? ""));
  if (types.has("float4e2m1")) return "fp4";
  if (types.has("int4") || types.has("uint4") || types.has("int2") || types.has("uint2")) return "int4";
  if (types.has("int8") || types.has("uint8")) return "int8";
  if (types.has("int16") || types.has("uint16")) return "int16";
  // float8 and other quantized types the legend has no colour of its own for: shown as 8-bit.
  return types.size > 0 ? "int8" : "float";
}

/** An edge; its type only when known (the data goes through JSON, which has no undefined). */
function edge(from: string, to: string, tensor: string, type: string | undefined): GraphEdgeData {
  return type && type !== "?" ? { from, to, tensor, type } : { from, to, tensor };
}

interface Ctx {
  quant: Map<string, QuantStateEntry[]> | undefined;
  /** Types of every tensor visible so far (outer scopes included: a body reads outer tensors). */
  types: Map<string, string>;
  /** Shapes inferred for this graph's tensors (engine/onnx/shape-infer.ts), used where the file declares none. */
  inferred: ShapeInference | undefined;
}

/** An inferred type as the edges show it: `~` marks it as computed here, not declared in the file. */
export function inferredTypeText(t: InferredTensor): string | undefined {
  if (t.elemType === undefined || !t.shape) return undefined;
  return `~${elemTypeName(t.elemType)}[${t.shape.map((d) => d ?? "?").join(",")}]`;
}

function extractGraph(g: GraphProto, prefix: string, ctx: Ctx): GraphData {
  const types = new Map(ctx.types);
  for (const v of [...g.input, ...g.output, ...g.valueInfo]) {
    const t = typeText(v.type);
    if (t !== "?" || !types.has(v.name)) types.set(v.name, t);
  }
  // A tensor the file gives no shape (no value_info, or a type without dims) gets the inferred one.
  for (const [name, t] of ctx.inferred?.tensors ?? []) {
    const text = types.get(name) ?? "?";
    const inferred = text.includes("[") ? undefined : inferredTypeText(t);
    if (inferred) types.set(name, inferred);
  }
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  for (const t of g.initializer) types.set(t.name, tensorType(t));

  const producer = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output) if (o) producer.set(o, n);
  const constants = new Map<string, TensorInfo>();
  for (const n of g.node) if (isConstant(n) && n.output[0]) {
    const info = constantInfo(n, n.output[0]);
    constants.set(n.output[0], info);
    types.set(n.output[0], info.type);
  }

  // Follows a tensor back through DequantizeLinear and QuantizeLinear to what was quantized; `folded` collects the
  // Q/DQ (and Constant) nodes passed through.
  const decodes = weightDecodes(g);
  const source = (t: string, folded: Set<string>): string => {
    const decode = decodes.get(t);
    if (decode) {
      for (const n of decode.nodes) folded.add(nodeDisplayName(n));
      return decode.codes.name;
    }
    for (let guard = 0; guard < 4; guard++) {
      const p = producer.get(t);
      if (!p || !isQdq(p) || !p.input[0]) break;
      folded.add(nodeDisplayName(p));
      t = p.input[0];
    }
    const c = producer.get(t);
    if (c && isConstant(c)) folded.add(nodeDisplayName(c));
    return t;
  };

  const nodes: GraphNodeData[] = [];
  const edges: GraphEdgeData[] = [];
  const idOfProducer = new Map<NodeProto, string>();
  const decodeNodes = new Set([...decodes.values()].flatMap((d) => d.nodes));
  const visible = g.node.filter((n) => !isQdq(n) && !isConstant(n) && !decodeNodes.has(n));
  visible.forEach((n, i) => idOfProducer.set(n, `${prefix}n${i}`));

  const inputIds = new Map<string, string>();
  const inputNode = (name: string, outer: boolean): string => {
    let id = inputIds.get(name);
    if (id) return id;
    id = `${prefix}in${inputIds.size}`;
    inputIds.set(name, id);
    nodes.push({ id, kind: "input", name, op: outer ? "Outer value" : "Input", inputs: [], outputs: [{ name, type: types.get(name) ?? "?", kind: "edge" }], attributes: [] });
    return id;
  };
  for (const v of g.input) if (!inits.has(v.name)) inputNode(v.name, false);

  /** The id of the node that produces `t` as the picture shows it (after folding), or undefined for a weight. */
  const from = (t: string): string | undefined => {
    if (inits.has(t) || constants.has(t)) return undefined;
    const p = producer.get(t);
    const id = p && idOfProducer.get(p);
    // A tensor no node here makes: a graph input, or (in a body) a value of the enclosing graph.
    return id ?? inputNode(t, prefix !== "" && !g.input.some((v) => v.name === t));
  };

  const tensor = (name: string): TensorInfo => {
    const init = inits.get(name);
    if (init) return { name, type: tensorType(init), kind: "initializer", elements: elementCount(init), bytes: tensorBytes(init) };
    return constants.get(name) ?? { name, type: types.get(name) ?? "?", kind: "edge" };
  };

  for (const n of visible) {
    const id = idOfProducer.get(n)!;
    const name = nodeDisplayName(n);
    const folded = new Set<string>();
    const inputs: TensorInfo[] = [];
    for (const raw of n.input) {
      if (!raw) continue;
      const t = source(raw, folded);
      inputs.push(tensor(t));
      const f = from(t);
      if (f) edges.push(edge(f, id, t, types.get(t)));
    }
    const subgraphs = n.attribute.flatMap((a) => subgraphsOf(a).map((sg, j) => ({
      attribute: a.graphs.length > 1 ? `${a.name}[${j}]` : a.name,
      graph: extractGraph(sg, `${id}/${a.name}${a.graphs.length > 1 ? j : ""}/`, { ...ctx, types, inferred: ctx.inferred?.bodies.get(sg) }),
    })));
    const quant = ctx.quant?.get(name);
    nodes.push({
      id, kind: "node", name, op: opText(n),
      inputs,
      outputs: n.output.filter((o) => o).map((o) => ({ name: o, type: types.get(o) ?? "?", kind: "edge" as const })),
      attributes: n.attribute.filter((a) => subgraphsOf(a).length === 0).map((a) => ({ name: a.name, value: attributeText(a) })),
      ...(n.docString ? { doc: clip(n.docString, 2000) } : {}),
      ...(folded.size ? { folded: [...folded] } : {}),
      ...(ctx.quant ? { state: quantKindOf(quant ?? [], n.opType), quant: (quant ?? []).map((e) => ({ ...e, text: describeEntry(e) })) } : {}),
      ...(subgraphs.length ? { subgraphs } : {}),
    });
  }

  g.output.forEach((v, i) => {
    const id = `${prefix}out${i}`;
    const t = source(v.name, new Set());
    nodes.push({ id, kind: "output", name: v.name, op: "Output", inputs: [{ name: t, type: types.get(v.name) ?? "?", kind: "edge" }], outputs: [], attributes: [] });
    const f = from(t);
    if (f) edges.push(edge(f, id, t, types.get(v.name) ?? types.get(t)));
  });
  return { name: g.name, nodes, edges };
}

export interface ModelGraph {
  graph: GraphData;
  /** True when any tensor of the model is quantized (Q/DQ, or an integer op with integer weights). */
  quantized: boolean;
}

/** The graph view's data for a model; Q/DQ pairs are folded and, for a quantized model, nodes carry their state. */
export function modelGraph(m: ModelProto): ModelGraph {
  const entries = quantStateOfModel(m);
  const quantized = entries.some((e) => e.quantized);
  const quant = quantized ? new Map<string, QuantStateEntry[]>() : undefined;
  if (quant) for (const e of entries) quant.set(e.node, [...(quant.get(e.node) ?? []), e]);
  const graph = m.graph ? extractGraph(m.graph, "", { quant, types: new Map(), inferred: inferModelShapes(m) }) : { name: "", nodes: [], edges: [] };
  return { graph, quantized };
}


/** Every drawn node (kind "node", bodies included) by the name the views and override files use. */
export function nodesByName(g: GraphData, into = new Map<string, GraphNodeData>()): Map<string, GraphNodeData> {
  for (const n of g.nodes) {
    if (n.kind === "node" && !into.has(n.name)) into.set(n.name, n);
    for (const s of n.subgraphs ?? []) nodesByName(s.graph, into);
  }
  return into;
}
