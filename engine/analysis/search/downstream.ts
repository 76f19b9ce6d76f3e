// Runs of a quantize-one configuration cut down to what its quantization changed. With one node quantized and every
// other float, the model computes the float model's values up to that node: those activations are computed once (one
// float run fetching every configuration's cut), and each configuration runs only the nodes downstream of what its
// conversion changed, fed them. On a recogniser whose sensitive nodes sit late (the sequence head's MatMuls) most of
// a ranking's runs shrink to a small part of the network; an early Conv still runs nearly all of it.
import { create, equals } from "@bufbuild/protobuf";
import { AttributeProtoSchema, TensorProtoSchema, ValueInfoProtoSchema, type NodeProto, type TensorProto, type ValueInfoProto } from "onnx-buf";
import type { Feeds, Tensor } from "../../data/feeds";
import { DataType } from "../../onnx/dtype";
import { subgraphs } from "../../onnx/graph";
import type { Model } from "../../onnx/model";
import { makeValueInfo } from "../../onnx/proto";
import type { ConvertCache, PreparedModel } from "../../quant/index";
import { createSession } from "../../runtime/session";
import type { OutputTensor } from "../../runtime/tensors";
import { convertMixed, type MixConfig } from "./mixed-model";
import type { RunOptions } from "./outputs";
import type { ConvertRunSeconds } from "./types";

/** The part of a converted model that differs from the float one: a model of only those nodes, and what it reads. */
export interface DownstreamPart {
  model: Model;
  /** Tensors the part reads that the float model computes (graph inputs included), in first-use order. */
  inputs: string[];
  /** Each input's name in the float model (conversion renames a tensor it puts a QuantizeLinear on). */
  floatNames: Map<string, string>;
}

/** Bytes of float activations (on all the ranking data together) above which none are cached: 1 GiB. */
const MAX_CACHED_BYTES = 2 ** 30;

/**
 * `model` (a conversion of `float`, which it may be cut in place) reduced to the nodes whose values can differ from
 * the float model's: a node is unchanged when the float model has a node of its name with the same op and
 * attributes reading the same values (a graph input, an initializer equal to the float one, an unchanged node's
 * output; conversion may rename an output it quantizes). The part's inputs are the unchanged tensors its nodes read;
 * its outputs `outputs`. `typeOf` gives the element type of an input the float model does not declare (by its float
 * name). Undefined, the model untouched, when nothing changed, when an output is unchanged, when a node holds a
 * subgraph (its outer reads are not plain inputs), or when `canFeed` refuses one of the inputs (by its float name).
 */
export function downstreamPart(
  model: Model,
  float: Model,
  outputs: readonly string[],
  typeOf: (floatName: string) => DataType | undefined = () => undefined,
  canFeed: (floatName: string) => boolean = () => true,
): DownstreamPart | undefined {
  const graph = model.graph;
  if (graph.node.some((n) => subgraphs(n).length > 0)) return undefined;
  const key = (n: NodeProto) => n.name || `\u0000${n.output[0]}`;
  const floatNodes = new Map(float.graph.node.map((n) => [key(n), n]));
  const floatInits = new Map(float.graph.initializer.map((t) => [t.name, t]));
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const graphInputs = new Set(graph.input.map((v) => v.name));
  // Converted tensor → the float tensor it equals.
  const sameAs = new Map<string, string>([["", ""]]);
  for (const i of graphInputs) if (!inits.has(i)) sameAs.set(i, i);
  for (const [name, t] of inits) if (sameTensor(t, floatInits.get(name))) sameAs.set(name, name);
  const sameNode = (n: NodeProto, f: NodeProto | undefined): f is NodeProto =>
    !!f &&
    f.opType === n.opType &&
    f.domain === n.domain &&
    f.input.length === n.input.length &&
    f.output.length === n.output.length &&
    n.input.every((i, k) => sameAs.get(i) === f.input[k]) &&
    f.attribute.length === n.attribute.length &&
    n.attribute.every((a, k) => equals(AttributeProtoSchema, a, f.attribute[k]!));
  // Unchanged nodes, to a fixed point (a converted graph is in topological order, so one pass usually does).
  const changed = new Set<NodeProto>(graph.node);
  for (let grew = true; grew; ) {
    grew = false;
    for (const n of changed) {
      const f = floatNodes.get(key(n));
      if (!sameNode(n, f)) continue;
      changed.delete(n);
      n.output.forEach((o, k) => sameAs.set(o, f.output[k]!));
      grew = true;
    }
  }
  if (changed.size === 0 || outputs.some((o) => sameAs.has(o))) return undefined;
  const inputs: string[] = [];
  const used = new Set<string>();
  for (const n of changed) {
    for (const i of n.input) {
      if (!i || used.has(i)) continue;
      used.add(i);
      if (sameAs.has(i) && !(inits.has(i) && !graphInputs.has(i))) inputs.push(i);
    }
  }
  const floatNames = new Map(inputs.map((i) => [i, sameAs.get(i)!]));
  if (![...floatNames.values()].every(canFeed)) return undefined; // before the model is cut: the caller runs it whole
  const declared = new Map<string, ValueInfoProto>();
  for (const v of [...float.graph.valueInfo, ...float.graph.input, ...float.graph.output]) declared.set(v.name, v);
  const typed = (t: string, floatName: string, fallback: DataType | undefined) => {
    const d = declared.get(floatName);
    if (d) return create(ValueInfoProtoSchema, { ...d, name: t });
    const type = typeOf(floatName) ?? fallback;
    return type === undefined ? create(ValueInfoProtoSchema, { name: t }) : makeValueInfo(t, type);
  };
  const made = new Set([...changed].flatMap((n) => n.output));
  graph.node = graph.node.filter((n) => changed.has(n));
  graph.initializer = graph.initializer.filter((t) => used.has(t.name) && !floatNames.has(t.name));
  graph.input = inputs.map((i) => typed(i, floatNames.get(i)!, undefined));
  // The compared tensors are float (search/outputs).
  graph.output = outputs.map((o) => graph.output.find((v) => v.name === o) ?? typed(o, o, DataType.FLOAT));
  graph.valueInfo = graph.valueInfo.filter((v) => made.has(v.name));
  return { model, inputs, floatNames };
}

