// evaluate(): one metric for several models on the same labelled samples, with a confidence interval for each
// score and a paired interval (and, for accuracy, an exact McNemar p-value) for each model's difference from the
// first. Without labels the first model (normally FP32) is the reference: agreement with its predictions, or
// closeness to its outputs.

import { requireInputs, feedsBatch, sampleAxes, sliceRows, sliceSamples, type Feeds, type Tensor } from "./feeds";
import { asRows, argmaxRows, classLabels, errorCounts, macroF1, perSampleCosine, perSampleMse, perSamplePsnr, sequences, topkCorrect, type SequenceOptions } from "./metrics";
import { fixedBatchSize, inputSpecsOf } from "../data/feeds";
import type { ExecutionProvider } from "../runtime/session";
import { loadModel, namedModels, openModel, type BenchmarkModels, type ModelSource } from "./benchmark";
import { bootstrapStatistic, meanInterval, pairedBootstrapMeanDiff, pairedProportionDiff, wilsonInterval, type Interval } from "./stats";
import os from "node:os";
import type { Model } from "../onnx/model";
import { oneValuePerSample, valueInfoTensor } from "../onnx/proto";
import { softmaxOutputs } from "../quant/sequence-check";

export type MetricSpec =
  | "top1"
  | "top5"
  | "f1"
  | "mse"
  | "psnr"
  | "cosine"
  | "cer"
  | "wer"
  | "agreement"
  | { kind: "topk"; k: number }
  | { kind: "psnr"; peak: number }
  | { kind: "cer" | "wer"; sequence: SequenceOptions };

export interface LabelledData {
  /** Every sample's inputs; the first dimension of each tensor is the sample index. */
  inputs: Feeds;
  /** Class ids ([N] or [N,1]), one-hot rows, regression targets shaped like the output, or token sequences. */
  labels?: Tensor;
}

export interface EvaluateOptions {
  /** Output to score; default the model's first output. */
  output?: string;
  /** Samples per run. Default 64. */
  batchSize?: number;
  /** Score only the first `limit` samples. */
  limit?: number;
  threads?: number;
  ep?: ExecutionProvider;
  confidence?: number;
}

export interface ModelScore {
  name: string;
  score: Interval;
  /** candidate − first model, paired per sample; absent on the first model and for agreement. */
  vsFirst?: {
    diff: Interval;
    pValue?: number;
    method: "mcnemar" | "paired-bootstrap";
    /** For top-k: samples only the first model got right, and only this one got right. */
    discordant?: { onlyFirst: number; onlyThis: number };
  };
}

export interface EvaluationJson {
  kind: "ptq.evaluation";
  version: 1;
  metric: string;
  higherIsBetter: boolean;
  /** What each model is scored against. */
  reference: "labels" | "first model";
  samples: number;
  models: ModelScore[];
  notes: string[];
}

export class EvaluationResult {
  constructor(readonly json: EvaluationJson) {}
  get models(): ModelScore[] {
    return this.json.models;
  }
  toJSON(): EvaluationJson {
    return this.json;
  }
}

/** Runs one model over all samples in batches and stacks the chosen output along the first axis. */
async function collectOutput(src: ModelSource, name: string, data: Feeds, n: number, opts: EvaluateOptions): Promise<Tensor> {
  const session = await openModel(src, opts.threads ?? os.availableParallelism(), opts.ep ?? "cpu");
  try {
    requireInputs(data, session.inputs, name);
    const outName = opts.output ?? session.outputs[0]?.name;
    if (!outName || !session.outputs.some((o) => o.name === outName)) {
      throw new Error(`${name}: no output "${outName}"; outputs are ${session.outputs.map((o) => `"${o.name}"`).join(", ")}`);
    }
    // A fixed first dimension is the only batch size the model accepts.
    const fixedBatch = fixedBatchSize(inputSpecsOf(session.inputs));
    const isFixed = fixedBatch !== undefined;
    const bs = fixedBatch ?? opts.batchSize ?? 64;
    if (isFixed && n % bs !== 0) throw new Error(`${name}: the model takes batches of exactly ${bs}, and ${n} samples do not divide into them; set limit to a multiple of ${bs}`);
    const parts: Tensor[] = [];
    const axes = sampleAxes(session.inputs);
    for (let s = 0; s < n; s += bs) {
      const feeds: Record<string, Tensor> = {};
      for (const i of session.inputs) feeds[i.name] = sliceSamples(data[i.name]!, axes.get(i.name)!, s, Math.min(bs, n - s));
      parts.push((await session.run(feeds, [outName]))[outName]!);
    }
    const per = parts[0]!.data.length / parts[0]!.dims[0]!;
    const out = new Float32Array(n * per);
    let at = 0;
    for (const p of parts) {
      for (let i = 0; i < p.data.length; i++) out[at++] = Number(p.data[i]!);
    }
    return { type: "float32", dims: [n, ...parts[0]!.dims.slice(1)], data: out };
  } finally {
    await session.dispose();
  }
}

