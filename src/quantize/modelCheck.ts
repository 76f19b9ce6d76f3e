// What the Quantize Model wizard checks before it asks anything: a model it cannot quantize is refused at once with
// the reason; what will happen on the way (an opset upgrade, nodes left float inside subgraphs) is said up front;
// schemes with nothing to quantize are not offered; inputs whose shape cannot be inferred are named so the wizard
// can ask for them. Pure (a ModelProto in, facts out), unit-tested without VS Code.
import type { ModelProto } from "onnx-buf";
import { forEachGraph } from "../../engine/onnx/graph";
import { nestedWeightedNodes, QUANT_OPSET, QUANTIZED_OPS, WEIGHTED_OPS } from "../../engine/quant/scope";
import type { Scheme } from "./options";

export interface ModelCheck {
  /** Why nothing can be quantized (the wizard stops with this). */
  refusal?: string;
  /** What will happen on the way, one line each. */
  notes: string[];
  /** Schemes that would quantize nothing, with why. */
  unavailable: Partial<Record<Scheme, string>>;
  /** Inputs with a symbolic or unknown dimension past the batch axis: random data and the report need a shape. */
  symbolic: { name: string; dims: (number | string)[] }[];
}

/** Already quantized: INT8 (the engine refuses those too), and INT4 weights, which the wizard refuses as well. */
const isQuantized = (op: string) => QUANTIZED_OPS.has(op) || op === "MatMulNBits";

export function checkModel(model: ModelProto, file: string): ModelCheck {
  const name = file.split(/[\\/]/).pop() ?? file;
  const g = model.graph;
  const check: ModelCheck = { notes: [], unavailable: {}, symbolic: [] };
  if (!g) return { ...check, refusal: `${name} has no graph` };
  const quantized = g.node.find((n) => isQuantized(n.opType));
  if (quantized) return { ...check, refusal: `${name} is already quantized (it has ${quantized.opType} node "${quantized.name}"): quantize the float model` };

  const top = g.node.filter((n) => WEIGHTED_OPS.has(n.opType));
  const nested = nestedWeightedNodes(g);
  if (top.length === 0 && !nested) return { ...check, refusal: `${name} cannot be quantized: it has no Conv, MatMul, Gemm or RNN node` };
  // Every scheme reaches into If/Loop/Scan bodies: INT8 their weights dynamically, in both modes; INT4 and FP4 as at
  // the top level (FP4 stores an LSTM's weights int8): docs/subgraphs.md, docs/lowbit.md §5.
  if (nested) check.notes.push(`${nested} weighted node(s) inside If/Loop/Scan subgraphs: INT8 quantizes their weights dynamically (activations stay float there); INT4/FP4 quantize their weights as at the top level`);
  const opset = Number(model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0);
  if (opset < QUANT_OPSET) check.notes.push(`opset ${opset}: upgraded to ${QUANT_OPSET} on the way (the input file is unchanged)`);

  const ops = new Set<string>();
  forEachGraph(g, (sub) => sub.node.forEach((n) => ops.add(n.opType)));
  if (!ops.has("MatMul") && !ops.has("Gemm") && !ops.has("Conv")) {
    check.unavailable["int4-weights"] = check.unavailable["fp4-weights"] = "no MatMul, Gemm or Conv weights";
  }

  const inits = new Set(g.initializer.map((t) => t.name));
  for (const v of g.input) {
    if (inits.has(v.name)) continue;
    const t = v.type?.value;
    if (t?.case !== "tensorType" || !t.value.shape) continue;
    const dims = t.value.shape.dim.map((d) => (d.value.case === "dimValue" && d.value.value > 0n ? Number(d.value.value) : d.value.case === "dimParam" ? d.value.value : "?"));
    if (dims.slice(1).some((d) => typeof d !== "number")) check.symbolic.push({ name: v.name, dims });
  }
  return check;
}

/** `1x3x48x320` for an input of `dims`: the batch may be symbolic (1 is used), every other dim must be given. */
export function parseShape(text: string, dims: readonly (number | string)[]): number[] | string {
  const parts = text.trim().split(/[x×,\s]+/).filter(Boolean);
  if (parts.length !== dims.length) return `give ${dims.length} sizes, e.g. ${dims.map((d, i) => (typeof d === "number" ? d : i === 0 ? 1 : 64)).join("x")}`;
  const n = parts.map(Number);
  if (n.some((v) => !Number.isInteger(v) || v < 1)) return "sizes are positive integers";
  const clash = dims.findIndex((d, i) => typeof d === "number" && d !== n[i]);
  if (clash >= 0) return `axis ${clash} is fixed at ${dims[clash]} by the model`;
  return n;
}
