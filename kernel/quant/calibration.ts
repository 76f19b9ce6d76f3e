// The seam between the quantizer and calibration. prepare() decides WHICH tensors to observe; this file runs the
// observation. It follows the Calibrator interface of kernel/calibrate (new Calibrator(model, tensors, options),
// collect(data, {onProgress, signal}), ranges()); until that lands it is a streaming min/max over a copy of the
// model with the observed tensors added as outputs, run with graph optimizations off, one batch in memory at a time.
import { create } from "@bufbuild/protobuf";
import { ValueInfoProtoSchema } from "onnx-buf";
import type { CalibrationData, Feeds } from "../data/feeds";
import type { Model } from "../onnx/model";
import { createSession, type ExecutionProvider } from "../runtime/session";

export interface CollectOptions {
  onProgress?: (samples: number) => void;
  signal?: AbortSignal;
}

export type RangeMap = Map<string, { min: number; max: number }>;

export interface CalibrationRunOptions {
  ep?: ExecutionProvider;
  /** Observed tensors fetched per run (exposed outputs cost memory: see notes/onnxruntime-node-facts.md). */
  chunk?: number;
}

/** Streams `data` through the model and widens each observed tensor's [min, max]; NaN/Inf are skipped and counted. */
export async function collectRanges(
  model: Model,
  tensors: readonly string[],
  data: CalibrationData,
  ranges: RangeMap,
  options: CollectOptions & CalibrationRunOptions = {},
): Promise<{ samples: number; nonFinite: Map<string, number> }> {
  const copy = model.clone();
  const g = copy.graph;
  const outputs = new Set(g.output.map((o) => o.name));
  for (const t of tensors) if (!outputs.has(t)) g.output.push(create(ValueInfoProtoSchema, { name: t }));
  const session = await createSession(copy, { optimization: "disabled", ep: options.ep ?? "cpu" });
  const nonFinite = new Map<string, number>();
  let samples = 0;
  let batches = 0;
  try {
    for await (const feeds of data as AsyncIterable<Feeds>) {
      options.signal?.throwIfAborted();
      // Plain {data, dims, type}: an onnxruntime Tensor keeps `data` on its prototype, which a spread would drop.
      const plain = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { data: t.data, dims: t.dims, type: t.type }]));
      const out = await session.run(plain as never, tensors);
      for (const name of tensors) {
        const d = out[name]?.data;
        if (!d || Array.isArray(d)) continue;
        let lo = Infinity;
        let hi = -Infinity;
        let bad = 0;
        for (let i = 0; i < d.length; i++) {
          const v = Number(d[i]);
          if (v - v !== 0) bad++;
          else {
            if (v < lo) lo = v;
            if (v > hi) hi = v;
          }
        }
        if (bad) nonFinite.set(name, (nonFinite.get(name) ?? 0) + bad);
        if (lo > hi) continue;
        const r = ranges.get(name);
        ranges.set(name, r ? { min: Math.min(r.min, lo), max: Math.max(r.max, hi) } : { min: lo, max: hi });
      }
      const first = Object.values(feeds)[0];
      samples += first?.dims[0] ?? 1;
      batches++;
      options.onProgress?.(samples);
    }
  } finally {
    await session.dispose();
  }
  if (batches === 0) throw new Error("calibration data is empty: give at least one batch of inputs");
  return { samples, nonFinite };
}
