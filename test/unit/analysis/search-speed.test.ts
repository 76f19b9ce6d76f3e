// What makes the search's ranking cheap without changing what it finds: ranking on a few rows spread over the search
// data (search/subset), and running only the part of a quantize-one model downstream of its node, fed float
// activations computed once (search/downstream); and an ETA that knows a search step runs more samples than a rank
// measurement (search/progress).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Feeds } from "../../../engine/data/feeds";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { calibrate, convert, prepare, release } from "../../../engine/quant/index";
import { downstreamPart, floatActivations } from "../../../engine/analysis/search/downstream";
import { convertMixed } from "../../../engine/analysis/search/mixed-model";
import { modelOutputs, outputSqnr } from "../../../engine/analysis/search/outputs";
import { ProgressClock } from "../../../engine/analysis/search/progress";
import { spreadRows } from "../../../engine/analysis/search/subset";
import { searchMixedPrecision, type Progress } from "../../../engine/analysis/sensitivity";
import { makeModel, randomFloats, valueInfo } from "../quant/build";

const F = DataType.FLOAT;
const C = 4;

/** Five 3×3 Convs in a chain, then a Relu; c2 has an outlier weight that coarsens its int8 grid. */
function chain(): Model {
  const nodes = [];
  const inits = [];
  let x = "x";
  for (let i = 1; i <= 5; i++) {
    const w = randomFloats(C * C * 9, i, -0.3, 0.3);
    if (i === 2) w[4] = 3;
    inits.push(makeTensor(`W${i}`, F, [C, C, 3, 3], w));
    nodes.push(makeNode("Conv", [x, `W${i}`], [`c${i}`], { name: `c${i}`, attributes: [attr.ints("pads", [1, 1, 1, 1])] }));
    x = `c${i}`;
  }
  nodes.push(makeNode("Relu", [x], ["y"], { name: "relu" }));
  return Model.fromProto(makeModel(nodes, [valueInfo("x", F, ["n", C, 8, 8])], [valueInfo("y", F, ["n", C, 8, 8])], inits));
}

const batch = (seed: number, rows = 1): Feeds => ({ x: { type: "float32", dims: [rows, C, 8, 8], data: randomFloats(rows * C * 64, seed) } });

async function calibrated() {
  const prepared = await prepare(chain(), {}, { optimize: false });
  await calibrate(prepared, [1, 2, 3, 4].map((s) => batch(s)));
  await release(prepared);
  return prepared;
}

/** Batches of the given row counts whose every row holds its own index over all of them. */
function numbered(sizes: number[]): Feeds[] {
  let first = 0;
  return sizes.map((n) => {
    const data = Float32Array.from({ length: n * 2 }, (_, i) => first + Math.floor(i / 2));
    first += n;
    return { x: { type: "float32", dims: [n, 2], data } };
  });
}
const rowsOf = (data: readonly Feeds[]) => data.map((b) => [...(b.x!.data as Float32Array)].filter((_, i) => i % 2 === 0));

test("spreadRows: k rows spread evenly (row ⌊(j + ½)·n/k⌋), batches cut to their rows unless the batch size is fixed", () => {
  const single = numbered(Array(10).fill(1));
  assert.deepEqual(rowsOf(spreadRows(single, 4).data), [[1], [3], [6], [8]]);
  const two = numbered([5, 5]);
  const cut = spreadRows(two, 4);
  assert.deepEqual(rowsOf(cut.data), [[1, 3], [6, 8]]);
  assert.deepEqual([cut.rows, cut.of], [4, 10]);
  assert.deepEqual(cut.data.map((b) => b.x!.dims), [[2, 2], [2, 2]]);
  const whole = spreadRows(two, 4, true);
  assert.deepEqual([whole.data.length, whole.rows], [2, 10]);
  assert.equal(spreadRows(two, 10).data, two, "no more rows than asked: the data itself");
  assert.equal(spreadRows(two, Infinity).data, two);
  assert.throws(() => spreadRows(two, 0), /rankSamples: 0 must be a whole number/);
});

