// Static shape inference in pure TypeScript, for what cannot load onnxruntime (the extension host's graph view):
// from the graph inputs' shapes, the initializers and Constant nodes, each node's output types and shapes for the
// ops real models use (docs/graph-view.md lists them). Small integer tensors are carried as values too, so a
// Shape → Gather → Concat → Reshape chain gives a shape when the dimensions it reads are known. A symbolic
// dimension keeps its name; an unknown one is null; an op it does not know, or a node whose inputs make no sense,
// gives unknown outputs: inference never throws. engine/runtime/shapes.ts is the exact (run the model) way.
import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from "onnx-buf";
import { DataType, storageBytes } from "./dtype";
import { constantNodeTensor } from "./graph";
import { attrInt, attrInts, attrString, getAttribute, negativeDimsUnknown, valueInfoTensor, type Dim } from "./proto";
import { readTensor } from "./tensor";

/** A tensor's element type and shape as inferred; `shape` undefined: rank unknown. */
export interface InferredTensor {
  elemType: DataType | undefined;
  shape: Dim[] | undefined;
}

export interface ShapeInference {
  /** Every tensor of the graph (inputs, initializers, node outputs) with what is known of it. */
  tensors: Map<string, InferredTensor>;
  /** The same for the bodies of If/Loop/Scan nodes (read through the enclosing scope's tensors). */
  bodies: Map<GraphProto, ShapeInference>;
}

/** What is carried per tensor: its type, and its values when it is a small numeric tensor (dims of a shape). */
interface Info extends InferredTensor {
  value?: Dim[];
}

/** Values are carried for tensors up to this many elements: enough for shapes, scales, pads and axes. */
const MAX_VALUE = 64;
const INT_TYPES = new Set<number>([DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8, DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64]);
const UNKNOWN: Info = { elemType: undefined, shape: undefined };

/** The default domain's opset of a model (1 when it imports none). */
export function modelOpset(m: ModelProto): number {
  const o = m.opsetImport.find((x) => x.domain === "" || x.domain === "ai.onnx");
  return o ? Number(o.version) : 1;
}

/** Shapes of every tensor of a model's main graph and its bodies. */
export function inferModelShapes(m: ModelProto): ShapeInference {
  return m.graph ? inferShapes(m.graph, modelOpset(m)) : { tensors: new Map(), bodies: new Map() };
}

/**
 * Bytes of the tensors the main graph's nodes make for one row (sample) of input: every graph input `rowDims` names
 * given those dims with its first axis 1, every node output whose element type and shape inference then knows (the
 * others count 0, so it is a lower bound; bodies are not counted). A run of n rows allocates about n times this over
 * its course, onnxruntime holding a share of it at once: what sizes a measurement's runs (engine/quant).
 */
export function rowActivationBytes(m: ModelProto, rowDims: Readonly<Record<string, readonly number[]>>): number {
  if (!m.graph) return 0;
  const given = new Map<string, InferredTensor>();
  for (const v of m.graph.input) {
    const dims = rowDims[v.name];
    if (dims) given.set(v.name, { elemType: declaredType(v)?.elemType, shape: dims.map((d, i) => (i === 0 ? 1 : d)) });
  }
  const { tensors } = inferShapes(m.graph, modelOpset(m), new Map(), given);
  let bytes = 0;
  for (const n of m.graph.node) {
    for (const o of n.output) {
      const t = o ? tensors.get(o) : undefined;
      if (t?.elemType === undefined || !t.shape?.every(num)) continue;
      bytes += knownBytes(t.elemType, t.shape.reduce((a, b) => a * b, 1));
    }
  }
  return bytes;
}

/** storageBytes, 0 for an element type the table does not know (strings weigh 0 there too). */
function knownBytes(id: number, count: number): number {
  try {
    return storageBytes(id, count);
  } catch {
    return 0;
  }
}

/**
 * Shapes of every tensor of `graph`; `outer` holds the enclosing scope's tensors when `graph` is a body; `given`
 * replaces what graph inputs declare.
 */
