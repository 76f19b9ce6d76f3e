// Which activations cost the most at 8 bits, measured at the model's outputs. One "switch" model holds the float
// model with every measured activation fake-quantized (QuantizeLinear/DequantizeLinear's arithmetic: Div, Round,
// Add, Min/Max, Sub, Mul) behind a per-tensor switch: t' = t + on[i]·(fq(t) − t), `on` a float input vector. One
// session then measures any set of tensors at 8 bits with the rest float (one run per set), so quantizing one tensor
// at a time, or all but one, costs one run each on the same rows: no conversion, no new session.
//
// chooseWideActivations uses it to pick the few activations worth 16 bits (the rest keep the calibration's width).

import type { NodeProto, ValueInfoProto } from "onnx-buf";
import type { Feeds } from "../data/feeds";
import { DataType } from "../onnx/dtype";
import { logitsOrOutputs, onCompared, producers, uniqueName, usedNames, unmaskedBehind } from "../onnx/graph";
import { inferModelShapes } from "../onnx/shape-infer";
import type { Model } from "../onnx/model";
import { makeNode, makeValueInfo } from "../onnx/proto";
import { makeTensor } from "../onnx/tensor";
import { knownTypes } from "./augment";
import type { Range } from "./thresholds";
import { quantGrid } from "./thresholds";
import { createSession, type ExecutionProvider, type SessionOptions } from "../runtime/session";
import type { OutputTensor } from "../runtime/tensors";

export interface SwitchModel {
  model: Model;
  /** The input holding the switches, float32 [tensors.length]: 1 quantizes that tensor, 0 leaves it float. */
  switches: string;
  /** The switched tensors, in the order of the switch vector. */
  tensors: string[];
  /** Each switched tensor's switched copy, the one its readers read. */
  switched: ReadonlyMap<string, string>;
}

/**
 * `model` with each float32 tensor of `ranges` fake-quantized on a `bits` grid behind a switch. Graph outputs stay
 * the float tensors (a converted model keeps an output Softmax float, and the outputs are what is compared); only
 * the nodes reading a tensor read its switched copy.
 */
export function buildSwitchModel(model: Model, ranges: ReadonlyMap<string, Range>, grid: { bits: number; symmetric: boolean }): SwitchModel {
  const copy = model.cloneSharingInitializers(); // adds nodes, outputs and initializers only
  const graph = copy.graph;
  const taken = usedNames(graph);
  const types = knownTypes(graph);
  const fresh = (base: string) => uniqueName(graph, base, taken);
  const switches = fresh("__precision_switches");
  const consumed = new Set(graph.node.flatMap((n) => n.input));
  const tensors: string[] = [];
  const nodes: NodeProto[] = [];
  const scalar = (base: string, v: number, type = DataType.FLOAT) => {
    const name = fresh(base);
    graph.initializer.push(makeTensor(name, type, [], type === DataType.INT64 ? [BigInt(v)] : [v]));
    return name;
  };
  const renamed = new Map<string, string>();
  for (const [tensor, r] of ranges) {
    if ((types.get(tensor) ?? DataType.FLOAT) !== DataType.FLOAT || !consumed.has(tensor)) continue;
    const g = quantGrid(r.min, r.max, grid.bits, grid.symmetric);
    if (!g) continue;
    const [s, zp, lo, hi] = [scalar("__precision_s", g.scale), scalar("__precision_zp", g.zp), scalar("__precision_qmin", g.qmin), scalar("__precision_qmax", g.qmax)];
    const index = scalar("__precision_i", tensors.length, DataType.INT64);
    const step = (op: string, inputs: string[]) => {
      const out = fresh(`${tensor}__precision_${op}`);
      nodes.push(makeNode(op, inputs, [out], { name: out }));
      return out;
    };
    const q = step("Max", [step("Min", [step("Add", [step("Round", [step("Div", [tensor, s])]), zp]), hi]), lo]);
    const fq = step("Mul", [step("Sub", [q, zp]), s]);
    const on = step("Gather", [switches, index]);
    renamed.set(tensor, step("Add", [tensor, step("Mul", [on, step("Sub", [fq, tensor])])]));
    tensors.push(tensor);
  }
  for (const n of graph.node) n.input = n.input.map((i) => renamed.get(i) ?? i);
  graph.node.push(...nodes);
  graph.input.push(makeValueInfo(switches, DataType.FLOAT, [tensors.length]));
  return { model: copy, switches, tensors, switched: renamed };
}

