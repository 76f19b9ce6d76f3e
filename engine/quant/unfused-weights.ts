// The written QDQ file's Convs that onnxruntime cannot fuse into QLinearConv: their int8 weight (and int32 bias)
// decoded by Cast/Sub/Mul instead of a DequantizeLinear. onnxruntime fuses DQ → Conv → Q only where the Conv's input
// comes from a DequantizeLinear and its output goes to one QuantizeLinear, both 8-bit; any other Conv runs in float
// (next to a widened activation's Clip or 16-bit Q/DQ, before a float op, a ConvTranspose, which has no int8 kernel). For those it keeps
// the weight's DequantizeLinear as it is (it never constant-folds one: it keeps QDQ units for its fusions), so the
// weight is dequantized on every run and the Conv loses pre-packing and the NCHWc layout FP32's Conv gets. Cast,
// Sub and Mul of constants it folds into a float weight when the session is made. The values are the
// DequantizeLinear's bit for bit ((q − zero point) × scale, one rounding). Measured on ppocr-v4-rec-en with
// `--target-cpu vnni` (8 such Convs with their biases): 1.77 → 1.92× FP32 at batch 8 (docs/int8-speed.md).
// A file-writing step (quantizeStatic, the CLI's learned rounding and search; a notebook's convert()): the engine's
// convert() keeps the DequantizeLinears; bias correction and learned rounding read a decoded model by turning its
// decodes back into them first (encodeDecodedWeights), the error analysis reads both (decodedWeight).
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { consumers, dropUnreadInitializers, producers, subgraphs, uniqueName, usedNames } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { attr, attrInt, makeNode } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";

const CODE_TYPES = new Set<number>([DataType.INT8, DataType.UINT8, DataType.INT32]);
const DQ_DOMAINS = new Set(["", "ai.onnx", "com.microsoft"]);
const isDq = (n: NodeProto | undefined): n is NodeProto => n?.opType === "DequantizeLinear" && DQ_DOMAINS.has(n.domain);
const isQ = (n: NodeProto) => n.opType === "QuantizeLinear" && DQ_DOMAINS.has(n.domain);
/** A Q or DQ of 8-bit codes (its zero point's type; none: uint8). onnxruntime's CPU has no 16-bit QLinearConv. */
const eightBit = (n: NodeProto, inits: Scope) => {
  const type = n.input[2] ? inits.get(n.input[2])?.tensor.dataType : DataType.UINT8;
  return type === DataType.UINT8 || type === DataType.INT8;
};

/**
 * Rewrites, in `model`'s graphs (If/Loop/Scan bodies too: their Convs are weight-only by default, engine/quant/subgraph),
 * the weight and bias DequantizeLinears of every Conv and ConvTranspose that
 * onnxruntime cannot fuse (see the top of this file) into Cast (→ Sub) → Mul. Returns how many nodes had theirs
 * rewritten.
 */
export function decodeUnfusedWeights(model: Model): number {
  const ctx: Context = { main: model.graph, taken: usedNames(model.graph), replaced: new Set(), made: new Map(), zeroPoints: new Map() };
  const count = decodeIn(model.graph, new Map(), ctx);
  // The DequantizeLinears' scales and zero points nothing reads any more (the decode has float copies shaped to
  // broadcast); the codes stay, read by the Casts.
  dropUnreadInitializers(model.graph, ctx.replaced);
  return count;
}

interface Context {
  main: GraphProto;
  taken: Set<string>;
  /** One float scalar per zero point value in the main graph, which every body can read (uint8 weights' 128). */
  zeroPoints: Map<number, string>;
  /** The DequantizeLinears' scales and zero points replaced. */
  replaced: Set<string>;
  /** Float copies already made, by what they copy (a weight both branches of an If read is decoded in each: one copy). */
  made: Map<TensorProto, Map<string, string>>;
}

/** An initializer in scope and the graph holding it. */
type Scope = ReadonlyMap<string, { tensor: TensorProto; graph: GraphProto }>;

/** decodeUnfusedWeights in `g` and, with its initializers in scope, in its bodies (a body's weight may be outer). */
function decodeIn(g: GraphProto, outer: Scope, ctx: Context): number {
  const inits = new Map(outer);
  for (const t of g.initializer) inits.set(t.name, { tensor: t, graph: g });
  const made = producers(g);
  const readers = consumers(g);
  const outputs = new Set(g.output.map((o) => o.name));
  let count = 0;
  for (const n of [...g.node]) {
    for (const body of subgraphs(n)) count += decodeIn(body, inits, ctx);
    if (!runsInFloat(n, { made, readers, outputs, inits })) continue;
    let rewrote = false;
    for (const input of n.input.slice(1, 3)) {
      const dq = made.get(input);
      if (!isDq(dq) || readers.get(input)?.length !== 1 || outputs.has(input)) continue;
      const nodes = decodeNodes(dq, inits, g, ctx);
      if (!nodes) continue;
      g.node.splice(g.node.indexOf(dq), 1, ...nodes);
      for (const t of dq.input.slice(1)) if (t) ctx.replaced.add(t);
      rewrote = true;
    }
    if (rewrote) count++;
  }
  return count;
}

