// What a search compares: a model's outputs on the search data (or the logits a final Softmax reads), and the
// yardsticks that turn a candidate's outputs into one number against the float model's (SQNR, argmax agreement,
// top-1 against labels).
import type { Feeds } from "../../data/feeds";
import { logitsOrOutputs, producers, unmaskedBehind } from "../../onnx/graph";
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

/**
 * Runs `model` over `data` and returns its outputs per batch, in graph-output order, or the given tensors (any
 * float tensor of the graph) in the order given.
 */
export async function modelOutputs(model: Model, data: readonly Feeds[], options: RunOptions = {}, tensors?: readonly string[]): Promise<BatchOutput[][]> {
  const fetched = tensors ? model.withOutputs(model.outputInfos(tensors)) : model;
  const s = await createSession(fetched, { ep: options.ep, threads: options.threads });
  try {
    const names = tensors ? [...tensors] : s.outputs.map((o) => o.name);
    const out: BatchOutput[][] = [];
    for (const feeds of data) {
      const r = await s.run(feeds, names);
      out.push(names.map((n) => ({ data: Float32Array.from(r[n]!.data as ArrayLike<number>), dims: r[n]!.dims })));
    }
    return out;
  } finally {
    await s.dispose();
  }
}

/**
 * How a candidate is compared with the float model. "outputs": every graph output. "logits": the same, except that
 * an output a Softmax/LogSoftmax makes (directly or through Reshape/Flatten/Squeeze/Unsqueeze/Transpose) is
 * replaced by what that Softmax reads: a saturated probability vector hides most of the error in its logits and
 * turns the rest into all-or-nothing flips (measured on PP-OCRv3's recogniser: docs/mixed-precision.md); and an
 * output a comparison masks (a detector's peak mask) by the values behind the mask (unmaskedBehind).
 * "auto" (default) is "logits".
 */
export type Yardstick = "auto" | "outputs" | "logits";

/** The tensors `yardstick` compares in `model` (the float model: names are kept by conversion), in output order. */
export function comparedTensors(model: Model, yardstick: Yardstick = "auto"): string[] {
  if (yardstick === "outputs") return model.graph.output.map((o) => o.name);
  const made = producers(model.graph);
  return logitsOrOutputs(model.graph).map((t, i) => (t === model.graph.output[i]!.name ? (unmaskedBehind(made, t) ?? t) : t));
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

/**
 * Per sample, 1 where the candidate's argmax agrees with the reference's on the first compared tensor: on every row
 * of its last axis (a sequence model's every frame: "sample"), or per row ("row": each frame on its own).
 */
export function argmaxAgreement(reference: BatchOutput[][], candidate: BatchOutput[][], per: "row" | "sample"): Uint8Array {
  const out: number[] = [];
  reference.forEach((batch, b) => {
    const { data, dims } = batch[0]!;
    const cols = dims[dims.length - 1] ?? 1;
    const rows = data.length / cols;
    const samples = per === "row" ? rows : (dims[0] ?? 1);
    const want = argmaxRows({ rows, cols, data });
    const got = argmaxRows({ rows, cols, data: candidate[b]![0]!.data });
    const perSample = rows / samples;
    for (let s = 0; s < samples; s++) {
      let same = 1;
      for (let r = s * perSample; r < (s + 1) * perSample; r++) if (want[r] !== got[r]) same = 0;
      out.push(same);
    }
  });
  return Uint8Array.from(out);
}