/** The argmax along the last axis at every position of every sample ([N, C]: one position per sample). */
function positionArgmax(t: Tensor): { argmax: Int32Array; positions: number } {
  const rows = asRows(t, "output");
  const cols = t.dims.length > 2 ? t.dims[t.dims.length - 1]! : rows.cols;
  const positions = rows.cols / cols;
  return { argmax: argmaxRows({ rows: rows.rows * positions, cols, data: rows.data }), positions };
}

/**
 * What a comparison without labels scores by default: agreement of predictions where `output` holds class scores
 * (declared [N, C] with C not 1); on a Softmax's [N, T, C] rows, the character error rate of the greedy CTC reading
 * (class 0 the blank, as the quantize summary reads sequences) against the first model's: a frame that flips
 * between blank and a repeated character changes no line; mean squared error where a sample's output is one value
 * (a wake-word probability: a cosine of one number is only its sign); else cosine closeness to the first model's
 * output (a detector's map, box offsets: their argmax means nothing).
 */
export function unlabelledMetric(model: Model, output?: string): MetricSpec {
  const o = output === undefined ? model.graph.output[0] : model.graph.output.find((x) => x.name === output);
  if (!o) return "cosine";
  if (softmaxOutputs(model).includes(o.name)) return { kind: "cer", sequence: { ctcBlank: 0 } };
  const shape = valueInfoTensor(o)?.shape;
  if (shape?.length === 2 && shape[1] !== 1) return "agreement";
  return oneValuePerSample(o) ? "mse" : "cosine";
}

interface MetricPlan {
  name: string;
  higherIsBetter: boolean;
}

function plan(metric: MetricSpec): MetricPlan {
  const kind = typeof metric === "string" ? metric : metric.kind;
  switch (kind) {
    case "top1":
    case "top5":
      return { name: kind, higherIsBetter: true };
    case "topk":
      return { name: `top${(metric as { k: number }).k}`, higherIsBetter: true };
    case "mse":
    case "cer":
    case "wer":
      return { name: kind, higherIsBetter: false };
    default:
      return { name: kind, higherIsBetter: true };
  }
}

/**
 * Scores `models` on `data` by `metric`; by default top-1 against the labels, or without labels what fits the first
 * model's output (unlabelledMetric: agreement on class scores, CER of a CTC reading, mse on one value per sample, cosine on a map).
 */
