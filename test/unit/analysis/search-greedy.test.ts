// Greedy re-ranking (search/strategy's greedySearch): on a model whose one-shot ranking is wrong, and over an
// injected measure (which configurations it asks for, that it never accepts a step that lowers the metric, and
// that it keeps to its budget).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Feeds } from "../../../engine/data/feeds";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { calibrate, prepare, release } from "../../../engine/quant/index";
import { greedySearch, type Scored } from "../../../engine/analysis/search/strategy";
import type { MixConfig } from "../../../engine/analysis/search/mixed-model";
import { searchMixedPrecision } from "../../../engine/analysis/sensitivity";
import { makeModel, randomFloats, valueInfo } from "../quant/build";

const F = DataType.FLOAT;
const C = 4;

/** A 3×3 Conv weight on C channels whose channel 3 is dead, with `outlier` on it (coarsens the int8 scale). */
function weight(seed: number, outlier: number): Float32Array {
  const w = randomFloats(C * C * 9, seed, -0.3, 0.3);
  for (let o = 0; o < C; o++) for (let k = 0; k < 9; k++) w[(o * C + 3) * 9 + k] = 0;
  for (let k = 0; k < C * 9; k++) w[3 * C * 9 + k] = 0;
  for (let o = 0; o < 3; o++) w[(o * C + 3) * 9 + 4] = outlier;
  return w;
}

/**
 * x → Conv f → t; y = t + (g(t) − h(t)), g and h two Convs with the same weights. Quantized, g and h give the same
 * values and cancel; each quantized alone ruins the output (its outlier rounds its real weights to zero), so a
 * ranking of each node alone puts g and h first, though keeping either float alone makes things worse. f's
 * quantization error is real but smaller (a milder outlier): keeping f float is all the target needs.
 */
function cancelling(): Model {
  const conv = (name: string, input: string, w: string, output: string) => makeNode("Conv", [input, w], [output], { name, attributes: [attr.ints("pads", [1, 1, 1, 1])] });
  const same = weight(2, 100);
  return Model.fromProto(
    makeModel(
      [conv("f", "x", "Wf", "t"), conv("g", "t", "Wg", "u"), conv("h", "t", "Wh", "v"), makeNode("Sub", ["u", "v"], ["d"], { name: "sub" }), makeNode("Add", ["t", "d"], ["y"], { name: "add" })],
      [valueInfo("x", F, [1, C, 8, 8])],
      [valueInfo("y", F, [1, C, 8, 8])],
      [makeTensor("Wf", F, [C, C, 3, 3], weight(1, 4)), makeTensor("Wg", F, [C, C, 3, 3], same), makeTensor("Wh", F, [C, C, 3, 3], same.slice())],
    ),
  );
}

function batch(seed: number): Feeds {
  const data = randomFloats(C * 64, seed);
  data.fill(0, 3 * 64); // channel 3 is dead
  return { x: { type: "float32", dims: [1, C, 8, 8], data } };
}

test("errors that cancel: the one-shot ranking puts g and h first, greedy re-ranking keeps only f float", async () => {
  const prepared = await prepare(cancelling(), {}, { optimize: false });
  await calibrate(prepared, [1, 2, 3, 4].map(batch));
  await release(prepared);
  const data = [5, 6].map(batch);
  const options = { remedy: "float" as const, minInt8WeightShare: 0 };
  const target = { kind: "sqnr" as const, minDb: 30 };
  const oneShot = await searchMixedPrecision(prepared, data, target, { ...options, greedy: false });
  const ranked = oneShot.ranking.layers.map((l) => `${l.node} ${l.outputSqnrDb.toFixed(1)}`);
  assert.deepEqual(oneShot.ranking.layers.slice(0, 2).map((l) => l.node).sort(), ["g", "h"], ranked.join(", "));
  assert.ok(oneShot.chosen.met && oneShot.chosen.keptFloat.length === 3, `one-shot keeps ${oneShot.chosen.keptFloat}`);
  const greedy = await searchMixedPrecision(prepared, data, target, options);
  assert.ok(greedy.chosen.met, `${greedy.chosen.metric} dB`);
  assert.deepEqual(greedy.chosen.keptFloat, ["f"]);
  const withF = greedy.steps.find((s) => s.keptFloat.join() === "f")!;
  assert.ok(withF.metric > greedy.steps.find((s) => s.keptFloat.length === 0)!.metric, "the accepted step raised the metric");
});

/** A measure whose metric is given per configuration (a set of float nodes), recording what was asked. */
function scored(metric: (float: ReadonlySet<string>) => number, minDb: number) {
  const asked: string[] = [];
  const measure = async (c: MixConfig): Promise<Scored> => {
    asked.push(c.keepFloat.join(""));
    const m = metric(new Set(c.keepFloat));
    return { keptFloat: c.keepFloat, int16: c.int16, metric: m, met: m >= minDb };
  };
  return { asked, measure };
}

test("greedy never accepts a step that lowers the metric, re-ranks after each step, keeps to its budget, stops when nothing helps", async () => {
  // a and b fix the same error (either is enough), c and d add 5 dB each, e costs 3 dB. The one-shot order
  // [e, a, b, c, d, f] needs 5 nodes as a prefix; greedy finds a, c, d.
  const metric = (s: ReadonlySet<string>) => 10 + (s.has("a") || s.has("b") ? 5 : 0) + (s.has("c") ? 5 : 0) + (s.has("d") ? 5 : 0) - (s.has("e") ? 3 : 0);
  const nodes = ["e", "a", "b", "c", "d", "f"];
  const { asked, measure } = scored(metric, 25);
  const r = await greedySearch(nodes, measure, { budget: 20, window: 2, maxNodes: 6 });
  assert.deepEqual([r.keptFloat, r.met], [["a", "c", "d"], true]);
  // Step 1: e (lower) and a; a accepted. Step 2: e again (first of the re-ranked order) and b: neither raises
  // it, so the next window: c and d (a tie: c). Step 3: d, which meets the target. Nodes listed in one-shot order.
  assert.deepEqual(asked, ["", "e", "a", "ea", "ab", "ac", "ad", "acd"]);

  const tight = scored(metric, 100);
  const capped = await greedySearch(nodes, tight.measure, { budget: 5, window: 2, maxNodes: 6 });
  assert.equal(tight.asked.length, 5, `asked ${tight.asked}`);
  assert.deepEqual([capped.keptFloat, capped.met], [["a"], false]);
  // A metric no single node moves (an all-or-nothing agreement): three windows, then it stops, budget left.
  const flat = scored(() => 0, 97);
  const none = await greedySearch(["a", "b", "c", "d", "e", "f", "g", "h"], flat.measure, { budget: 24, window: 2, maxNodes: 8 });
  assert.deepEqual([none.keptFloat, flat.asked], [[], ["", "a", "b", "c", "d", "e", "f"]]);
  const bounded = scored(metric, 25);
  const few = await greedySearch(nodes, bounded.measure, { budget: 20, window: 2, maxNodes: 2 });
  assert.deepEqual([few.keptFloat, few.met], [["a", "c"], false], "stops at maxNodes float");
});