export interface WideActivationOptions {
  /** The calibration's activation grid (the 8-bit one being judged). */
  bits: number;
  symmetric: boolean;
  ep?: ExecutionProvider;
  /** At most this share of the measured tensors is widened (default 0.2). */
  maxShare?: number;
  /** The tensors are measured in this many contiguous groups (default 32). */
  groups?: number;
  /** Stop widening once the output error has fallen by this factor (default 20: 13 dB). */
  targetGain?: number;
  /** Widen only when that cuts the measured output error by at least this factor (default 2: 3 dB). */
  minGain?: number;
  /** Measure further only when the outputs with every activation at 8 bits read above the first and below the
   *  second SQNR (dB); otherwise nothing is widened, after two runs. */
  onlyBetweenDb?: readonly [number, number];
  /** What is compared (comparedOutputs; absent: every output). A switched tensor is read as its readers read it. */
  judged?: Judged;
  /** After each measurement (one run per batch of rows): those done, and the most there can be as known so far. */
  onStep?(done: number, total: number): void;
}

export interface WideActivations {
  /** Tensors to give 16 bits (empty: 8 bits everywhere is as good as this measurement can tell). */
  tensors: string[];
  /** Worst-output noise/signal energy with every tensor at 8 bits, and with `tensors` left out of it. */
  before: number;
  after: number;
  runs: number;
  why: string;
}

/**
 * The worst output's noise/signal energy of `got` against `ref` (the same rows run through two models), pooled over
 * the rows: 10^(−SQNR/10) of the worst float output. Non-float outputs are not compared.
 */
export function worstNoiseRatio(ref: readonly Record<string, OutputTensor>[], got: readonly Record<string, OutputTensor>[]): number {
  const energy = new Map<string, OutputEnergy>();
  ref.forEach((r, i) => addOutputEnergy(energy, r, got[i]!));
  return worstRatio(energy);
}

/** Signal and noise energy of one output, summed over rows. */
export interface OutputEnergy {
  signal: number;
  noise: number;
}

/** Adds one row's signal and noise energy per float output of `ref` (against `got`) to `into`. */
export function addOutputEnergy(into: Map<string, OutputEnergy>, ref: Record<string, OutputTensor>, got: Record<string, OutputTensor>): void {
  for (const [name, t] of Object.entries(ref)) {
    const [a, b] = [t.data, got[name]?.data];
    if (!(a instanceof Float32Array) || !(b instanceof Float32Array) || a.length !== b.length) continue;
    const e = into.get(name) ?? { signal: 0, noise: 0 };
    for (let k = 0; k < a.length; k++) {
      e.signal += a[k]! * a[k]!;
      e.noise += (a[k]! - b[k]!) ** 2;
    }
    into.set(name, e);
  }
}

/** A noise/signal energy ratio (worstNoiseRatio's) as the SQNR it means, in dB; Infinity when exact. */
export const noiseToDb = (ratio: number): number => (ratio > 0 ? -10 * Math.log10(ratio) : Infinity);

/** The same for messages: "12.3 dB", "∞ dB" when exact. */
export const noiseDb = (ratio: number): string => (ratio > 0 ? `${noiseToDb(ratio).toFixed(1)} dB` : "∞ dB");

/** A CTC path decoded: repeats collapsed, then the blank removed. */
export function ctcCollapse(path: readonly number[], blank: number): number[] {
  return path.filter((v, i) => i === 0 || v !== path[i - 1]).filter((v) => v !== blank);
}

