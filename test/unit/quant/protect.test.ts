// QConfig.protect (the default): calibrate() quantizes each weighted node alone and keeps float the ones whose
// quantization alone makes a quarter or more of the whole model's noise, within a weight budget; the summary
// names them and the measurement. Models whose error is spread over their layers are left as they were.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { searchMixedPrecision } from "../../../engine/analysis/sensitivity";
import { DataType } from "../../../engine/onnx/dtype";
import { floatToFloat16 } from "../../../engine/onnx/floatbits";
import { Model } from "../../../engine/onnx/model";
import { makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { calibrate, prepare, quantizeDynamic } from "../../../engine/quant/index";
import { sqnr } from "../../../engine/quant/math";
import { resolveConfig } from "../../../engine/quant/types";
import { PROTECT_MARGIN_DB, PROTECT_MAX_WEIGHT_SHARE } from "../../../engine/quant/protect";
import { makeModel, quantizeTiny, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;

/**
 * x[N, 64] ⊙ mask → MatMul "a" (64×A) → MatMul "b" (A×B) → y. With `outlier`, each of a's columns holds one weight of
 * 60 on the input the mask scales to 0.001: it adds almost no signal but stretches the column's 8-bit grid 30-fold,
 * so a's rounding alone costs the outputs nearly all of the model's error.
 */
function chain(outlier: boolean, a = 16, b = 1024, n: string | number = "N") {
  const wa = randomFloats(64 * a, 3);
  if (outlier) for (let c = 0; c < a; c++) wa[c] = 60;
  const mask = new Float32Array(64).fill(1);
  mask[0] = 0.001;
  return makeModel(
    [
      makeNode("Mul", ["x", "mask"], ["u"], { name: "scale" }),
      makeNode("MatMul", ["u", "Wa"], ["t"], { name: "a" }),
      makeNode("MatMul", ["t", "Wb"], ["y"], { name: "b" }),
    ],
    [valueInfo("x", F, [n, 64])],
    [valueInfo("y", F, [n, b])],
    [makeTensor("mask", F, [64], mask), makeTensor("Wa", F, [64, a], wa), makeTensor("Wb", F, [a, b], randomFloats(a * b, 4))],
  );
}

const quantizedNames = (r: Awaited<ReturnType<typeof quantizeTiny>>) => r.summary.quantized.map((n) => n.name).filter((n) => n !== "scale").sort();

test("protect is on by default and QConfig.protect false turns it off", () => {
  assert.equal(resolveConfig({}).protect, true);
  assert.equal(resolveConfig({ protect: false }).protect, false);
});

test("a node whose rounding alone makes the model's error stays float, and the summary says why", async () => {
  const on = await quantizeTiny(chain(true), { x: [8, 64] });
  const off = await quantizeTiny(chain(true), { x: [8, 64] }, { protect: false });
  assert.deepEqual(quantizedNames(off), ["a", "b"]);
  assert.deepEqual(quantizedNames(on), ["b"], "a is kept float");
  assert.deepEqual(on.summary.protectedLayers?.nodes, ["a"]);
  assert.match(on.summary.protectedLayers!.why, new RegExp(String.raw`^protected layers: 1 node\(s\) kept float \([\d.]+ % of the weights\), each alone within ${PROTECT_MARGIN_DB} dB of the whole model's error: a [\d.]+ dB alone; on 1 calibration batch\(es\), whole model [\d.]+ dB \(--no-protect to quantize them\)$`));
  assert.match(on.summary.float.find((f) => f.name === "a")!.reason, /^protected: quantized alone it makes a quarter or more of the model's output error/);
  assert.ok(on.sqnr > off.sqnr + 6, `keeping a float helps the outputs: ${on.sqnr.toFixed(1)} vs ${off.sqnr.toFixed(1)} dB`);
  assert.equal(off.summary.protectedLayers, undefined, "not measured when off");
});

test("rows that run one at a time (a fixed batch): a node far under the bar on the first 2 is not run on the rest", async () => {
  const prepared = await prepare(Model.fromProto(chain(true, 16, 1024, 1)), {}, { optimize: false });
  const batches = Array.from({ length: 8 }, (_, i) => ({ x: new ort.Tensor("float32", randomFloats(64, 7 + i), [1, 64]) }));
  await calibrate(prepared, batches);
  assert.deepEqual(prepared.protected?.nodes, ["a"], "a dominates on every row, as before");
  assert.match(prepared.protected!.why, /on 8 calibration batch\(es\), whole model [\d.]+ dB; 1 of 2 measured on the first 2 batches only \([\d.]+ dB or better there\)/);
});

/**
 * x[N, 64] through eight MatMuls of 64×64 alike weights, each behind the mask of `chain`; with `outlier` each has
 * the outlier weights too, so all eight are coarse alike (each alone about an eighth of the noise, 9 dB).
 */
const EIGHT = ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"];
function stack(outlier: boolean) {
  const names = EIGHT;
  const mask = new Float32Array(64).fill(1);
  mask[0] = 0.001;
  const weights = names.map((_, i) => {
    const w = randomFloats(64 * 64, 10 + i, -0.2, 0.2);
    if (outlier) for (let c = 0; c < 64; c++) w[c] = 12;
    return makeTensor(`W${i}`, F, [64, 64], w);
  });
  return makeModel(
    names.flatMap((n, i) => [
      makeNode("Mul", [i ? names[i - 1]! : "x", "mask"], [`u${i}`], { name: `scale${i}` }),
      makeNode("MatMul", [`u${i}`, `W${i}`], [i === names.length - 1 ? "y" : n], { name: n }),
    ]),
    [valueInfo("x", F, ["N", 64])],
    [valueInfo("y", F, ["N", 64])],
    [makeTensor("mask", F, [64], mask), ...weights],
  );
}
const matmuls = (r: Awaited<ReturnType<typeof quantizeTiny>>) => quantizedNames(r).filter((n) => n.startsWith("m"));

test("error spread over the layers protects nothing", async () => {
  const r = await quantizeTiny(stack(true), { x: [8, 64] });
  assert.deepEqual(matmuls(r), EIGHT);
  assert.deepEqual(r.summary.protectedLayers?.nodes, []);
  assert.match(r.summary.protectedLayers!.why, new RegExp(String.raw`^protected layers: none \(no weighted node alone within ${PROTECT_MARGIN_DB} dB of the whole model, on 1 calibration batch\(es\), whole model [\d.]+ dB\)$`));
});

test("a model at or above 30 dB is not measured", async () => {
  const r = await quantizeTiny(stack(false), { x: [8, 64] });
  assert.deepEqual(matmuls(r), EIGHT);
  assert.match(r.summary.protectedLayers!.why, /^protected layers: none \(whole model [\d.]+ dB on 1 calibration batch\(es\), not below 30 dB: nothing to protect\)$/);
});

test("a dominant node over the weight budget stays quantized", async () => {
  // a holds 64·256 of 64·256 + 256·16 weights (80 %), over PROTECT_MAX_WEIGHT_SHARE.
  const r = await quantizeTiny(chain(true, 256, 16), { x: [8, 64] });
  assert.ok(PROTECT_MAX_WEIGHT_SHARE < 0.8);
  assert.deepEqual(quantizedNames(r), ["a", "b"]);
  assert.match(r.summary.protectedLayers!.why, /^protected layers: none \(a [\d.]+ dB dominate, on 1 calibration batch\(es\), whole model [\d.]+ dB, but exceed 10 % of the weights\)$/);
});

test("the accuracy-target search starts from the protected model and counts the protected weights as float", async () => {
  const prepared = await prepare(Model.fromProto(chain(true)), {}, { optimize: false });
  const batch = (seed: number) => ({ x: new ort.Tensor("float32", randomFloats(8 * 64, seed * 31), [8, 64]) });
  await calibrate(prepared, [1, 2, 3, 4].map(batch));
  assert.deepEqual(prepared.protected?.nodes, ["a"]);
  const r = await searchMixedPrecision(prepared, [5, 6].map(batch), { kind: "sqnr", minDb: 0 }, { remedy: "float", minInt8WeightShare: 0 });
  assert.ok(r.chosen.met);
  assert.deepEqual(r.chosen.keptFloat, [], "met as it is: nothing more kept float");
  const total = 64 + 64 * 16 + 16 * 1024; // the mask, a, b
  assert.ok(Math.abs(r.chosen.int8WeightShare - (1 - (64 * 16) / total)) < 1e-9, `a's weights are not int8: ${r.chosen.int8WeightShare}`);
});

test("dynamic mode given data measures protection as static mode does; without data, or with protect false, nothing is measured; its measurements report progress and stop on the signal", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-protect-dyn-"));
  try {
    const input = path.join(dir, "chain.onnx");
    writeFileSync(input, Model.fromProto(chain(true)).toBytes());
    const data = [1, 2].map((seed) => ({ x: new ort.Tensor("float32", randomFloats(4 * 64, seed), [4, 64]) }));
    const run = async (name: string, config: Parameters<typeof quantizeDynamic>[2], withData: boolean) => {
      const out = path.join(dir, name);
      const summary = await quantizeDynamic(input, out, config, withData ? { optimize: false, data } : { optimize: false });
      const feeds = { x: new ort.Tensor("float32", randomFloats(8 * 64, 99), [8, 64]) };
      const [ref, got] = [await runModel(chain(true), feeds, "disabled"), await runModel((await Model.load(out)).proto, feeds)];
      return { summary, names: summary.quantized.map((n) => n.name).sort(), db: sqnr(ref.y!.data as Float32Array, got.y!.data as Float32Array) };
    };
    const measured = await run("p.onnx", {}, true);
    assert.deepEqual(measured.names, ["b"], "a is kept float");
    assert.deepEqual(measured.summary.protectedLayers?.nodes, ["a"]);
    assert.match(measured.summary.protectedLayers!.why, /^protected layers: 1 node\(s\) kept float .* on 1 calibration batch\(es\), whole model [\d.]+ dB/);
    assert.match(measured.summary.float.find((f) => f.name === "a")!.reason, /^protected: quantized alone/);
    const plain = await run("d.onnx", {}, false);
    assert.deepEqual(plain.names, ["a", "b"]);
    assert.equal(plain.summary.protectedLayers, undefined);
    assert.ok(measured.db > plain.db + 6, `keeping a float helps: ${measured.db.toFixed(1)} vs ${plain.db.toFixed(1)} dB`);
    const off = await run("o.onnx", { protect: false }, true);
    assert.deepEqual([off.names, off.summary.protectedLayers], [["a", "b"], undefined]);
    // Progress: protection's nodes, then the output check, each under its phase as static mode reports them.
    const events: string[] = [];
    const onProgress = (done: number, total?: number, p?: { phase: string; unit: string }) => events.push(`${p?.phase}: ${done}/${total} ${p?.unit}`);
    await quantizeDynamic(input, path.join(dir, "e.onnx"), {}, { optimize: false, data, onProgress });
    assert.deepEqual(events, [
      "measuring protected layers: 0/2 nodes", "measuring protected layers: 1/2 nodes", "measuring protected layers: 2/2 nodes",
      "checking the outputs against the float model: 0/1 steps", "checking the outputs against the float model: 1/1 steps",
    ]);
    // Aborted while measuring the first node: it rejects with the reason and writes nothing.
    const controller = new AbortController();
    const stopped = path.join(dir, "s.onnx");
    await assert.rejects(
      quantizeDynamic(input, stopped, {}, { optimize: false, data, signal: controller.signal, onProgress: (done, _t, p) => p?.phase === "measuring protected layers" && done === 1 && controller.abort(new Error("stopped by the user")) }),
      /stopped by the user/,
    );
    assert.ok(!existsSync(stopped), "nothing written");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("calibrate() reports each measurement phase after the batches (protected layers node by node, with an ETA), and an abort stops it between nodes instead of becoming a warning", async () => {
  const batches = [1, 2, 3, 4].map((seed) => ({ x: new ort.Tensor("float32", randomFloats(8 * 64, seed * 31), [8, 64]) }));
  const events: { done: number; total?: number; phase?: string; unit?: string; eta?: number }[] = [];
  const prepared = await prepare(Model.fromProto(chain(true)), {}, { optimize: false });
  await calibrate(prepared, batches, { onProgress: (done, total, p) => events.push({ done, total, phase: p?.phase, unit: p?.unit, eta: p?.etaSeconds }) });
  assert.deepEqual(prepared.protected?.nodes, ["a"]);
  assert.deepEqual(events.filter((e) => e.phase === undefined).map((e) => e.done), [1, 2, 3, 4], "the batches first, as before");
  const protect = events.filter((e) => e.phase === "measuring protected layers");
  assert.deepEqual(protect.map((e) => [e.done, e.total, e.unit]), [[0, 2, "nodes"], [1, 2, "nodes"], [2, 2, "nodes"]]);
  assert.equal(protect[0]!.eta, undefined, "no ETA before a step has taken any time");
  assert.ok(protect.slice(1).every((e) => e.eta !== undefined && e.eta >= 0));
  assert.deepEqual([...new Set(events.map((e) => e.phase).filter(Boolean))], ["calibration auto: measuring methods at the outputs", "measuring 16-bit activations", "measuring protected layers", "measuring the weight type"]);
  // The weight type: a run per kept row (16) for FP32, U8U8 and U8S7, then up to one more per partial share.
  const weight = events.filter((e) => e.phase === "measuring the weight type");
  assert.deepEqual([weight[0]!.done, weight[0]!.total, weight[0]!.unit], [0, 48, "runs"]);
  assert.deepEqual(weight.slice(1, 49).map((e) => e.done), Array.from({ length: 48 }, (_, i) => i + 1));
  assert.ok(weight.every((e) => e.done <= e.total!));
  // Aborted while measuring the first node: calibrate() rejects with the reason; nothing is called protected.
  const controller = new AbortController();
  const again = await prepare(Model.fromProto(chain(true)), {}, { optimize: false });
  await assert.rejects(
    calibrate(again, batches, { signal: controller.signal, onProgress: (done, _total, p) => p?.phase === "measuring protected layers" && done === 1 && controller.abort(new Error("stopped by the user")) }),
    /stopped by the user/,
  );
  assert.equal(again.protected, undefined);
  assert.ok(!again.warnings.some((w) => /protected layers could not be measured/.test(w)));
});

test("calibration.outputs: the measurements compare only the outputs named (an auxiliary output close to exact, judged alone, finds nothing to protect); an unknown name is refused with the model's outputs", async () => {
  // chain(true) with its input, scaled, also a graph output "u": only its 8-bit rounding away from FP32 (> 30 dB).
  const withAux = () => {
    const m = chain(true);
    m.graph!.output.push(valueInfo("u", F, ["N", 64]));
    return Model.fromProto(m);
  };
  const batches = [1, 2, 3, 4].map((seed) => ({ x: new ort.Tensor("float32", randomFloats(8 * 64, seed * 31), [8, 64]) }));
  const every = await prepare(withAux(), {}, { optimize: false });
  await calibrate(every, batches);
  assert.deepEqual(every.protected?.nodes, ["a"], "y's error decides, as before");
  const judged = await prepare(withAux(), { calibration: { outputs: ["u"] } }, { optimize: false });
  await calibrate(judged, batches);
  assert.deepEqual(judged.protected?.nodes, []);
  assert.match(judged.protected!.why, /whole model [\d.]+ dB on 1 calibration batch\(es\), not below 30 dB: nothing to protect/);
  const byY = await prepare(withAux(), { calibration: { outputs: ["y"] } }, { optimize: false });
  await calibrate(byY, batches);
  assert.deepEqual(byY.protected?.nodes, ["a"]);
  await assert.rejects(prepare(withAux(), { calibration: { outputs: ["y", "mask_out", "z"] } }), /QConfig\.calibration\.outputs: "mask_out", "z" are not outputs of the model \(its outputs: "y", "u"\)/);
});

test("a final Softmax is judged on its logits: a confident one whose probabilities hide a node's error still has it kept float, and the line says so", async () => {
  // chain(true)'s y (RMS 5.7, row maxima about 17) plus 40 on its first column into a Softmax over its 1024
  // columns: every row reads the first class at a probability within e^-20 of 1, so the 8-bit rounding of a, which
  // costs the logits most of their SQNR, barely moves the probabilities (the bias is 5 % of the logits' energy).
  const confident = () => {
    const m = chain(true);
    const bias = new Float32Array(1024);
    bias[0] = 40;
    m.graph!.node.push(makeNode("Add", ["y", "bias"], ["z"], { name: "bias" }), makeNode("Softmax", ["z"], ["p"], { name: "softmax" }));
    m.graph!.initializer.push(makeTensor("bias", F, [1024], bias));
    m.graph!.output = [valueInfo("p", F, ["N", 1024])];
    return m;
  };
  const off = await quantizeTiny(confident(), { x: [8, 64] }, { protect: false });
  assert.ok(off.sqnr >= 30, `the probabilities read ${off.sqnr.toFixed(1)} dB with a quantized: nothing to protect on them`);
  const on = await quantizeTiny(confident(), { x: [8, 64] });
  assert.deepEqual(on.summary.protectedLayers?.nodes, ["a"], "on the logits a still dominates");
  assert.match(on.summary.protectedLayers!.why, /on 1 calibration batch\(es\), whole model [\d.]+ dB \(the Softmax output on its logits\) \(--no-protect/);
  // Named by the user, the output is judged on its logits too.
  const named = await prepare(Model.fromProto(confident()), { calibration: { outputs: ["p"] } }, { optimize: false });
  await calibrate(named, [1, 2, 3, 4].map((seed) => ({ x: new ort.Tensor("float32", randomFloats(8 * 64, seed * 31), [8, 64]) })));
  assert.deepEqual(named.protected?.nodes, ["a"]);
});

test("a float16 classifier's Softmax, which onnxruntime inlines when prepare() makes the model float32, is judged on its logits too", async () => {
  const r = randomFloats(64 * 8, 13);
  const proto = makeModel(
    [makeNode("MatMul", ["x", "W"], ["logits"], { name: "head" }), makeNode("Softmax", ["logits"], ["p"], { name: "softmax" })],
    [valueInfo("x", DataType.FLOAT16, ["N", 64])],
    [valueInfo("p", DataType.FLOAT16, ["N", 8])],
    [makeTensor("W", DataType.FLOAT16, [64, 8], r)],
  );
  const prepared = await prepare(Model.fromProto(proto), {});
  assert.ok(!prepared.model.graph.node.some((n) => n.opType === "Softmax"), "inlined: Exp, ReduceSum, Div");
  await calibrate(prepared, [1, 2].map((seed) => ({ x: new ort.Tensor("float16", Uint16Array.from(randomFloats(4 * 64, seed), (v) => floatToFloat16(v)), [4, 64]) })));
  assert.match(prepared.protected!.why, /\(the Softmax output on its logits\)/);
});
