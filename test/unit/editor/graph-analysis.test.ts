import { test } from "node:test";
import assert from "node:assert/strict";
import type { HistogramDisplay, QuantStateEntry } from "../../../kernel/display-types";
import { histogramGeometry, SQNR_BANDS, sqnrBand } from "../../../media/graph/analysis";
import { graphAnalysis, nodeHistograms } from "../../../src/editor/graphAnalysis";
import { modelGraph, nodesByName } from "../../../src/editor/graphModel";
import { mlp } from "./build-model";

const entry = (node: string, tensor: string, sqnrDb?: number): QuantStateEntry => ({ node, op: "MatMul", tensor, role: "input", quantized: true, type: "uint8", ...(sqnrDb === undefined ? {} : { sqnrDb }) });

test("a node's SQNR is its worst tensor's; nodes are ranked worst first; other models' nodes and unmeasured tensors are left out", () => {
  const names = new Set(["a", "b", "c", "__proto__"]);
  const a = graphAnalysis([
    entry("a", "a.in", 31), entry("a", "a.w", 12.5),
    entry("b", "b.in", 300),
    entry("c", "c.in"), entry("c", "c.w", Number.NaN),
    entry("__proto__", "p", 25),
    entry("elsewhere", "x", 1),
  ], 18, names);
  assert.deepEqual(a, {
    warnBelowDb: 18,
    nodes: [
      { node: "a", sqnrDb: 12.5, text: "12.5 dB", tensor: "a.w", rank: 1 },
      { node: "__proto__", sqnrDb: 25, text: "25.0 dB", tensor: "p", rank: 2 },
      { node: "b", sqnrDb: 300, text: "exact", tensor: "b.in", rank: 3 },
    ],
  });
  // A float model's state from the file (no SQNR), or an analysis of another model: nothing to colour.
  assert.equal(graphAnalysis([entry("a", "a.in")], 20, names), undefined);
  assert.equal(graphAnalysis([entry("other", "t", 3)], 20, names), undefined);
});

test("ties keep graph order", () => {
  const a = graphAnalysis([entry("y", "t1", 10), entry("x", "t2", 10)], 20, new Set(["x", "y"]))!;
  assert.deepEqual(a.nodes.map((n) => [n.node, n.rank]), [["y", 1], ["x", 2]]);
});

test("a node's histograms are those of the activations it reads and writes, never its weights'", () => {
  const nodes = nodesByName(modelGraph(mlp()).graph);
  const hist = (tensor: string): HistogramDisplay => ({ kind: "ptq.histogram", tensor, edges: [0, 1], counts: [1], floatRange: [0, 1] });
  const list = ["input", "fc1.weight", "/fc1/MatMul_output_0", "h", "r"].map(hist);
  assert.deepEqual(nodeHistograms(nodes.get("/fc1/MatMul")!, list).map((h) => h.tensor), ["input", "/fc1/MatMul_output_0"]);
  assert.deepEqual(nodeHistograms(nodes.get("out")!, list), []);
});

test("SQNR bands: each lower bound belongs to the band above it; NaN is the worst", () => {
  assert.equal(SQNR_BANDS.length, 5);
  assert.deepEqual([-5, 9.99, 10, 19.9, 20, 30, 39.9, 40, 300, Number.NaN].map(sqnrBand), [0, 0, 1, 1, 2, 3, 3, 4, 4, 0]);
});

test("histogram geometry: log-scaled bars from the bottom, the clipping range's ends in plot coordinates", () => {
  const g = histogramGeometry({ edges: [-1, 0, 1, 2, 3], counts: [0, 1, 1000, 10], clipRange: [-0.5, 2.5] }, 400, 100);
  assert.deepEqual(g.domain, [-1, 3]);
  assert.deepEqual(g.clip, [50, 350]);
  const bars = [...g.bars.matchAll(/M([\d.]+),100V([\d.]+)H([\d.]+)V100Z/g)].map((m) => m.slice(1).map(Number));
  // The empty bin draws nothing; the tallest bin reaches the top; a count of 1 is log1p(1)/log1p(1000) high.
  assert.deepEqual(bars.map((b) => b[0]), [100, 200, 300]);
  assert.equal(bars[1]![1], 0);
  assert.ok(Math.abs(bars[0]![1]! - (100 - (Math.log1p(1) / Math.log1p(1000)) * 100)) < 0.06);
  // A clipping range wider than the observed values widens the plot to show it.
  const wide = histogramGeometry({ edges: [0, 1], counts: [5], clipRange: [-1, 1] }, 100, 10);
  assert.deepEqual([wide.domain, wide.clip, wide.bars], [[-1, 1], [0, 100], "M50.0,10V0.0H100.0V10Z"]);
  assert.deepEqual(histogramGeometry({ edges: [0, 1], counts: [0] }, 100, 10), { bars: "", domain: [0, 1] });
});
