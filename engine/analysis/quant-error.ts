// Where does quantization lose accuracy? Per-tensor error between the float model and its quantized twin, for
// weights (dequantized initializer vs the float one) and activations (the float model's tensor vs what the
// quantized model's consumers read: its DequantizeLinear output), matched by name.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { augmentModel } from "../calibrate/augment";
import type { Feeds } from "../data/feeds";
import { DataType } from "../onnx/dtype";
import { producers } from "../onnx/graph";
import { attrInt } from "../onnx/proto";
import { readTensor, tensorToFloat32 } from "../onnx/tensor";
import type { Model } from "../onnx/model";
import { decodedWeight } from "../quant/unfused-weights";
import { createSession, type ExecutionProvider, type Session } from "../runtime/session";
import { ErrorAccumulator, errorFigures, type ErrorFigures } from "./error-stats";

export interface TensorError extends ErrorFigures {
  tensor: string;
  kind: "weight" | "bias" | "activation" | "output";
  /** The node that produces (activation) or reads (weight) the tensor in the float model. */
  node: string;
  opType: string;
}

export interface CompareOptions {
  ep?: ExecutionProvider;
  threads?: number;
}

// Our QDQ rewrite names a weight's DequantizeLinear output <weight>_DequantizeLinear_Output, and gives an
// activation's DequantizeLinear output the activation's own name (the producer writes <name>_float), so consumers
// and this comparison find activations by their float-model names.
const DQ_SUFFIX = "_DequantizeLinear_Output";
const label = (n: NodeProto) => n.name || n.output[0] || n.opType;

/**
 * The codes, scale, zero point and axis a weight is dequantized with: its DequantizeLinear's, or those of the
 * Cast (→ Sub) → Mul decode a written file has where onnxruntime runs the Conv in float (engine/quant/unfused-weights,
 * which keeps the DequantizeLinear's output name), or undefined.
 */
function dequantization(n: NodeProto, inits: ReadonlyMap<string, TensorProto>, producer: ReadonlyMap<string, NodeProto>) {
  if (n.opType === "DequantizeLinear") {
    const [x, s, z] = [inits.get(n.input[0] ?? ""), inits.get(n.input[1] ?? ""), n.input[2] ? inits.get(n.input[2]) : undefined];
    return x && s ? { x, s, z, axis: attrInt(n, "axis", 1) } : undefined;
  }
  const d = decodedWeight(n, inits, producer);
  return d && { x: d.codes, s: d.scale, z: d.zero, axis: d.axis };
}

/** Weight (and int32 bias) error of every initializer the quantized model dequantizes, against the float one. */
export function weightErrors(reference: Model, quantized: Model): TensorError[] {
  const refInits = new Map(reference.graph.initializer.map((t) => [t.name, t]));
  const qInits = new Map(quantized.graph.initializer.map((t) => [t.name, t]));
  const producer = producers(quantized.graph);
  const readers = firstReaders(reference.graph);
  const out: TensorError[] = [];
  for (const dq of quantized.graph.node) {
    if (!dq.output[0]?.endsWith(DQ_SUFFIX)) continue;
    const original = dq.output[0].slice(0, -DQ_SUFFIX.length);
    const ref = refInits.get(original);
    const found = ref ? dequantization(dq, qInits, producer) : undefined;
    if (!ref || !found) continue; // an activation's Q/DQ pair, or a weight produced by a node
    const { x, s, z } = found;
    const codes = readTensor(x).data;
    const scale = tensorToFloat32(s);
    const zp = z ? readTensor(z).data : undefined;
    const dims = x.dims.map(Number);
    const axis = scale.length > 1 ? normalizeAxis(found.axis, dims.length) : 0;
    const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const deq = new Float32Array(codes.length);
    for (let i = 0; i < codes.length; i++) {
      const c = scale.length > 1 ? Math.floor(i / inner) % scale.length : 0;
      // A decode's zero point may be one shared scalar (uint8 weights' 128) beside per-channel scales.
      deq[i] = (Number(codes[i]) - (zp ? Number(zp.length === 1 ? zp[0] : zp[c]) : 0)) * scale[c]!;
    }
    const reader = readers.get(original);
    const kind = x.dataType === DataType.INT32 ? "bias" : "weight";
    out.push({ tensor: original, kind, node: reader ? label(reader) : "", opType: reader?.opType ?? "", ...errorFigures(tensorToFloat32(ref), deq) });
  }
  return out;
}

/**
 * Activation and output error over `data`, streamed batch by batch (memory does not grow with the number of
 * batches). Compares every activation the quantized model quantizes, plus the graph outputs.
 */
export async function activationErrors(reference: Model, quantized: Model, data: Iterable<Feeds> | AsyncIterable<Feeds>, options: CompareOptions = {}): Promise<TensorError[]> {
  const dqOutputs = new Set(quantized.graph.node.filter((n) => n.opType === "DequantizeLinear").map((n) => n.output[0]));
  const refProducers = new Map<string, NodeProto>();
  for (const n of reference.graph.node) for (const o of n.output) refProducers.set(o, n);
  const outputs = new Set(reference.graph.output.map((o) => o.name));
  const pairs: { ref: string; q: string; kind: TensorError["kind"] }[] = [];
  for (const [t] of refProducers) {
    if (outputs.has(t)) pairs.push({ ref: t, q: t, kind: "output" });
    else if (dqOutputs.has(t)) pairs.push({ ref: t, q: t, kind: "activation" });
    else if (dqOutputs.has(t + DQ_SUFFIX)) pairs.push({ ref: t, q: t + DQ_SUFFIX, kind: "activation" });
  }
  if (pairs.length === 0) return [];
  const refAug = augmentModel(reference, pairs.map((p) => p.ref), false);
  const qAug = augmentModel(quantized, pairs.map((p) => p.q), false);
  const sessionOptions = { ep: options.ep, threads: options.threads, optimization: "disabled" as const };
  let refSession: Session | undefined;
  let qSession: Session | undefined;
  try {
    refSession = await createSession(refAug.model, sessionOptions);
    qSession = await createSession(qAug.model, sessionOptions);
    const acc = pairs.map(() => new ErrorAccumulator());
    let batches = 0;
    for await (const feeds of data) {
      const a = await refSession.run(feeds);
      const b = await qSession.run(feeds);
      pairs.forEach((p, i) => acc[i]!.add(a[refAug.outputs[i]!.raw!]!.data as Float32Array, b[qAug.outputs[i]!.raw!]!.data as Float32Array, p.ref));
      batches++;
    }
    if (batches === 0) throw new Error("no data: give at least one batch of inputs to compare the models on");
    return pairs.map((p, i) => {
      const n = refProducers.get(p.ref)!;
      return { tensor: p.ref, kind: p.kind, node: label(n), opType: n.opType, ...acc[i]!.result() };
    });
  } finally {
    await refSession?.dispose();
    await qSession?.dispose();
  }
}

function firstReaders(graph: GraphProto): Map<string, NodeProto> {
  const m = new Map<string, NodeProto>();
  for (const n of graph.node) for (const i of n.input) if (i && !m.has(i)) m.set(i, n);
  return m;
}

function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
