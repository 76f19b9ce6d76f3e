// analyze / sensitivity / mixed precision on the real fixture CNN (trained on Fashion-MNIST).
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { Model } from "../../../engine/onnx";
import { calibrate, convert, prepare, release } from "../../../engine/quant";
import { readNpyFolder } from "../../../engine/data/readers";
import { analyze, takeBatches } from "../../../engine/analysis/analyze";
import { convertMixed, modelOutputs, outputSqnr, searchMixedPrecision } from "../../../engine/analysis/sensitivity";
import { pairedProportionDiff } from "../../../engine/analysis/stats";
import { readNpyTensor } from "../../../engine/analysis/dataset";
import { MIME } from "../../../kernel/display-types";
import { toBundle } from "../../../kernel/display";
import { searchMixedPrecision as notebookSearch } from "../../../kernel/api";

const FIX = path.join(__dirname, "..", "..", "fixtures");

async function calibratedCnn() {
  const model = await Model.load(path.join(FIX, "models", "cnn.onnx"));
  const prepared = await prepare(model);
  const calib = await takeBatches(readNpyFolder(path.join(FIX, "data", "calib", "npy"), model.proto), 32);
  await calibrate(prepared, calib);
  await release(prepared);
  return { prepared, calib };
}

/** The first n eval images as one batch, and their labels. */
function evalBatch(n: number) {
  const x = readNpyTensor(path.join(FIX, "data", "eval", "x.npy"));
  const y = readNpyTensor(path.join(FIX, "data", "eval", "y.npy"));
  const per = x.dims.slice(1).reduce((a, b) => a * b, 1);
  const feeds = { input: { data: (x.data as Float32Array).slice(0, n * per), dims: [n, ...x.dims.slice(1)] } };
  const labels = { type: y.type, dims: [n], data: (y.data as BigInt64Array).slice(0, n) };
  return { feeds, labels };
}

test("analyze: weight and activation SQNR per tensor, outputs, sorted worst first, rich display", async () => {
  const { prepared, calib } = await calibratedCnn();
  const result = await analyze(prepared, calib.slice(0, 8), { sensitivity: true });
  const j = result.toJSON();
  const convWeights = j.weights.filter((w) => w.opType === "Conv");
  assert.equal(convWeights.length, 3, "the three Conv weights are compared");
  for (const w of convWeights) assert.ok(w.sqnrDb > 30 && w.sqnrDb < 60, `${w.tensor}: per-channel int8 weight SQNR ${w.sqnrDb}`);
  assert.ok(j.activations.length >= 3, `activations compared: ${j.activations.length}`);
  assert.equal(j.outputs.length, 1);
  assert.ok(j.outputs[0]!.sqnrDb > 10 && Number.isFinite(j.outputs[0]!.sqnrDb));
  assert.ok(j.outputs[0]!.cosine > 0.95);
  const worst = result.worst();
  for (let i = 1; i < worst.length; i++) assert.ok(worst[i - 1]!.sqnrDb <= worst[i]!.sqnrDb);
  const s = j.sensitivity!;
  assert.equal(s.layers.length, (await convert(prepared)).summary.quantized.length);
  for (let i = 1; i < s.layers.length; i++) assert.ok(s.layers[i - 1]!.gainDb >= s.layers[i]!.gainDb);
  const bundle = toBundle(result); // what a notebook cell whose value is the result shows
  assert.ok(bundle[MIME.plotly] && bundle[MIME.sqnr] && bundle["text/html"]);
  assert.match(String(bundle["text/plain"]), /Sensitivity/);
});

test("mixed precision: the smallest prefix of the ranking that meets an output-SQNR target", async () => {
  const { prepared, calib } = await calibratedCnn();
  const data = calib.slice(0, 8);
  const easy = await searchMixedPrecision(prepared, data, { kind: "sqnr", minDb: 0 });
  assert.deepEqual(easy.chosen.keptFloat, [], "a target the full INT8 model meets keeps nothing in float");
  assert.equal(easy.chosen.int8WeightShare, 1);
  const baseline = easy.ranking.baselineDb;
  const best = easy.ranking.layers[0]!;
  // Ask for a little more than the fully quantized model gives but no more than restoring the worst node gives.
  const target = { kind: "sqnr" as const, minDb: baseline + best.gainDb / 2 };
  const r = await searchMixedPrecision(prepared, data, target, { remedy: "float" });
  assert.ok(r.chosen.met);
  assert.equal(r.chosen.remedy, "float");
  assert.deepEqual(r.chosen.int16, []);
  assert.ok(r.chosen.keptFloat.length >= 1);
  // The ranking's prefix, or where keeping its first node float lowers the output (the fixture CNN's features.4 alone
  // ranks first yet reads 1 dB lower kept float), greedy re-ranking: the smallest float set measured to meet it.
  const met = r.steps.filter((st) => st.metric >= target.minDb).map((st) => st.keptFloat.length);
  assert.equal(r.chosen.keptFloat.length, Math.min(...met));
  const ranked = new Set(r.ranking.layers.map((l) => l.node));
  assert.ok(r.chosen.keptFloat.every((n) => ranked.has(n)), "only ranked nodes stay float");
  assert.ok(r.chosen.metric >= target.minDb);
  assert.ok(r.chosen.int8WeightShare < 1 && r.chosen.int8WeightShare > 0);
  const kept = r.model.graph.node.filter((n) => n.opType === "QuantizeLinear").length;
  const full = (await (await import("../../../engine/quant")).convert(prepared)).model.graph.node.filter((n) => n.opType === "QuantizeLinear").length;
  assert.ok(kept <= full, "keeping nodes in float never adds quantization");
});