export function inferShapes(graph: GraphProto, opset: number, outer: ReadonlyMap<string, InferredTensor> = new Map(), given?: ReadonlyMap<string, InferredTensor>): ShapeInference {
  const known = new Map<string, Info>(outer);
  const result: ShapeInference = { tensors: new Map(), bodies: new Map() };
  const set = (name: string, info: Info) => {
    known.set(name, info);
    result.tensors.set(name, { elemType: info.elemType, shape: info.shape });
  };
  const declared = new Map<string, InferredTensor>();
  for (const v of [...graph.valueInfo, ...graph.output]) {
    const t = declaredType(v);
    if (t) declared.set(v.name, t);
  }
  for (const v of graph.input) set(v.name, given?.get(v.name) ?? declaredType(v) ?? UNKNOWN);
  for (const t of graph.initializer) set(t.name, tensorInfo(t));

  for (const n of graph.node) {
    let outs: Info[];
    try {
      outs = inferNode(n, opset, (name) => (name ? known.get(name) ?? UNKNOWN : UNKNOWN), (body) => {
        const sub = inferShapes(body, opset, known);
        result.bodies.set(body, sub);
        return sub;
      });
    } catch {
      outs = []; // a malformed node (a missing attribute, a value of the wrong size): its outputs stay unknown
    }
    n.output.forEach((o, i) => {
      if (o) set(o, withDeclared(outs[i] ?? UNKNOWN, declared.get(o)));
    });
  }
  return result;
}

/** A value_info's type; a negative dimension (exporters write -1 for "any") is unknown. */
function declaredType(v: ValueInfoProto): InferredTensor | undefined {
  const t = valueInfoTensor(v);
  return t && { elemType: t.elemType, shape: t.shape && negativeDimsUnknown(t.shape) };
}

/** A declared value_info fills in what inference left unknown (a declared dimension never overrides a number). */
function withDeclared(info: Info, d: InferredTensor | undefined): Info {
  if (!d) return info;
  const elemType = info.elemType ?? (d.elemType || undefined);
  if (!d.shape) return { ...info, elemType };
  if (!info.shape || info.shape.length !== d.shape.length) return { ...info, elemType, shape: d.shape };
  return { ...info, elemType, shape: info.shape.map((x, i) => (typeof x === "number" ? x : d.shape![i] ?? x)) };
}

function tensorInfo(t: TensorProto): Info {
  const shape = t.dims.map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count > MAX_VALUE || t.dataType === DataType.STRING || t.dataLocation === 1) return { elemType: t.dataType, shape };
  try {
    const data = readTensor(t).data;
    return { elemType: t.dataType, shape, value: Array.from(data as ArrayLike<number | bigint>, Number) };
  } catch {
    return { elemType: t.dataType, shape };
  }
}

// ---- dimension arithmetic -----------------------------------------------------------------------------------

const num = (d: Dim | undefined): d is number => typeof d === "number";
const prod = (ds: readonly Dim[]): Dim => ds.reduce<Dim>((a, b) => (num(a) && num(b) ? a * b : null), 1);
/** An axis counted from the end when negative; out of range throws, which makes the node's outputs unknown. */
function axisOf(a: number, rank: number, upTo = rank - 1): number {
  const r = a < 0 ? a + rank : a;
  if (!(r >= 0 && r <= upTo)) throw new RangeError(`axis ${a} out of range`);
  return r;
}

/** numpy broadcasting of two shapes; undefined when a rank is unknown or the shapes cannot broadcast. */
function broadcast(a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a || !b) return undefined;
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const [ia, ib] = [a.length - n + i, b.length - n + i];
    const x = ia >= 0 ? a[ia]! : 1;
    const y = ib >= 0 ? b[ib]! : 1;
    if (x === 1) out.push(y);
    else if (y === 1 || x === y) out.push(x);
    else if (num(x) && num(y)) return undefined;
    else out.push(num(x) ? x : num(y) ? y : null); // a fixed size > 1 decides; two different symbols: unknown
  }
  return out;
}

/** One spatial output size of a convolution or pooling window. */
function windowOut(size: Dim, k: number, stride: number, dilation: number, pads: number, ceil: boolean): Dim {
  if (!num(size)) return null;
  const span = (size + pads - dilation * (k - 1) - 1) / stride;
  return (ceil ? Math.ceil(span) : Math.floor(span)) + 1;
}

// A wrongly typed attribute throws in these (engine/onnx/proto.ts): the node's outputs are then unknown.
const ints = attrInts;
const int = (n: NodeProto, name: string, fallback: number): number => attrInt(n, name, fallback);
const str = attrString;

