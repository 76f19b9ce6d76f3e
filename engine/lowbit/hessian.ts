// The calibration side of GPTQ: run the model on the user's batches with every quantized MatMul's activation input
// exposed (one augmented session, one run per batch, optimizations off) and fold each batch into a K×K float64
// Σ xᵀx per activation. Memory stays flat in the number of batches: one batch's activations plus the matrices.
import { augmentModel } from "../calibrate/augment";
import { checkFeeds, modelInputs, type CalibrationData } from "../data/feeds";
import { OnnxError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import { createSession } from "../runtime/session";
import { HessianAccumulator } from "./gptq";

/** An activation feeding one or more quantized weights, with its reduction length K (its last axis). */
export interface HessianTarget {
  tensor: string;
  k: number;
}

export interface HessianCollectOptions {
  /** intra-op threads of the calibration session (default: onnxruntime's choice). */
  threads?: number;
  onProgress?(batches: number): void;
  signal?: AbortSignal;
}

export interface Hessians {
  /** Σ xᵀx per activation tensor, K×K row-major. */
  matrices: Map<string, Float64Array>;
  /** Rows (tokens, samples) seen per tensor. */
  rows: Map<string, number>;
  batches: number;
}

export async function collectHessians(
  model: Model,
  targets: readonly HessianTarget[],
  data: CalibrationData,
  options: HessianCollectOptions = {},
): Promise<Hessians> {
  const label = model.path ?? "<model>";
  const byTensor = new Map<string, HessianAccumulator>();
  for (const t of targets) {
    const seen = byTensor.get(t.tensor);
    if (seen && seen.k !== t.k) throw new OnnxError(`tensor "${t.tensor}" feeds weights with different K (${seen.k}, ${t.k})`, label);
    if (!seen) byTensor.set(t.tensor, new HessianAccumulator(t.k));
  }
  const result: Hessians = { matrices: new Map(), rows: new Map(), batches: 0 };
  if (byTensor.size === 0) return result;
  const { model: augmented, outputs } = augmentModel(model, [...byTensor.keys()], false);
  const session = await createSession(augmented, { optimization: "disabled", ...(options.threads ? { threads: options.threads } : {}) });
  const specs = modelInputs(model.proto);
  try {
    for await (const feeds of data) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error("calibration cancelled");
      checkFeeds(feeds, specs, `calibration batch ${result.batches + 1}`);
      const out = await session.run(feeds, outputs.map((o) => o.raw!));
      for (const o of outputs) {
        const acc = byTensor.get(o.tensor)!;
        const t = out[o.raw!]!;
        const last = t.dims[t.dims.length - 1];
        if (last !== acc.k) {
          throw new OnnxError(`activation "${o.tensor}" has shape [${t.dims.join(", ")}]; its last axis should be K = ${acc.k}`, label);
        }
        acc.add(t.data as Float32Array, `activation "${o.tensor}" (batch ${result.batches + 1})`);
      }
      result.batches++;
      options.onProgress?.(result.batches);
    }
  } finally {
    await session.dispose();
  }
  if (result.batches === 0) throw new OnnxError("the calibration data is empty: give at least one batch", label);
  for (const [t, acc] of byTensor) {
    result.matrices.set(t, acc.matrix());
    result.rows.set(t, acc.rows);
  }
  return result;
}
