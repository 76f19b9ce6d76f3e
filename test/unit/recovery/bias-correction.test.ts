// Empirical bias correction: a Conv whose small weights all round to zero under int8 has a known output shift
// Σ(w_q − w)·E[x]; the correction measures it and removes it from the int32 bias.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeNode } from "../../../engine/onnx/proto";
import { readTensor } from "../../../engine/onnx/tensor";
import { correctBias } from "../../../engine/recovery/index";
import { batches, init, model, outputs, quantize } from "./build";

const C = 3;
const CIN = 36;
/** Conv 1x1 (one tap a kernel, so nearest rounding: a 3×3 kernel's codes keep its sum, convert()'s quantizeKernels):
 * per output channel one weight 1.27 (so the int8 scale is 0.01) and 35 weights 0.004, which round to 0. With x
 * uniform in [0, 1), E[x] = 0.5: the shift is 35 · (−0.004) · 0.5 = −0.07 per channel. */
function shiftedConv() {
  const w = new Float32Array(C * CIN).fill(0.004);
  for (let c = 0; c < C; c++) w[c * CIN] = 1.27;
  return model(
    [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "conv" })],
    ["x", [4, CIN, 4, 4]],
    ["y", [4, C, 4, 4]],
    [init("W", [C, CIN, 1, 1], w), init("B", [C], [0.1, -0.2, 0.3])],
  );
}

function channelMeans(y: Float32Array): number[] {
  const inner = 16;
  const sums = new Array<number>(C).fill(0);
  for (let i = 0; i < y.length; i++) sums[Math.floor(i / inner) % C]! += y[i]!;
  return sums.map((s) => s / (y.length / C));
}

test("bias correction: the known shift of weights rounded to zero is measured and removed", async () => {
  const m = shiftedConv();
  const calib = batches("x", [4, CIN, 4, 4], 8, 1, 0, 1);
  const { float, q } = await quantize(m, calib);
  const before = q.toBytes();
  const { model: fixed, report } = await correctBias(float, q, calib);
  assert.deepEqual(q.toBytes(), before, "input model untouched");
  assert.equal(report.corrected.length, 1);
  const r = report.corrected[0]!;
  assert.equal(r.node, "conv");
  assert.equal(r.bias, "B_quantized");
  for (const s of r.shift) assert.ok(Math.abs(s - -0.07) < 0.01, `shift ${s} vs −0.07`);
  const evalData = batches("x", [4, CIN, 4, 4], 4, 500, 0, 1);
  const [mf, m0, m1] = [channelMeans(await outputs(m, evalData)), channelMeans(await outputs(q, evalData)), channelMeans(await outputs(fixed, evalData))];
  for (let c = 0; c < C; c++) {
    const [e0, e1] = [Math.abs(m0[c]! - mf[c]!), Math.abs(m1[c]! - mf[c]!)];
    assert.ok(e0 > 0.05 && e1 < e0 / 5, `channel ${c}: mean error ${e0.toFixed(4)} → ${e1.toFixed(4)}`);
  }
  // Only the int32 bias codes changed, still int32 behind the same DequantizeLinear.
  const codes = (mm: typeof q) => readTensor(mm.graph.initializer.find((t) => t.name === "B_quantized")!).data as Int32Array;
  assert.notDeepEqual([...codes(fixed)], [...codes(q)]);
  assert.equal(fixed.graph.node.length, q.graph.node.length);
});

test("bias correction: a Conv without a bias is reported as skipped", async () => {
  const w = new Float32Array(C * CIN).fill(0.004);
  const m = model([makeNode("Conv", ["x", "W"], ["y"], { name: "conv" })], ["x", [4, CIN, 4, 4]], ["y", [4, C, 4, 4]], [init("W", [C, CIN, 1, 1], w)]);
  const calib = batches("x", [4, CIN, 4, 4], 2, 1, 0, 1);
  const { float, q } = await quantize(m, calib);
  const { report } = await correctBias(float, q, calib);
  assert.equal(report.corrected.length, 0);
  assert.match(report.skipped[0]!.reason, /no bias/);
});

test("bias correction: a float model in the quantized model's place is refused with what to pass", async () => {
  const m = shiftedConv();
  await assert.rejects(correctBias(m, m, batches("x", [4, CIN, 4, 4], 1, 1, 0, 1)), /no quantized weights; pass the QDQ model from convert\(\)/);
});
