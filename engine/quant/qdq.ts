// The one rewrite pass: from the op quantizers' marks and the calibrated ranges, insert QuantizeLinear /
// DequantizeLinear pairs on activations, store weights and biases quantized behind a DequantizeLinear, fold
// removable Relu/Clip, and report what happened. Placement follows what onnxruntime's CPU QDQ fusions look for.
import { create } from "@bufbuild/protobuf";
import { OperatorSetIdProtoSchema, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from "onnx-buf";
import { DataType, elementCount } from "../onnx/dtype";
import { dropUnreadInitializers, outerScopeInputs, producers, readNames, subgraphs, topologicalSort, uniqueName, usedNames } from "../onnx/graph";
import { attr, makeNode } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import type { Annotations } from "./annotate";
import { ONNX_DTYPE, paramsForWeight, paramsFromRange, qBits, qRange, quantize, quantizeBias, quantizeKernels, type ParamOptions, type QType, type QuantParams } from "./math";
import { affinesOnCodes } from "./affine-codes";
import { integerHardSigmoids } from "./hardsigmoid";
import { bodyDynamicPass, quantizeGraphDynamic, SMALL_CONV_SHARE, smallConvReason, smallestConvs, type DynamicPass, type SmallConvs } from "./dynamic";
import { withinBudget } from "./protect";
import { convsRunInFloat } from "./unfused-weights";
import { annotateBody, bodyDynamicOps, GraphScope, hasSubgraphs } from "./subgraph";
import { emptySummary, type QuantizationSummary, type ResolvedQConfig } from "./types";

type IntArray = ReturnType<typeof quantize>;

export type Ranges = ReadonlyMap<string, { min: number; max: number; reached?: { runs: number; of: number } }>;

export const MS_DOMAIN = "com.microsoft";
/** What the summary's note says when the rewrite falls back to com.microsoft Q/DQ (standard-qdq may replace it). */
export const MS_QDQ_NOTE = "used onnxruntime's com.microsoft Q/DQ";

/** Ops onnxruntime's QDQPropagation moves a DequantizeLinear past (and a QuantizeLinear before). */
const DQ_PROPAGATED: ReadonlySet<string> = new Set(["MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Gather", "Flatten"]);

/**
 * What stays the same when one float model is converted again and again under other configurations (the
 * mixed-precision search converts it once per configuration it measures): each initializer's float values, each
 * weight's parameters per scheme, and its quantized values per parameters. Quantizing the weights was most of a
 * conversion (PP-OCRv3's recogniser: ~0.15 of 0.3 s). Entries are keyed by initializer name, so a cache serves one
 * model only (the first it is used with; another one is refused). What it returns is what the rewriter would have
 * computed: the same functions on the same inputs, so a cached conversion's bytes equal a fresh one's.
 */
export class ConvertCache {
  private owner: object | undefined;
  private readonly floats = new Map<string, Float32Array>();
  private readonly params = new Map<string, QuantParams>();
  private readonly quantized = new Map<string, { p: QuantParams; weight: boolean; data: IntArray }[]>();
  /** Lookups answered from the cache, and computed. */
  hits = 0;
  misses = 0;

  /** Binds the cache to `model` (any object that stands for it) on first use; refuses another one after. */
  bind(model: object): void {
    this.owner ??= model;
    if (this.owner !== model) throw new Error("ConvertCache: this cache belongs to another model's conversions (its entries are keyed by initializer name); make one cache per PreparedModel");
  }

  float(t: TensorProto): Float32Array {
    return this.memo(this.floats, t.name, () => tensorToFloat32(t));
  }

  /** A weight's parameters for a scheme; a copy, since a bias may still widen its scale. */
  weightParams(t: TensorProto, opts: ParamOptions & { axis?: number }, what: () => string): QuantParams {
    const key = `${t.name}\0${opts.type}\0${opts.symmetric}\0${opts.reduceRange}\0${opts.axis}`;
    return { ...this.memo(this.params, key, () => paramsForWeight(this.float(t), t.dims.map(Number), opts, what)) };
  }

  /** `t` quantized with `p` (a weight: each kernel's sum kept); reused while the parameters are the same element for element. */
  quantize(t: TensorProto, p: QuantParams, weight = false): IntArray {
    const seen = this.quantized.get(t.name) ?? [];
    const same = seen.find((e) => e.weight === weight && e.p.type === p.type && e.p.axis === p.axis && equal(e.p.scale, p.scale) && equal(e.p.zeroPoint, p.zeroPoint));
    if (same) {
      this.hits++;
      return same.data;
    }
    this.misses++;
    const data = (weight ? quantizeKernels : quantize)(this.float(t), t.dims.map(Number), p);
    seen.push({ p: { ...p, scale: p.scale.slice(), zeroPoint: p.zeroPoint.slice() }, weight, data });
    this.quantized.set(t.name, seen);
    return data;
  }

  private memo<V>(map: Map<string, V>, key: string, make: () => V): V {
    let v = map.get(key);
    if (v === undefined) {
      this.misses++;
      map.set(key, (v = make()));
    } else {
      this.hits++;
    }
    return v;
  }
}

function equal(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** Without a cache: computed every time. */
const UNCACHED = {
  float: (t: TensorProto) => tensorToFloat32(t),
  weightParams: (t: TensorProto, opts: ParamOptions & { axis?: number }, what: () => string) => paramsForWeight(tensorToFloat32(t), t.dims.map(Number), opts, what),
  quantize: (t: TensorProto, p: QuantParams, weight = false) => (weight ? quantizeKernels : quantize)(tensorToFloat32(t), t.dims.map(Number), p),
};

/** A weight stored quantized (int8 values, scale, zero point): reused by every graph that reads it with these parameters. */
interface StoredWeight {
  p: QuantParams;
  names: [string, string, string];
}

/** What the rewrites of one model's graphs share: names, weights stored once, the dynamic pass for what Q/DQ leaves. */
interface ModelRewrite {
  taken: Set<string>;
  stored: Map<TensorProto, StoredWeight[]>;
  dynamic: DynamicPass;
  /** The dynamic pass's findings (merged into the summary at the end) and why bodies went to it. */
  dynamicSummary: QuantizationSummary;
  unreached: string[];
  /** Bodies quantized from calibration that only some calibration runs reached (TensorRange.reached). */
  thin: { body: string; runs: number; of: number }[];
  /** Op types of nodes in statically quantized bodies that the dynamic pass quantized. */
  leftToDynamic: Set<string>;
}

export class QdqRewriter {
  private readonly params = new Map<string, QuantParams>();
  /** Bias name → whether it got one scale per output channel. */
  private readonly biasPerChannel = new Map<string, boolean>();
  private readonly inits: Map<string, TensorProto>;
  private readonly taken: Set<string>;
  private readonly newInits: TensorProto[] = [];
  /** Each activation DequantizeLinear's output → the float tensor its QuantizeLinear reads. */
  private readonly floatSource = new Map<string, string>();
  /** Outputs of the Relu/Clip nodes foldActivations removed, and the nodes. */
  private readonly folded = new Map<string, NodeProto>();
  readonly summary: QuantizationSummary;
  private qdqDomain = "";
  private readonly shared: ModelRewrite | undefined;
  /** Weights stored quantized so far, by float tensor (shared with the bodies' rewriters). */
  private readonly stored: Map<TensorProto, StoredWeight[]>;
  /**
   * The top level's rewriter: the body Convs left float as the model's smallest. Body Convs are weight-only by default
   * (BODY_DYNAMIC_BY_DEFAULT), so they run in float as in dynamic mode; top-level Convs become QLinearConv and are not
   * candidates here (planSmallestFloat takes those that do not fuse). Ranked before any weight is rewritten, so every
   * float weight counts toward the share.
   */
  private readonly smallConvs: SmallConvs | undefined;
  /** Each constant's DequantizeLinear output → the float constant it stands for (weights, biases). */
  private readonly decodedFrom = new Map<string, string>();
  /** Top-level Convs planSmallestFloat chose to read their float weights again, smallest first, with their sizes. */
  private readonly smallPlan = new Map<NodeProto, number>();

  /** `body`: this rewriter quantizes one If/Loop/Scan body of `model` (seen through `scope`) for its parent's rewrite. */
  constructor(
    private readonly model: ModelProto,
    private readonly marks: Annotations,
    private readonly ranges: Ranges,
    private readonly config: ResolvedQConfig,
    private readonly cache: Pick<ConvertCache, "float" | "weightParams" | "quantize"> = UNCACHED,
    private readonly body?: { scope: GraphScope; shared: ModelRewrite; summary: QuantizationSummary },
  ) {
    const g = this.graph;
    this.inits = new Map(g.initializer.map((t) => [t.name, t]));
    this.taken = body ? body.shared.taken : usedNames(g);
    this.shared = body?.shared;
    this.stored = body ? body.shared.stored : new Map();
    const opset = opsetOf(model);
    this.summary = body ? body.summary : emptySummary(config, "static", opset);
    this.smallConvs = body ? undefined : smallestConvs(new GraphScope(g), { bodiesOnly: true });
  }

  private get graph(): GraphProto {
    return this.body ? this.body.scope.graph : this.model.graph!;
  }

  /** The initializer `name` refers to here (in a body: its own, else an enclosing graph's), and the graph holding it. */
  private lookup(name: string): { tensor: TensorProto; owner: GraphProto } | undefined {
    if (this.body) return this.body.scope.initializer(name);
    const t = this.inits.get(name);
    return t ? { tensor: t, owner: this.graph } : undefined;
  }

  run(): ModelProto {
    const g = this.graph;
    this.chooseDomain();
    this.foldActivations();
    // Weights first: biases may widen a weight's scale before it is quantized.
    for (const [w, m] of this.marks.weights) {
      const t = this.lookup(w)!.tensor;
      const dims = t.dims.map(Number);
      const axis = m.axis !== undefined && m.axis < dims.length && dims.length > 1 ? m.axis : undefined;
      const f = this.config.weightsByTensor?.get(w);
      const p = this.cache.weightParams(t, {
        type: f?.type ?? this.config.weightType,
        symmetric: this.config.weightSymmetric,
        reduceRange: f?.reduceRange ?? this.config.reduceRange,
        axis,
      }, () => weightLabel(g, w));
      this.params.set(w, p);
    }
    const biasNodes: NodeProto[] = [];
    for (const b of this.marks.biases) biasNodes.push(...this.emitBias(b.bias, b.input, b.weight, b.node));
    const front: NodeProto[] = [...biasNodes];
    for (const w of this.marks.weights.keys()) front.push(...this.emitConstant(w, this.params.get(w)!));
    const after = new Map<string, NodeProto[]>();
    for (const name of this.marks.activations.keys()) {
      if (this.marks.weights.has(name)) continue; // a constant already stored as a weight
      const p = this.activationParams(name);
      if (!p) continue;
      if (this.lookup(name)) front.push(...this.emitConstant(name, p));
      else this.emitActivation(name, p, front, after);
    }
    const nodes: NodeProto[] = [...front];
    for (const n of g.node) {
      nodes.push(n);
      for (const o of n.output) nodes.push(...(after.get(o) ?? []));
    }
    g.node = nodes;
    g.initializer.push(...this.newInits);
    this.floatNodesReadFloat();
    this.subgraphFeedsReadFloat();
    for (const r of integerHardSigmoids(g, opsetOf(this.model), (base) => this.name(base))) this.marks.nodes.set(r.node, r.tensors);
    for (const r of affinesOnCodes(g, (base) => this.name(base))) this.marks.nodes.set(r.node, r.tensors);
    if (this.body) return this.finishBody();
    this.planSmallestFloat();
    const shared = this.quantizeBodies();
    this.dropUnusedFloatInitializers();
    topologicalSort(g);
    this.fillSummary();
    if (shared?.thin.length) {
      this.summary.bodyCoverage = shared.thin;
      for (const t of shared.thin) {
        this.summary.warnings.push(
          `${t.body} quantizes activations calibration saw on ${t.runs} of its ${t.of} runs only (a branch the data seldom took): ` +
            `their ranges come from those ${t.runs}; check the quantized model on inputs that take it, or calibrate on more of them`,
        );
      }
    }
    if (shared) {
      const dyn = shared.dynamicSummary;
      this.summary.quantized.push(...dyn.quantized);
      this.summary.float.push(...dyn.float);
      if (dyn.quantized.length) {
        const why = [
          ...(shared.unreached.length ? [`calibration did not reach ${shared.unreached.length} body graph(s) (${shared.unreached.slice(0, 3).map((b) => `"${b}"`).join(", ")})`] : []),
          ...(shared.leftToDynamic.size ? [`${[...shared.leftToDynamic].join(" and ")} inside bodies ${shared.leftToDynamic.size > 1 ? "are" : "is"} quantized dynamically${[...shared.leftToDynamic].some((op) => op !== "LSTM") ? " unless QConfig.opTypes names it" : ""}`] : []),
        ];
        this.summary.warnings.push(
          `${dyn.quantized.length} node(s) inside If/Loop/Scan bodies were quantized dynamically (int8 weights, activations quantized at run time): ${why.join("; ")}`,
        );
      }
    }
    return this.model;
  }

  /**
   * If/Loop/Scan bodies, each after the graph around it: with Q/DQ from calibration (annotated as the top level is,
   * seeing the enclosing graphs' weights) when calibration reached every tensor it needs, else dynamically (int8
   * weights, activations quantized per run), as are the ops bodyDynamicOps leaves to the dynamic pass.
   */
  private quantizeBodies(): ModelRewrite | undefined {
    if (!hasSubgraphs(this.graph)) return this.shared;
    let shared = this.shared;
    if (!shared) {
      const dynamicSummary = emptySummary(this.config, "dynamic", opsetOf(this.model));
      shared = { taken: this.taken, stored: this.stored, dynamic: bodyDynamicPass(this.model, this.config, this.taken, dynamicSummary, this.smallConvs), dynamicSummary, unreached: [], thin: [], leftToDynamic: new Set() };
    }
    const here = new GraphScope(this.graph, this.body?.scope.parent);
    for (const scope of here.bodies()) {
      const marks = annotateBody(scope, this.config);
      if (!reached(marks, this.ranges, this.config, (n) => scope.initializer(n) !== undefined)) {
        shared.unreached.push(scope.graph.name || "(unnamed)");
        quantizeGraphDynamic(scope, shared.dynamic);
        continue;
      }
      const thin = fewestRuns(marks, this.ranges);
      if (thin) shared.thin.push({ body: bodyLabel(this.graph, scope.graph), ...thin });
      new QdqRewriter(this.model, marks, this.ranges, this.config, this.cache, { scope, shared, summary: this.summary }).run();
    }
    return shared;
  }

  /** A body after its Q/DQ: the ops left to the dynamic pass, then its own bodies, then unused initializers go. */
  private finishBody(): ModelProto {
    const { scope, shared } = this.body!;
    const g = this.graph;
    const dynamicOps = bodyDynamicOps(this.config);
    const before = shared.dynamicSummary.quantized.length;
    quantizeGraphDynamic(new GraphScope(g, scope.parent), shared.dynamic, (n) => dynamicOps.has(n.opType) && !this.marks.nodes.has(n));
    for (const n of shared.dynamicSummary.quantized.slice(before)) shared.leftToDynamic.add(n.opType);
    this.quantizeBodies();
    const used = new Set<string>(g.output.map((o) => o.name));
    for (const n of g.node) {
      for (const i of n.input) used.add(i);
      for (const sg of subgraphs(n)) for (const i of outerScopeInputs(sg)) used.add(i);
    }
    g.initializer = g.initializer.filter((t) => used.has(t.name));
    topologicalSort(g);
    this.fillSummary(dynamicOps);
    return this.model;
  }

  /** ai.onnx Q/DQ where the opset allows this config; onnxruntime's com.microsoft Q/DQ (fused alike) otherwise. */
  private chooseDomain(): void {
    const opset = opsetOf(this.model);
    // A 16-bit override counts only on a tensor this graph quantizes: one read only by float nodes (a protected
    // layer's input) gets no Q/DQ, and must not move the file's Q/DQ to com.microsoft.
    const sixteen =
      qBits(this.config.activationType) === 16 ||
      Object.entries(this.config.overrides).some(([name, o]) => o.type !== undefined && qBits(o.type) === 16 && this.marks.activations.has(name));
    const perChannel = this.config.perChannel && [...this.marks.weights.values()].some((m) => m.axis !== undefined);
    const ok = opset >= 21 || (opset >= 13 && !sixteen) || (opset >= 10 && !sixteen && !perChannel && this.marks.biases.length === 0);
    if (ok) return;
    this.qdqDomain = MS_DOMAIN;
    if (!this.model.opsetImport.some((o) => o.domain === MS_DOMAIN)) {
      this.model.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: MS_DOMAIN, version: 1n }));
    }
    const note = `opset ${opset} lacks ${sixteen ? "16-bit" : "per-axis"} QuantizeLinear/DequantizeLinear: ${MS_QDQ_NOTE}, so the model runs in onnxruntime only`;
    if (!this.summary.warnings.includes(note)) this.summary.warnings.push(note); // once, however many bodies
  }

  /** Removes a Relu/Clip when the Q of its output clamps exactly as it does (zero point = qmin). */
  private foldActivations(): void {
    const g = this.graph;
    for (const f of this.marks.folds) {
      const p = this.activationParams(f.output);
      if (!p || p.zeroPoint[0] !== qRange(p.type, false, false)[0]) continue;
      const producer = g.node.find((n) => n.output.includes(f.input));
      if (!producer) continue;
      producer.output = producer.output.map((o) => (o === f.input ? f.output : o));
      g.node = g.node.filter((n) => n !== f.node);
      this.marks.activations.delete(f.input);
      this.marks.nodes.delete(f.node);
      this.summary.foldedActivations.push(f.node.name || f.output);
      this.folded.set(f.output, f.node);
    }
  }

  private activationParams(name: string, depth = 0): QuantParams | undefined {
    const cached = this.params.get(name);
    if (cached) return cached;
    const mark = this.marks.activations.get(name);
    const o = this.config.overrides[name] ?? {};
    let p: QuantParams | undefined;
    const type: QType = o.type ?? this.config.activationType;
    const symmetric = o.symmetric ?? this.config.activationSymmetric;
    // reduce_range is for weights only, as in onnxruntime: the u8×s8 saturation it avoids needs 7-bit weights,
    // while 7-bit activations only lose resolution (bench/int8-speed transformer, U8S8 + reduceRange: output SQNR
    // 8.3 dB with 7-bit activations, 11.2 dB with 8-bit).
    const opts = { type, symmetric, reduceRange: false };
    // A data-movement output shares its source's parameters (so onnxruntime drops the DQ→Q between them), unless an
    // override gives it another type: then it gets its own Q/DQ of that type (a "16-bit" node after a Flatten).
    const shared = o.scale === undefined && mark?.sameAs && depth < 64 && this.marks.activations.has(mark.sameAs) ? this.activationParams(mark.sameAs, depth + 1) : undefined;
    if (o.scale !== undefined) {
      p = { type, scale: Float32Array.of(o.scale), zeroPoint: Int32Array.of(o.zeroPoint ?? 0) };
    } else if (shared && (o.type === undefined || o.type === shared.type)) {
      p = shared;
    } else if (this.lookup(name)) {
      p = this.cache.weightParams(this.lookup(name)!.tensor, opts, () => weightLabel(this.graph, name));
    } else {
      const r = o.range ?? this.rangeOf(name);
      if (!r && this.ranges.size === 0) throw new Error(`tensor "${name}" has no calibration range: run calibrate() with data before convert()`);
      if (!r)
        throw new Error(
          `tensor "${name}": calibration saw no finite value (NaN/Inf activations or a tensor the data never reached); ` +
            `check the calibration data, or keep it in float with QConfig.overrides["${name}"] = { keepFloat: true }`,
        );
      if (!Number.isFinite(r.min) || !Number.isFinite(r.max))
        throw new Error(`tensor "${name}": calibration saw no finite value (NaN/Inf activations); check the calibration data`);
      p = paramsFromRange(r.min, r.max, opts);
    }
    if (p) this.params.set(name, p);
    return p;
  }

  /** A tensor's calibrated range; a data-movement output without one of its own reads its source's. */
  private rangeOf(name: string, depth = 0): ReturnType<Ranges["get"]> {
    const mark = this.marks.activations.get(name);
    const r = mark?.fixedRange ?? this.ranges.get(name);
    return r ?? (mark?.sameAs && depth < 64 ? this.rangeOf(mark.sameAs, depth + 1) : undefined);
  }

  private name(base: string): string {
    return uniqueName(this.graph, base, this.taken);
  }

  private paramTensors(base: string, p: QuantParams, into: TensorProto[] = this.newInits): [string, string] {
    const dims = p.axis === undefined ? [] : [p.scale.length];
    const s = this.name(`${base}_scale`);
    const z = this.name(`${base}_zero_point`);
    into.push(makeTensor(s, DataType.FLOAT, dims, p.scale), makeTensor(z, ONNX_DTYPE[p.type], dims, p.zeroPoint));
    return [s, z];
  }

  private dq(inputs: string[], output: string, axis: number | undefined, label: string): NodeProto {
    const attributes = axis === undefined ? [] : [attr.int("axis", axis)];
    return makeNode("DequantizeLinear", inputs, [output], { name: this.name(`${label}_DequantizeLinear`), domain: this.qdqDomain, attributes });
  }

  /**
   * A constant stored quantized: int initializer + DequantizeLinear; this graph's readers switch to its output. It is
   * stored in the graph holding the float original, once for every graph that reads it with the same parameters.
   */
  private emitConstant(name: string, p: QuantParams): NodeProto[] {
    const { tensor: t, owner } = this.lookup(name)!;
    const dims = t.dims.map(Number);
    const seen = this.stored.get(t) ?? [];
    let stored = seen.find((e) => e.p.type === p.type && e.p.axis === p.axis && equal(e.p.scale, p.scale) && equal(e.p.zeroPoint, p.zeroPoint));
    if (!stored) {
      const into = owner === this.graph ? this.newInits : owner.initializer;
      const q = this.name(`${name}_quantized`);
      into.push(makeTensor(q, ONNX_DTYPE[p.type], dims, this.cache.quantize(t, p, this.marks.weights.has(name))));
      const [s, z] = this.paramTensors(name, p, into);
      stored = { p: { ...p, scale: p.scale.slice(), zeroPoint: p.zeroPoint.slice() }, names: [q, s, z] };
      this.stored.set(t, [...seen, stored]);
    }
    const [q, s, z] = stored.names;
    const out = this.name(`${name}_DequantizeLinear_Output`);
    this.replaceTopLevelUses(name, out);
    this.decodedFrom.set(out, name);
    return [this.dq([q, s, z], out, p.axis, name)];
  }

  private emitBias(bias: string, input: string, weight: string, nodeName: string): NodeProto[] {
    const inP = this.activationParams(input);
    const wP = this.params.get(weight);
    const node = this.graph.node.find((n) => n.name === nodeName && n.input.includes(bias));
    if (!inP || !wP || !node) return [];
    const t = this.lookup(bias)!.tensor;
    const r = quantizeBias(this.cache.float(t), inP.scale[0]!, wP.scale);
    if (r.overflowed.length) {
      wP.scale = r.weightScale;
      this.summary.biasOverflow.push(bias);
    }
    const perChannel = r.scale.length > 1;
    this.biasPerChannel.set(bias, perChannel);
    const q = this.name(`${bias}_quantized`);
    const s = this.name(`${bias}_quantized_scale`);
    const z = this.name(`${bias}_quantized_zero_point`);
    const dims = perChannel ? [r.scale.length] : [];
    this.newInits.push(
      makeTensor(q, DataType.INT32, t.dims.map(Number), r.data),
      makeTensor(s, DataType.FLOAT, dims, r.scale),
      makeTensor(z, DataType.INT32, dims, new Int32Array(r.scale.length)),
    );
    const out = this.name(`${bias}_DequantizeLinear_Output`);
    node.input = node.input.map((i) => (i === bias ? out : i));
    this.decodedFrom.set(out, bias);
    return [this.dq([q, s, z], out, perChannel ? 0 : undefined, bias)];
  }

  /** Q then DQ on an activation. A node output is renamed so the DQ takes over its name (readers unchanged). */
  private emitActivation(name: string, p: QuantParams, front: NodeProto[], after: Map<string, NodeProto[]>): void {
    const g = this.graph;
    const producer = g.node.find((n) => n.output.includes(name));
    const [s, z] = this.paramTensors(name, p);
    const q = this.name(`${name}_QuantizeLinear_Output`);
    if (producer) {
      const src = this.name(`${name}_float`);
      producer.output = producer.output.map((o) => (o === name ? src : o));
      const nodes = [
        makeNode("QuantizeLinear", [src, s, z], [q], { name: this.name(`${name}_QuantizeLinear`), domain: this.qdqDomain }),
        this.dq([q, s, z], name, undefined, name),
      ];
      after.set(src, nodes);
      this.floatSource.set(name, src);
    } else {
      const out = this.name(`${name}_DequantizeLinear_Output`);
      this.replaceTopLevelUses(name, out);
      this.floatSource.set(out, name);
      front.push(
        makeNode("QuantizeLinear", [name, s, z], [q], { name: this.name(`${name}_QuantizeLinear`), domain: this.qdqDomain }),
        this.dq([q, s, z], out, undefined, name),
      );
    }
  }

  /**
   * A Conv, ConvTranspose or Gemm kept float reads the float tensor, not the DequantizeLinear of it: onnxruntime's
   * 'basic' WeightBiasQuantization quantizes the float weight of such a node whose input comes from a
   * DequantizeLinear and whose output goes to a QuantizeLinear (per tensor, then fused to QLinearConv/QGemm), so a
   * node the user or the search kept float would run int8 anyway (a recogniser's kept-float Conv: 6.0 dB against 28.8
   * with optimizations off). MatMul is not touched by it.
   */
  private floatNodesReadFloat(): void {
    // A folded Relu/Clip lives only in its Q's clamp, so the tensor before that Q is the value before it: float
    // readers get the activation back, applied once to the float tensor.
    const restored = new Map<string, string>();
    for (const f of this.marks.float) {
      if (!["Conv", "ConvTranspose", "Gemm"].includes(f.node.opType)) continue;
      const input = f.node.input[0] ?? "";
      let src = this.floatSource.get(input);
      if (!src) continue;
      const act = this.folded.get(input);
      if (act) {
        let out = restored.get(input);
        if (!out) {
          out = this.name(`${input}_float_activation`);
          this.graph.node.push(makeNode(act.opType, [src, ...act.input.slice(1)], [out], { name: this.name(`${act.name || input}_float`), attributes: act.attribute, domain: act.domain }));
          restored.set(input, out);
        }
        src = out;
      }
      f.node.input[0] = src;
    }
  }

  /**
   * A data-movement node whose output a nested If/Loop/Scan body reads reads the float tensor, not a
   * DequantizeLinear of it: onnxruntime's QDQPropagation (level 'basic') moves such a DQ past the node and then
   * indexes the body's implicit input as an explicit one, which aborts the process (silero-vad: the Transposes
   * before its LSTM's If, onnxruntime-node 1.30). The body quantizes what it reads on its own.
   */
  private subgraphFeedsReadFloat(): void {
    const readByBodies = new Set<string>();
    for (const n of this.graph.node) for (const sg of subgraphs(n)) for (const i of outerScopeInputs(sg)) readByBodies.add(i);
    if (readByBodies.size === 0) return;
    for (const n of this.graph.node) {
      if (!DQ_PROPAGATED.has(n.opType) || !n.output.some((o) => readByBodies.has(o))) continue;
      n.input = n.input.map((i) => this.floatSource.get(i) ?? i);
    }
  }

  /**
   * The top-level Convs onnxruntime runs in float (convsRunInFloat) that are among the model's smallest, within what
   * SMALL_CONV_SHARE leaves after the bodies' (smallestConvs), smallest first: applySmallestFloat gives them their
   * float weight and bias again. Their int8 weights would be decoded at load anyway (engine/quant/unfused-weights), so
   * int8 saves only their bytes, and small Convs are where its rounding costs most. Run once the graph is final (float
   * readers rewired, the passes on codes done): fusion depends on it. Candidates read an activation that will be no
   * DequantizeLinear in the file (a widened one, written as a Clip): beside a DequantizeLinear input onnxruntime
   * quantizes a float weight itself, per tensor (floatNodesReadFloat), and making the Conv read the float tensor
   * instead moved mlsd-320-large's outputs enough to flip weightType auto (docs/quantization.md). A Conv whose tensors
   * a user or the search gave a type (QConfig.overrides; not the widened activations) is left as asked.
   */
  private planSmallestFloat(): void {
    const small = this.smallConvs;
    if (!small || small.total === 0) return;
    const g = this.graph;
    const made = producers(g);
    const c = this.config;
    // Whether convert() may write the 16-bit pairs as Clips; applySmallestFloat checks what it did.
    const clips = clipsWidened(c);
    const asked = (n: NodeProto) => (this.marks.nodes.get(n) ?? []).some((t) => c.overrides[t] && !c.engineOverrides?.has(t));
    const sizes = new Map<NodeProto, number>();
    for (const n of convsRunInFloat(g)) {
      if (n.opType !== "Conv" || asked(n)) continue;
      const input = made.get(n.input[0] ?? "");
      if (input?.opType === "DequantizeLinear" && !(clips && this.sixteenBitDq(input))) continue;
      const dq = made.get(n.input[1] ?? "");
      const w = dq?.opType === "DequantizeLinear" ? this.decodedFrom.get(n.input[1]!) : undefined;
      const t = w ? this.lookup(w)?.tensor : undefined;
      if (t?.dataType === DataType.FLOAT && t.dims.length >= 3) sizes.set(n, elementCount(t.dims, `initializer "${t.name}"`));
    }
    // Smallest first, graph order on ties (a stable sort).
    const ranked = [...sizes.keys()].sort((a, b) => sizes.get(a)! - sizes.get(b)!);
    for (const n of withinBudget(ranked, sizes, (SMALL_CONV_SHARE - small.share) * small.total).float) this.smallPlan.set(n, sizes.get(n)!);
  }

  /**
   * After convert() has written the widened pairs as Clips: each Conv planSmallestFloat chose whose input is no
   * DequantizeLinear now reads its float weight and bias (put back where the rewrite dropped them), their
   * DequantizeLinears and codes go, and the summary lists it as float. `summary` is this rewriter's, filled.
   */
  applySmallestFloat(): void {
    if (!this.smallPlan.size) return;
    const g = this.graph;
    const made = producers(g);
    const applied = [...this.smallPlan].filter(([n]) => made.get(n.input[0] ?? "")?.opType !== "DequantizeLinear");
    if (!applied.length) return;
    const small = this.smallConvs!;
    const share = small.share + applied.reduce((a, [, size]) => a + size, 0) / small.total;
    const present = new Set(g.initializer.map((t) => t.name));
    const replaced = new Set<string>();
    for (const [n, size] of applied) {
      for (const i of [1, 2]) {
        const original = n.input[i] ? this.decodedFrom.get(n.input[i]!) : undefined;
        const t = original ? this.lookup(original)?.tensor : undefined;
        if (!original || !t) continue;
        if (!present.has(original)) {
          g.initializer.push(t);
          present.add(original);
        }
        replaced.add(n.input[i]!);
        n.input[i] = original;
      }
      const reason = smallConvReason(size, share, "onnxruntime runs this Conv in float (no 8-bit Q/DQ on both sides to fuse into QLinearConv)");
      this.summary.quantized = this.summary.quantized.filter((q) => q.name !== n.name);
      this.summary.float.push({ name: n.name, opType: n.opType, reason });
    }
    // The weights' and biases' DequantizeLinears nothing reads any more (a weight another node shares keeps its own),
    // then their codes and parameters.
    const read = readNames(g);
    const dead = g.node.filter((n) => n.opType === "DequantizeLinear" && replaced.has(n.output[0]!) && !read.has(n.output[0]!));
    g.node = g.node.filter((n) => !dead.includes(n));
    dropUnreadInitializers(g, new Set(dead.flatMap((n) => n.input)));
  }

  /** Whether `n` is a DequantizeLinear of 16-bit codes (its zero point's type). */
  private sixteenBitDq(n: NodeProto | undefined): boolean {
    if (n?.opType !== "DequantizeLinear" || !n.input[2]) return false;
    const type = this.graph.initializer.find((t) => t.name === n.input[2])?.dataType;
    return type === DataType.UINT16 || type === DataType.INT16;
  }

  /** Top-level node inputs only: subgraphs keep reading the float original, which stays in the model for them. */
  private replaceTopLevelUses(from: string, to: string): void {
    for (const n of this.graph.node) n.input = n.input.map((i) => (i === from ? to : i));
  }

  private dropUnusedFloatInitializers(): void {
    const g = this.graph;
    const used = new Set<string>(g.output.map((o) => o.name));
    for (const n of g.node) {
      for (const i of n.input) used.add(i);
      for (const sg of subgraphs(n)) for (const i of outerScopeInputs(sg)) used.add(i);
    }
    g.initializer = g.initializer.filter((t) => used.has(t.name));
    const inits = new Set(g.initializer.map((t) => t.name));
    // Old models list initializers as graph inputs too; a dropped one must not become a required input.
    g.input = g.input.filter((v) => inits.has(v.name) || !this.inits.has(v.name));
  }

  /** `leftToDynamic`: op types whose float marks are not listed (the dynamic pass reports those nodes). */
  private fillSummary(leftToDynamic: ReadonlySet<string> = new Set()): void {
    for (const [node, tensors] of this.marks.nodes) {
      this.summary.quantized.push({
        name: node.name,
        opType: node.opType,
        tensors: tensors
          .filter((t) => this.params.has(t) || this.biasPerChannel.has(t))
          .map((t) => {
            const p = this.params.get(t);
            if (!p) return { name: t, type: "int32" as const, perChannel: this.biasPerChannel.get(t)! };
            return { name: t, type: p.type, perChannel: p.scale.length > 1 };
          }),
      });
    }
    for (const f of this.marks.float) {
      if (leftToDynamic.has(f.node.opType) || this.marks.nodes.has(f.node)) continue; // e.g. a HardSigmoid run on codes
      this.summary.float.push({ name: f.node.name, opType: f.node.opType, reason: f.reason });
      if (f.reason.startsWith("no quantizer") || f.reason.startsWith("custom-domain"))
        this.summary.unsupportedOps[f.node.opType] = (this.summary.unsupportedOps[f.node.opType] ?? 0) + 1;
    }
  }
}

