// Graph editing helpers: who produces and consumes each value, fresh names, inserting/removing/replacing nodes,
// topological order, initializer and constant lookup. Subgraphs (If/Loop/Scan bodies) count: a node whose body
// reads an outer value is a consumer of it, so rewrites never orphan a value a subgraph still uses.
import { create } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType as AttrType, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from "onnx-buf";
import { TensorProtoSchema } from "onnx-buf";
import { DataType, isIntegerType } from "./dtype";
import { OnnxError } from "./errors";
import { isExternal } from "./external";
import { getAttribute } from "./proto";
import { makeTensor, readTensor } from "./tensor";

export const nodeLabel = (n: NodeProto): string => `node "${n.name || n.output[0] || "(unnamed)"}" (${n.opType})`;

/** The subgraphs held in a node's attributes (If: then/else, Loop/Scan: body). */
export function subgraphs(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.g) out.push(a.g);
    out.push(...a.graphs);
  }
  return out;
}

/** Calls fn on the graph and every nested subgraph, outermost first. */
export function forEachGraph(graph: GraphProto, fn: (g: GraphProto, depth: number) => void, depth = 0): void {
  fn(graph, depth);
  for (const n of graph.node) for (const g of subgraphs(n)) forEachGraph(g, fn, depth + 1);
}

/** A graph and the graphs around it, innermost first: where a body looks up the names it reads from outside. */
export interface Scope {
  graph: GraphProto;
  parent?: Scope;
}

/**
 * What `find` gives for `name` in the innermost graph of `scope` that has it, with that graph: a body reads an
 * enclosing graph's value unless it takes or computes `name` itself (exporters keep a body's weights as main-graph
 * initializers).
 */
export function lookUpInScope<T>(scope: Scope, name: string, find: (g: GraphProto, name: string) => T | undefined): { value: T; owner: GraphProto } | undefined {
  const value = find(scope.graph, name);
  if (value !== undefined) return { value, owner: scope.graph };
  if (scope.graph.input.some((v) => v.name === name) || scope.graph.node.some((n) => n.output.includes(name))) return undefined;
  return scope.parent ? lookUpInScope(scope.parent, name, find) : undefined;
}

/** Every node of `graph` and of its bodies at any depth, each after the node holding its body, with its scope. */
export function scopedNodes(graph: GraphProto): { node: NodeProto; scope: Scope }[] {
  const out: { node: NodeProto; scope: Scope }[] = [];
  const visit = (scope: Scope) => {
    for (const node of scope.graph.node) {
      out.push({ node, scope });
      for (const body of subgraphs(node)) visit({ graph: body, parent: scope });
    }
  };
  visit({ graph });
  return out;
}

/** How many node inputs and graph outputs read `name` in `graph` and every body in it (an inner graph's own value of
 *  the same name counted too: an overcount, never an undercount). */
export function readersAnywhere(graph: GraphProto, name: string): number {
  let n = 0;
  forEachGraph(graph, (g) => {
    n += g.output.filter((o) => o.name === name).length;
    for (const node of g.node) for (const i of node.input) if (i === name) n++;
  });
  return n;
}

/** Names a subgraph reads from enclosing scopes (used but not defined inside it). */
export function outerScopeInputs(graph: GraphProto): Set<string> {
  const defined = new Set<string>([...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name)]);
  for (const n of graph.node) for (const o of n.output) defined.add(o);
  const used = new Set<string>();
  for (const n of graph.node) {
    for (const i of n.input) if (i && !defined.has(i)) used.add(i);
    for (const g of subgraphs(n)) for (const i of outerScopeInputs(g)) if (!defined.has(i)) used.add(i);
  }
  for (const o of graph.output) if (!defined.has(o.name)) used.add(o.name);
  return used;
}

/** Every value a node reads: its explicit inputs plus outer values its subgraphs read. Optional ("") skipped. */
export function nodeInputs(node: NodeProto): string[] {
  const names = node.input.filter((i) => i !== "");
  for (const g of subgraphs(node)) for (const i of outerScopeInputs(g)) if (!names.includes(i)) names.push(i);
  return names;
}

/** Ops that only move or reshape data: what one reads reaches what it writes value for value. */
export const SHAPE_ONLY_OPS: ReadonlySet<string> = new Set(["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"]);

/**
 * Walks back from `tensor` through data movement to the producer that decides: `decide(p)` gives a result, null (p
 * ends the walk with none) or undefined (p decides nothing: the walk goes on through its first input where `passes(p)`,
 * by default where p is data movement, SHAPE_ONLY_OPS). A chain longer than 16 nodes is not followed.
 */