/** What runsInFloat reads of one graph. */
interface GraphView {
  made: ReadonlyMap<string, NodeProto>;
  readers: ReadonlyMap<string, NodeProto[]>;
  outputs: ReadonlySet<string>;
  inits: Scope;
}

/**
 * Whether `n` is a Conv or ConvTranspose that onnxruntime runs in float: not one it fuses into QLinearConv (input
 * from an 8-bit DequantizeLinear, output to one 8-bit QuantizeLinear and nothing else, not a graph output).
 */
function runsInFloat(n: NodeProto, view: GraphView): boolean {
  if ((n.opType !== "Conv" && n.opType !== "ConvTranspose") || (n.domain !== "" && n.domain !== "ai.onnx")) return false;
  const { made, readers, outputs, inits } = view;
  const next = readers.get(n.output[0] ?? "") ?? [];
  const input = made.get(n.input[0] ?? "");
  const fused = n.opType === "Conv" && isDq(input) && eightBit(input, inits) && next.length === 1 && isQ(next[0]!) && eightBit(next[0]!, inits) && !outputs.has(n.output[0]!);
  return !fused;
}

/** The Convs and ConvTransposes of `g` (its own nodes, not its bodies') that onnxruntime runs in float (runsInFloat). */
export function convsRunInFloat(g: GraphProto): NodeProto[] {
  const inits: Scope = new Map(g.initializer.map((t) => [t.name, { tensor: t, graph: g }]));
  const view: GraphView = { made: producers(g), readers: consumers(g), outputs: new Set(g.output.map((o) => o.name)), inits };
  return g.node.filter((n) => runsInFloat(n, view));
}

/**
 * Cast (→ Sub) → Mul computing `dq`'s output from its constant inputs (in `g`), or undefined where it is not such a
 * one. The scale's and zero point's float copies go where the DequantizeLinear's own sit (an outer graph for a
 * body reading outer weights), once each.
 */
function decodeNodes(dq: NodeProto, inits: Scope, g: GraphProto, ctx: Context): NodeProto[] | undefined {
  const fresh = (base: string) => uniqueName(g, base, ctx.taken);
  const [x, s, z] = dq.input;
  const codes = inits.get(x ?? "")?.tensor;
  const scale = inits.get(s ?? "");
  const zero = z ? inits.get(z) : undefined;
  if (!codes || !CODE_TYPES.has(codes.dataType) || scale?.tensor.dataType !== DataType.FLOAT || (z && !zero) || attrInt(dq, "block_size", 0) > 0) return undefined;
  const dims = codes.dims.map(Number);
  const scales = tensorToFloat32(scale.tensor);
  const zeros = zero ? tensorToFloat32(zero.tensor) : new Float32Array(scales.length);
  // A per-axis scale lies along `axis` (default 1; a 1-D tensor's is 0), broadcast over the rest.
  const rawAxis = attrInt(dq, "axis", 1);
  const axis = rawAxis < 0 ? rawAxis + dims.length : rawAxis;
  const shape = scales.length === 1 ? [] : dims.map((d, i) => (i === axis ? d : 1));
  if (scales.length !== 1 && dims[axis] !== scales.length) return undefined;
  const copy = (from: { tensor: TensorProto; graph: GraphProto }, values: Float32Array, what: string) => {
    const byShape = ctx.made.get(from.tensor) ?? new Map<string, string>();
    ctx.made.set(from.tensor, byShape);
    let name = byShape.get(shape.join(","));
    if (!name) {
      name = uniqueName(from.graph, `${from.tensor.name}_${what}`, ctx.taken);
      from.graph.initializer.push(makeTensor(name, DataType.FLOAT, shape, values));
      byShape.set(shape.join(","), name);
    }
    return name;
  };
  const cast = fresh(`${x}_float`);
  const nodes = [makeNode("Cast", [x!], [cast], { name: fresh(`${dq.name || x}_Cast`), attributes: [attr.int("to", DataType.FLOAT)] })];
  let centred = cast;
  if (zero && zeros.some((v) => v !== 0)) {
    centred = fresh(`${x}_centred`);
    const z0 = zeros[0]!;
    let zp = zeros.every((v) => v === z0) ? ctx.zeroPoints.get(z0) : undefined;
    if (zeros.every((v) => v === z0) && !zp) {
      zp = uniqueName(ctx.main, `zero_point_${z0}`, ctx.taken);
      ctx.main.initializer.push(makeTensor(zp, DataType.FLOAT, [], [z0]));
      ctx.zeroPoints.set(z0, zp);
    }
    nodes.push(makeNode("Sub", [cast, zp ?? copy(zero, zeros, "float")], [centred], { name: fresh(`${dq.name || x}_Sub`) }));
  }
  nodes.push(makeNode("Mul", [centred, copy(scale, scales, "broadcast")], [dq.output[0]!], { name: fresh(`${dq.name || x}_Mul`) }));
  return nodes;
}

