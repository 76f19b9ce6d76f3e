// Builds the calibration copy of a model: the observed tensors become graph outputs (the model's own outputs are
// dropped, so nothing else is held). For min/max each tensor is reduced in the graph (ReduceMin, ReduceMax and a
// ReduceSum that turns NaN/Inf into a detectable non-finite scalar), so only three scalars per tensor come back;
// for histogram methods the tensor itself comes back. Everything is cast to float32 first (float16/double/bf16
// activations, and the binding cannot return some types). The node forms used (reduce over all axes with no axes
// attribute or input, keepdims=0; Cast with `to`) mean the same thing in every opset from 7 to 21+.

import { attr, makeNode, makeValueInfo, valueInfoTensor } from "../onnx/proto";
import { DataType } from "../onnx/dtype";
import { makeTensor } from "../onnx/tensor";
import { subgraphs, uniqueName, usedNames } from "../onnx/graph";
import { modelOpset } from "../onnx/shape-infer";
import type { GraphProto } from "onnx-buf";
import type { Model } from "../onnx/model";

/** Graph outputs that carry one observed tensor. */
export interface ObservedOutputs {
  tensor: string;
  /** min/max (and histogram methods with `stats`): the reduced scalars; a non-finite sum flags NaN/Inf. */
  min?: string;
  max?: string;
  sum?: string;
  /** histogram methods (and the min/max fallback for non-finite data): the tensor as float32. */
  raw?: string;
  /** With `stats`: min, max and sum of the tensor are at [statsAt, statsAt + 3) of the one stats output. */
  statsAt?: number;
}

/** Where each requested tensor lives: the main graph, only inside an If/Loop/Scan body, or nowhere. */
export function locateTensors(
  graph: GraphProto,
  tensors: readonly string[],
): { main: string[]; inSubgraph: string[]; unknown: string[] } {
  const mainNames = new Set<string>([...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name)]);
  for (const n of graph.node) for (const o of n.output) if (o) mainNames.add(o);
  const subNames = new Set<string>();
  const visit = (g: GraphProto) => {
    for (const n of g.node) {
      for (const o of n.output) subNames.add(o);
      for (const s of subgraphs(n)) visit(s);
    }
  };
  for (const n of graph.node) for (const s of subgraphs(n)) visit(s);
  const main: string[] = [];
  const inSubgraph: string[] = [];
  const unknown: string[] = [];
  for (const t of new Set(tensors)) {
    if (mainNames.has(t)) main.push(t);
    else if (subNames.has(t)) inSubgraph.push(t);
    else unknown.push(t);
  }
  return { main, inSubgraph, unknown };
}

/** Ops whose outputs have the element type of their first input (enough to skip most Casts in CNNs and
 * transformers, where intermediate value_info is usually absent). */
const SAME_TYPE_AS_INPUT0 = new Set([
  "Abs", "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Conv", "ConvTranspose", "Div", "Dropout",
  "Elu", "Erf", "Exp", "Expand", "Flatten", "Gather", "Gelu", "Gemm", "GlobalAveragePool", "GlobalMaxPool",
  "HardSigmoid", "HardSwish", "Identity", "InstanceNormalization", "LayerNormalization", "LeakyRelu", "Log",
  "LRN", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mul", "Neg", "Pad", "Pow", "PRelu", "Reciprocal",
  "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape", "Resize", "Selu", "Sigmoid", "Slice",
  "Softmax", "Softplus", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh", "Tile", "Transpose", "Unsqueeze",
]);

/**
 * Element types known from value infos, graph inputs/outputs, initializers and Constant nodes, propagated through
 * type-preserving ops in graph order. Tensors left unknown get a Cast to float32 (a copy per batch).
 */