/** Argmax over the last axis of one [..., T, C] output, as one class path per leading row. */
function classPaths(t: OutputTensor): number[][] {
  const d = t.data;
  const c = t.dims[t.dims.length - 1] ?? 0;
  const steps = t.dims[t.dims.length - 2] ?? 0;
  if (!(d instanceof Float32Array) || t.dims.length < 3 || c < 2 || steps < 1) return [];
  const paths: number[][] = [];
  for (let row = 0; row * steps * c < d.length; row++) {
    const path: number[] = [];
    for (let s = 0; s < steps; s++) {
      const o = (row * steps + s) * c;
      let best = 0;
      for (let k = 1; k < c; k++) if (d[o + k]! > d[o + best]!) best = k;
      path.push(best);
    }
    paths.push(path);
  }
  return paths;
}

/** log p per class of one time step: the scores as they are where they are a distribution, else their log-softmax. */
function logProbs(d: Float32Array, o: number, c: number): Float64Array {
  const out = new Float64Array(c);
  let [sum, inUnit, max] = [0, true, -Infinity];
  for (let k = 0; k < c; k++) {
    const v = d[o + k]!;
    sum += v;
    inUnit &&= v >= 0 && v <= 1;
    max = Math.max(max, v);
  }
  if (inUnit && Math.abs(sum - 1) < 1e-3) {
    for (let k = 0; k < c; k++) out[k] = Math.log(Math.max(d[o + k]!, 1e-12));
    return out;
  }
  let z = 0;
  for (let k = 0; k < c; k++) z += Math.exp(d[o + k]! - max);
  const log = max + Math.log(z);
  for (let k = 0; k < c; k++) out[k] = d[o + k]! - log;
  return out;
}

const logAdd = (a: number, b: number): number => (a === -Infinity ? b : b === -Infinity ? a : Math.max(a, b) + Math.log1p(Math.exp(-Math.abs(a - b))));

/**
 * CTC loss: −log of the probability that `steps` (log p per time step) emit `labels` over all alignments (blanks
 * between and around the labels, repeats merged), by the forward recursion.
 */
export function ctcNll(steps: readonly Float64Array[], labels: readonly number[], blank: number): number {
  const ext = [blank];
  for (const l of labels) ext.push(l, blank);
  let alpha = ext.map((_, s) => (s === 0 ? steps[0]![blank]! : s === 1 ? steps[0]![ext[1]!]! : -Infinity));
  for (let t = 1; t < steps.length; t++) {
    alpha = ext.map((c, s) => {
      let v = logAdd(alpha[s]!, s > 0 ? alpha[s - 1]! : -Infinity);
      if (s > 1 && c !== blank && c !== ext[s - 2]) v = logAdd(v, alpha[s - 2]!);
      return v + steps[t]![c]!;
    });
  }
  const end = ext.length > 1 ? logAdd(alpha[ext.length - 1]!, alpha[ext.length - 2]!) : alpha[0]!;
  return steps.length === 0 ? (labels.length === 0 ? 0 : Infinity) : -end;
}

/**
 * CTC yardstick: on the rows of every [batch, time, classes] float output, how many `got` decodes (argmax per time
 * step, repeats collapsed, `blank` removed) to the same sequence as `ref`, and the mean CTC loss of `ref`'s decoded
 * sequences under `got` (nats per row): how far `got` is from reading what the float model reads, continuous where
 * the count moves by whole rows. Outputs of another rank are not counted.
 */