export function behindMovement<T>(
  producerOf: (tensor: string) => NodeProto | undefined,
  tensor: string,
  decide: (p: NodeProto) => T | null | undefined,
  passes: (p: NodeProto) => boolean = (p) => SHAPE_ONLY_OPS.has(p.opType),
): T | undefined {
  let t = tensor;
  for (let depth = 0; depth < 16; depth++) {
    const p = producerOf(t);
    if (!p) return undefined;
    const decided = decide(p);
    if (decided !== undefined) return decided ?? undefined;
    if (!passes(p)) return undefined;
    t = p.input[0] ?? "";
  }
  return undefined;
}

export function producers(graph: GraphProto): Map<string, NodeProto> {
  const m = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o) m.set(o, n);
  return m;
}

/**
 * The logits behind `tensor`, where a Softmax or LogSoftmax makes it, directly or through data movement
 * (SHAPE_ONLY_OPS) and float Casts: the tensor that Softmax reads. A Softmax onnxruntime inlined (Exp(x − ReduceMax
 * x) / ReduceSum of it, as its float16 → float32 conversion writes a float16 model's Softmax) counts, its x the
 * logits. `made` is producers(graph).
 */
export function logitsBehind(made: ReadonlyMap<string, NodeProto>, tensor: string): string | undefined {
  const softmax = (p: NodeProto) => (p.opType === "Softmax" || p.opType === "LogSoftmax" ? p.input[0] : inlinedSoftmax(made, p));
  return behindMovement((t) => made.get(t), tensor, softmax, floatMovement);
}

const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16]);
const floatCast = (n: NodeProto) => n.opType === "Cast" && FLOAT_TYPES.has(Number(getAttribute(n, "to")?.i ?? -1));
const floatMovement = (n: NodeProto) => SHAPE_ONLY_OPS.has(n.opType) || floatCast(n);

/** x where `div` is Exp(x − ReduceMax(x)) / ReduceSum(that Exp): a Softmax written out. */
function inlinedSoftmax(made: ReadonlyMap<string, NodeProto>, div: NodeProto): string | undefined {
  if (div.opType !== "Div" || div.domain) return undefined;
  const [exp, sum] = [made.get(div.input[0] ?? ""), made.get(div.input[1] ?? "")];
  if (exp?.opType !== "Exp" || sum?.opType !== "ReduceSum" || sum.input[0] !== exp.output[0]) return undefined;
  const sub = made.get(exp.input[0] ?? "");
  const max = sub?.opType === "Sub" ? made.get(sub.input[1] ?? "") : undefined;
  return max?.opType === "ReduceMax" && max.input[0] === sub!.input[0] ? sub!.input[0] : undefined;
}

/**
 * The graph's outputs in order, each one a Softmax/LogSoftmax makes (logitsBehind) replaced by the logits that
 * Softmax reads: what a comparison with the float model measures, as a saturated probability vector hides most of the
 * error in its logits and turns the rest into all-or-nothing flips (docs/mixed-precision.md, docs/lowbit.md §3).
 */
export function logitsOrOutputs(graph: GraphProto): string[] {
  const made = producers(graph);
  return graph.output.map((o) => logitsBehind(made, o.name) ?? o.name);
}

/** Ops whose output is a boolean decided by comparing values: a mask built from them flips where two values tie. */
const COMPARISONS: ReadonlySet<string> = new Set(["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor"]);

/**
 * The values behind `tensor` where a comparison masks them, directly or through data movement (SHAPE_ONLY_OPS) and
 * float Casts: x of `x · Cast(c)` (either order) or of `Where(c, x, k)` / `Where(c, k, x)`, `c` a comparison's
 * boolean (COMPARISONS, through Casts and data movement) and `k` a constant (an initializer or a Constant node's).
 * A detector's peak mask is one: M-LSD's "scores" is `sigmoid · (sigmoid == MaxPool(sigmoid))`, the heatmap kept at
 * its local maxima, 0 elsewhere. Compared as it is, the mask's flips between neighbours that nearly tie outweigh
 * every other error (mlsd-512-large's "scores" read 0.1 dB with every activation at 8 bits while 100 % of its
 * thresholded pixels agreed), so each measured choice was a draw; the heatmap behind it carries the error that
 * moves the peaks. `made` is producers(graph).
 */