/** A Conv/pool/ConvTranspose window's attributes, defaults filled in; `pads(i)`: both pads of spatial axis i. */
function geometry(n: NodeProto, kernel: number[]) {
  const ones = kernel.map(() => 1);
  const pads = ints(n, "pads") ?? [...kernel, ...kernel].map(() => 0);
  const autoPad = str(n, "auto_pad") ?? "NOTSET";
  return {
    strides: ints(n, "strides") ?? ones,
    dil: ints(n, "dilations") ?? ones,
    same: autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER",
    pads: (i: number) => (autoPad === "VALID" ? 0 : pads[i]! + pads[i + kernel.length]!),
  };
}

/** Spatial output sizes of Conv or a pooling op (input NC + spatial). */
function spatial(n: NodeProto, x: Dim[], kernel: number[], ceil: boolean): Dim[] {
  const g = geometry(n, kernel);
  return kernel.map((k, i) => {
    const size = x[2 + i] ?? null;
    if (g.same) return num(size) ? Math.ceil(size / g.strides[i]!) : null;
    return windowOut(size, k, g.strides[i]!, g.dil[i]!, g.pads(i), ceil);
  });
}

// ---- values (a shape being computed) ------------------------------------------------------------------------

function valueOp(op: string, a: Dim, b: Dim): Dim {
  if (!num(a) || !num(b)) {
    // A symbol survives an identity: x + 0, x - 0, x * 1 (a pad of 0 on a symbolic dimension).
    const unit = op === "Mul" ? 1 : op === "Add" || op === "Sub" ? 0 : undefined;
    if (b === unit) return a;
    return a === unit && op !== "Sub" ? b : null;
  }
  switch (op) {
    case "Add": return a + b;
    case "Sub": return a - b;
    case "Mul": return a * b;
    case "Div": return b === 0 ? null : Math.trunc(a / b);
    default: return null;
  }
}

/** Values of an elementwise op on small tensors of one shape, or with a single-element side (shape arithmetic). */
function valueBroadcast(op: string, a: Info, b: Info, shape: Dim[]): Dim[] | undefined {
  const count = prod(shape);
  if (!a.value || !b.value || !num(count) || count > MAX_VALUE) return undefined;
  const pick = (v: Dim[]) => (v.length === 1 ? () => v[0]! : v.length === count ? (i: number) => v[i]! : undefined);
  const [x, y] = [pick(a.value), pick(b.value)];
  return x && y ? Array.from({ length: count }, (_, i) => valueOp(op, x(i), y(i))) : undefined;
}

// ---- per-op rules -------------------------------------------------------------------------------------------

type Get = (name: string | undefined) => Info;
type Body = (g: GraphProto) => ShapeInference;

const same = (x: Info, elemType = x.elemType): Info => ({ elemType, shape: x.shape });
const of = (elemType: DataType | undefined, shape: Dim[] | undefined, value?: Dim[]): Info => (value ? { elemType, shape, value } : { elemType, shape });

