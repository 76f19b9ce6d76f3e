// AdaRound for static INT8 (engine/recovery/adaround): on models built in code whose input channels share a
// low-rank component (where the choice of rounding matters), the layer output error falls below nearest rounding's,
// only weight and bias codes change and stay in range, the model runs in onnxruntime closer to float; a fit worse
// than nearest keeps nearest; the options are checked; an abort stops it; and the CLI flag where it applies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Feeds } from "../../../engine/data/feeds";
import { encodeNpy } from "../../../engine/data/npy";
import { seededRandom } from "../../../engine/data/random";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { readTensor } from "../../../engine/onnx/tensor";
import { adaRound } from "../../../engine/recovery/index";
import { init, model, outputSqnr, quantize, rand } from "./build";
import { ptq as ptqChild, said } from "../cli/ptq-child";

/** Batches of [dims] whose channels (axis `featureAxis`) mix two shared sources plus noise; the mix is fixed (the
 *  same distribution for every seed). */
function mixed(dims: number[], count: number, seed: number, featureAxis: number): Feeds[] {
  const c = dims[featureAxis]!;
  const weights = seededRandom(77);
  const mix = Array.from({ length: c }, () => [weights() + 0.5, weights() - 0.5]);
  const next = seededRandom(seed);
  const size = dims.reduce((a, b) => a * b, 1);
  const inner = dims.slice(featureAxis + 1).reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, () => {
    const data = new Float32Array(size);
    for (let at = 0; at < size; at += c * inner) {
      for (let p = 0; p < inner; p++) {
        const [z0, z1] = [next() + 0.5, next() - 0.5];
        for (let ch = 0; ch < c; ch++) data[at + ch * inner + p] = mix[ch]![0]! * z0 + mix[ch]![1]! * z1 + 0.05 * (next() - 0.5);
      }
    }
    return { x: { data, dims } };
  });
}

const [CIN, COUT] = [8, 16];
const convModel = () =>
  model(
    [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] })],
    ["x", [4, CIN, 10, 10]],
    ["y", [4, COUT, 10, 10]],
    [init("W", [COUT, CIN, 3, 3], rand(COUT * CIN * 9, 7, -0.5, 0.5)), init("B", [COUT], rand(COUT, 8, -0.1, 0.1))],
  );
const convData = (count: number, seed: number) => mixed([4, CIN, 10, 10], count, seed, 1);

const codes = (m: Model, name: string) => Array.from(readTensor(m.graph.initializer.find((t) => t.name === name)!).data as ArrayLike<number>);

test("adaRound (static INT8): layer error below nearest, closer outputs in onnxruntime, only weight and bias codes change, in range", async () => {
  const m = convModel();
  const calib = convData(8, 1);
  const { float, q } = await quantize(m, calib);
  const before = q.toBytes();
  const { model: r, report } = await adaRound(float, q, calib);
  assert.deepEqual(q.toBytes(), before, "input model untouched");
  assert.equal(report.method, "adaround");
  const l = report.layers[0]!;
  assert.equal(l.bias, "B_quantized");
  assert.ok(l.afterDb > l.beforeDb + 3 && l.changed > 0, `layer ${l.beforeDb.toFixed(1)} → ${l.afterDb.toFixed(1)} dB, ${(l.changed * 100).toFixed(0)} % changed`);
  const evalData = convData(4, 900);
  const [s0, s1] = [await outputSqnr(m, q, evalData), await outputSqnr(m, r, evalData)];
  // Closer than convert()'s rounding (nearest with each kernel's sum kept, which already takes part of the gain).
  assert.ok(s1 > s0 + 0.2, `output SQNR ${s0.toFixed(2)} → ${s1.toFixed(2)} dB on held-out data`);
  const changed = q.graph.initializer.filter((t) => JSON.stringify(codes(q, t.name)) !== JSON.stringify(codes(r, t.name))).map((t) => t.name).sort();
  assert.deepEqual(changed, ["B_quantized", "W_quantized"]);
  const [c0, c1] = [codes(q, "W_quantized"), codes(r, "W_quantized")];
  assert.ok(Math.min(...c1) >= Math.min(...c0) && Math.max(...c1) <= Math.max(...c0), "codes stay in the range convert() used");
  // AdaRound only rounds each weight down or up: no code moves by more than one from nearest.
  assert.ok(c0.every((c, i) => Math.abs(c - c1[i]!) <= 1), "each code is the one below or above the float weight");
  assert.equal(r.graph.node.length, q.graph.node.length);
});

