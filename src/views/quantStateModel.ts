// Derives each tensor's quantization state from a model file: a DequantizeLinear feeding an input means that input
// is quantized (its type from the zero point or the quantized initializer, per-tensor/per-channel/blocked from the
// scale's shape and block_size); fused integer ops (QLinearConv, MatMulNBits, ...) count as quantized. The kernel's
// richer entries (method, reason, SQNR) replace these when it sends them. Pure, for tests.
import type { GraphProto, ModelProto, NodeProto, TensorProto } from "onnx-buf";
import type { QuantStateEntry } from "../../kernel/display-types";
import { elemTypeName, tensorValues } from "../../engine/onnx-text/types";
import { DataType } from "../../engine/onnx/dtype";
import { readTensor } from "../../engine/onnx/tensor";

const QDQ = new Set(["QuantizeLinear", "DequantizeLinear"]);
const FUSED = new Set(["QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "QGemm", "MatMulNBits", "QLinearAdd", "QLinearMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"]);

const QRANGE: Record<string, [number, number]> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int4: [-8, 7], uint4: [0, 15], int2: [-2, 1], uint2: [0, 3],
};

function numbers(t: TensorProto | undefined): number[] {
  if (!t) return [];
  // uint4 / int4 pack two values per byte, which the text view's tensorValues does not read: the engine's decoder does.
  if (t.dataType === DataType.UINT4 || t.dataType === DataType.INT4) return Array.from(readTensor(t).data as ArrayLike<number>, Number);
  return (tensorValues(t) ?? []).map(Number);
}

function minMax(xs: number[]): { min: number; max: number } {
  // A loop, not Math.min(...xs): a blocked weight has hundreds of thousands of scales.
  let [min, max] = [Infinity, -Infinity];
  for (const x of xs) [min, max] = [Math.min(min, x), Math.max(max, x)];
  return { min, max };
}

function dqState(dq: NodeProto, inits: Map<string, TensorProto>, qOf: Map<string, NodeProto>): Partial<QuantStateEntry> {
  const [x, s, zp] = dq.input;
  const zpT = zp ? inits.get(zp) : undefined;
  const xT = x ? inits.get(x) : undefined;
  // An activation's DQ reads a Q output: its zero point (on the Q) gives the type.
  const q = x ? qOf.get(x) : undefined;
  const qZp = q?.input[2] ? inits.get(q.input[2]) : undefined;
  const type = zpT ? elemTypeName(zpT.dataType) : xT ? elemTypeName(xT.dataType) : qZp ? elemTypeName(qZp.dataType) : "uint8";
  const scales = numbers(s ? inits.get(s) : undefined);
  const zps = numbers(zpT ?? qZp);
  const blocked = dq.attribute.some((a) => a.name === "block_size" && a.i > 0n);
  const granularity = blocked ? "blocked" : scales.length > 1 ? "per-channel" : "per-tensor";
  const out: Partial<QuantStateEntry> = { quantized: true, type, granularity };
  if (scales.length) out.scale = { ...minMax(scales), count: scales.length };
  if (zps.length) out.zeroPoint = minMax(zps);
  const qr = QRANGE[type];
  if (granularity === "per-tensor" && scales.length === 1 && qr) {
    const z = zps[0] ?? 0;
    out.range = [(qr[0] - z) * scales[0]!, (qr[1] - z) * scales[0]!];
  }
  return out;
}

/** Ops a low-bit file decodes a weight with, from constants only (onnxruntime folds them when the session is made). */
const DECODE_OPS = new Set(["Cast", "Sub", "Mul", "Reshape", "Slice", "Expand", "Transpose", "Gather"]);
/** Ops that only spread a decode's parameters over the codes (a partial last block's scales). */
const SPREAD_OPS = new Set(["Expand", "Reshape", "Slice"]);
const CODE_TYPES = new Set(["int8", "uint8", "int4", "uint4", "int2", "uint2", "int32"]);
/** At most this many nodes in one weight's decode (int4's partial blocks: 10; FP4's: 11). */
const MAX_DECODE_NODES = 24;

export interface WeightDecode {
  /** The integer initializer holding the codes (the largest one the decode reads). */
  codes: TensorProto;
  /** "float4e2m1" where the codes index a float table (FP4's runnable decode), else the codes' type. */
  type: string;
  granularity: "per-channel" | "blocked";
  /** The float constants the codes are multiplied by and shifted by (through Expand/Reshape/Slice), where found. */
  scales?: number[];
  zeroPoints?: number[];
  /** The decode's nodes, which the views fold away as they fold Q/DQ. */
  nodes: NodeProto[];
}

/**
 * How `t` is decoded from integer codes by DECODE_OPS that read only initializers: the form the low-bit modes write
 * for a Conv's weight (int4: Cast → Sub → Mul → Reshape; int8 layers: Cast → Mul) and FP4's runnable decode (codes
 * → Cast → Gather in a float table → Mul). Undefined for anything else, a float constant subgraph included.
 */
export function weightDecode(t: string, producer: ReadonlyMap<string, NodeProto>, inits: ReadonlyMap<string, TensorProto>): WeightDecode | undefined {
  const nodes: NodeProto[] = [];
  const read: TensorProto[] = [];
  const seen = new Set<string>();
  const stack = [t];
  while (stack.length) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const init = inits.get(name);
    if (init) {
      read.push(init);
      continue;
    }
    const p = producer.get(name);
    if (!p || !DECODE_OPS.has(p.opType) || (p.domain !== "" && p.domain !== "ai.onnx") || nodes.length >= MAX_DECODE_NODES) return undefined;
    nodes.push(p);
    for (const i of p.input) if (i) stack.push(i);
  }
  const codes = read.filter((x) => CODE_TYPES.has(elemTypeName(x.dataType))).sort((a, b) => numel(b) - numel(a))[0];
  if (!codes || nodes.length === 0) return undefined;
  const table = nodes.some((n) => n.opType === "Gather" && elemTypeName(inits.get(n.input[0] ?? "")?.dataType ?? 0) === "float");
  const type = table ? "float4e2m1" : elemTypeName(codes.dataType);
  const out: WeightDecode = { codes, type, granularity: /^u?int(4|2)$|^float4/.test(type) ? "blocked" : "per-channel", nodes };
  if (table) return out;
  // The operand of a Mul (scale) or Sub (zero point) that is, or is spread from, a float constant.
  const constantOf = (name: string): TensorProto | undefined => {
    const init = inits.get(name);
    if (init) return elemTypeName(init.dataType) === "float" ? init : undefined;
    const p = producer.get(name);
    return p && SPREAD_OPS.has(p.opType) ? constantOf(p.input[0] ?? "") : p?.opType === "Cast" && CODE_TYPES.has(elemTypeName(inits.get(p.input[0] ?? "")?.dataType ?? 0)) ? inits.get(p.input[0]!) : undefined;
  };
  const operand = (op: string) =>
    nodes.filter((n) => n.opType === op).map((n) => n.input.map((i) => (i ? constantOf(i) : undefined)).find((t) => t && t !== codes)).find((t) => t);
  const scale = operand("Mul");
  const zero = operand("Sub");
  if (scale) out.scales = numbers(scale);
  if (zero) out.zeroPoints = numbers(zero);
  return out;
}