export function ctcAgreement(ref: readonly Record<string, OutputTensor>[], got: readonly Record<string, OutputTensor>[], blank = 0): { same: number; rows: number; nll: number } {
  let [same, rows, nll] = [0, 0, 0];
  for (const name of Object.keys(ref[0] ?? {})) {
    ref.forEach((r, i) => {
      const [a, b] = [classPaths(r[name]!), classPaths(got[i]![name]!)];
      const g = got[i]![name]!;
      const c = g.dims[g.dims.length - 1] ?? 0;
      a.forEach((p, k) => {
        rows++;
        const [x, y] = [ctcCollapse(p, blank), ctcCollapse(b[k] ?? [], blank)];
        if (x.length === y.length && x.every((v, j) => v === y[j])) same++;
        const steps = p.map((_, s) => logProbs(g.data as Float32Array, (k * p.length + s) * c, c));
        nll += ctcNll(steps, x, blank);
      });
    });
  }
  return { same, rows, nll: rows > 0 ? nll / rows : 0 };
}

/**
 * What the measurements at the outputs compare with the float model: the `judged` graph outputs (empty: every one),
 * a classifier's final Softmax output (one distribution per row: of rank 2 or less) replaced by the logits it
 * reads (logitsOrOutputs), declared as the float model declares them (a conversion keeps names and types); `logits`
 * counts the outputs replaced. A confident probability vector hides the error: the held-out PP-OCR orientation
 * classifier read 33.2 dB on its probabilities with every layer int4, and 3 of 32 decisions flipped; its logits
 * read 9.6 dB (docs/lowbit.md §3). A distribution per step or per pixel (rank 3 or more, or unknown: a CTC
 * recogniser's [batch, time, classes]) is compared as it is: on ppocr-v3-rec-en its logits, where every unlikely
 * class's logit weighs as much as the few a step decodes between, chose static INT8 files that read 0.5 pp fewer of
 * 4096 lines on two calibration sets (docs/calibration.md "Which outputs the measurements compare"). An output a
 * comparison masks (a detector's peak mask: unmaskedBehind) is replaced by the values behind the mask; `unmasked`
 * counts those.
 */
export function comparedOutputs(float: Model, judged: readonly string[] = []): Judged {
  const picked = comparedPerOutput(float).filter((p) => judged.length === 0 || judged.includes(p.output));
  return { compared: float.outputInfos(picked.map((p) => p.tensor)), logits: picked.filter((p) => p.behind === "logits").length, unmasked: picked.filter((p) => p.behind === "unmasked").length };
}

/** An output the measurements compare on another tensor (comparedOutputs): a final Softmax's logits, or the values
 *  behind a comparison's mask. */
export interface Behind {
  output: string;
  tensor: string;
  behind: "logits" | "unmasked";
}

/** The graph's outputs that comparedOutputs replaces, in output order: what the output check and the corpus
 *  evaluation also run, to report beside each output. */
export function outputsBehind(float: Model): Behind[] {
  return comparedPerOutput(float).filter((p): p is Behind => p.behind !== undefined);
}

/** Each graph output with the tensor comparedOutputs compares for it. */
function comparedPerOutput(float: Model): { output: string; tensor: string; behind?: Behind["behind"] }[] {
  let inferred: ReturnType<typeof inferModelShapes> | undefined;
  const perRow = (t: string) => ((inferred ??= inferModelShapes(float.proto)).tensors.get(t)?.shape?.length ?? Infinity) <= 2;
  const logits = logitsOrOutputs(float.graph);
  const made = producers(float.graph);
  return float.graph.output.map((o, i) => {
    if (logits[i] !== o.name && perRow(o.name)) return { output: o.name, tensor: logits[i]!, behind: "logits" };
    const unmasked = unmaskedBehind(made, o.name);
    return unmasked ? { output: o.name, tensor: unmasked, behind: "unmasked" } : { output: o.name, tensor: o.name };
  });
}

/** What comparedOutputs says a measurement compares: the tensors, and how many are a classifier's logits or the values
 *  behind a mask (for its line: onCompared). */
export interface Judged {
  compared: ValueInfoProto[];
  logits: number;
  unmasked: number;
}

/** Session options for a measurement at the outputs, and what it compares (absent: every output), the same tensors in
 *  the float model and in its conversions. */
export type MeasureOptions = SessionOptions & { judged?: Judged };

