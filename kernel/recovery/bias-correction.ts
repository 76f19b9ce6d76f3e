// Empirical bias correction (Nagel et al. 2019, §4.2, the data-driven variant): quantizing weights shifts the mean
// of a layer's output, E[W_q x] ≠ E[W x], and the shift passes through every later layer. Run the float model and
// its QDQ twin on data, take each Conv/Gemm/MatMul's raw output (before the activation Q/DQ) in both, and subtract
// the per-channel difference of the means from the quantized model's bias. Both models add the same bias (up to
// its int32 rounding), so the difference of the outputs is the difference of the pre-bias outputs plus that
// rounding, which the correction absorbs too. One pass: each layer's shift is measured with the quantized layers
// before it still uncorrected (so it also takes in the shift they pass on).
import type { GraphProto, NodeProto } from "onnx-buf";
import type { CalibrationData } from "../data/feeds";
import { DataType } from "../onnx/dtype";
import { Model } from "../onnx/model";
import { makeTensor, readTensor, tensorToFloat32 } from "../onnx/tensor";
import { channelStats, floatInit, producerOf, readerCount, readersOf, setFloatInit, spread, type ChannelAxis, type StatsOptions } from "./tensors";

export interface BiasCorrectionOptions extends StatsOptions {
  /** Node names to leave alone. */
  exclude?: string[];
}

export interface CorrectedBias {
  node: string;
  opType: string;
  /** The bias tensor changed (an int32 one behind a DequantizeLinear, or a float one). */
  bias: string;
  channels: number;
  /** Range of the per-channel shift E[y_q] − E[y] that was subtracted. */
  shift: [number, number];
  /** Mean |shift| relative to the mean |E[y]| (how large the shift was). */
  relative: number;
}

export interface BiasCorrectionReport {
  corrected: CorrectedBias[];
  skipped: { node: string; reason: string }[];
}

const WEIGHT_DQ = "_DequantizeLinear_Output";
const label = (n: NodeProto) => n.name || n.output[0] || n.opType;

interface Site {
  qNode: NodeProto;
  fNode: NodeProto;
  axis: ChannelAxis;
  /** Where the bias lives in the quantized model. */
  bias: { kind: "int32"; dq: NodeProto } | { kind: "float"; name: string };
}

function biasSite(g: GraphProto, n: NodeProto): Site["bias"] | string {
  let b: string | undefined = n.opType === "MatMul" ? undefined : n.input[2];
  if (n.opType === "MatMul") {
    // MatMul + Add(bias): the Add's constant operand.
    const rs = readersOf(g, n.output[0]!);
    const add = rs[0];
    if (rs.length !== 1 || add?.opType !== "Add") return "no bias (MatMul not followed by an Add of a constant)";
    b = add.input.find((i) => i !== n.output[0]);
  }
  if (!b) return "no bias input (adding one is left to the exporter)";
  const dq = producerOf(g, b);
  if (dq?.opType === "DequantizeLinear") {
    const codes = g.initializer.find((t) => t.name === dq.input[0]);
    if (codes?.dataType !== DataType.INT32) return `bias "${b}" is quantized to a type other than int32`;
    if (readerCount(g, b) !== 1) return `bias "${b}" is shared with other nodes`;
    return { kind: "int32", dq };
  }
  if (floatInit(g, b) && readerCount(g, b) === 1) return { kind: "float", name: b };
  return `bias "${b}" is neither a float initializer of its own nor an int32 one behind a DequantizeLinear`;
}

/**
 * A copy of `quantized` (the QDQ model converted from `float`, e.g. `prepared.model` and `convert(prepared)`) whose
 * biases absorb the mean output shift measured on `data`. Nodes are matched by name. `data` is iterated twice
 * (once per model): give an array.
 */
export async function correctBias(float: Model, quantized: Model, data: CalibrationData, options: BiasCorrectionOptions = {}): Promise<{ model: Model; report: BiasCorrectionReport }> {
  const q = quantized.clone();
  const g = q.graph;
  const fNodes = new Map(float.graph.node.filter((n) => n.name).map((n) => [n.name, n]));
  const report: BiasCorrectionReport = { corrected: [], skipped: [] };
  const exclude = new Set(options.exclude ?? []);
  const sites: Site[] = [];
  for (const n of g.node) {
    if (n.domain !== "" || !["Conv", "Gemm", "MatMul"].includes(n.opType) || exclude.has(n.name)) continue;
    if (!n.input[1]?.endsWith(WEIGHT_DQ)) continue; // weight not quantized: nothing shifted it
    const f = fNodes.get(n.name);
    if (!f || f.opType !== n.opType) {
      report.skipped.push({ node: label(n), reason: "no node of that name and type in the float model" });
      continue;
    }
    const bias = biasSite(g, n);
    if (typeof bias === "string") {
      report.skipped.push({ node: label(n), reason: bias });
      continue;
    }
    sites.push({ qNode: n, fNode: f, axis: n.opType === "Conv" ? "channel-first" : "last", bias });
  }
  const qStats = await channelStats(q, sites.map((s) => ({ tensor: s.qNode.output[0]!, axis: s.axis })), data, options);
  const fStats = await channelStats(float, sites.map((s) => ({ tensor: s.fNode.output[0]!, axis: s.axis })), data, options);
  for (const s of sites) {
    const mq = qStats.get(s.qNode.output[0]!)!.mean;
    const mf = fStats.get(s.fNode.output[0]!)!.mean;
    const C = mq.length;
    const shift = Float64Array.from(mq, (v, c) => v - mf[c]!);
    let name: string;
    if (s.bias.kind === "float") {
      const b = floatInit(g, s.bias.name)!;
      if (b.data.length !== C) {
        report.skipped.push({ node: label(s.qNode), reason: `bias "${b.name}" has ${b.data.length} values for ${C} channels` });
        continue;
      }
      setFloatInit(g, b.name, b.dims, Float32Array.from(b.data, (v, c) => v - shift[c]!));
      name = b.name;
    } else {
      const dq = s.bias.dq;
      const codesT = g.initializer.find((t) => t.name === dq.input[0])!;
      const scale = tensorToFloat32(g.initializer.find((t) => t.name === dq.input[1])!);
      const codes = readTensor(codesT).data as Int32Array;
      if (codes.length !== C) {
        report.skipped.push({ node: label(s.qNode), reason: `bias "${codesT.name}" has ${codes.length} values for ${C} channels` });
        continue;
      }
      const next = Int32Array.from(codes, (v, c) => {
        const sc = scale[scale.length === 1 ? 0 : c]!;
        const r = Math.round(v - shift[c]! / sc);
        return Math.max(-2147483648, Math.min(2147483647, r));
      });
      const i = g.initializer.indexOf(codesT);
      g.initializer[i] = makeTensor(codesT.name, DataType.INT32, codesT.dims.map(Number), next);
      name = codesT.name;
    }
    const meanAbs = mf.reduce((a, v) => a + Math.abs(v), 0) / C;
    const shiftAbs = shift.reduce((a, v) => a + Math.abs(v), 0) / C;
    report.corrected.push({ node: label(s.qNode), opType: s.qNode.opType, bias: name, channels: C, shift: spread(shift), relative: meanAbs > 0 ? shiftAbs / meanAbs : 0 });
  }
  return { model: Model.fromProto(q.proto, q.dir), report };
}