export function unmaskedBehind(made: ReadonlyMap<string, NodeProto>, tensor: string): string | undefined {
  const producerOf = (t: string) => made.get(t);
  const comparison = (p: NodeProto) => (COMPARISONS.has(p.opType) && !p.domain ? true : undefined);
  // Mul takes no booleans: a comparison's side reaches it through a Cast.
  const boolean = (t: string) => behindMovement(producerOf, t, comparison, (p) => SHAPE_ONLY_OPS.has(p.opType) || p.opType === "Cast") === true;
  const constant = (t: string) => !made.has(t) || made.get(t)!.opType === "Constant";
  const mask = (p: NodeProto): string | null | undefined => {
    if (p.domain) return null;
    if (p.opType === "Mul" && p.input.length === 2) {
      const [a, b] = [p.input[0]!, p.input[1]!];
      if (boolean(b) && !boolean(a)) return a;
      if (boolean(a) && !boolean(b)) return b;
      return null;
    }
    if (p.opType === "Where" && p.input.length === 3 && boolean(p.input[0]!)) {
      const [x, y] = [p.input[1]!, p.input[2]!];
      if (constant(y) && !constant(x)) return x;
      if (constant(x) && !constant(y)) return y;
      return null;
    }
    return undefined;
  };
  return behindMovement(producerOf, tensor, mask, floatMovement);
}

/**
 * What a measurement's line says of the outputs it compared where `logits` of them were a final Softmax's logits
 * and `unmasked` of them the values behind a comparison's mask (unmaskedBehind): counts, absent or 0 for none.
 */
export function onCompared(judged: { logits?: number; unmasked?: number } | undefined): string {
  const [logits, unmasked] = [judged?.logits ?? 0, judged?.unmasked ?? 0];
  const parts = [
    logits ? (logits === 1 ? "the Softmax output on its logits" : `${logits} Softmax outputs on their logits`) : "",
    unmasked ? (unmasked === 1 ? "the masked output before its mask" : `${unmasked} masked outputs before their masks`) : "",
  ].filter(Boolean);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

export function consumers(graph: GraphProto): Map<string, NodeProto[]> {
  const m = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const i of nodeInputs(n)) {
      const list = m.get(i);
      if (list) list.push(n);
      else m.set(i, [n]);
    }
  }
  return m;
}

/** Every name a node of the graph or of its bodies reads, and the graph's outputs. */
export function readNames(graph: GraphProto): Set<string> {
  const names = new Set(graph.output.map((o) => o.name));
  forEachGraph(graph, (g) => {
    for (const n of g.node) for (const i of n.input) names.add(i);
  });
  return names;
}

/**
 * The names of the initializers, in the graph and its bodies, that nothing reads (readNames) and no graph input
 * declares (an old IR's weights are inputs too: taken out, one would become an input to feed).
 */
export function unreadInitializers(graph: GraphProto): Set<string> {
  const kept = readNames(graph);
  forEachGraph(graph, (g) => {
    for (const v of g.input) kept.add(v.name);
  });
  const unread = new Set<string>();
  forEachGraph(graph, (g) => {
    for (const t of g.initializer) if (!kept.has(t.name)) unread.add(t.name);
  });
  return unread;
}

/**
 * Removes, from the graph and its bodies, the initializers named in `candidates` that nothing reads (readNames: a
 * body may read an outer one).
 */
export function dropUnreadInitializers(graph: GraphProto, candidates: ReadonlySet<string>): void {
  const read = readNames(graph);
  forEachGraph(graph, (g) => {
    g.initializer = g.initializer.filter((t) => !candidates.has(t.name) || read.has(t.name));
  });
}

/** All names used in the graph and its subgraphs: values, initializers, nodes. */
export function usedNames(graph: GraphProto): Set<string> {
  const s = new Set<string>();
  forEachGraph(graph, (g) => {
    for (const v of [...g.input, ...g.output, ...g.valueInfo]) s.add(v.name);
    for (const t of g.initializer) s.add(t.name);
    for (const n of g.node) {
      if (n.name) s.add(n.name);
      for (const x of [...n.input, ...n.output]) if (x) s.add(x);
    }
  });
  return s;
}

/**
 * A name not yet used in the graph: `base`, else `base_1`, `base_2`, ... Pass `taken` (from usedNames) when
 * making many names, to avoid rescanning; the new name is added to it.
 */
export function uniqueName(graph: GraphProto, base: string, taken: Set<string> = usedNames(graph)): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