const UNARY = new Set([
  "Relu", "Sigmoid", "HardSwish", "HardSigmoid", "Clip", "LeakyRelu", "Sqrt", "Exp", "Log", "Tanh", "Abs", "Neg",
  "Reciprocal", "Floor", "Ceil", "Round", "Erf", "Elu", "Selu", "Celu", "Softplus", "Softsign", "Sign", "Sin", "Cos",
  "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "ThresholdedRelu", "Gelu", "Mish",
  "Softmax", "LogSoftmax", "Hardmax", "BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN",
  "Dropout", "PRelu", "Shrink", "MeanVarianceNormalization", "Trilu", "CumSum", "Not", "BitwiseNot",
]);
const ELEMENTWISE = new Set(["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mean", "Sum", "Mod", "BitShift", "And", "Or", "Xor", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Where", "BitwiseAnd", "BitwiseOr", "BitwiseXor"]);
const COMPARE = new Set(["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor"]);
const REDUCE = new Set(["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]);

function inferNode(n: NodeProto, opset: number, get: Get, body: Body): Info[] {
  if (n.domain !== "" && n.domain !== "ai.onnx") {
    // com.microsoft's Q/DQ are the standard ones under another domain; other custom ops are unknown.
    return n.domain === "com.microsoft" && (n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear") ? qdq(n, get) : [];
  }
  const x = get(n.input[0]);
  const op = n.opType;
  if (UNARY.has(op)) return [same(x), ...(op === "Dropout" ? [same(x, DataType.BOOL)] : [])];
  if (ELEMENTWISE.has(op)) return [elementwise(n, get)];
  if (REDUCE.has(op)) return [reduce(n, opset, get)];
  switch (op) {
    case "Identity": return [x];
    case "Constant": {
      const t = constantNodeTensor(n);
      return t ? [tensorInfo(t)] : [];
    }
    case "Cast": {
      const to = int(n, "to", 0);
      return [of(to, x.shape, x.value && INT_TYPES.has(to) ? x.value.map((v) => (num(v) ? Math.trunc(v) : v)) : undefined)];
    }
    case "CastLike": return [of(get(n.input[1]).elemType, x.shape)];
    case "IsNaN": case "IsInf": return [same(x, DataType.BOOL)];
    case "QuantizeLinear": case "DequantizeLinear": return qdq(n, get);
    case "Conv": return [conv(n, x, get(n.input[1]))];
    case "ConvTranspose": return [convTranspose(n, x, get(n.input[1]))];
    case "MaxPool": case "AveragePool": case "LpPool": {
      const k = ints(n, "kernel_shape");
      if (!k || !x.shape) return [of(x.elemType, undefined)];
      const out = of(x.elemType, [x.shape[0]!, x.shape[1]!, ...spatial(n, x.shape, k, int(n, "ceil_mode", 0) === 1)]);
      return [out, of(DataType.INT64, out.shape)];
    }
    case "GlobalAveragePool": case "GlobalMaxPool": case "GlobalLpPool":
      return [of(x.elemType, x.shape?.map((d, i) => (i < 2 ? d : 1)))];
    case "MatMul": case "MatMulInteger": return [matmul(x, get(n.input[1]), op === "MatMulInteger" ? DataType.INT32 : x.elemType)];
    case "Gemm": {
      const a = x.shape;
      const b = get(n.input[1]).shape;
      if (!a || !b || a.length !== 2 || b.length !== 2) return [of(x.elemType, undefined)];
      return [of(x.elemType, [int(n, "transA", 0) ? a[1]! : a[0]!, int(n, "transB", 0) ? b[0]! : b[1]!])];
    }
    case "Reshape": return [reshape(n, x, get(n.input[1]))];
    case "Transpose": {
      if (!x.shape) return [of(x.elemType, undefined)];
      const perm = ints(n, "perm") ?? x.shape.map((_, i) => x.shape!.length - 1 - i);
      return [of(x.elemType, perm.map((p) => x.shape![p] ?? null))];
    }
    case "Flatten": {
      if (!x.shape) return [of(x.elemType, undefined)];
      const axis = axisOf(int(n, "axis", 1), x.shape.length, x.shape.length);
      return [of(x.elemType, [prod(x.shape.slice(0, axis)), prod(x.shape.slice(axis))])];
    }
    case "Squeeze": return [squeeze(n, opset, x, get(n.input[1]))];
    case "Unsqueeze": return [unsqueeze(n, opset, x, get(n.input[1]))];
    case "Concat": return [concat(n, n.input.map((i) => get(i)))];
    case "Split": return split(n, opset, x, get(n.input[1]));
    case "Slice": return [slice(n, opset, x, get)];
    case "Gather": return [gather(n, x, get(n.input[1]))];
    case "Shape": {
      if (!x.shape) return [of(DataType.INT64, [null])];
      const r = x.shape.length;
      const clamp = (a: number) => Math.min(Math.max(a < 0 ? a + r : a, 0), r);
      const [start, end] = [clamp(int(n, "start", 0)), clamp(int(n, "end", r))];
      const dims = x.shape.slice(start, end);
      return [of(DataType.INT64, [dims.length], dims)];
    }
    case "Size": return [of(DataType.INT64, [], x.shape ? [prod(x.shape)] : undefined)];
    case "ConstantOfShape": {
      const v = getAttribute(n, "value")?.t;
      const shape = x.value && x.shape?.length === 1 ? x.value : undefined;
      return [of(v ? v.dataType : DataType.FLOAT, shape)];
    }
    case "Expand": {
      const s = get(n.input[1]);
      return [of(x.elemType, s.value ? broadcast(x.shape, s.value) : undefined)];
    }
    case "Tile": {
      const r = get(n.input[1]).value;
      return [of(x.elemType, x.shape && r ? x.shape.map((d, i) => valueOp("Mul", d, r[i] ?? null)) : undefined)];
    }
    case "Range": {
      const [s, l, d] = [get(n.input[0]).value?.[0], get(n.input[1]).value?.[0], get(n.input[2]).value?.[0]];
      return [of(x.elemType, [num(s) && num(l) && num(d) && d !== 0 ? Math.max(Math.ceil((l - s) / d), 0) : null])];
    }
    case "ArgMax": case "ArgMin": {
      if (!x.shape) return [of(DataType.INT64, undefined)];
      const axis = axisOf(int(n, "axis", 0), x.shape.length);
      const keep = int(n, "keepdims", 1) === 1;
      return [of(DataType.INT64, x.shape.flatMap((d, i) => (i !== axis ? [d] : keep ? [1] : [])))];
    }
    case "Resize": case "Upsample": return [resize(n, opset, x, get)];
    case "Pad": return [pad(n, opset, x, get)];
    case "DepthToSpace": case "SpaceToDepth": {
      const b = int(n, "blocksize", 1);
      const s = x.shape;
      if (!s || s.length !== 4) return [of(x.elemType, undefined)];
      const div = (d: Dim, k: number): Dim => (num(d) && d % k === 0 ? d / k : null);
      const mul = (d: Dim, k: number): Dim => valueOp("Mul", d, k);
      return [of(x.elemType, op === "DepthToSpace"
        ? [s[0]!, div(s[1]!, b * b), mul(s[2]!, b), mul(s[3]!, b)]
        : [s[0]!, mul(s[1]!, b * b), div(s[2]!, b), div(s[3]!, b)])];
    }
    case "LSTM": case "GRU": case "RNN": return recurrent(n, x);
    case "If": return ifOutputs(n, body);
    case "Loop": case "Scan":
      for (const a of n.attribute) if (a.g) body(a.g);
      return [];
    default: return [];
  }
}

function qdq(n: NodeProto, get: Get): Info[] {
  const x = get(n.input[0]);
  if (n.opType === "DequantizeLinear") return [same(x, get(n.input[1]).elemType ?? DataType.FLOAT)];
  const zp = n.input[2] ? get(n.input[2]).elemType : undefined;
  return [same(x, zp ?? (getAttribute(n, "output_dtype") ? int(n, "output_dtype", DataType.UINT8) : DataType.UINT8))];
}

function elementwise(n: NodeProto, get: Get): Info {
  const ins = n.input.filter((i) => i).map((i) => get(i));
  const shape = ins.slice(1).reduce<Dim[] | undefined>((s, i) => broadcast(s, i.shape), ins[0]?.shape);
  const elemType = COMPARE.has(n.opType) ? DataType.BOOL : n.opType === "Where" ? ins[1]?.elemType : ins[0]?.elemType;
  const value = ins.length === 2 && shape && INT_TYPES.has(elemType ?? 0) ? valueBroadcast(n.opType, ins[0]!, ins[1]!, shape) : undefined;
  return of(elemType, shape, value);
}

/** Axes from the attribute (older opsets) or the second input (opset `since` and later), undefined if not known. */
function axesOf(n: NodeProto, opset: number, since: number, input: Info): number[] | undefined | "unknown" {
  if (opset < since) return ints(n, "axes");
  if (!n.input[1]) return undefined;
  return input.value?.every(num) ? (input.value as number[]) : "unknown";
}

function reduce(n: NodeProto, opset: number, get: Get): Info {
  const x = get(n.input[0]);
  const since = n.opType === "ReduceSum" ? 13 : 18;
  const axes = axesOf(n, opset, since, get(n.input[1]));
  const keep = int(n, "keepdims", 1) === 1;
  if (!x.shape || axes === "unknown") return of(x.elemType, undefined);
  if (!axes?.length && int(n, "noop_with_empty_axes", 0) === 1) return same(x);
  const r = x.shape.length;
  const all = !axes?.length;
  const set = new Set((axes ?? []).map((a) => axisOf(a, r)));
  return of(x.elemType, x.shape.flatMap((d, i) => (all || set.has(i) ? (keep ? [1] : []) : [d])));
}

function conv(n: NodeProto, x: Info, w: Info): Info {
  if (!x.shape || !w.shape) return of(x.elemType, undefined);
  const k = ints(n, "kernel_shape") ?? (w.shape.slice(2).every(num) ? (w.shape.slice(2) as number[]) : undefined);
  if (!k) return of(x.elemType, undefined);
  return of(x.elemType, [x.shape[0]!, w.shape[0]!, ...spatial(n, x.shape, k, false)]);
}

function convTranspose(n: NodeProto, x: Info, w: Info): Info {
  if (!x.shape || !w.shape) return of(x.elemType, undefined);
  const k = ints(n, "kernel_shape") ?? (w.shape.slice(2).every(num) ? (w.shape.slice(2) as number[]) : undefined);
  if (!k) return of(x.elemType, undefined);
  const channels = valueOp("Mul", w.shape[1]!, int(n, "group", 1));
  const given = ints(n, "output_shape");
  if (given) return of(x.elemType, [x.shape[0]!, channels, ...given.slice(-k.length)]);
  const g = geometry(n, k);
  const outPad = ints(n, "output_padding") ?? k.map(() => 0);
  const sizes = k.map((kk, i) => {
    const d = x.shape![2 + i];
    if (!num(d)) return null;
    return g.same ? d * g.strides[i]! : g.strides[i]! * (d - 1) + outPad[i]! + (kk - 1) * g.dil[i]! + 1 - g.pads(i);
  });
  return of(x.elemType, [x.shape[0]!, channels, ...sizes]);
}

function matmul(a: Info, b: Info, elemType: DataType | undefined): Info {
  if (!a.shape || !b.shape || a.shape.length === 0 || b.shape.length === 0) return of(elemType, undefined);
  const sa = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
  const sb = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
  const batch = broadcast(sa.slice(0, -2), sb.slice(0, -2));
  if (!batch) return of(elemType, undefined);
  return of(elemType, [...batch, ...(a.shape.length === 1 ? [] : [sa.at(-2)!]), ...(b.shape.length === 1 ? [] : [sb.at(-1)!])]);
}

function reshape(n: NodeProto, x: Info, s: Info): Info {
  const target = s.value?.every((d) => !num(d) || (Number.isInteger(d) && d >= -1)) ? s.value : undefined;
  if (!target) return of(x.elemType, s.shape && num(s.shape[0]) ? new Array<Dim>(s.shape[0]).fill(null) : undefined);
  const allowZero = int(n, "allowzero", 0) === 1;
  const dims: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? x.shape?.[i] ?? null : d));
  const minus = dims.indexOf(-1);
  if (minus >= 0) dims[minus] = x.shape ? remaining(x.shape, dims.filter((_, i) => i !== minus)) : null;
  return of(x.elemType, dims, x.value && x.shape ? x.value : undefined);
}

/** The size left for a -1: the input's element count over the other target dims (equal symbols cancel). */
function remaining(input: Dim[], others: Dim[]): Dim {
  const top = [...input];
  const rest: Dim[] = [];
  for (const d of others) {
    const i = d === null ? -1 : top.indexOf(d);
    if (i >= 0) top.splice(i, 1);
    else rest.push(d);
  }
  const b = prod(rest);
  const symbols = top.filter((d) => d !== 1);
  if (b === 1 && symbols.length === 1) return symbols[0]!; // [N, 2] to [-1, 2]: N
  const a = prod(top);
  return num(a) && num(b) && b !== 0 && a % b === 0 ? a / b : null;
}

function squeeze(n: NodeProto, opset: number, x: Info, axesIn: Info): Info {
  const axes = axesOf(n, opset, 13, axesIn);
  if (!x.shape || axes === "unknown") return of(x.elemType, undefined);
  const r = x.shape.length;
  if (!axes) {
    if (!x.shape.every(num)) return of(x.elemType, undefined);
    return of(x.elemType, x.shape.filter((d) => d !== 1), x.value);
  }
  const drop = new Set(axes.map((a) => axisOf(a, r)));
  return of(x.elemType, x.shape.filter((_, i) => !drop.has(i)), x.value);
}

function unsqueeze(n: NodeProto, opset: number, x: Info, axesIn: Info): Info {
  const axes = axesOf(n, opset, 13, axesIn);
  if (!x.shape || !axes || axes === "unknown") return of(x.elemType, undefined);
  const r = x.shape.length + axes.length;
  const add = new Set(axes.map((a) => axisOf(a, r)));
  const rest = [...x.shape];
  return of(x.elemType, Array.from({ length: r }, (_, i) => (add.has(i) ? 1 : rest.shift() ?? null)), x.value);
}

function concat(n: NodeProto, ins: Info[]): Info {
  const elemType = ins.find((i) => i.elemType !== undefined)?.elemType;
  const first = ins.find((i) => i.shape)?.shape;
  if (!first || ins.some((i) => !i.shape || i.shape.length !== first.length)) return of(elemType, undefined);
  const axis = axisOf(int(n, "axis", 0), first.length);
  const shape = first.map((d, j) => {
    if (j === axis) return ins.reduce<Dim>((s, i) => valueOp("Add", s, i.shape![j]!), 0);
    return ins.map((i) => i.shape![j]!).find(num) ?? d;
  });
  const value = first.length === 1 && ins.every((i) => i.value) ? ins.flatMap((i) => i.value!) : undefined;
  return of(elemType, shape, value && value.length <= MAX_VALUE ? value : undefined);
}

function split(n: NodeProto, opset: number, x: Info, splitIn: Info): Info[] {
  const outs = n.output.length;
  if (!x.shape) return n.output.map(() => of(x.elemType, undefined));
  const axis = axisOf(int(n, "axis", 0), x.shape.length);
  const size = x.shape[axis];
  let parts: Dim[] | undefined = opset < 13 ? ints(n, "split") : n.input[1] ? splitIn.value : undefined;
  if (!parts && num(size)) {
    const each = Math.ceil(size / outs);
    parts = Array.from({ length: outs }, (_, i) => Math.max(Math.min(each, size - each * i), 0));
    if (opset < 18 || !getAttribute(n, "num_outputs")) parts = size % outs === 0 ? parts.map(() => size / outs) : undefined;
  }
  const offsets = parts?.every(num) ? parts.map((_, i) => (parts as number[]).slice(0, i).reduce((a, b) => a + b, 0)) : undefined;
  return n.output.map((_, i) => {
    const value = x.value && x.shape!.length === 1 && offsets ? x.value.slice(offsets[i], offsets[i]! + (parts![i] as number)) : undefined;
    return of(x.elemType, x.shape!.map((d, j) => (j === axis ? parts?.[i] ?? null : d)), value);
  });
}

function sliceValues(n: NodeProto, opset: number, get: Get): { starts?: Dim[]; ends?: Dim[]; axes?: Dim[]; steps?: Dim[] } {
  if (opset < 10) return { starts: ints(n, "starts"), ends: ints(n, "ends"), axes: ints(n, "axes") };
  const v = (i: number) => (n.input[i] ? get(n.input[i]).value : undefined);
  return { starts: v(1), ends: v(2), axes: v(3), steps: v(4) };
}

function slice(n: NodeProto, opset: number, x: Info, get: Get): Info {
  const { starts, ends, axes, steps } = sliceValues(n, opset, get);
  if (!x.shape) return of(x.elemType, undefined);
  const optional = (i: number) => opset >= 10 && !n.input[i];
  if (!starts || !ends || (!axes && !optional(3) && opset >= 10) || (!steps && !optional(4) && opset >= 10)) {
    return of(x.elemType, x.shape.map(() => null));
  }
  const shape = [...x.shape];
  const r = shape.length;
  const picked: Array<{ start: number; step: number; count: number } | undefined> = [];
  for (let i = 0; i < starts.length; i++) {
    const a = axes ? axes[i] : i;
    const [s, e, st] = [starts[i], ends[i], steps ? steps[i] : 1];
    if (!num(a) || !num(s) || !num(e) || !num(st) || st === 0) return of(x.elemType, x.shape.map(() => null));
    const ax = axisOf(a, r);
    const d = shape[ax];
    if (!num(d)) {
      // A symbolic size survives only the whole-range slice that exports write for "everything".
      shape[ax] = s === 0 && st === 1 && e >= 2 ** 31 - 1 ? d ?? null : null;
      continue;
    }
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
    const start = st > 0 ? clamp(s, 0, d) : clamp(s, 0, d - 1);
    const end = st > 0 ? clamp(e, 0, d) : clamp(e, -1, d - 1);
    const count = Math.max(Math.ceil((end - start) / st), 0);
    shape[ax] = count;
    picked[ax] = { start, step: st, count };
  }
  const value = r === 1 && x.value && picked[0] ? Array.from({ length: picked[0].count }, (_, i) => x.value![picked[0]!.start + i * picked[0]!.step] ?? null) : r === 1 && x.value && !picked[0] ? x.value : undefined;
  return of(x.elemType, shape, value);
}

function gather(n: NodeProto, x: Info, idx: Info): Info {
  if (!x.shape || !idx.shape) return of(x.elemType, undefined);
  const axis = axisOf(int(n, "axis", 0), x.shape.length);
  const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
  let value: Dim[] | undefined;
  if (x.value && x.shape.length === 1 && num(x.shape[0]) && idx.value?.every(num)) {
    const size = x.shape[0];
    value = (idx.value as number[]).map((i) => x.value![i < 0 ? i + size : i] ?? null);
  }
  return of(x.elemType, shape, value);
}

function resize(n: NodeProto, opset: number, x: Info, get: Get): Info {
  if (!x.shape) return of(x.elemType, undefined);
  const r = x.shape.length;
  let scales: Dim[] | undefined;
  let sizes: Dim[] | undefined;
  if (n.opType === "Upsample" && opset < 9) scales = getAttribute(n, "scales")?.floats;
  else if (n.opType === "Upsample" || opset < 11) scales = get(n.input[1]).value;
  else {
    scales = n.input[2] ? get(n.input[2]).value : undefined;
    sizes = n.input[3] ? get(n.input[3]).value : undefined;
  }
  const axes = ints(n, "axes")?.map((a) => axisOf(a, r)) ?? x.shape.map((_, i) => i);
  const full = (v: Dim[]) => {
    const out: Dim[] = x.shape!.map(() => 1);
    axes.forEach((a, i) => (out[a] = v[i] ?? null));
    return out;
  };
  if (sizes?.length) {
    if (str(n, "keep_aspect_ratio_policy") && str(n, "keep_aspect_ratio_policy") !== "stretch") return of(x.elemType, x.shape.map(() => null));
    const s = full(sizes);
    return of(x.elemType, x.shape.map((d, i) => (axes.includes(i) ? s[i]! : d)));
  }
  if (scales?.length) {
    const s = full(scales);
    return of(x.elemType, x.shape.map((d, i) => {
      const k = s[i];
      if (k === 1) return d;
      return num(d) && num(k) ? Math.floor(d * k) : null;
    }));
  }
  return of(x.elemType, x.shape.map(() => null));
}

function pad(n: NodeProto, opset: number, x: Info, get: Get): Info {
  if (!x.shape) return of(x.elemType, undefined);
  const r = x.shape.length;
  const pads = opset < 11 ? ints(n, "pads") ?? ints(n, "paddings") : get(n.input[1]).value;
  if (!pads) return of(x.elemType, x.shape.map(() => null));
  const axesIn = opset >= 18 && n.input[3] ? get(n.input[3]).value : undefined;
  if (opset >= 18 && n.input[3] && !axesIn?.every(num)) return of(x.elemType, x.shape.map(() => null));
  const axes = axesIn ? (axesIn as number[]).map((a) => axisOf(a, r)) : x.shape.map((_, i) => i);
  const shape = [...x.shape];
  axes.forEach((a, i) => {
    const grow = valueOp("Add", pads[i] ?? null, pads[i + axes.length] ?? null);
    shape[a] = valueOp("Add", shape[a] ?? null, grow);
  });
  return of(x.elemType, shape);
}

function recurrent(n: NodeProto, x: Info): Info[] {
  const hidden = int(n, "hidden_size", 0) || null;
  const dirs = str(n, "direction") === "bidirectional" ? 2 : 1;
  const batchFirst = int(n, "layout", 0) === 1;
  const s = x.shape && x.shape.length === 3 ? x.shape : [null, null, null];
  const [seq, batch] = batchFirst ? [s[1]!, s[0]!] : [s[0]!, s[1]!];
  const y = batchFirst ? [batch, seq, dirs, hidden] : [seq, dirs, batch, hidden];
  const state = batchFirst ? [batch, dirs, hidden] : [dirs, batch, hidden];
  return [of(x.elemType, y), of(x.elemType, state), ...(n.opType === "LSTM" ? [of(x.elemType, state)] : [])];
}

/** If: each output as both branches agree on it (a dimension they disagree on is unknown). */
function ifOutputs(n: NodeProto, body: Body): Info[] {
  const branch = (name: string): GraphProto | undefined => (getAttribute(n, name) as AttributeProto | undefined)?.g;
  const [a, b] = [branch("then_branch"), branch("else_branch")];
  if (!a || !b) return [];
  const [ia, ib] = [body(a), body(b)];
  return n.output.map((_, i) => {
    const x = ia.tensors.get(a.output[i]?.name ?? "");
    const y = ib.tensors.get(b.output[i]?.name ?? "");
    if (!x || !y) return UNKNOWN;
    const elemType = x.elemType ?? y.elemType;
    if (!x.shape || !y.shape || x.shape.length !== y.shape.length) return of(elemType, undefined);
    return of(elemType, x.shape.map((d, j) => (d === y.shape![j] ? d : null)));
  });
}
