// Which activations cost the most at 8 bits, measured at the model's outputs. One "switch" model holds the float
// model with every measured activation fake-quantized (QuantizeLinear/DequantizeLinear's arithmetic: Div, Round,
// Add, Min/Max, Sub, Mul) behind a per-tensor switch: t' = t + on[i]·(fq(t) − t), `on` a float input vector. One
// session then measures any set of tensors at 8 bits with the rest float (one run per set), so quantizing one tensor
// at a time, or all but one, costs one run each on the same rows: no conversion, no new session.
//
// auto16 (QConfig activationPrecision "auto16") uses it: each tensor's output error when quantized alone, and the
// tensors that carry most of it get 16-bit activations (the rest stay at the calibration's width).

import type { NodeProto } from "onnx-buf";
import type { Feeds } from "../data/feeds";
import { DataType } from "../onnx/dtype";
import { uniqueName, usedNames } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { makeNode, makeValueInfo } from "../onnx/proto";
import { makeTensor } from "../onnx/tensor";
import { knownTypes } from "./augment";
import type { Range } from "./thresholds";
import { quantGrid } from "./thresholds";
import { createSession, type ExecutionProvider } from "../runtime/session";

export interface SwitchModel {
  model: Model;
  /** The input holding the switches, float32 [tensors.length]: 1 quantizes that tensor, 0 leaves it float. */
  switches: string;
  /** The switched tensors, in the order of the switch vector. */
  tensors: string[];
}

/**
 * `model` with each float32 tensor of `ranges` fake-quantized on a `bits` grid behind a switch. Graph outputs stay
 * the float tensors (a converted model keeps an output Softmax float, and the outputs are what is compared); only
 * the nodes reading a tensor read its switched copy.
 */
export function buildSwitchModel(model: Model, ranges: ReadonlyMap<string, Range>, grid: { bits: number; symmetric: boolean }): SwitchModel {
  const copy = model.clone();
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
  return { model: copy, switches, tensors };
}

export interface WideActivationOptions {
  /** The calibration's activation grid (the 8-bit one being judged). */
  bits: number;
  symmetric: boolean;
  ep?: ExecutionProvider;
  /** At most this share of the measured tensors is widened (default 0.1). */
  maxShare?: number;
  /** Stop widening once the chosen tensors carry this share of the summed one-at-a-time output error (0.9). */
  coverage?: number;
  /** Widen only when that cuts the measured output error by at least this factor (default 2: 3 dB). */
  minGain?: number;
  /** Runs of the switch model allowed for the search, the two reference runs and the check aside (default 64). */
  maxRuns?: number;
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

/** A contiguous run of switched tensors (graph order) and its output error when only it is quantized. */
interface Group {
  from: number;
  to: number;
  noise: number;
}

/**
 * Which activations to give 16 bits. Per tensor the output error it causes alone at 8 bits (the others float),
 * found by group testing rather than one run per tensor: the tensors in graph order are cut into 16 groups, each
 * measured alone, and the group with the most error is halved until the worst groups are single tensors (errors of
 * independent roundings add up, so a group's error bounds its members'). Singles are taken worst first until they
 * carry `coverage` of the summed error or `maxShare` of the tensors; the choice is then measured with every other
 * tensor at 8 bits and kept only if the output error falls by `minGain`.
 */
export async function chooseWideActivations(
  model: Model,
  ranges: ReadonlyMap<string, Range>,
  rows: Feeds,
  options: WideActivationOptions,
): Promise<WideActivations> {
  const sw = buildSwitchModel(model, ranges, options);
  const n = sw.tensors.length;
  const none: WideActivations = { tensors: [], before: 0, after: 0, runs: 0, why: "no activation to measure" };
  if (n === 0) return none;
  const s = await createSession(sw.model, { ep: options.ep, optimization: "basic" });
  let runs = 0;
  try {
    const run = async (on: Float32Array) => {
      runs++;
      return s.run({ ...rows, [sw.switches]: { data: on, dims: [n] } });
    };
    const ref = await run(new Float32Array(n));
    const noiseOf = async (on: Float32Array) => {
      const got = await run(on);
      let worst = 0;
      for (const [name, r] of Object.entries(ref)) {
        const [a, b] = [r.data, got[name]!.data];
        if (!(a instanceof Float32Array) || !(b instanceof Float32Array)) continue;
        let [signal, noise] = [0, 0];
        for (let k = 0; k < a.length; k++) [signal, noise] = [signal + a[k]! * a[k]!, noise + (a[k]! - b[k]!) ** 2];
        if (signal > 0) worst = Math.max(worst, noise / signal);
      }
      return worst;
    };
    const only = (from: number, to: number) => {
      const on = new Float32Array(n);
      on.fill(1, from, to);
      return on;
    };
    const before = await noiseOf(new Float32Array(n).fill(1));
    const size = Math.ceil(n / 16);
    const groups: Group[] = [];
    for (let from = 0; from < n; from += size) groups.push({ from, to: Math.min(n, from + size), noise: await noiseOf(only(from, Math.min(n, from + size))) });
    const total = groups.reduce((a, g) => a + g.noise, 0);
    const maxTensors = Math.max(1, Math.floor((options.maxShare ?? 0.1) * n));
    const coverage = options.coverage ?? 0.9;
    const maxRuns = options.maxRuns ?? 64;
    const chosen: Group[] = [];
    let covered = 0;
    while (chosen.length < maxTensors && covered < coverage * total && runs < maxRuns + 2) {
      groups.sort((a, b) => b.noise - a.noise);
      const worst = groups.shift();
      if (!worst) break;
      if (worst.to - worst.from === 1) {
        chosen.push(worst);
        covered += worst.noise;
        continue;
      }
      const mid = (worst.from + worst.to) >> 1;
      groups.push({ from: worst.from, to: mid, noise: await noiseOf(only(worst.from, mid)) }, { from: mid, to: worst.to, noise: await noiseOf(only(mid, worst.to)) });
    }
    if (chosen.length === 0) return { ...none, before, after: before, runs, why: "no single activation stood out" };
    const on = new Float32Array(n).fill(1);
    for (const g of chosen) on[g.from] = 0;
    const after = await noiseOf(on);
    const db = (x: number) => (x > 0 ? `${(-10 * Math.log10(x)).toFixed(1)} dB` : "∞ dB");
    const measured = `output SQNR with every activation at ${options.bits} bits ${db(before)}, with these ${chosen.length} wider ${db(after)} (${runs + 1} runs on ${Object.values(rows)[0]?.dims[0] ?? "?"} rows)`;
    if (!(after * (options.minGain ?? 2) <= before)) return { tensors: [], before, after, runs: runs, why: `not worth 16 bits: ${measured}` };
    return { tensors: chosen.map((g) => sw.tensors[g.from]!), before, after, runs, why: measured };
  } finally {
    await s.dispose();
  }
}