/** Inserts nodes before `before` (or at the end). Order is fixed up by topologicalSort when needed. */
export function addNodes(graph: GraphProto, nodes: NodeProto[], before?: NodeProto): void {
  const at = before ? graph.node.indexOf(before) : -1;
  if (at < 0) graph.node.push(...nodes);
  else graph.node.splice(at, 0, ...nodes);
}

export function removeNodes(graph: GraphProto, nodes: Iterable<NodeProto>): void {
  const drop = new Set(nodes);
  graph.node = graph.node.filter((n) => !drop.has(n));
}

/** Puts `replacement` where `old` was. */
export function replaceNode(graph: GraphProto, old: NodeProto, replacement: NodeProto[]): void {
  const at = graph.node.indexOf(old);
  if (at < 0) throw new OnnxError(`${nodeLabel(old)} is not in graph "${graph.name}"`);
  graph.node.splice(at, 1, ...replacement);
}

/**
 * Makes every reader of `from` read `to` instead (node inputs in this graph and its subgraphs, graph outputs),
 * except nodes for which `skip` returns true (typically the node that computes `to` from `from`).
 */
export function replaceUses(graph: GraphProto, from: string, to: string, skip?: (n: NodeProto) => boolean): void {
  forEachGraph(graph, (g, depth) => {
    // A subgraph that defines its own `from` shadows ours: leave it alone.
    if (depth > 0 && (g.input.some((v) => v.name === from) || g.node.some((n) => n.output.includes(from)))) return;
    for (const n of g.node) {
      if (skip?.(n)) continue;
      n.input = n.input.map((i) => (i === from ? to : i));
    }
    if (depth === 0) for (const o of g.output) if (o.name === from) o.name = to;
  });
}

/**
 * Sorts graph.node so that every node comes after the producers of what it reads (stable: nodes already in order
 * keep their order). Throws naming a node on a cycle. Subgraph bodies are left as they are.
 */
export function topologicalSort(graph: GraphProto): void {
  const prod = producers(graph);
  const indeg = new Map<NodeProto, number>();
  const readers = consumers(graph);
  for (const n of graph.node) {
    // In-degree counts producer nodes, not values: a node reading two outputs of one producer
    // (DynamicQuantizeLinear → MatMulInteger, Split → Add) is released once when that producer is placed.
    const from = new Set<NodeProto>();
    for (const i of nodeInputs(n)) {
      const p = prod.get(i);
      if (p === n) throw new OnnxError(`${nodeLabel(n)} reads its own output: the graph has a cycle`);
      if (p) from.add(p);
    }
    indeg.set(n, from.size);
  }
  const order = new Map(graph.node.map((n, i) => [n, i]));
  const ready = graph.node.filter((n) => indeg.get(n) === 0);
  const out: NodeProto[] = [];
  while (ready.length) {
    ready.sort((a, b) => order.get(a)! - order.get(b)!);
    const n = ready.shift()!;
    out.push(n);
    const seen = new Set<NodeProto>();
    for (const o of n.output) {
      for (const c of readers.get(o) ?? []) {
        if (c === n || seen.has(c)) continue;
        seen.add(c);
        const k = indeg.get(c)! - 1;
        indeg.set(c, k);
        if (k === 0) ready.push(c);
      }
    }
  }
  if (out.length !== graph.node.length) {
    const stuck = graph.node.find((n) => !out.includes(n))!;
    throw new OnnxError(`the graph "${graph.name}" has a cycle through ${nodeLabel(stuck)}`);
  }
  graph.node = out;
}

/**
 * Checks that every value a node reads is defined (graph input, initializer, some node's output or, for
 * subgraphs, an enclosing scope) and that nothing is defined twice. Throws naming the node and value. Order is
 * not checked here (topologicalSort finds cycles).
 */
export function checkGraph(graph: GraphProto, outer: ReadonlySet<string> = new Set()): void {
  const defined = new Set<string>(outer);
  for (const v of graph.input) defined.add(v.name);
  for (const t of graph.initializer) defined.add(t.name);
  const produced = new Set<string>();
  for (const n of graph.node) {
    for (const o of n.output) {
      if (!o) continue;
      if (produced.has(o) || (defined.has(o) && !outer.has(o))) {
        throw new OnnxError(`${nodeLabel(n)} writes "${o}", which is already defined elsewhere in the graph`);
      }
      produced.add(o);
    }
  }
  const scope = new Set([...defined, ...produced]);
  for (const n of graph.node) {
    for (const i of n.input) {
      if (i !== "" && !scope.has(i)) {
        throw new OnnxError(`${nodeLabel(n)} reads "${i}", which no node, graph input or initializer provides`);
      }
    }
    for (const g of subgraphs(n)) checkGraph(g, scope);
  }
  for (const o of graph.output) {
    if (!scope.has(o.name)) throw new OnnxError(`graph output "${o.name}" is not computed by any node of graph "${graph.name}"`);
  }
}

