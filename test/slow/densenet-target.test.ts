// The mixed-precision search on a real trained model (test/fixtures/scripts/make_densenet.py). This fixture was made
// for issue #6 because default INT8 lost 0.6 pp on it; since the placement fix of 73d2daf (ops read only by float
// ops stay float) default INT8 loses ≤ 0.3 pp, so there is no top-1 drop left for the search to repair. The test
// now asks it for more output fidelity than the default gives (its output SQNR + 3 dB): the search must keep a few
// nodes float to get there with at least 90 % of the weights still int8, and the model it returns is what it
// claims (the nodes it names run in float, its SQNR re-measured matches). Slow: one conversion and run per node.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { takeBatches } from "../../engine/analysis/analyze";
import { readNpyTensor } from "../../engine/analysis/dataset";
import { sliceRows } from "../../engine/analysis/feeds";
import { classLabels } from "../../engine/analysis/metrics";
import { modelOutputs, outputSqnr, searchMixedPrecision, top1 } from "../../engine/analysis/sensitivity";
import type { Feeds } from "../../engine/data/feeds";
import { openData } from "../../engine/data/readers";
import { Model } from "../../engine/onnx";
import { calibrate, convert, prepare, release } from "../../engine/quant";

const FIX = path.join(__dirname, "..", "fixtures");
const MODEL = "densenet";

test(`${MODEL}: default INT8 within 0.3 pp; the search keeps a few nodes float for +3 dB output SQNR with >= 90 % int8 weights`, { timeout: 180_000 }, async () => {
  const source = await Model.load(path.join(FIX, "models", `${MODEL}.onnx`));
  const x = readNpyTensor(path.join(FIX, "data", "eval", "x.npy"));
  const y = readNpyTensor(path.join(FIX, "data", "eval", "y.npy"));
  const data: Feeds[] = [];
  for (let s = 0; s < 1000; s += 250) data.push({ input: sliceRows(x, s, 250) });
  const labels = classLabels(y).slice(0, 1000);

  const prepared = await prepare(source);
  const calib = await takeBatches(openData(path.join(FIX, "data", "calib", "calib.npz"), source.proto, { batchSize: 32 }), 64);
  await calibrate(prepared, calib);
  await release(prepared);

  const reference = await modelOutputs(prepared.model, data);
  const byDefault = await modelOutputs((await convert(prepared)).model, data);
  assert.ok(top1(reference, labels) - top1(byDefault, labels) <= 0.3, "default INT8 within 0.3 pp (the placement fix)");
  const baseDb = outputSqnr(reference, byDefault);

  const r = await searchMixedPrecision(prepared, data, { kind: "sqnr", minDb: baseDb + 3 }, { rankData: calib.slice(0, 16), minInt8WeightShare: 0.9 });
  assert.ok(r.chosen.met, `target ${(baseDb + 3).toFixed(1)} dB not met: ${r.chosen.metric} dB with ${r.chosen.keptFloat.length} nodes float`);
  assert.ok(r.chosen.int8WeightShare >= 0.9, `int8 weight share ${r.chosen.int8WeightShare}`);
  assert.ok(r.chosen.keptFloat.length >= 1 && r.chosen.keptFloat.length < r.ranking.layers.length, `kept ${r.chosen.keptFloat.length}`);

  // The returned model is the one described: its SQNR re-measured, and every node kept in float that has a weight
  // reads it as a float initializer, where the default conversion reads it through a DequantizeLinear.
  assert.ok(Math.abs(outputSqnr(reference, await modelOutputs(r.model, data)) - r.chosen.metric) < 1e-6);
  const { model: full } = await convert(prepared);
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
  const free = await searchMixedPrecision(prepared, calib, target, { minInt8WeightShare: 0 });
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