test("mixed precision by 16-bit activations: the chosen nodes read and write 16-bit tensors, every weight stays int8", async () => {
  const { prepared, calib } = await calibratedCnn();
  const data = calib.slice(0, 8);
  const reference = await modelOutputs(prepared.model, data);
  const ranking = (await searchMixedPrecision(prepared, data, { kind: "sqnr", minDb: 0 })).ranking;
  const all = ranking.layers.map((l) => l.node);
  // Every quantized node at 16 bits is the uint16-activation model: the error left is the weights' (most of it in
  // this CNN, with the uint8 weights this CPU gets by default).
  const { model: sixteen } = await convertMixed(prepared, { int16: all });
  const zpType = (m: Model) => {
    const inits = new Map(m.graph.initializer.map((t) => [t.name, t.dataType]));
    return m.graph.node.filter((n) => n.opType === "QuantizeLinear").map((n) => inits.get(n.input[2]!));
  };
  assert.ok(zpType(sixteen).length > 0 && zpType(sixteen).every((t) => t === 4), `Q zero-point types ${zpType(sixteen)}`);
  const weights = (m: Model) => m.graph.initializer.filter((t) => t.name.endsWith("_quantized") && (t.dataType === 2 || t.dataType === 3)).length;
  assert.equal(weights(sixteen), weights((await convertMixed(prepared, {})).model), "weights stay 8-bit");
  const full16 = outputSqnr(reference, await modelOutputs(sixteen, data));
  assert.ok(full16 > ranking.baselineDb + 2, `all 16-bit ${full16} dB vs int8 ${ranking.baselineDb} dB`);

  // One node at 16 bits: its activation inputs and output are 16-bit, the rest of the graph keeps 8.
  const { model: one } = await convertMixed(prepared, { int16: [all[0]!] });
  const types = zpType(one);
  assert.ok(types.includes(4) && types.includes(2), `mixed types ${types}`);

  // The search with remedy int16: a target between int8 and all-16-bit is met with 16-bit nodes and no float weight.
  const target = { kind: "sqnr" as const, minDb: (ranking.baselineDb + full16) / 2 };
  const r = await searchMixedPrecision(prepared, data, target, { remedy: "int16" });
  assert.ok(r.chosen.met, `int16: ${r.chosen.metric} dB`);
  assert.equal(r.chosen.remedy, "int16");
  assert.deepEqual(r.chosen.keptFloat, []);
  assert.ok(r.chosen.int16.length >= 1 && r.chosen.int16.length <= all.length);
  assert.equal(r.chosen.int8WeightShare, 1);
  assert.ok(Math.abs(outputSqnr(reference, await modelOutputs(r.model, data)) - r.chosen.metric) < 1e-6, "the returned model is the one measured");
  // "auto" takes whichever remedy meets it changing fewer nodes (here one float node within the weight floor).
  const auto16 = await searchMixedPrecision(prepared, data, target, { remedy: "auto" });
  assert.ok(auto16.chosen.met);
  assert.ok(auto16.chosen.keptFloat.length + auto16.chosen.int16.length <= r.chosen.int16.length);
  assert.ok(auto16.chosen.int8WeightShare >= 0.8, "the default floor holds");
  // In a notebook the result shows the changed nodes as a table (remedy, gain alone) and the search in words.
  const shown = await searchMixedPrecision(prepared, data, target, { remedy: "int16" });
  const bundle = toBundle(shown);
  const table = bundle[MIME.table] as { title: string; columns: string[]; rows: unknown[][] };
  assert.deepEqual(table.rows.map((r) => [r[0], r[2]]), shown.chosen.int16.map((n) => [n, "16-bit"]));
  assert.match(table.title, /^Mixed precision: target met — [\d.]+ dB output SQNR, 100\.0 % of weights int8; \d+ node\(s\) at 16-bit activations$/);
  assert.match(String(bundle["text/plain"]), /^target ≥ [\d.]+ dB output SQNR met\n  all nodes quantized: /);
  assert.match(String(bundle["text/plain"]), new RegExp(`\n  ranked on ${shown.rankedOn.samples} of ${shown.rankedOn.of} samples.*; the steps measure on all\n`));
  assert.equal(Object.getOwnPropertySymbols({ ...shown }).length, 0, "copies (the CLI's --json) leave the display behind");

  // A target 16-bit activations cannot reach (the weights' own error): auto falls back to float, int16 says not met.
  const hard = { kind: "sqnr" as const, minDb: full16 + 3 };
  const auto = await searchMixedPrecision(prepared, data, hard, { remedy: "auto", minInt8WeightShare: 0 });
  assert.equal(auto.chosen.remedy, "float");
  assert.ok(auto.chosen.met && auto.chosen.keptFloat.length >= 1, `auto: ${auto.chosen.metric} dB with ${auto.chosen.keptFloat.length} float`);
  const only16 = await searchMixedPrecision(prepared, data, hard, { remedy: "int16" });
  assert.equal(only16.chosen.met, false);
  assert.equal(only16.chosen.int16.length, all.length);
  await assert.rejects(searchMixedPrecision(prepared, data, hard, { remedy: "fp16" as never }), /remedy: "fp16" is not one of/);
});