test("adaRound on a MatMul of tokens and a depthwise Conv: every layer at least as good as nearest", async () => {
  const [k, n] = [24, 12];
  const mm = model([makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })], ["x", [2, 16, k]], ["y", [2, 16, n]], [init("W", [k, n], rand(k * n, 11, -0.4, 0.4))]);
  const tokens = mixed([2, 16, k], 8, 2, 2);
  const a = await quantize(mm, tokens);
  const { model: ra, report: ma } = await adaRound(a.float, a.q, tokens);
  assert.ok(ma.layers[0]!.afterDb > ma.layers[0]!.beforeDb + 3, `MatMul ${ma.layers[0]!.beforeDb.toFixed(1)} → ${ma.layers[0]!.afterDb.toFixed(1)} dB`);
  const held = mixed([2, 16, k], 4, 902, 2);
  assert.ok((await outputSqnr(mm, ra, held)) > (await outputSqnr(mm, a.q, held)));

  const dw = model(
    [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "dw", attributes: [attr.int("group", CIN), attr.ints("pads", [1, 1, 1, 1])] })],
    ["x", [4, CIN, 10, 10]],
    ["y", [4, CIN, 10, 10]],
    [init("W", [CIN, 1, 3, 3], rand(CIN * 9, 21, -0.5, 0.5)), init("B", [CIN], rand(CIN, 22, -0.1, 0.1))],
  );
  const calib = convData(8, 4);
  const b = await quantize(dw, calib, { perChannel: false });
  const { report: md } = await adaRound(b.float, b.q, calib);
  assert.deepEqual(md.skipped, []);
  assert.ok(md.layers[0]!.afterDb >= md.layers[0]!.beforeDb, `depthwise ${md.layers[0]!.beforeDb.toFixed(2)} → ${md.layers[0]!.afterDb.toFixed(2)} dB`);
});

test("adaRound keeps nearest rounding on the channels where its fit is worse (never a larger layer error)", async () => {
  const m = convModel();
  const calib = convData(4, 3);
  const { float, q } = await quantize(m, calib);
  // Two giant Adam steps with no regularizer throw the codes about: worse than nearest on most channels.
  const { model: r, report } = await adaRound(float, q, calib, { iterations: 2, learningRate: 20, warmup: 0.5 });
  const l = report.layers[0]!;
  assert.ok(l.keptNearest! > 0, `kept ${l.keptNearest} of ${COUT} channels`);
  assert.ok(l.afterDb >= l.beforeDb, `layer ${l.beforeDb.toFixed(2)} → ${l.afterDb.toFixed(2)} dB`);
  // A kept channel's codes and bias are exactly convert()'s.
  const [c0, c1] = [codes(q, "W_quantized"), codes(r, "W_quantized")];
  const per = c0.length / COUT;
  const same = Array.from({ length: COUT }, (_, c) => c0.slice(c * per, (c + 1) * per).every((v, i) => v === c1[c * per + i]));
  assert.ok(same.filter(Boolean).length >= l.keptNearest!);
});

