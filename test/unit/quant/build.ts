// Tiny models built in code for the quantizer tests (ONNX Runtime's own tests do the same), and a runner.
import { toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from "onnx-buf";
import * as ort from "onnxruntime-node";
import { makeGraph, makeModel as makeModelProto, makeValueInfo } from "../../../engine/onnx/proto";

export const valueInfo = makeValueInfo;

export function makeModel(
  nodes: NodeProto[],
  inputs: ValueInfoProto[],
  outputs: ValueInfoProto[],
  initializers: TensorProto[] = [],
  opset = 17,
): ModelProto {
  return makeModelProto(makeGraph("g", nodes, inputs, outputs, { initializers }), { opsets: { "": opset }, producerName: "ptq-test" });
}

export async function runModel(
  model: ModelProto | Uint8Array,
  feeds: Record<string, ort.Tensor>,
  level: "disabled" | "all" = "all",
): Promise<Record<string, ort.Tensor>> {
  const bytes = model instanceof Uint8Array ? model : toBinary(ModelProtoSchema, model);
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level, intraOpNumThreads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** A deterministic pseudo-random float array (mulberry32), uniform in [lo, hi). */
export function randomFloats(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

import { Model } from "../../../engine/onnx/model";
import { calibrate, convert, prepare, release, type QConfig, type QuantizationSummary } from "../../../engine/quant/index";
import { lowerToQOperator } from "../../../engine/quant/qoperator";
import { sqnr } from "../../../engine/quant/math";

export interface TinyResult {
  qdq: Model;
  summary: QuantizationSummary;
  /** Op type counts of the QDQ model. */
  ops: Record<string, number>;
  /** Op type counts after onnxruntime's QDQ fusions (what actually runs). */
  fused: Record<string, number>;
  /** Worst SQNR (dB) over the outputs, quantized vs float, on held-out inputs. */
  sqnr: number;
}

export function opCounts(m: ModelProto): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of m.graph!.node) c[n.opType] = (c[n.opType] ?? 0) + 1;
  return c;
}

/** Quantizes a tiny model with random calibration data and measures it against float on fresh inputs. */
export async function quantizeTiny(
  proto: ModelProto,
  inputDims: Record<string, number[]>,
  config: QConfig = {},
  lo = -1,
  hi = 1,
): Promise<TinyResult> {
  const model = Model.fromProto(proto);
  const prepared = await prepare(model, config, { optimize: false });
  const batch = (seed: number) =>
    Object.fromEntries(
      Object.entries(inputDims).map(([k, d], i) => [k, new ort.Tensor("float32", randomFloats(d.reduce((a, b) => a * b, 1), seed * 31 + i, lo, hi), d)]),
    );
  await calibrate(prepared, [1, 2, 3, 4].map(batch));
  await release(prepared);
  const { model: qdq, summary } = await convert(prepared);
  const fused = opCounts((await lowerToQOperator(qdq)).proto);
  const feeds = batch(99);
  const ref = await runModel(proto, feeds, "disabled");
  const got = await runModel(qdq.proto, feeds, "all");
  let worst = Infinity;
  for (const k of Object.keys(ref)) worst = Math.min(worst, sqnr(ref[k]!.data as Float32Array, got[k]!.data as Float32Array));
  return { qdq, summary, ops: opCounts(qdq.proto), fused, sqnr: worst };
}