/** `model` with the compared tensors as its outputs (itself where they are). */
const viewed = (model: Model, compared: readonly ValueInfoProto[] | undefined): Model => (compared ? model.withOutputs(compared) : model);

/** The compared tensors of `model` (MeasureOptions) on each of `rows` (one session, freed after): a reference or a
 *  candidate to compare with worstNoiseRatio. `onRow` after each row's run. */
export async function outputsOn(model: Model, rows: readonly Feeds[], options: MeasureOptions = {}, onRow?: () => void): Promise<Record<string, OutputTensor>[]> {
  const { judged, ...session } = options;
  const s = await createSession(viewed(model, judged?.compared), session);
  try {
    const out = [];
    for (const r of rows) {
      out.push(await s.run(r));
      onRow?.();
    }
    return out;
  } finally {
    await s.dispose();
  }
}

/** Each float output's energies against the float model: per row, and pooled over the rows in their order. */
export interface RowEnergies {
  rows: Map<string, OutputEnergy>[];
  pooled: Map<string, OutputEnergy>;
}

/**
 * `model` run on `rows` against `ref` (the float model's outputs on the same rows), each row's outputs reduced to
 * their energies as soon as they come back: what worstNoiseRatio and per-row comparisons need, without holding a
 * candidate's outputs (ISNet's 12 outputs, feature maps up to 64×512×512, are 110 MB a row). `pooled` continues a
 * pooled sum over earlier rows (summed in row order, as worstNoiseRatio sums them).
 */
export async function energiesOn(model: Model, rows: readonly Feeds[], ref: readonly Record<string, OutputTensor>[], options: MeasureOptions = {}, onRow?: () => void, pooled = new Map<string, OutputEnergy>()): Promise<RowEnergies> {
  const { judged, ...session } = options;
  const s = await createSession(viewed(model, judged?.compared), session);
  try {
    const out: RowEnergies = { rows: [], pooled };
    for (const [i, r] of rows.entries()) {
      addRow(out, ref[i]!, await s.run(r));
      onRow?.();
    }
    return out;
  } finally {
    await s.dispose();
  }
}

/** Appends one row's energies (`got` against `ref`) to `out`, and adds them to its pooled sums. */
function addRow(out: RowEnergies, ref: Record<string, OutputTensor>, got: Record<string, OutputTensor>): void {
  const row = new Map<string, OutputEnergy>();
  addOutputEnergy(row, ref, got);
  addOutputEnergy(out.pooled, ref, got);
  out.rows.push(row);
}

/** RowEnergies of outputs already fetched: `got` against `ref`, row by row. */
export function rowEnergies(ref: readonly Record<string, OutputTensor>[], got: readonly Record<string, OutputTensor>[]): RowEnergies {
  const out: RowEnergies = { rows: [], pooled: new Map() };
  ref.forEach((r, i) => addRow(out, r, got[i]!));
  return out;
}

/** The worst output's noise/signal energy ratio (worstNoiseRatio's, from energies); 0 when exact. */
export function worstRatio(energy: ReadonlyMap<string, OutputEnergy>): number {
  let worst = 0;
  for (const e of energy.values()) if (e.signal > 0) worst = Math.max(worst, e.noise / e.signal);
  return worst;
}

/**
 * Which activations to give 16 bits, measured at the model's outputs on `rows`. The tensors, in graph order, are cut
 * into contiguous groups (neighbours: a block's Conv, its activation's parts, the next Conv), and each group is
 * measured quantized alone, the rest float. Groups are then widened worst first, each step measured with every other
 * tensor at 8 bits, until the output error has fallen by `targetGain` or `maxShare` of the tensors are wide; the
 * step with the least error wins, and only if it cut the error by `minGain`. Groups, not single tensors: on the
 * PP-OCR recogniser the error is spread over some 30 tensors of its first blocks, none of which matters alone once
 * the others are quantized (docs/activation-precision.md), and a run per tensor costs too much (228 runs).
 */