/**
 * Whether convert() writes the widened activations as Clips (calibration.wideForm "clip"): only where every 16-bit
 * activation of the file comes from widening (the overrides `config.engineOverrides` names, or none at all in a
 * prepared model's own config), not from a 16-bit activationType or a 16-bit override of the user's or the search's.
 */
export function clipsWidened(config: ResolvedQConfig): boolean {
  const { calibration, activationType, overrides, engineOverrides } = config;
  return calibration.wideForm === "clip" && qBits(activationType) === 8 && !Object.entries(overrides).some(([t, o]) => o.type !== undefined && qBits(o.type) === 16 && !engineOverrides?.has(t));
}

/**
 * Whether every activation a body's marks quantize has parameters: a calibrated range (its own, a fixed one, or its
 * source's), or an override's. A body no calibration batch ran (an If branch not taken) has none.
 */
function reached(marks: Annotations, ranges: Ranges, config: ResolvedQConfig, isConstant: (name: string) => boolean): boolean {
  const hasRange = (name: string, depth = 0): boolean => {
    const mark = marks.activations.get(name);
    if (mark?.fixedRange || ranges.has(name)) return true;
    return mark?.sameAs !== undefined && depth < 64 && hasRange(mark.sameAs, depth + 1);
  };
  for (const name of marks.activations.keys()) {
    if (marks.weights.has(name) || isConstant(name)) continue;
    const o = config.overrides[name];
    if (o?.scale === undefined && !o?.range && !hasRange(name)) return false;
  }
  return true;
}

