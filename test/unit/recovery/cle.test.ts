// Cross-layer equalization: exact in float (onnxruntime outputs unchanged), per-tensor weight error drops, pairs
// across a non-homogeneous activation are left alone and reported.
import { test } from "node:test";
import assert from "node:assert/strict";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { tensorToFloat32 } from "../../../engine/onnx/tensor";
import { equalizeCrossLayer } from "../../../engine/recovery/index";
import { batches, init, maxAbs, maxAbsDiff, model, outputSqnr, outputs, perTensorWeightSqnr, quantize, rand } from "./build";

/** Conv(4→8) → Relu → depthwise Conv(8) → Relu → Conv 1x1 (8→8) → HardSigmoid → Conv 1x1 (8→4); channel i of the
 * first conv scaled by 2^(i−4), the imbalance per-tensor weights suffer from (and BN folding produces). */
function dwNet() {
  const w1 = rand(8 * 4 * 9, 1);
  for (let i = 0; i < w1.length; i++) w1[i] = w1[i]! * 2 ** (Math.floor(i / 36) - 4);
  const wdw = rand(8 * 9, 2);
  for (let i = 0; i < wdw.length; i++) wdw[i] = wdw[i]! * 2 ** (3 - Math.floor(i / 9));
  const pads = attr.ints("pads", [1, 1, 1, 1]);
  return model(
    [
      makeNode("Conv", ["x", "W1", "B1"], ["c1"], { name: "conv1", attributes: [pads] }),
      makeNode("Relu", ["c1"], ["r1"], { name: "relu1" }),
      makeNode("Conv", ["r1", "Wdw", "Bdw"], ["c2"], { name: "dw", attributes: [pads, attr.int("group", 8)] }),
      makeNode("Relu", ["c2"], ["r2"], { name: "relu2" }),
      makeNode("Conv", ["r2", "Wpw", "Bpw"], ["c3"], { name: "pw" }),
      makeNode("HardSigmoid", ["c3"], ["h"], { name: "hs" }),
      makeNode("Conv", ["h", "Wout", "Bout"], ["y"], { name: "out" }),
    ],
    ["x", [2, 4, 8, 8]],
    ["y", [2, 4, 8, 8]],
    [
      init("W1", [8, 4, 3, 3], w1),
      init("B1", [8], rand(8, 3, -0.1, 0.1)),
      init("Wdw", [8, 1, 3, 3], wdw),
      init("Bdw", [8], rand(8, 4, -0.1, 0.1)),
      init("Wpw", [8, 8, 1, 1], rand(64, 5)),
      init("Bpw", [8], rand(8, 6, -0.1, 0.1)),
      init("Wout", [4, 8, 1, 1], rand(32, 7)),
      init("Bout", [4], rand(4, 8, -0.1, 0.1)),
    ],
  );
}

test("CLE: conv→relu→depthwise→relu→pointwise equalized, exact in float, HardSigmoid pair skipped", async () => {
  const m = dwNet();
  const before = m.toBytes();
  const { model: eq, report } = await equalizeCrossLayer(m);
  assert.deepEqual(m.toBytes(), before, "input model untouched");
  assert.deepEqual(report.pairs.map((p) => [p.first, p.second, p.activation]), [["conv1", "dw", "Relu"], ["dw", "pw", "Relu"]]);
  assert.deepEqual(report.skipped.map((s) => [s.first, s.second]), [["pw", "out"]]);
  assert.match(report.skipped[0]!.reason, /HardSigmoid.*not positively homogeneous/);
  for (const p of report.pairs) assert.ok(p.firstRatio.after < p.firstRatio.before, `${p.first} range ratio ${p.firstRatio.before} → ${p.firstRatio.after}`);
  const data = batches("x", [2, 4, 8, 8], 2, 11);
  const [a, b] = [await outputs(m, data), await outputs(eq, data)];
  const diff = maxAbsDiff(a, b);
  assert.ok(diff < 1e-5 * maxAbs(a) + 1e-6, `max |diff| ${diff} vs max |y| ${maxAbs(a)}`);
  // Per-tensor int8 weight error of the first conv and of the depthwise conv drops.
  const w = (mm: typeof m, n: string) => tensorToFloat32(mm.graph.initializer.find((t) => t.name === n)!);
  for (const n of ["W1", "Wdw"]) {
    const [s0, s1] = [perTensorWeightSqnr(w(m, n)), perTensorWeightSqnr(w(eq, n))];
    assert.ok(s1 > s0 + 6, `${n}: per-tensor weight SQNR ${s0.toFixed(1)} → ${s1.toFixed(1)} dB`);
  }
});

test("CLE: per-tensor INT8 output SQNR improves end to end", async (t) => {
  const m = dwNet();
  const { model: eq } = await equalizeCrossLayer(m);
  const calib = batches("x", [2, 4, 8, 8], 4, 100);
  const evalData = batches("x", [2, 4, 8, 8], 3, 200);
  const cfg = { perChannel: false };
  const q0 = await quantize(m, calib, cfg);
  const q1 = await quantize(eq, calib, cfg);
  const [s0, s1] = [await outputSqnr(m, q0.q, evalData), await outputSqnr(m, q1.q, evalData)];
  t.diagnostic(`per-tensor INT8 output SQNR ${s0.toFixed(2)} → ${s1.toFixed(2)} dB with CLE`);
  assert.ok(s1 > s0 + 3, `per-tensor INT8 output SQNR ${s0.toFixed(1)} → ${s1.toFixed(1)} dB`);
});
