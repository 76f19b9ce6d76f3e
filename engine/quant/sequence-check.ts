// What the quantized model reads where a model reads sequences: a graph output that a Softmax/LogSoftmax makes
// (directly or through data movement) with [batch, time, classes] rows is decoded greedily (argmax per time step,
// repeats merged, class 0 dropped: CTC's blank in PaddleOCR's and most CTC exports), on the calibration rows
// calibrate() kept, beside the float model's reading. A recogniser loses a whole line to one changed frame, so its
// outputs' SQNR says little about its lines: the summary says how many rows read as FP32 reads them, and what reads
// FP32's lines when that matters; with wideActivations unset, calibrate() widens a sequence model's activations by
// default (sequenceOutputs; docs/calibration.md "Sequence models").
import type { Feeds } from "../data/feeds";
import { logitsBehind, producers } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { valueInfoTensor } from "../onnx/proto";
import type { ExecutionProvider } from "../runtime/session";
import type { OutputTensor } from "../runtime/tensors";
import { ctcAgreement, outputsOn } from "../calibrate/activation-precision";

/**
 * The graph outputs a Softmax or LogSoftmax makes, directly or through data movement (Reshape, Transpose …), that
 * may be [batch, time, classes]: declared with rank 3, or with no rank (PaddleOCR's opset-11 Softmax, upgraded, ends
 * in a Reshape of unknown shape).
 */
export function softmaxOutputs(model: Model): string[] {
  const made = producers(model.graph);
  return model.graph.output
    .filter((o) => {
      const rank = valueInfoTensor(o)?.shape?.length;
      return rank === undefined || rank === 3;
    })
    .map((o) => o.name)
    .filter((o) => logitsBehind(made, o) !== undefined);
}

/** The softmax outputs that hold [batch, time, classes] rows on `row` (one float run; none for a classifier). */
export async function sequenceOutputs(float: Model, row: Feeds | undefined, ep?: ExecutionProvider): Promise<string[]> {
  const names = softmaxOutputs(float);
  if (names.length === 0 || row === undefined) return [];
  const [out] = await outputsOn(float, [row], { ep });
  return names.filter((n) => isSequence(out![n]));
}

export interface SequenceCheck {
  /** The outputs read as sequences. */
  outputs: string[];
  /** Rows (samples) decoded, and how many of them the quantized model decodes as the float model does. */
  rows: number;
  same: number;
}

/**
 * Decodes the softmax outputs of `float` and `quantized` that hold [batch, time, classes] rows (time and classes
 * above 1) on `rows`; undefined when the model has none (a classifier's [batch, classes] is not a sequence).
 * `quantized` may be a function: it is converted only once the float outputs turn out to be sequences. `reference`:
 * the float model's outputs on `rows` where the caller already has them (used where they hold every softmax output).
 */
export async function checkSequences(
  float: Model,
  quantized: Model | (() => Promise<Model>),
  rows: readonly Feeds[],
  ep?: ExecutionProvider,
  reference?: readonly Record<string, OutputTensor>[],
): Promise<SequenceCheck | undefined> {
  const names = softmaxOutputs(float);
  if (names.length === 0 || rows.length === 0) return undefined;
  const pick = (all: readonly Record<string, OutputTensor>[]) =>
    all.map((r) => Object.fromEntries(names.filter((n) => isSequence(r[n])).map((n) => [n, r[n]!])));
  // The float model's outputs where the caller has them (every softmax output among them), else run it.
  const given = reference?.length === rows.length && names.every((n) => n in reference[0]!) ? reference : undefined;
  const ref = pick(given ?? (await outputsOn(float, rows, { ep })));
  const outputs = Object.keys(ref[0] ?? {});
  if (outputs.length === 0) return undefined;
  const candidate = typeof quantized === "function" ? await quantized() : quantized;
  const { same, rows: decoded } = ctcAgreement(ref, pick(await outputsOn(candidate, rows, { ep })));
  return { outputs, rows: decoded, same };
}

function isSequence(t: OutputTensor | undefined): boolean {
  return t !== undefined && t.data instanceof Float32Array && t.dims.length === 3 && t.dims[1]! > 1 && t.dims[2]! > 1;
}

/** The summary's note for a check. */
export function sequenceNote(c: SequenceCheck, widened: "default" | "asked" | false = false): string {
  const head = `sequence outputs (${c.outputs.join(", ")}): ${c.same} of ${c.rows} calibration rows decode as the float model's ` +
    `(argmax per step, repeats merged, class 0 dropped). A recogniser loses a whole line to one changed step`;
  if (widened === "default") {
    return `${head}, so a sequence model gets 16-bit activations where they matter most by default (see wideActivations); ` +
      `where speed matters more than FP32's lines, --wide-activations 0 keeps every activation at 8 bits (docs/calibration.md "Sequence models")`;
  }
  if (widened === "asked") {
    return `${head}; the activations that matter most are at 16 bits as asked (see wideActivations), which runs partly in float on ` +
      `onnxruntime's CPU kernels; --target-sqnr 22 can keep more of FP32's lines (docs/calibration.md "Sequence models")`;
  }
  return `${head}: where FP32's lines matter more than speed, --wide-activations 0.2 or --target-sqnr 22 (both run partly in ` +
    `float on onnxruntime's CPU kernels; docs/calibration.md "Sequence models")`;
}
