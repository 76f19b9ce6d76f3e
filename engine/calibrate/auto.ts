// calibration.method "auto": per tensor, the range (minmax, percentile, entropy or mse, each picked from the same
// histogram) whose quantization error, measured where it matters, is smallest on the first calibration rows.
//
// Where it matters: at the tensor's consumers. One probe model holds the float model plus, per tensor and
// candidate range, the tensor fake-quantized to that range (Div, Round, Add, Min/Max, Sub, Mul: the arithmetic of
// QuantizeLinear/DequantizeLinear, for any bit width) feeding a copy of each consumer; the graph reduces each
// copy's squared difference to the float consumer's output to one scalar, so a run fetches one small vector. A
// tensor with no consumer that computes (a graph output, a Reshape's input…) is measured on itself. The score of
// a candidate is its error relative to the float output's energy, summed over the consumers; mse wins ties and
// anything within TIE of it (the rows are few; a choice must be worth making).

import { DataType } from "../onnx/dtype";
import { uniqueName, usedNames } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { attr, makeNode, makeValueInfo } from "../onnx/proto";
import { makeTensor } from "../onnx/tensor";
import { knownTypes } from "./augment";
import type { Range } from "./thresholds";
import { quantGrid } from "./thresholds";

/** The methods auto chooses among, in order of preference on ties (mse: the default before auto). */
export const AUTO_CANDIDATES = ["mse", "entropy", "percentile", "minmax"] as const;
export type AutoCandidate = (typeof AUTO_CANDIDATES)[number];

/** What auto chose for one tensor and why. */
export interface AutoChoice {
  method: AutoCandidate;
  /** Relative error of each candidate at the consumers (sum over consumers of error energy / output energy). */
  errors: Partial<Record<AutoCandidate, number>>;
  /** Where the error was measured: the consumers' op types, or "itself". */
  measuredAt: string;
  /** One line: the choice and the error it saves against mse. */
  why: string;
}

/** A candidate within this share of mse's error does not replace it. */
const TIE = 0.02;

/** Consumers whose output error is measured: ops that compute, with a float first output. Others (shape ops,
 *  Split, control flow) pass the tensor on unchanged or have outputs the probe cannot compare. */
const MEASURED_CONSUMERS = new Set([
  "Add", "AveragePool", "BatchNormalization", "Clip", "Conv", "ConvTranspose", "Div", "Elu", "Erf", "Exp", "Gemm",
  "GlobalAveragePool", "HardSigmoid", "HardSwish", "InstanceNormalization", "LayerNormalization", "LeakyRelu",
  "Log", "MatMul", "Mul", "Pow", "PRelu", "ReduceMean", "Relu", "Sigmoid", "Softmax", "Softplus", "Sqrt", "Sub",
  "Tanh", "Resize", "MaxPool", "Concat", "Gelu",
]);

/** One tensor's candidates in the probe: where each candidate's error and each consumer's energy sit. */
interface ProbeEntry {
  tensor: string;
  candidates: AutoCandidate[];
  /** errAt[c][k]: index in the output vector of candidate c's error at consumer k; energyAt[k] likewise. */
  errAt: number[][];
  energyAt: number[];
  measuredAt: string;
}

export interface Probe {
  model: Model;
  output: string;
  entries: ProbeEntry[];
}

/**
 * The probe model: `model` with, per tensor, each candidate range fake-quantized into a copy of its consumers,
 * and one float32 output vector of squared errors and energies. Tensors not known to be float32 are left out.
 */