/** `the then_branch of If node "If_25" (graph "torch_jit1")`: a body as a message names it. */
function bodyLabel(parent: GraphProto, body: GraphProto): string {
  for (const n of parent.node) {
    const a = n.attribute.find((x) => x.g === body || x.graphs.includes(body));
    if (a) return `the ${a.name} of ${n.opType} node "${n.name || n.output[0]}" (graph "${body.name || "(unnamed)"}")`;
  }
  return `body "${body.name || "(unnamed)"}"`;
}

/** The fewest calibration runs any activation a body's marks quantize was in, where fewer than all (Ranges' `reached`). */
function fewestRuns(marks: Annotations, ranges: Ranges): { runs: number; of: number } | undefined {
  let fewest: { runs: number; of: number } | undefined;
  for (const name of marks.activations.keys()) {
    const r = ranges.get(name)?.reached;
    if (r && (!fewest || r.runs < fewest.runs)) fewest = r;
  }
  return fewest;
}

export function opsetOf(model: ModelProto): number {
  const o = model.opsetImport.find((x) => x.domain === "" || x.domain === "ai.onnx");
  return o ? Number(o.version) : 0;
}

/** `initializer "W" (read by Conv node "conv1")`: a weight as an error message names it. */
function weightLabel(g: GraphProto, name: string): string {
  const readers = g.node.filter((n) => n.input.includes(name)).map((n) => `${n.opType} node "${n.name}"`);
  return `initializer "${name}"${readers.length ? ` (read by ${readers.join(", ")})` : ""}`;
}
