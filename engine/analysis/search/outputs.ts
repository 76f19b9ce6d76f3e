// What a search compares: a model's outputs on the search data, and the yardsticks that turn a candidate's
// outputs into one number against the float model's (output SQNR, top-1 against labels).
import type { Feeds } from "../../data/feeds";
import type { Model } from "../../onnx/model";
import { createSession, type ExecutionProvider } from "../../runtime/session";
import { ErrorAccumulator } from "../error-stats";
import { argmaxRows } from "../metrics";

/** One output tensor of one batch, as float32. */
export interface BatchOutput {
  data: Float32Array;
  dims: number[];
}

export interface RunOptions {
  ep?: ExecutionProvider;
  threads?: number;
}

/** Runs `model` over `data` and returns its outputs per batch, in graph-output order. */
export async function modelOutputs(model: Model, data: readonly Feeds[], options: RunOptions = {}): Promise<BatchOutput[][]> {
  const s = await createSession(model, { ep: options.ep, threads: options.threads });
  try {
    const names = s.outputs.map((o) => o.name);
    const out: BatchOutput[][] = [];
    for (const feeds of data) {
      const r = await s.run(feeds as never, names);
      out.push(names.map((n) => ({ data: Float32Array.from(r[n]!.data as ArrayLike<number>), dims: r[n]!.dims })));
    }
    return out;
  } finally {
    await s.dispose();
  }
}

/** Output SQNR (dB) of `candidate` against `reference`, every output of every batch together. */
export function outputSqnr(reference: BatchOutput[][], candidate: BatchOutput[][]): number {
  const acc = new ErrorAccumulator();
  reference.forEach((batch, b) => batch.forEach((t, i) => acc.add(t.data, candidate[b]![i]!.data)));
  return acc.result().sqnrDb;
}

/** Top-1 accuracy (%) of the first output over all batches, against one class label per sample in order. */
export function top1(outputs: BatchOutput[][], labels: Int32Array): number {
  return percentCorrect(correctness(outputs, labels));
}

/** The share (%) of samples a correctness vector marks right. */
export function percentCorrect(ok: Uint8Array): number {
  return (100 * ok.reduce((a, b) => a + b, 0)) / ok.length;
}

/** Per sample, 1 where the first output's argmax is the label (batches in order). */
export function correctness(outputs: BatchOutput[][], labels: Int32Array): Uint8Array {
  const ok = new Uint8Array(labels.length);
  let seen = 0;
  for (const batch of outputs) {
    const { data, dims } = batch[0]!;
    const rows = dims[0] ?? 1;
    const pred = argmaxRows({ rows, cols: data.length / rows, data });
    for (let r = 0; r < rows; r++, seen++) {
      if (seen >= labels.length) throw new Error(`the data has more samples than the ${labels.length} labels`);
      ok[seen] = pred[r] === labels[seen] ? 1 : 0;
    }
  }
  if (seen !== labels.length) throw new Error(`the data has ${seen} samples but there are ${labels.length} labels`);
  return ok;
}
