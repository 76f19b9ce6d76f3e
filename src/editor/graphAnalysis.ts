// What the graph view shows of the kernel's analysis (pure, for tests): each node's worst SQNR and its rank among
// the analysed nodes of the graph, from the entries the Quantization State view holds (analyze() sends them), and a
// node's calibration histograms from the Histograms view's list. Names are the float model's: a quantized twin's
// folded graph has the same ones.
import type { HistogramDisplay, QuantStateEntry } from "../../kernel/display-types";
import type { GraphAnalysis, GraphNodeData, NodeAnalysis } from "../../media/graph/types";
import { formatDb, worstEntry } from "../views/quantStateModel";

/**
 * The analysis of the nodes of `names` that have a measured SQNR, ranked worst first (ties keep graph order);
 * undefined when none has one (no analysis yet, or an analysis of another model).
 */
export function graphAnalysis(entries: readonly QuantStateEntry[], warnBelowDb: number, names: ReadonlySet<string>): GraphAnalysis | undefined {
  const byNode = new Map<string, QuantStateEntry[]>();
  for (const e of entries) if (names.has(e.node)) byNode.set(e.node, [...(byNode.get(e.node) ?? []), e]);
  const worst: Array<Omit<NodeAnalysis, "rank">> = [];
  for (const [node, list] of byNode) {
    const w = worstEntry(list);
    if (w) worst.push({ node, sqnrDb: w.sqnrDb!, text: formatDb(w.sqnrDb!), tensor: w.tensor });
  }
  if (worst.length === 0) return undefined;
  const nodes = worst
    .map((w, i) => ({ w, i }))
    .sort((a, b) => a.w.sqnrDb - b.w.sqnrDb || a.i - b.i)
    .map(({ w }, r) => ({ ...w, rank: r + 1 }));
  return { nodes, warnBelowDb };
}

/** The histograms of a node's activation tensors (inputs then outputs), as calibration collected them. */
export function nodeHistograms(n: GraphNodeData, histograms: readonly HistogramDisplay[]): HistogramDisplay[] {
  const byTensor = new Map(histograms.map((h) => [h.tensor, h]));
  const names = [...new Set([...n.inputs, ...n.outputs].filter((t) => t.kind === "edge").map((t) => t.name))];
  return names.flatMap((t) => byTensor.get(t) ?? []);
}