export async function chooseWideActivations(
  model: Model,
  ranges: ReadonlyMap<string, Range>,
  rows: readonly Feeds[],
  options: WideActivationOptions,
): Promise<WideActivations> {
  const sw = buildSwitchModel(model, ranges, options);
  const n = sw.tensors.length;
  const none: WideActivations = { tensors: [], before: 0, after: 0, runs: 0, why: "no activation to measure" };
  if (n === 0 || rows.length === 0) return none;
  // The compared tensors as the nodes reading them read them: a final Softmax's logits are its input's switched copy.
  const compared = options.judged?.compared.map((v) => (sw.switched.has(v.name) ? { ...v, name: sw.switched.get(v.name)! } : v));
  const s = await createSession(viewed(sw.model, compared), { ep: options.ep, optimization: "basic" });
  let runs = 0;
  try {
    // One run per batch of rows (a model with a fixed batch axis takes them one at a time).
    // The measurements: FP32 and all 8 bits; then, measured further, a group each and up to a step per group.
    const size = Math.max(1, Math.ceil(n / (options.groups ?? 32)));
    const groupCount = Math.ceil(n / size);
    let most = 2;
    const run = async (on: Float32Array) => {
      const out = [];
      for (const r of rows) out.push(await s.run({ ...r, [sw.switches]: { data: on, dims: [n] } }));
      runs++;
      options.onStep?.(runs, most);
      return out;
    };
    options.onStep?.(0, most);
    const ref = await run(new Float32Array(n));
    const noiseOf = async (on: Float32Array) => worstNoiseRatio(ref, await run(on));
    const before = await noiseOf(new Float32Array(n).fill(1));
    const [lo, hi] = options.onlyBetweenDb ?? [-Infinity, Infinity];
    if (!(noiseToDb(before) > lo && noiseToDb(before) < hi)) {
      return { tensors: [], before, after: before, runs, why: `not measured further: output SQNR${onCompared(options.judged)} with every activation at ${options.bits} bits ${noiseDb(before)}, not between ${lo} and ${hi} dB` };
    }
    most = 2 + 2 * groupCount;
    const groups: { from: number; to: number; noise: number }[] = [];
    for (let from = 0; from < n; from += size) {
      const to = Math.min(n, from + size);
      const on = new Float32Array(n);
      on.fill(1, from, to);
      groups.push({ from, to, noise: await noiseOf(on) });
    }
    groups.sort((a, b) => b.noise - a.noise);
    const maxTensors = Math.max(1, Math.floor((options.maxShare ?? 0.2) * n));
    const on = new Float32Array(n).fill(1);
    let [wide, best, bestWide] = [0, before, 0];
    const steps: string[] = [];
    for (const g of groups) {
      if (wide + (g.to - g.from) > maxTensors || best * (options.targetGain ?? 20) <= before) break;
      on.fill(0, g.from, g.to);
      wide += g.to - g.from;
      const err = await noiseOf(on);
      steps.push(`${wide} ${noiseDb(err)}`);
      if (err < best) [best, bestWide] = [err, wide];
    }
    // The groups of the best step, in order.
    const chosen: string[] = [];
    let counted = 0;
    for (const g of groups) {
      if (counted >= bestWide) break;
      chosen.push(...sw.tensors.slice(g.from, g.to));
      counted += g.to - g.from;
    }
    const measured = `output SQNR${onCompared(options.judged)} with every activation at ${options.bits} bits ${noiseDb(before)}; wide tensors → SQNR: ${steps.join(", ") || "none tried"} (${runs} runs of ${rows.length} batch(es))`;
    if (!(best * (options.minGain ?? 2) <= before)) return { tensors: [], before, after: before, runs, why: `not worth 16 bits: ${measured}` };
    return { tensors: chosen, before, after: best, runs, why: `${chosen.length} of ${n} activations at 16 bits: ${measured}` };
  } finally {
    await s.dispose();
  }
}
