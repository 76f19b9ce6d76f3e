// The conversion a mixed-precision configuration asks for: the calibrated PreparedModel converted again with some
// nodes kept in float and others given 16-bit activations (their weights stay int8). One calibration serves every
// configuration; nothing is re-prepared.
import type { ConvertCache, PreparedModel, Quantized } from "../../quant/index";
import { convert } from "../../quant/index";
import type { Annotations } from "../../quant/annotate";
import type { QType } from "../../quant/math";
import { annotateGraph } from "../../quant/registry";
import { initializerSizes } from "../../onnx/graph";

/** Which nodes a mixed model treats differently from the default conversion. */
export interface MixConfig {
  /** Nodes not quantized at all. */
  keepFloat: readonly string[];
  /** Nodes whose activations (inputs and outputs) are 16-bit while their weights stay int8. */
  int16: readonly string[];
}

/** convert() with extra nodes kept in float. */
export async function convertExcluding(prepared: PreparedModel, keepFloat: readonly string[]): Promise<Quantized> {
  return convertMixed(prepared, { keepFloat });
}

/**
 * convert() with extra nodes kept in float and others given 16-bit activations (their weights stay int8). A search
 * that converts one prepared model many times passes one `cache` for all of them (quant's ConvertCache).
 */
export async function convertMixed(prepared: PreparedModel, mix: Partial<MixConfig>, cache?: ConvertCache): Promise<Quantized> {
  const { overrides } = prepared.config;
  const wide = widen(prepared.config.activationType);
  const sixteen = Object.fromEntries(sixteenBitTensors(prepared, mix.int16 ?? []).map((t) => [t, { ...overrides[t], type: wide }]));
  return convert({ ...prepared, config: { ...withFloat(prepared, mix.keepFloat ?? []), overrides: { ...overrides, ...sixteen } } }, { cache });
}

/** The prepared config with `keepFloat` added to its exclusions. */
function withFloat(prepared: PreparedModel, keepFloat: readonly string[]): PreparedModel["config"] {
  return { ...prepared.config, exclude: [...prepared.config.exclude, ...keepFloat] };
}

function widen(t: QType): QType {
  return t === "uint8" || t === "uint16" ? "uint16" : "int16";
}

/**
 * The tensors whose type decides the activations `nodes` read and write: each quantized, non-constant input and
 * output, or the tensor whose parameters it shares (a Reshape's output is quantized with its input's scale and type).
 * Outputs count because restoring a node to float (what the ranking measured) drops its output Q too where only it
 * wanted one (a Conv's output Q, there for onnxruntime's QLinearConv fusion).
 */
function sixteenBitTensors(prepared: PreparedModel, nodes: readonly string[]): string[] {
  if (nodes.length === 0) return [];
  const graph = prepared.model.graph;
  const marks = defaultMarks(prepared);
  const constants = new Set(graph.initializer.map((t) => t.name));
  const wanted = new Set(nodes);
  const out = new Set<string>();
  for (const [node, tensors] of marks.nodes) {
    if (!wanted.has(node.name)) continue;
    for (const t of tensors) {
      if (constants.has(t) || marks.weights.has(t) || !marks.activations.has(t)) continue;
      let root = t;
      for (let depth = 0; depth < 64; depth++) {
        const next = marks.activations.get(root)?.sameAs;
        if (!next || !marks.activations.has(next)) break;
        root = next;
      }
      out.add(root);
    }
  }
  return [...out];
}

/** The prepared model's own annotation, made once per PreparedModel (its config and graph do not change). */
const marksOf = new WeakMap<PreparedModel, Annotations>();
function defaultMarks(prepared: PreparedModel): Annotations {
  let m = marksOf.get(prepared);
  if (!m) marksOf.set(prepared, (m = annotateGraph(prepared.model.graph, prepared.config)));
  return m;
}

/** Weight parameter count per node (its constant inputs), for the int8 share of a mixed model. */
export function weightParams(prepared: PreparedModel): Map<string, number> {
  const inits = initializerSizes(prepared.model.graph);
  const m = new Map<string, number>();
  for (const n of prepared.model.graph.node) {
    const count = n.input.reduce((a, i) => a + (inits.get(i) ?? 0), 0);
    if (count) m.set(n.name, count);
  }
  return m;
}
