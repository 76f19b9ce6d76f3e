// Helpers for the recovery tests: tiny models built in code, seeded data, running a model, and quantizing one.
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeGraph, makeModel, makeNode, makeValueInfo } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import type { NodeProto, TensorProto } from "onnx-buf";
import { calibrate, convert, prepare, release, type QConfig } from "../../../engine/quant/index";
import { createSession } from "../../../engine/runtime/session";
import type { Feeds } from "../../../engine/data/feeds";
import { errorFigures } from "../../../engine/analysis/error-stats";
import { seededRandom } from "../../../engine/data/random";

export const F = DataType.FLOAT;

/** Deterministic uniform floats in [lo, hi) (the engine's own seeded generator). */
export function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = seededRandom(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
}

export const init = (name: string, dims: number[], data: ArrayLike<number>): TensorProto => makeTensor(name, F, dims, data);

export function model(nodes: NodeProto[], input: [string, number[]], output: [string, number[]], inits: TensorProto[], opset = 13): Model {
  const g = makeGraph("g", nodes, [makeValueInfo(input[0], F, input[1])], [makeValueInfo(output[0], F, output[1])], { initializers: inits });
  return Model.fromProto(makeModel(g, { opsets: { "": opset }, producerName: "ptq-test" }));
}


/**
 * x[N, T, C] · W[C, K] → Softmax over K: a sequence model (engine/quant/sequence-check decodes its argmax per step),
 * and 16 single rows whose steps are correlated in the features (learned rounding has something to exploit).
 */
export function sequenceModel(T: number, C: number, K: number): { m: Model; rows: Feeds[] } {
  const next = seededRandom(10);
  const nodes = [makeNode("MatMul", ["x", "W"], ["z"], { name: "mm" }), makeNode("Softmax", ["z"], ["y"], { name: "sm", attributes: [attr.int("axis", -1)] })];
  const g = makeGraph("g", nodes, [makeValueInfo("x", F, ["N", T, C])], [makeValueInfo("y", F, ["N", T, K])], {
    initializers: [init("W", [C, K], Float32Array.from({ length: C * K }, () => 0.5 * (next() - 0.5)))],
  });
  const m = Model.fromProto(makeModel(g, { opsets: { "": 17 }, producerName: "ptq-test" }));
  const rows = Array.from({ length: 16 }, (_, r) => {
    const rnd = seededRandom(1000 + r);
    const data = new Float32Array(T * C);
    for (let t = 0; t < T; t++) {
      const common = Math.sin(t + 6 * rnd());
      for (let c = 0; c < C; c++) data[t * C + c] = common * (1 + 0.3 * rnd()) + 0.2 * (rnd() - 0.5);
    }
    return { x: { data, dims: [1, T, C] } };
  });
  return { m, rows };
}

export function batches(input: string, dims: number[], count: number, seed: number, lo = -1, hi = 1): Feeds[] {
  const n = dims.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, (_, k) => ({ [input]: { data: rand(n, seed + k, lo, hi), dims } }));
}

/** The first output of `m` on every batch, concatenated. */
export async function outputs(m: Model, data: Feeds[]): Promise<Float32Array> {
  const s = await createSession(m, { optimization: "disabled" });
  try {
    const parts: Float32Array[] = [];
    for (const b of data) {
      const r = await s.run(b);
      parts.push(r[m.graph.output[0]!.name]!.data as Float32Array);
    }
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  } finally {
    await s.dispose();
  }
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

/** Quantizes `m` (no ORT pre-optimization: the tests' models are already in final form), returns the float model
 * the engine used and the QDQ one. */
export async function quantize(m: Model, calib: Feeds[], config: QConfig = {}): Promise<{ float: Model; q: Model }> {
  const p = await prepare(m, config, { optimize: false });
  try {
    await calibrate(p, calib);
  } finally {
    await release(p);
  }
  return { float: p.model, q: (await convert(p)).model };
}

/** Output SQNR (dB) of `q` against `ref` on `data`. */
export async function outputSqnr(ref: Model, q: Model, data: Feeds[]): Promise<number> {
  return errorFigures(await outputs(ref, data), await outputs(q, data)).sqnrDb;
}

/** SQNR (dB) of symmetric per-tensor int8 quantization of a weight (what per-tensor weights do to it). */
export function perTensorWeightSqnr(w: Float32Array): number {
  const scale = maxAbs(w) / 127;
  const q = Float32Array.from(w, (v) => Math.max(-127, Math.min(127, Math.round(v / scale))) * scale);
  return errorFigures(w, q).sqnrDb;
}
