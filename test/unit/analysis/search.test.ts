// The mixed-precision search on tiny models built in code: a ranking that several ruinous nodes cannot mask, the
// yardstick a Softmax output gets, argmax agreement, progress with an ETA, and cancelling.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Feeds } from "../../../engine/data/feeds";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { calibrate, convert, prepare, release } from "../../../engine/quant/index";
import { argmaxAgreement, comparedTensors, modelOutputs, outputSqnr } from "../../../engine/analysis/search/outputs";
import { searchMixedPrecision, type Progress } from "../../../engine/analysis/sensitivity";
import { makeModel, randomFloats, valueInfo } from "../quant/build";

const F = DataType.FLOAT;
const C = 4;
const RUINOUS = ["c1", "c6"];

/**
 * Six 3×3 Convs in a chain, 4 channels each; channel 3 of every activation is always zero (the input's is, and no
 * Conv writes it). c1 and c6 also carry a weight of 100 on that dead channel: it changes nothing in float, but its
 * int8 scale (100/127) rounds every real weight of theirs to zero, so either one quantized flattens the output.
 * Restored one at a time, each leaves the other to ruin it: only a ranking that quantizes each node alone sees
 * them. (They are the chain's ends on purpose: a float Conv between a DequantizeLinear and a QuantizeLinear is
 * quantized by onnxruntime itself, per tensor — docs/mixed-precision.md.)
 */
function chain(): Model {
  const nodes = [];
  const inits = [];
  let x = "x";
  for (let i = 1; i <= 6; i++) {
    const y = i === 6 ? "y" : `c${i}`;
    const w = randomFloats(C * C * 9, i, -0.3, 0.3);
    for (let o = 0; o < C; o++) for (let k = 0; k < 9; k++) w[(o * C + 3) * 9 + k] = 0; // input channel 3 unused...
    for (let k = 0; k < C * 9; k++) w[3 * C * 9 + k] = 0; // ...and output channel 3 never written
    if (RUINOUS.includes(`c${i}`)) for (let o = 0; o < C; o++) w[(o * C + 3) * 9 + 4] = 100;
    inits.push(makeTensor(`W${i}`, F, [C, C, 3, 3], w));
    nodes.push(makeNode("Conv", [x, `W${i}`], [y], { name: `c${i}`, attributes: [attr.ints("pads", [1, 1, 1, 1])] }));
    x = y;
  }
  return Model.fromProto(makeModel(nodes, [valueInfo("x", F, [1, C, 8, 8])], [valueInfo("y", F, [1, C, 8, 8])], inits));
}

function batch(seed: number): Feeds {
  const data = randomFloats(C * 64, seed);
  data.fill(0, 3 * 64); // channel 3 is dead
  return { x: { type: "float32", dims: [1, C, 8, 8], data } };
}

async function calibrated(model: Model) {
  const prepared = await prepare(model, {}, { optimize: false });
  await calibrate(prepared, [1, 2, 3, 4].map(batch));
  await release(prepared);
  return prepared;
}

test("two nodes that each ruin the output alone: the search keeps exactly those float (restore-one ranks them by chance)", async () => {
  const prepared = await calibrated(chain());
  const data = [5, 6].map(batch);
  const options = { remedy: "float" as const, minInt8WeightShare: 0 };
  const r = await searchMixedPrecision(prepared, data, { kind: "sqnr", minDb: 25 }, options);
  assert.equal(r.ranking.method, "quantize-one");
  assert.deepEqual(r.ranking.layers.slice(0, 2).map((l) => l.node).sort(), RUINOUS);
  assert.ok(r.ranking.baselineDb < 3, `all quantized: ${r.ranking.baselineDb} dB`);
  assert.ok(r.chosen.met, `${r.chosen.metric} dB`);
  assert.deepEqual([...r.chosen.keptFloat].sort(), RUINOUS);
  // Restoring one at a time: each ruinous node leaves the other, so neither gains anything and both may rank last.
  const old = await searchMixedPrecision(prepared, data, { kind: "sqnr", minDb: 25 }, { ...options, rankMethod: "restore-one" });
  for (const n of RUINOUS) assert.ok(Math.abs(old.ranking.layers.find((l) => l.node === n)!.gainDb) < 1, `${n} restored alone`);
});