export async function evaluate(models: BenchmarkModels, data: LabelledData, metric?: MetricSpec, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  const entries = namedModels(models, "evaluate");
  metric ??= data.labels ? "top1" : unlabelledMetric(await loadModel(entries[0]![1]), options.output);
  const available = feedsBatch(data.inputs);
  const n = Math.min(available, options.limit ?? available);
  if (data.labels && (data.labels.dims[0] ?? 0) < n) throw new Error(`evaluate: ${n} samples but only ${data.labels.dims[0]} labels`);
  const outputs: Tensor[] = [];
  for (const [name, src] of entries) outputs.push(await collectOutput(src, name, data.inputs, n, options));

  const level = options.confidence ?? 0.95;
  const p = plan(metric);
  const kind = typeof metric === "string" ? metric : metric.kind;
  const labels = data.labels ? sliceRows(data.labels, 0, n) : undefined;
  const notes: string[] = [];
  const scores: ModelScore[] = [];
  let reference: EvaluationJson["reference"] = labels ? "labels" : "first model";
  let metricName = p.name;

  const isTopk = kind === "top1" || kind === "top5" || kind === "topk";
  if ((isTopk && !labels) || kind === "agreement") {
    // No labels: how often each model's top-1 equals the first model's.
    const ref = positionArgmax(outputs[0]!);
    metricName = "agreement";
    reference = "first model";
    if (isTopk) notes.push("no labels given: scoring top-1 agreement with the first model instead of accuracy");
    if (ref.positions > 1) notes.push(`agreement per sample: the argmax along the output's last axis must match at all ${ref.positions} positions (a sequence model's every time step)`);
    outputs.forEach((o, i) => {
      const pred = positionArgmax(o).argmax;
      let agree = 0;
      for (let j = 0; j < n; j++) {
        let same = 1;
        for (let p = j * ref.positions; p < (j + 1) * ref.positions && same; p++) if (pred[p] !== ref.argmax[p]) same = 0;
        agree += same;
      }
      scores.push({ name: entries[i]![0], score: wilsonInterval(agree, n, level) });
    });
  } else if (isTopk) {
    const k = kind === "top1" ? 1 : kind === "top5" ? 5 : (metric as { k: number }).k;
    const y = classLabels(labels!);
    const correct = outputs.map((o) => topkCorrect(asRows(o, "output"), y, k));
    correct.forEach((c, i) => {
      const s: ModelScore = { name: entries[i]![0], score: wilsonInterval(c.reduce((a, v) => a + v, 0), n, level) };
      if (i > 0) {
        const d = pairedProportionDiff(correct[0]!, c, level);
        s.vsFirst = { diff: d.diff, pValue: d.pValue, method: "mcnemar", discordant: { onlyFirst: d.onlyA, onlyThis: d.onlyB } };
      }
      scores.push(s);
    });
  } else if (kind === "f1") {
    const y = labels ? classLabels(labels) : argmaxRows(asRows(outputs[0]!, "output"));
    const preds = outputs.map((o) => argmaxRows(asRows(o, "output")));
    preds.forEach((pr, i) => {
      const s: ModelScore = { name: entries[i]![0], score: bootstrapStatistic(n, (idx) => macroF1(pr, y, idx), level) };
      if (i > 0) s.vsFirst = { diff: bootstrapStatistic(n, (idx) => macroF1(pr, y, idx) - macroF1(preds[0]!, y, idx), level), method: "paired-bootstrap" };
      scores.push(s);
    });
  } else if (kind === "mse" || kind === "psnr" || kind === "cosine") {
    const target = asRows(labels ?? outputs[0]!, labels ? "labels" : "first model's output");
    const peak = typeof metric === "object" && metric.kind === "psnr" ? metric.peak : 1;
    const per = outputs.map((o) => {
      const r = asRows(o, "output");
      return kind === "mse" ? perSampleMse(r, target) : kind === "psnr" ? perSamplePsnr(r, target, peak) : perSampleCosine(r, target);
    });
    per.forEach((v, i) => {
      const s: ModelScore = { name: entries[i]![0], score: meanInterval(v, level) };
      if (i > 0 && labels) s.vsFirst = { diff: pairedBootstrapMeanDiff(per[0]!, v, level), method: "paired-bootstrap" };
      scores.push(s);
    });
  } else if (kind === "cer" || kind === "wer") {
    const seqOpts = typeof metric === "object" && "sequence" in metric ? metric.sequence : {};
    if (seqOpts.ctcBlank !== undefined) notes.push(`${kind} of each model's greedy CTC reading (argmax per step, repeats merged, class ${seqOpts.ctcBlank} dropped as the blank) against ${labels ? "the labels" : "the first model's"}`);
    const ref = labels ? sequences(labels, seqOpts, false) : sequences(outputs[0]!, seqOpts, true);
    const counts = outputs.map((o) => errorCounts(sequences(o, seqOpts, true), ref, kind === "cer" ? "char" : "word", seqOpts.space ?? 0));
    const rate = (c: { edits: Float64Array; lengths: Float64Array }, idx: Int32Array) => {
      let e = 0;
      let l = 0;
      for (const i of idx) {
        e += c.edits[i]!;
        l += c.lengths[i]!;
      }
      return l === 0 ? 0 : e / l;
    };
    counts.forEach((c, i) => {
      const s: ModelScore = { name: entries[i]![0], score: bootstrapStatistic(n, (idx) => rate(c, idx), level) };
      if (i > 0 && labels) s.vsFirst = { diff: bootstrapStatistic(n, (idx) => rate(c, idx) - rate(counts[0]!, idx), level), method: "paired-bootstrap" };
      scores.push(s);
    });
  } else {
    throw new Error(`evaluate: unknown metric ${JSON.stringify(metric)}; use top1, top5, {kind:"topk",k}, f1, mse, psnr, cosine, cer, wer or agreement`);
  }
  return new EvaluationResult({ kind: "ptq.evaluation", version: 1, metric: metricName, higherIsBetter: p.higherIsBetter, reference, samples: n, models: scores, notes });
}