export function getInitializer(graph: GraphProto, name: string): TensorProto | undefined {
  return graph.initializer.find((t) => t.name === name);
}

export function initializerMap(graph: GraphProto): Map<string, TensorProto> {
  return new Map(graph.initializer.map((t) => [t.name, t]));
}

/** The tensor a Constant node holds, whatever attribute form it uses (value, value_float(s), value_int(s)). */
export function constantNodeTensor(node: NodeProto): TensorProto | undefined {
  const name = node.output[0] ?? "";
  const a = node.attribute[0];
  if (node.opType !== "Constant" || (node.domain !== "" && node.domain !== "ai.onnx") || !a) return undefined;
  switch (a.name) {
    case "value": {
      if (!a.t) return undefined;
      // A new message over the same data: create() hands a message back as it is, and naming it would rename the
      // Constant node's own tensor in the file. Its fields without $typeName, so that create() fills the defaults a
      // spread leaves out (they live on the message's prototype).
      const { $typeName: _, ...fields } = a.t;
      return create(TensorProtoSchema, { ...fields, name });
    }
    case "value_float":
      return makeTensor(name, DataType.FLOAT, [], [a.f]);
    case "value_floats":
      return makeTensor(name, DataType.FLOAT, [a.floats.length], a.floats);
    case "value_int":
      return makeTensor(name, DataType.INT64, [], [a.i]);
    case "value_ints":
      return makeTensor(name, DataType.INT64, [a.ints.length], a.ints);
    default:
      return undefined; // sparse_value, value_string(s): not weights
  }
}

/** A constant tensor by value name: an initializer or the output of a Constant node. */
export function constantValue(graph: GraphProto, name: string): TensorProto | undefined {
  const init = getInitializer(graph, name);
  if (init) return init;
  const n = graph.node.find((x) => x.opType === "Constant" && x.output[0] === name);
  return n ? constantNodeTensor(n) : undefined;
}

/**
 * Turns Constant nodes into initializers (in this graph only; subgraph constants stay local), so weights
 * exported as Constant ops can be quantized like any initializer. Returns how many were moved.
 */
export function constantsToInitializers(graph: GraphProto): number {
  const moved: NodeProto[] = [];
  for (const n of graph.node) {
    const t = n.opType === "Constant" && getAttribute(n, "value")?.type !== AttrType.SPARSE_TENSOR ? constantNodeTensor(n) : undefined;
    if (!t) continue;
    graph.initializer.push(t);
    moved.push(n);
  }
  removeNodes(graph, moved);
  return moved.length;
}

/** Every TensorProto that can hold weights: initializers and tensor attributes, in all (sub)graphs. */
export function allTensors(proto: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  const visit = (g: GraphProto) => {
    out.push(...g.initializer);
    for (const n of g.node) {
      for (const a of n.attribute) {
        if (a.t) out.push(a.t);
        out.push(...a.tensors);
        if (a.g) visit(a.g);
        for (const sg of a.graphs) visit(sg);
      }
    }
  };
  if (proto.graph) visit(proto.graph);
  return out;
}

/**
 * The values an integer input is tested against: the one-element integer constants beside it in the main graph's
 * Equal nodes (silero-vad's `Equal(sr, 16000)` picks its 16 kHz branch), in node order, each once. Generated data
 * takes them so that it runs a branch the model was written for.
 */
export function comparedConstants(graph: GraphProto, input: string): number[] {
  const found: number[] = [];
  for (const n of graph.node) {
    if (n.opType !== "Equal" || n.input.length !== 2 || !n.input.includes(input)) continue;
    const other = n.input[0] === input ? n.input[1]! : n.input[0]!;
    const t = constantValue(graph, other);
    if (!t || !isIntegerType(t.dataType) || isExternal(t)) continue;
    const { data } = readTensor(t);
    if (data.length !== 1) continue;
    const v = Number(data[0]);
    if (Number.isSafeInteger(v) && !found.includes(v)) found.push(v);
  }
  return found;
}

/** Each initializer's element count, by name (how many weights a node quantizes). */
export function initializerSizes(graph: GraphProto): Map<string, number> {
  return new Map(graph.initializer.map((t) => [t.name, t.dims.reduce((a, d) => a * Number(d), 1)]));
}