function sameTensor(a: TensorProto, b: TensorProto | undefined): boolean {
  if (!b) return false;
  if (a === b) return true;
  if (a.rawData.length && b.rawData.length) {
    if (a.dataType !== b.dataType || a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
    return Buffer.from(a.rawData.buffer, a.rawData.byteOffset, a.rawData.byteLength).equals(Buffer.from(b.rawData.buffer, b.rawData.byteOffset, b.rawData.byteLength)) && a.dataLocation === b.dataLocation && a.externalData.length === 0;
  }
  return equals(TensorProtoSchema, a, b);
}

/**
 * The float model's values of `tensors` on every batch of `data` (one run per batch), kept with their own types; the
 * graph inputs among them are the data's own. Undefined when they would take more than MAX_CACHED_BYTES: the caller
 * then runs whole models.
 */
export async function floatActivations(float: Model, data: readonly Feeds[], tensors: readonly string[], options: RunOptions = {}): Promise<Feeds[] | undefined> {
  const inputs = new Set(float.graph.input.map((v) => v.name));
  const fetch = tensors.filter((t) => !inputs.has(t));
  const declared = new Map<string, ValueInfoProto>();
  for (const v of [...float.graph.valueInfo, ...float.graph.output]) declared.set(v.name, v);
  const copy = float.withOutputs(fetch.map((t) => declared.get(t) ?? create(ValueInfoProtoSchema, { name: t })));
  if (fetch.length === 0) return data.map((b) => pick(b, tensors));
  const out: Feeds[] = [];
  const s = await createSession(copy, { ep: options.ep, threads: options.threads, memPattern: false });
  try {
    let bytes = 0;
    for (const [b, feeds] of data.entries()) {
      const r = await s.run(feeds, fetch);
      const got: Record<string, Tensor> = { ...pick(feeds, tensors) };
      for (const t of fetch) {
        const v = r[t]!;
        got[t] = v;
        bytes += (v.data as ArrayLike<number> & { byteLength?: number }).byteLength ?? 0;
      }
      if (bytes * (data.length / (b + 1)) > MAX_CACHED_BYTES) return undefined;
      out.push(got);
    }
    return out;
  } finally {
    await s.dispose();
  }
}

const pick = (feeds: Feeds, names: readonly string[]): Feeds => Object.fromEntries(names.filter((n) => n in feeds).map((n) => [n, feeds[n]!]));

/** Cuts a converted configuration's model to its changed part, with the feeds that part reads on every batch. */
export interface DownstreamRuns {
  cut(model: Model): { model: Model; data: Feeds[] } | undefined;
  /** How many float tensors are cached (per batch), and their bytes on all batches. */
  readonly tensors: number;
  readonly bytes: number;
}

/**
 * Converts each of `configs` (quantize-one configurations) once to learn what its part reads, then computes all of
 * that on `data` in one float run. Undefined when no configuration has a part, or the activations would not fit
 * (floatActivations). Conversions add to `shared.seconds.convert`, the float run to `.run`.
 */
export async function downstreamRuns(
  prepared: PreparedModel,
  data: readonly Feeds[],
  configs: readonly MixConfig[],
  outputs: readonly string[],
  options: RunOptions & { signal?: AbortSignal } = {},
  shared: { cache?: ConvertCache; seconds?: ConvertRunSeconds } = {},
): Promise<DownstreamRuns | undefined> {
  const needed = new Set<string>();
  const t0 = performance.now();
  for (const config of configs) {
    options.signal?.throwIfAborted();
    const { model, summary } = await convertMixed(prepared, config, shared.cache);
    if (summary.quantized.length === 0) continue;
    for (const name of downstreamPart(model, prepared.model, outputs)?.floatNames.values() ?? []) needed.add(name);
  }
  const t1 = performance.now();
  const cached = needed.size ? await floatActivations(prepared.model, data, [...needed], options) : undefined;
  if (shared.seconds) {
    shared.seconds.convert += (t1 - t0) / 1000;
    shared.seconds.run += (performance.now() - t1) / 1000;
  }
  if (!cached) return undefined;
  const graphInputs = new Set(prepared.model.graph.input.map((v) => v.name));
  return {
    tensors: [...needed].filter((t) => !graphInputs.has(t)).length,
    bytes: cached.reduce((a, b) => a + Object.entries(b).reduce((c, [t, v]) => c + (graphInputs.has(t) ? 0 : (v.data as Float32Array).byteLength), 0), 0),
    cut(model) {
      const part = downstreamPart(model, prepared.model, outputs, (t) => (cached[0]![t] as OutputTensor | undefined)?.dtype, (t) => t in cached[0]!);
      if (!part) return undefined;
      return { model: part.model, data: cached.map((b) => Object.fromEntries([...part.floatNames].map(([name, t]) => [name, b[t]!]))) };
    },
  };
}