test("downstreamPart: a quantize-one model cut after its node's float inputs gives the whole model's outputs", async () => {
  const prepared = await calibrated();
  const data = [5, 6].map((s) => batch(s, 2));
  const others = ["c1", "c2", "c3", "c5"];
  const whole = (await convertMixed(prepared, { keepFloat: others, int16: [] })).model;
  const part = downstreamPart((await convertMixed(prepared, { keepFloat: others, int16: [] })).model, prepared.model, ["y"], () => F)!;
  assert.deepEqual([...part.floatNames], [["c3_float", "c3"]], "c4's input (c3, renamed where it gets its Q): the float model computes everything before it");
  assert.ok(!part.model.graph.node.some((n) => ["c1", "c2", "c3"].includes(n.name)), part.model.graph.node.map((n) => n.name).join());
  const cached = (await floatActivations(prepared.model, data, ["c3"]))!.map((b) => ({ c3_float: b.c3! }));
  const [full, cutOuts, ref] = [await modelOutputs(whole, data), await modelOutputs(part.model, cached), await modelOutputs(prepared.model, data)];
  const a = full.flat().flatMap((t) => [...t.data]);
  const b = cutOuts.flat().flatMap((t) => [...t.data]);
  assert.ok(a.some((v, i) => v !== ref.flat().flatMap((t) => [...t.data])[i]), "c4 quantized changes the output");
  assert.ok(Math.max(...a.map((v, i) => Math.abs(v - b[i]!))) < 1e-5, "the part gives the whole model's outputs");
  assert.equal(outputSqnr(ref, cutOuts).toFixed(3), outputSqnr(ref, full).toFixed(3));

  const all = downstreamPart((await convert(prepared)).model, prepared.model, ["y"])!;
  assert.deepEqual(all.inputs, ["x"], "everything quantized: the part is the whole model, fed the data");
  assert.equal(all.model.graph.node.length, (await convert(prepared)).model.graph.node.length);
  assert.equal(downstreamPart(prepared.model.clone(), prepared.model, ["y"]), undefined, "nothing changed: no part");

  // An input the caller cannot feed (not among the cached activations): no part, and the model is left whole, for
  // the caller to run as it is (it used to be cut first, then run whole with untyped inputs: onnxruntime refused it).
  const refused = (await convertMixed(prepared, { keepFloat: others, int16: [] })).model;
  const before = refused.toBytes();
  assert.equal(downstreamPart(refused, prepared.model, ["y"], () => F, (t) => t !== "c3"), undefined);
  assert.deepEqual(refused.toBytes(), before, "the refused model is untouched");
  assert.equal((await modelOutputs(refused, data)).length, data.length);
});

test("the search ranks on 32 rows spread over its data and runs downstream parts, and finds what whole runs on all rows find", async () => {
  const prepared = await calibrated();
  const data = Array.from({ length: 40 }, (_, i) => batch(100 + i));
  const target = { kind: "sqnr" as const, minDb: 30 };
  const options = { remedy: "float" as const, minInt8WeightShare: 0, greedy: false as const };
  const seen: Progress[] = [];
  const fast = await searchMixedPrecision(prepared, data, target, { ...options, onProgress: (_d, _t, p) => seen.push(p) });
  const slow = await searchMixedPrecision(prepared, data, target, { ...options, rankSamples: Infinity, runDownstream: false });
  assert.deepEqual(fast.rankedOn, { samples: 32, of: 40, cachedTensors: 4, cachedBytes: 4 * 32 * C * 64 * 4 }, "c1..c4's outputs feed c2..c5 (x is the data)");
  assert.deepEqual(slow.rankedOn, { samples: 40, of: 40, cachedTensors: 0, cachedBytes: 0 });
  assert.deepEqual(new Set(seen.map((p) => `${p.phase} ${p.samples}`)), new Set(["rank 32", "search 40"]));
  assert.deepEqual(fast.ranking.layers.map((l) => l.node), slow.ranking.layers.map((l) => l.node));
  assert.equal(fast.ranking.layers[0]!.node, "c2", "the outlier ranks first");
  assert.ok(fast.chosen.met && slow.chosen.met);
  assert.deepEqual(fast.chosen.keptFloat, slow.chosen.keptFloat);
  assert.equal(fast.chosen.metric, slow.chosen.metric, "the chosen configuration is measured on all 40 rows by both");
  const whole = await searchMixedPrecision(prepared, data, target, { ...options, runDownstream: false });
  fast.ranking.layers.forEach((l, i) => assert.ok(Math.abs(l.outputSqnrDb - whole.ranking.layers[i]!.outputSqnrDb) < 1e-3, `${l.node}: ${l.outputSqnrDb} vs ${whole.ranking.layers[i]!.outputSqnrDb}`));
});

test("the ETA times each phase on its own: a search step not yet timed costs a rank measurement × its samples' ratio", () => {
  let ms = 0;
  const seen: Progress[] = [];
  const clock = new ProgressClock(6, (p) => seen.push(p), { rankMeasurements: 4, samples: { rank: 32, search: 128 }, now: () => ms });
  const step = (phase: Progress["phase"], cost: number) => ((ms += cost), clock.tick(phase));
  step("rank", 1000);
  step("rank", 1000);
  assert.equal(seen.at(-1)!.etaSeconds, 2 * 1 + 2 * 4, "2 rank measurements at 1 s, 2 search steps at 4× the samples");
  assert.equal(seen.at(-1)!.samples, 32);
  step("rank", 1000);
  step("rank", 1000);
  step("search", 3000);
  assert.equal(seen.at(-1)!.etaSeconds, 3, "once timed, a search step costs what it took");
  assert.deepEqual([seen.at(-1)!.samples, seen.at(-1)!.elapsedSeconds], [128, 7]);
});