test("mixed precision trade-off: accuracy, int8 share, size and (on request) latency of every configuration measured", async () => {
  const { prepared, calib } = await calibratedCnn();
  const data = calib.slice(0, 4);
  // The notebook API's result: the engine's, with tradeoff() and plot() for the cell.
  const plain = await notebookSearch(prepared, data, { kind: "sqnr", minDb: 45 });
  const table = (r: typeof plain) => r.tradeoff().toMimeBundle()[MIME.table] as { columns: string[]; rows: unknown[][] };
  assert.ok(!table(plain).columns.includes("p50 (ms)"), "no latency unless asked");
  assert.equal(plain.float.latencyMs, undefined);
  const r = await notebookSearch(prepared, data, { kind: "sqnr", minDb: 45 }, { tradeoff: { seconds: 0.5 }, minInt8WeightShare: 0 });
  const t = table(r);
  assert.equal(t.rows.length, r.steps.length + 1, "the float model, then every step");
  assert.deepEqual(t.rows[0]!.slice(0, 3), ["float model", 0, 0]);
  assert.equal(t.rows.filter((row) => row[0] === "chosen").length, 1);
  assert.ok(r.float.latencyMs! > 0 && r.steps.every((s) => s.latencyMs! > 0 && s.bytes > 0), JSON.stringify(r.steps.map((s) => [s.bytes, s.latencyMs])));
  // Sizes are real: the default INT8 model is under half the float one; keeping the weighty nodes float grows it.
  const none = r.steps.find((s) => s.keptFloat.length + s.int16.length === 0)!;
  assert.ok(none.bytes < r.float.bytes / 2, `${none.bytes} vs ${r.float.bytes}`);
  const mostFloat = r.steps.reduce((a, s) => (s.int8WeightShare < a.int8WeightShare ? s : a));
  assert.ok(mostFloat.int8WeightShare < 0.5 && mostFloat.bytes > 2 * none.bytes, `${mostFloat.int8WeightShare}: ${mostFloat.bytes} vs ${none.bytes}`);
  const fig = r.plot() as { data: { x: number[]; y: number[] }[] };
  assert.equal(fig.data[0]!.x.length, r.steps.filter((s) => Number.isFinite(s.metric)).length);
  assert.ok(!Object.keys(r).includes("tradeoff") && !Object.keys(r).includes("plot"), "methods stay out of JSON and copies");
});

test("mixed precision with a top-1 drop target on labelled data", async () => {
  const { prepared } = await calibratedCnn();
  const { feeds, labels } = evalBatch(500);
  const r = await searchMixedPrecision(prepared, [feeds], { kind: "drop", maxPp: 0.3, labels });
  assert.ok(Math.abs(r.floatMetric! - 91) < 2, `float top-1 on 500 eval images: ${r.floatMetric}`);
  assert.ok(r.chosen.met, `drop ${r.floatMetric! - r.chosen.metric} pp`);
  assert.ok(r.floatMetric! - r.chosen.metric <= 0.3);
});

test("paired drop standard error against hand-computed values", () => {
  const a = Uint8Array.from([1, 1, 1, 1, 0, 0, 1, 1, 0, 1]);
  const b = Uint8Array.from([1, 0, 1, 1, 0, 1, 1, 1, 0, 0]);
  // only a: samples 1 and 9 (2), only b: sample 5 (1), n 10 → √(3 − 1/10)/10.
  assert.ok(Math.abs(pairedProportionDiff(a, b).stdErr - Math.sqrt(2.9) / 10) < 1e-12);
  assert.equal(pairedProportionDiff(a, a).stdErr, 0);
});
