// What analyze() tells the Quantization State view: every tensor of the conversion (its type, granularity,
// calibrated range and method, or why its node stayed float) with the SQNR analysis measured for it. Activations are
// listed under the nodes that read them (the DequantizeLinear output analysis compares is what those nodes read);
// tensors analysis measured that the summary does not name (graph outputs, a model given without its PreparedModel)
// are added under the node that produces or reads them.
import type { AnalysisJson } from "../engine/analysis/analyze";
import type { QuantStateEntry } from "./display-types";
import type { PreparedModel, QuantizationSummary } from "../engine/quant/index";

const ROLE = { weight: "weight", bias: "bias", activation: "output", output: "output" } as const;
/** JSON (the jsonrpc wire) has no Infinity: an exact tensor is sent as this many dB, which the view shows as "exact". */
export const EXACT_DB = 300;
const wireDb = (db: number) => (db === Infinity ? EXACT_DB : db === -Infinity ? -EXACT_DB : db);

/** The view's entries after convert(): every tensor's type, granularity and calibrated range, or why it is float. */
export function quantStateOfConversion(prepared: PreparedModel, summary: QuantizationSummary): QuantStateEntry[] {
  const graph = prepared.model.graph;
  const inits = new Set(graph.initializer.map((t) => t.name));
  const method = prepared.config.calibration.method;
  const byName = new Map(graph.node.map((n) => [n.name, n]));
  const out: QuantStateEntry[] = [];
  for (const n of summary.quantized) {
    const outputs = new Set(byName.get(n.name)?.output);
    for (const t of n.tensors) {
      const role = t.type === "int32" ? "bias" : inits.has(t.name) ? "weight" : outputs.has(t.name) ? "output" : "input";
      const r = role === "input" || role === "output" ? prepared.ranges.get(t.name) : undefined;
      out.push({
        node: n.name, op: n.opType, tensor: t.name, role, quantized: true, type: t.type,
        granularity: t.perChannel ? "per-channel" : "per-tensor",
        ...(r ? { range: [r.min, r.max] as [number, number], method } : {}),
      });
    }
  }
  for (const f of summary.float) {
    const inputs = byName.get(f.name)?.input.filter((i) => i) ?? [];
    for (const tensor of inputs.length ? inputs : [f.name]) {
      out.push({ node: f.name, op: f.opType, tensor, role: inits.has(tensor) ? "weight" : "input", quantized: false, reason: f.reason });
    }
  }
  return out;
}

/** The view's entries after an analysis: the conversion's tensors with their measured SQNR. */
export function quantStateOfAnalysis(json: AnalysisJson, prepared?: PreparedModel, summary?: QuantizationSummary): QuantStateEntry[] {
  const entries = prepared && summary ? quantStateOfConversion(prepared, summary) : [];
  const byTensor = new Map<string, QuantStateEntry[]>();
  for (const e of entries) byTensor.set(e.tensor, [...(byTensor.get(e.tensor) ?? []), e]);
  for (const e of [...json.weights, ...json.biases, ...json.activations, ...json.outputs]) {
    const known = byTensor.get(e.tensor);
    if (known && e.kind !== "output") {
      for (const k of known) k.sqnrDb = wireDb(e.sqnrDb);
      continue;
    }
    // A graph output is the model's float result: its SQNR is the end-to-end error, not one tensor's quantization.
    entries.push({
      node: e.node || e.tensor, op: e.opType, tensor: e.tensor, role: ROLE[e.kind], quantized: e.kind !== "output",
      ...(e.kind === "output" ? { reason: "graph output (end-to-end error)" } : {}), sqnrDb: wireDb(e.sqnrDb),
    });
  }
  return entries;
}