const numel = (t: TensorProto) => t.dims.reduce((a, d) => a * Number(d), 1);

/** The nodes of every weight decode in `g` (weightDecode), keyed by the tensor each decode makes. */
export function weightDecodes(g: GraphProto): Map<string, WeightDecode> {
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output) producer.set(o, n);
  const out = new Map<string, WeightDecode>();
  for (const n of g.node) {
    if (DECODE_OPS.has(n.opType)) continue;
    for (const t of n.input) {
      const d = t && !out.has(t) && !inits.has(t) ? weightDecode(t, producer, inits) : undefined;
      if (d) out.set(t, d);
    }
  }
  return out;
}

function graphEntries(g: GraphProto, out: QuantStateEntry[]): void {
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output) producer.set(o, n);
  const qOf = new Map([...producer].filter(([, n]) => n.opType === "QuantizeLinear"));
  const decodes = weightDecodes(g);
  const decodeNodes = new Set([...decodes.values()].flatMap((d) => d.nodes));
  for (const n of g.node) {
    if (QDQ.has(n.opType) || decodeNodes.has(n)) continue;
    const name = n.name || n.output[0] || n.opType;
    const fused = FUSED.has(n.opType);
    n.input.forEach((t, i) => {
      if (!t) return;
      const dq = producer.get(t);
      const src = dq?.opType === "DequantizeLinear" ? dq : undefined;
      const decode = decodes.get(t);
      const role: QuantStateEntry["role"] = inits.has(t) || decode || (src?.input[0] && inits.has(src.input[0])) ? (i === 2 ? "bias" : "weight") : "input";
      if (decode) {
        const entry: QuantStateEntry = { node: name, op: n.opType, tensor: decode.codes.name, role, quantized: true, type: decode.type, granularity: decode.granularity };
        if (decode.scales?.length) entry.scale = { ...minMax(decode.scales), count: decode.scales.length };
        if (decode.zeroPoints?.length) entry.zeroPoint = minMax(decode.zeroPoints);
        out.push(entry);
      }
      else if (src) out.push({ node: name, op: n.opType, tensor: src.input[0] ?? t, role, ...dqState(src, inits, qOf), quantized: true });
      else if (fused) {
        const it = inits.get(t);
        if (it && QRANGE[elemTypeName(it.dataType)]) out.push({ node: name, op: n.opType, tensor: t, role, quantized: true, type: elemTypeName(it.dataType) });
      } else out.push({ node: name, op: n.opType, tensor: t, role, quantized: false, reason: "no Q/DQ in the model" });
    });
    for (const a of n.attribute) for (const sub of a.g ? [a.g] : a.graphs) graphEntries(sub, out);
  }
}