test("the yardstick: a final Softmax is compared on what it reads (through Flatten/Reshape), other outputs as they are", async () => {
  const nodes = [
    makeNode("MatMul", ["x", "W"], ["logits"], { name: "mm" }),
    makeNode("Flatten", ["logits"], ["flat"], { name: "flatten" }),
    makeNode("Softmax", ["flat"], ["p2d"], { name: "softmax" }),
    makeNode("Reshape", ["p2d", "shape"], ["probs"], { name: "reshape" }),
    makeNode("Relu", ["logits"], ["other"], { name: "relu" }),
  ];
  const inits = [makeTensor("W", F, [4, 3], randomFloats(12, 1)), makeTensor("shape", DataType.INT64, [2], [2n, 3n])];
  const m = Model.fromProto(makeModel(nodes, [valueInfo("x", F, [2, 4])], [valueInfo("probs", F, [2, 3]), valueInfo("other", F, [2, 3])], inits));
  assert.deepEqual(comparedTensors(m), ["flat", "other"]);
  assert.deepEqual(comparedTensors(m, "logits"), ["flat", "other"]);
  assert.deepEqual(comparedTensors(m, "outputs"), ["probs", "other"]);

  // An agreement target counts argmax on the outputs, while its ranking still compares the logits.
  const prepared = await prepare(m, {}, { optimize: false });
  const feeds = (seed: number): Feeds => ({ x: { type: "float32", dims: [2, 4], data: randomFloats(8, seed) } });
  await calibrate(prepared, [1, 2, 3].map(feeds));
  await release(prepared);
  const data = [4, 5].map(feeds);
  const r = await searchMixedPrecision(prepared, data, { kind: "agreement", minPct: 100, per: "row" }, { remedy: "float", minInt8WeightShare: 0 });
  const logits = comparedTensors(m);
  const { model: full } = await convert(prepared);
  const want = outputSqnr(await modelOutputs(prepared.model, data, {}, logits), await modelOutputs(full, data, {}, logits));
  assert.ok(Math.abs(r.ranking.baselineDb - want) < 1e-9, `ranking baseline ${r.ranking.baselineDb} dB, logits ${want} dB`);
});

test("argmax agreement per frame and per whole sequence, against hand-counted rows", () => {
  // 2 samples × 3 frames × 2 classes; the candidate flips frame 1 of sample 0.
  const ref = [[{ dims: [2, 3, 2], data: Float32Array.from([1, 0, 0, 1, 1, 0, /**/ 0, 1, 0, 1, 1, 0]) }]];
  const got = [[{ dims: [2, 3, 2], data: Float32Array.from([1, 0, 1, 0, 1, 0, /**/ 0, 1, 0, 1, 1, 0]) }]];
  assert.deepEqual([...argmaxAgreement(ref, got, "row")], [1, 0, 1, 1, 1, 1]);
  assert.deepEqual([...argmaxAgreement(ref, got, "sample")], [0, 1]);
});

test("an agreement target, progress with a shrinking ETA, and an abort that stops the search", async () => {
  const prepared = await calibrated(chain());
  const data = [5, 6].map(batch);
  const seen: Progress[] = [];
  const r = await searchMixedPrecision(prepared, data, { kind: "agreement", minPct: 100, per: "row" }, { remedy: "float", minInt8WeightShare: 0, onProgress: (_d, _t, p) => seen.push(p) });
  assert.ok(r.chosen.met && r.chosen.metric === 100, `${r.chosen.metric} %`);
  assert.ok(seen.length >= 7 && seen.every((p, i) => p.done - (seen[i - 1]?.done ?? 0) <= 1 && p.total >= p.done && p.etaSeconds >= 0), JSON.stringify(seen));
  assert.deepEqual([...new Set(seen.map((p) => p.phase))], ["rank", "search"]);
  assert.equal(seen.at(-1)!.done, seen.at(-1)!.total, "ends at its total");

  const stop = new AbortController();
  const run = searchMixedPrecision(prepared, data, { kind: "sqnr", minDb: 25 }, { onProgress: (done) => done === 3 && stop.abort(new Error("stopped by the user")), signal: stop.signal });
  await assert.rejects(run, /stopped by the user/);
});