test("adaRound checks its options, refuses a float model, and stops on an abort between layers", async () => {
  const m = convModel();
  const calib = convData(2, 5);
  const { float, q } = await quantize(m, calib);
  await assert.rejects(adaRound(float, q, calib, { iterations: 0 }), /adaRound: iterations must be a whole number ≥ 1, got 0/);
  await assert.rejects(adaRound(float, q, calib, { warmup: 1 }), /adaRound: warmup is a share of the iterations in \[0, 1\), got 1/);
  await assert.rejects(adaRound(float, float, calib), /adaRound: .* has no quantized weights; pass the QDQ model from convert\(\)/);
  // Two layers collected in one pass; the abort raised after the first is seen inside the second's fit.
  const two = model(
    [
      makeNode("Conv", ["x", "W", "B"], ["h"], { name: "c1", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
      makeNode("Conv", ["h", "W2"], ["y"], { name: "c2" }),
    ],
    ["x", [4, CIN, 10, 10]],
    ["y", [4, 4, 10, 10]],
    [init("W", [COUT, CIN, 3, 3], rand(COUT * CIN * 9, 7, -0.5, 0.5)), init("B", [COUT], rand(COUT, 8, -0.1, 0.1)), init("W2", [4, COUT, 1, 1], rand(4 * COUT, 9))],
  );
  const p = await quantize(two, calib);
  const abort = new AbortController();
  let fitted = 0;
  const run = adaRound(p.float, p.q, calib, { signal: abort.signal, onProgress: (done) => ((fitted = done), abort.abort(new Error("stopped by the test"))) });
  await assert.rejects(run, /stopped by the test/);
  assert.equal(fitted, 1);
});

/** `ptq quantize ARGS` (test/unit/cli/ptq-child): the exit code and what it printed. */
function ptq(args: string[]): { code: number | null; said: string } {
  const r = ptqChild("quantize", ...args);
  return { code: r.status, said: said(r) };
}

test("ptq quantize --rounding adaround writes the model (static INT8) and is refused where it does not apply", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-adaround-"));
  try {
    const m = convModel();
    await m.save(path.join(dir, "conv.onnx"));
    mkdirSync(path.join(dir, "calib"));
    const calib = convData(8, 6);
    const all = new Float32Array(calib.length * 4 * CIN * 100);
    calib.forEach((b, i) => all.set(b.x!.data as Float32Array, i * b.x!.data.length));
    writeFileSync(path.join(dir, "calib", "x.npy"), encodeNpy(all, [32, CIN, 10, 10]));
    const args = (out: string) => [path.join(dir, "conv.onnx"), "-o", path.join(dir, out), "--calib", path.join(dir, "calib"), "--batch-size", "4", "--no-optimize"];
    assert.equal(ptq([...args("near.onnx"), "--rounding", "nearest"]).code, 0);
    const fitted = ptq([...args("ada.onnx"), "--rounding", "adaround"]);
    assert.equal(fitted.code, 0, fitted.said);
    assert.match(fitted.said, /\n  adaround rounding: 1 layer\(s\) on their inputs from the quantized model, fitted on 8 calibration batches, mean layer output SQNR [\d.]+ → [\d.]+ dB \([\d.]+ s\)\n  outputs against the float model/);
    const [near, ada] = await Promise.all([Model.load(path.join(dir, "near.onnx")), Model.load(path.join(dir, "ada.onnx"))]);
    const evalData = convData(4, 902);
    const [s0, s1] = [await outputSqnr(m, near, evalData), await outputSqnr(m, ada, evalData)];
    assert.ok(s1 > s0 + 0.2, `output SQNR ${s0.toFixed(2)} → ${s1.toFixed(2)} dB`);
    const lowBit = (mode: string) => [path.join(dir, "conv.onnx"), "-o", path.join(dir, `${mode}.onnx`), "--calib", path.join(dir, "calib"), "--mode", mode];
    const refused: [string[], RegExp][] = [
      [lowBit("fp4"), /--rounding adaround is for static INT8 .* for fp4 weights use --rounding learned/],
      [lowBit("int4"), /--rounding adaround is for static INT8 .* for int4 weights use --rounding learned/],
      [[...args("qop.onnx"), "--format", "qoperator"], /QConfig.rounding "adaround" rewrites the weight codes of a Q\/DQ model: use format "qdq" \(the default; --format qdq\)/],
      [[...args("target.onnx"), "--target-sqnr", "30"], /--rounding adaround is not applied by the accuracy-target search/],
    ];
    for (const [argv, why] of refused) {
      const r = ptq([...argv, "--rounding", "adaround"]);
      assert.equal(r.code, 1, `${argv.join(" ")}: ${r.said}`);
      assert.match(r.said, why);
    }
    const dynamic = ptq([...args("dyn.onnx"), "--mode", "dynamic", "--rounding", "adaround"]);
    assert.equal(dynamic.code, 2);
    assert.match(dynamic.said, /--rounding/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