export function quantStateOfModel(m: ModelProto): QuantStateEntry[] {
  const out: QuantStateEntry[] = [];
  if (m.graph) graphEntries(m.graph, out);
  return out;
}

/**
 * The state a model file shows before the kernel sends any: none for a model with nothing quantized (no Q/DQ, no
 * integer op). Listing every node of a float model as "float" says nothing and buries the view under hundreds of
 * rows; the view says how to get a state instead (notQuantizedMessage).
 */
export function fileQuantState(m: ModelProto): QuantStateEntry[] {
  const entries = quantStateOfModel(m);
  return entries.some((e) => e.quantized) ? entries : [];
}

/** The Quantization State view's message for a model file with nothing quantized. */
export function notQuantizedMessage(fileName: string): string {
  return `${fileName} has no quantized tensors. Quantize this model or run analyze() in a PTQ notebook to see which tensors are quantized, how, and their SQNR.`;
}

/** Entries grouped by node, in first-seen order; a node is "quantized", "partial" or "float". */
export function groupByNode(entries: QuantStateEntry[]): Array<{ node: string; op: string; state: "quantized" | "partial" | "float"; entries: QuantStateEntry[] }> {
  const groups = new Map<string, QuantStateEntry[]>();
  for (const e of entries) groups.set(e.node, [...(groups.get(e.node) ?? []), e]);
  return [...groups].map(([node, list]) => {
    const q = list.filter((e) => e.quantized).length;
    return { node, op: list[0]!.op, state: q === 0 ? "float" : q === list.length ? "quantized" : "partial", entries: list };
  });
}

/** Analysis sends an exact tensor (no error at all) as this many dB: JSON has no Infinity (kernel/quant-state-display). */
const EXACT_DB = 300;

/** A measured SQNR as the view writes it. */
export function formatDb(db: number): string {
  return db >= EXACT_DB ? "exact" : `${db.toFixed(1)} dB`;
}

/** The tensor with the lowest SQNR (null and NaN from the wire are skipped), or undefined when none was analysed. */
export function worstEntry(entries: readonly QuantStateEntry[]): QuantStateEntry | undefined {
  let worst: QuantStateEntry | undefined;
  for (const e of entries) {
    if (typeof e.sqnrDb !== "number" || Number.isNaN(e.sqnrDb)) continue;
    if (!worst || e.sqnrDb < worst.sqnrDb!) worst = e;
  }
  return worst;
}

/** One line for a tensor: "int8 per-channel · scale 0.0021–0.013 · zp 0" or "float · excluded", and its SQNR when analysed. */
export function describeEntry(e: QuantStateEntry): string {
  const sqnr = typeof e.sqnrDb === "number" && !Number.isNaN(e.sqnrDb) ? ` · SQNR ${formatDb(e.sqnrDb)}` : "";
  if (!e.quantized) return `float · ${e.reason ?? "not quantized"}${sqnr}`;
  const parts = [`${e.type ?? "?"} ${e.granularity ?? ""}`.trim()];
  const g = (x: number) => Number(x.toPrecision(3)).toString();
  if (e.scale) parts.push(e.scale.count === 1 ? `scale ${g(e.scale.min)}` : `scale ${g(e.scale.min)}–${g(e.scale.max)} (${e.scale.count})`);
  if (e.zeroPoint) parts.push(e.zeroPoint.min === e.zeroPoint.max ? `zp ${e.zeroPoint.min}` : `zp ${e.zeroPoint.min}–${e.zeroPoint.max}`);
  if (e.range) parts.push(`range [${g(e.range[0])}, ${g(e.range[1])}]`);
  if (e.method) parts.push(e.method);
  return parts.join(" · ") + sqnr;
}