/** decodeUnfusedWeights before a QDQ file is written, with a line for the summary's notes (undefined: none rewritten). */
export function decodeUnfusedWeightsNote(model: Model): string | undefined {
  const n = decodeUnfusedWeights(model);
  return n
    ? `${n} Conv/ConvTranspose node(s) that onnxruntime runs in float (no 8-bit Q/DQ on both sides to fuse) read their int8 weights through Cast/Mul, which it folds into float weights at load, instead of a DequantizeLinear it would run every time`
    : undefined;
}

/** A decode of integer codes (decodeNodes' Cast (→ Sub) → Mul): its codes, float scale, float zero point, axis, nodes. */
export interface DecodedWeight {
  codes: TensorProto;
  scale: TensorProto;
  zero?: TensorProto;
  /** The axis the scale lies along: its one dim above 1 ([C, 1, 1, 1] → 0); 0 for a scalar scale. */
  axis: number;
  /** Cast, the Sub where there is one, and the Mul, in that order. */
  nodes: NodeProto[];
}

/**
 * The decode whose Mul is `mul` (Mul(Cast(codes) [− zero point], scale), all constants), or undefined. The Mul keeps
 * the DequantizeLinear's output name, so what read the DQ reads it.
 */
export function decodedWeight(mul: NodeProto, inits: ReadonlyMap<string, TensorProto>, producer: ReadonlyMap<string, NodeProto>): DecodedWeight | undefined {
  if (mul.opType !== "Mul" || (mul.domain !== "" && mul.domain !== "ai.onnx")) return undefined;
  const scale = inits.get(mul.input[1] ?? "");
  const sub = producer.get(mul.input[0] ?? "");
  const zero = sub?.opType === "Sub" ? inits.get(sub.input[1] ?? "") : undefined;
  if (sub?.opType === "Sub" && !zero) return undefined;
  const cast = sub?.opType === "Sub" ? producer.get(sub.input[0] ?? "") : sub;
  const codes = cast?.opType === "Cast" && attrInt(cast, "to", 0) === DataType.FLOAT ? inits.get(cast.input[0] ?? "") : undefined;
  if (!codes || !CODE_TYPES.has(codes.dataType) || scale?.dataType !== DataType.FLOAT || (zero && zero.dataType !== DataType.FLOAT)) return undefined;
  const axis = Math.max(0, scale.dims.findIndex((d) => Number(d) > 1));
  return { codes, scale, zero, axis, nodes: zero ? [cast!, sub!, mul] : [cast!, mul] };
}

/**
 * The inverse of decodeUnfusedWeights in the main graph: each decode of a weight or bias back into the
 * DequantizeLinear it was (1-D scale and zero point of the codes' type, its axis), for what reads DequantizeLinears
 * (bias correction, learned rounding). The float copies nothing reads any more are dropped. Returns how many.
 */
export function encodeDecodedWeights(model: Model): number {
  const g = model.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const made = producers(g);
  const readers = consumers(g);
  const outputs = new Set(g.output.map((o) => o.name));
  const taken = usedNames(g);
  const dropped = new Set<string>();
  let count = 0;
  for (const mul of [...g.node]) {
    const d = decodedWeight(mul, inits, made);
    // Its own chain only: a Cast or Sub output that something else reads (or the graph returns) stays.
    if (!d || d.nodes.slice(0, -1).some((n) => readers.get(n.output[0]!)?.length !== 1 || outputs.has(n.output[0]!))) continue;
    const scales = tensorToFloat32(d.scale);
    const perAxis = scales.length > 1;
    const codeDims = d.codes.dims.map(Number);
    if (perAxis && codeDims[d.axis] !== scales.length) continue;
    const zeros = d.zero ? tensorToFloat32(d.zero) : undefined;
    const zeroAt = (c: number) => (zeros ? zeros[zeros.length === 1 ? 0 : c]! : 0);
    const base = mul.name.endsWith("_Mul") ? mul.name.slice(0, -4) : mul.name;
    const scaleName = uniqueName(g, d.scale.name.replace(/_broadcast$/, ""), taken);
    const shape = perAxis ? [scales.length] : [];
    g.initializer.push(makeTensor(scaleName, DataType.FLOAT, shape, scales));
    const inputs = [d.codes.name, scaleName];
    if (zeros && zeros.some((z) => z !== 0)) {
      const zeroName = uniqueName(g, `${d.codes.name}_zero_point`, taken);
      const values = Array.from({ length: scales.length }, (_, c) => Math.round(zeroAt(c)));
      g.initializer.push(makeTensor(zeroName, d.codes.dataType as DataType, shape, d.codes.dataType === DataType.INT32 ? Int32Array.from(values) : values));
      inputs.push(zeroName);
    }
    const dq = makeNode("DequantizeLinear", inputs, [mul.output[0]!], { name: base || uniqueName(g, `${d.codes.name}_DequantizeLinear`, taken), attributes: perAxis ? [attr.int("axis", d.axis)] : [] });
    g.node.splice(g.node.indexOf(mul), 1, dq);
    for (const n of d.nodes.slice(0, -1)) g.node.splice(g.node.indexOf(n), 1);
    dropped.add(d.scale.name);
    if (d.zero) dropped.add(d.zero.name);
    count++;
  }
  dropUnreadInitializers(g, dropped);
  return count;
}