export function knownTypes(graph: GraphProto): Map<string, number> {
  const types = new Map<string, number>();
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) {
    const t = valueInfoTensor(v);
    if (t) types.set(v.name, t.elemType);
  }
  for (const t of graph.initializer) types.set(t.name, t.dataType);
  for (const n of graph.node) {
    if (n.opType === "Constant" && n.domain === "") {
      const t = n.attribute.find((a) => a.name === "value")?.t;
      if (t && n.output[0]) types.set(n.output[0], t.dataType);
      continue;
    }
    const t0 = n.input[0] ? types.get(n.input[0]) : undefined;
    if (n.domain !== "" || t0 === undefined || !SAME_TYPE_AS_INPUT0.has(n.opType)) continue;
    // Outputs beyond the first are indices/masks for some of these ops (MaxPool, Dropout, BatchNormalization
    // training outputs); Split is the exception with all outputs alike.
    const outs = n.opType === "Split" ? n.output : n.output.slice(0, 1);
    for (const o of outs) if (o && !types.has(o)) types.set(o, t0);
  }
  return types;
}

export interface AugmentOptions {
  /**
   * With whole tensors (reduce false): also return each tensor's ReduceMin/ReduceMax/ReduceSum, so the histogram
   * can skip its own min/max pass over the data (onnxruntime's vectorized reductions are far cheaper than a JS loop).
   * They come back concatenated in ONE output: each fetched output costs the binding a tensor object per run,
   * which for small batches outweighs the reduction itself.
   */
  stats?: boolean;
  /**
   * Also return the element count of every observed tensor (Size), summed by the caller into what one run's
   * activations weigh: with reduce, nothing comes back whole, and the run planner still needs it to bound a run.
   * They come back as one int64 vector.
   */
  sizes?: boolean;
  /**
   * Whole tensors returned as every step-th value of the flattened tensor (tensor → odd step > 1): a strided sample
   * for the histogram of a tensor too large to fetch whole (Calibrator's sampleStep). Its `stats` stay those of the
   * whole tensor. Needs opset 10 (Slice with steps): ignored below.
   */
  sample?: ReadonlyMap<string, number>;
}

/**
 * A copy of `model` whose outputs are the observations of `tensors` (all in the main graph), min/max reduced
 * in the graph when `reduce` is true, the float32 tensors otherwise (with their reductions too when `stats`).
 */