export function buildProbe(
  model: Model,
  candidates: ReadonlyMap<string, ReadonlyMap<AutoCandidate, Range>>,
  grid: { bits: number; symmetric: boolean },
): Probe {
  const copy = model.cloneSharingInitializers(); // adds nodes, outputs and initializers only
  const graph = copy.graph;
  const taken = usedNames(graph);
  const types = knownTypes(graph);
  const fresh = (base: string) => uniqueName(graph, base, taken);
  const nodes = [];
  const parts: string[] = [];
  const entries: ProbeEntry[] = [];
  const consumers = new Map<string, typeof graph.node>();
  for (const n of graph.node) {
    if (n.domain !== "" || !MEASURED_CONSUMERS.has(n.opType) || !n.output[0]) continue;
    if ((types.get(n.output[0]) ?? DataType.FLOAT) !== DataType.FLOAT) continue;
    for (const i of new Set(n.input)) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const scalar = (base: string, v: number) => {
    const name = fresh(base);
    graph.initializer.push(makeTensor(name, DataType.FLOAT, [], [v]));
    return name;
  };
  const shape1 = fresh("__auto_shape_1");
  graph.initializer.push(makeTensor(shape1, DataType.INT64, [1], [1n]));
  /** Appends ReduceSumSquare(x) to the output vector; returns its index. */
  const energy = (x: string) => {
    const s = fresh(`${x}__auto_e`);
    const p = fresh(`${x}__auto_e1`);
    nodes.push(makeNode("ReduceSumSquare", [x], [s], { name: s, attributes: [attr.int("keepdims", 0)] }));
    nodes.push(makeNode("Reshape", [s, shape1], [p], { name: p }));
    parts.push(p);
    return parts.length - 1;
  };
  const diffEnergy = (a: string, b: string) => {
    const d = fresh(`${a}__auto_d`);
    nodes.push(makeNode("Sub", [a, b], [d], { name: d }));
    return energy(d);
  };
  for (const [tensor, ranges] of candidates) {
    if ((types.get(tensor) ?? DataType.FLOAT) !== DataType.FLOAT) continue;
    const using = consumers.get(tensor) ?? [];
    const entry: ProbeEntry = {
      tensor,
      candidates: [],
      errAt: [],
      energyAt: using.length ? using.map((n) => energy(n.output[0]!)) : [energy(tensor)],
      measuredAt: using.length ? using.map((n) => n.opType).join(", ") : "itself",
    };
    for (const [method, r] of ranges) {
      const g = quantGrid(r.min, r.max, grid.bits, grid.symmetric);
      if (!g) continue;
      const [s, zp, lo, hi] = [scalar("__auto_s", g.scale), scalar("__auto_zp", g.zp), scalar("__auto_qmin", g.qmin), scalar("__auto_qmax", g.qmax)];
      const step = (op: string, inputs: string[]) => {
        const out = fresh(`${tensor}__auto_${method}_${op}`);
        nodes.push(makeNode(op, inputs, [out], { name: out }));
        return out;
      };
      const q = step("Max", [step("Min", [step("Add", [step("Round", [step("Div", [tensor, s])]), zp]), hi]), lo]);
      const fq = step("Mul", [step("Sub", [q, zp]), s]);
      const errs = using.length
        ? using.map((n) => {
            const out = fresh(`${n.output[0]}__auto_${method}`);
            const name = fresh(`${n.name || n.opType}__auto_${method}`);
            nodes.push(makeNode(n.opType, n.input.map((i) => (i === tensor ? fq : i)), [out, ...n.output.slice(1).map(() => "")], {
              name,
              attributes: n.attribute,
            }));
            return diffEnergy(out, n.output[0]!);
          })
        : [diffEnergy(fq, tensor)];
      entry.candidates.push(method);
      entry.errAt.push(errs);
    }
    if (entry.candidates.length) entries.push(entry);
  }
  const output = fresh("__auto_errors");
  nodes.push(makeNode("Concat", parts, [output], { name: output, attributes: [attr.int("axis", 0)] }));
  graph.node.push(...nodes);
  graph.output = [makeValueInfo(output, DataType.FLOAT, [parts.length])];
  return { model: copy, output, entries };
}

/** The choice per tensor from the probe's summed output vector (errors and energies over every measured run). */
export function choose(probe: Probe, totals: Float64Array): Map<string, AutoChoice> {
  const out = new Map<string, AutoChoice>();
  for (const e of probe.entries) {
    const errors: Partial<Record<AutoCandidate, number>> = {};
    e.candidates.forEach((c, i) => {
      let sum = 0;
      e.errAt[i]!.forEach((at, k) => {
        const energyK = totals[e.energyAt[k]!]!;
        sum += energyK > 0 ? totals[at]! / energyK : totals[at]!;
      });
      errors[c] = sum;
    });
    const mse = errors.mse;
    let best: AutoCandidate = e.candidates[0]!;
    for (const c of e.candidates) if (errors[c]! < errors[best]!) best = c;
    if (mse !== undefined && best !== "mse" && !(errors[best]! < mse * (1 - TIE))) best = "mse";
    const saved = mse !== undefined && mse > 0 && best !== "mse" ? ` (${(100 * (1 - errors[best]! / mse)).toFixed(0)} % less error than mse)` : "";
    const list = e.candidates.map((c) => `${c} ${errors[c]!.toExponential(2)}`).join(", ");
    out.set(e.tensor, { method: best, errors, measuredAt: e.measuredAt, why: `${best}${saved}; relative error at ${e.measuredAt}: ${list}` });
  }
  return out;
}