export function augmentModel(
  model: Model,
  tensors: readonly string[],
  reduce: boolean,
  options: AugmentOptions = {},
): { model: Model; outputs: ObservedOutputs[]; stats?: string; sizes?: string } {
  // Sharing the model's initializers (only nodes, outputs and new initializers are added): a calibration session's
  // model holds no second copy of the weights.
  const copy = model.cloneSharingInitializers();
  const graph = copy.graph;
  const taken = usedNames(graph);
  const types = knownTypes(graph);
  const fresh = (base: string) => {
    const n = uniqueName(graph, base, taken);
    taken.add(n);
    return n;
  };
  const nodes = [];
  const outputs: ObservedOutputs[] = [];
  const statParts: string[] = [];
  const sizeParts: string[] = [];
  let shapeName: string | undefined;
  // Reshape's target [1] (an initializer, shared by every Reshape; Reshape takes its shape as an input since opset 5).
  const shape1 = () => {
    if (!shapeName) {
      shapeName = fresh("__calib_shape_1");
      graph.initializer.push(makeTensor(shapeName, DataType.INT64, [1], [1n]));
    }
    return shapeName;
  };
  const int64 = (base: string, values: bigint[]) => {
    const name = fresh(base);
    graph.initializer.push(makeTensor(name, DataType.INT64, [values.length], values));
    return name;
  };
  // Slice's inputs shared by every sampled tensor: flatten, then from 0 to the end along axis 0.
  let sliceInputs: { flat: string; starts: string; ends: string; axes: string } | undefined;
  const sampled = (src: string, t: string, step: number) => {
    sliceInputs ??= { flat: int64("__calib_flat", [-1n]), starts: int64("__calib_start", [0n]), ends: int64("__calib_end", [2n ** 62n]), axes: int64("__calib_axis", [0n]) };
    const flat = fresh(`${t}__calib_flat`);
    const out = fresh(`${t}__calib_sample`);
    nodes.push(makeNode("Reshape", [src, sliceInputs.flat], [flat], { name: flat }));
    nodes.push(makeNode("Slice", [flat, sliceInputs.starts, sliceInputs.ends, sliceInputs.axes, int64(`${t}__calib_step`, [BigInt(step)])], [out], { name: out }));
    return out;
  };
  const canSample = modelOpset(copy.proto) >= 10;
  const graphOutputs = [];
  for (const t of tensors) {
    let src = t;
    if (types.get(t) !== DataType.FLOAT) {
      src = fresh(`${t}__calib_f32`);
      nodes.push(makeNode("Cast", [t], [src], { name: fresh(`${t}__calib_cast`), attributes: [attr.int("to", DataType.FLOAT)] }));
    }
    const o: ObservedOutputs = { tensor: t };
    if (!reduce) {
      const step = canSample ? (options.sample?.get(t) ?? 1) : 1;
      // A graph output may not be a graph input or an initializer by the same name: go through Identity.
      const raw = step > 1 ? sampled(src, t, step) : src === t ? fresh(`${t}__calib_raw`) : src;
      if (step === 1 && raw !== src) nodes.push(makeNode("Identity", [src], [raw], { name: fresh(`${t}__calib_id`) }));
      o.raw = raw;
      graphOutputs.push(makeValueInfo(raw, DataType.FLOAT));
    }
    if (reduce) {
      [o.min, o.max, o.sum] = [fresh(`${t}__calib_min`), fresh(`${t}__calib_max`), fresh(`${t}__calib_sum`)];
      for (const [op, out] of [["ReduceMin", o.min], ["ReduceMax", o.max], ["ReduceSum", o.sum]] as const) {
        nodes.push(makeNode(op, [src], [out], { name: fresh(`${t}__calib_${op}`), attributes: [attr.int("keepdims", 0)] }));
        graphOutputs.push(makeValueInfo(out, DataType.FLOAT, []));
      }
      if (options.sizes) {
        const size = fresh(`${t}__calib_size`);
        const part = fresh(`${t}__calib_size_1d`);
        nodes.push(makeNode("Size", [t], [size], { name: size }));
        nodes.push(makeNode("Reshape", [size, shape1()], [part], { name: part }));
        sizeParts.push(part);
      }
    } else if (options.stats) {
      o.statsAt = statParts.length;
      for (const op of ["ReduceMin", "ReduceMax", "ReduceSum"]) {
        const scalar = fresh(`${t}__calib_${op}`);
        const part = fresh(`${t}__calib_${op}_1d`);
        nodes.push(makeNode(op, [src], [scalar], { name: scalar, attributes: [attr.int("keepdims", 0)] }));
        nodes.push(makeNode("Reshape", [scalar, shape1()], [part], { name: part }));
        statParts.push(part);
      }
    }
    outputs.push(o);
  }
  let stats: string | undefined;
  if (statParts.length) {
    stats = fresh("__calib_stats");
    nodes.push(makeNode("Concat", statParts, [stats], { name: stats, attributes: [attr.int("axis", 0)] }));
    graphOutputs.push(makeValueInfo(stats, DataType.FLOAT, [statParts.length]));
  }
  let sizes: string | undefined;
  if (sizeParts.length) {
    sizes = fresh("__calib_sizes");
    nodes.push(makeNode("Concat", sizeParts, [sizes], { name: sizes, attributes: [attr.int("axis", 0)] }));
    graphOutputs.push(makeValueInfo(sizes, DataType.INT64, [sizeParts.length]));
  }
  graph.node.push(...nodes);
  graph.output = graphOutputs;
  return { model: copy, outputs, ...(stats ? { stats } : {}), ...(sizes ? { sizes } : {}) };
}
