// SmoothQuant on a transformer-ish block built in code with outlier channels after a decomposed LayerNorm: exact in
// float, 1/s folded into the LayerNorm's gamma/beta, into a Mul by a constant, or a Mul inserted, INT8 SQNR improves.
import { test } from "node:test";
import assert from "node:assert/strict";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { smoothQuant } from "../../../engine/recovery/index";
import { batches, init, maxAbs, maxAbsDiff, model, outputSqnr, outputs, quantize, rand } from "./build";

const K = 32;
/** x[2,16,K] → LayerNorm (ReduceMean/Sub/Pow/Sqrt/Div, Mul gamma, Add beta; gamma has outlier channels) →
 * MatMul Wa and MatMul Wb (same input) → Add → Mul 0.5 → MatMul Wc → Relu → MatMul Wd. */
export function block() {
  const gamma = rand(K, 1, 0.5, 1.5);
  gamma[3] = 40;
  gamma[17] = -30;
  gamma[25] = 20;
  // As in trained transformers, the weights that read the outlier channels are small: the output is not dominated
  // by them, but a per-tensor activation scale set by them wipes out the other channels.
  const w = (seed: number) => {
    const d = rand(K * K, seed, -0.3, 0.3);
    for (const j of [3, 17, 25]) for (let n = 0; n < K; n++) d[j * K + n] = d[j * K + n]! / Math.abs(gamma[j]!);
    return d;
  };
  return model(
    [
      makeNode("ReduceMean", ["x"], ["mu"], { name: "ln/mean", attributes: [attr.ints("axes", [-1])] }),
      makeNode("Sub", ["x", "mu"], ["xc"], { name: "ln/sub" }),
      makeNode("Pow", ["xc", "two"], ["sq"], { name: "ln/pow" }),
      makeNode("ReduceMean", ["sq"], ["var"], { name: "ln/var", attributes: [attr.ints("axes", [-1])] }),
      makeNode("Add", ["var", "eps"], ["ve"], { name: "ln/add_eps" }),
      makeNode("Sqrt", ["ve"], ["sd"], { name: "ln/sqrt" }),
      makeNode("Div", ["xc", "sd"], ["xn"], { name: "ln/div" }),
      makeNode("Mul", ["xn", "gamma"], ["xg"], { name: "ln/mul" }),
      makeNode("Add", ["xg", "beta"], ["ln"], { name: "ln/add" }),
      makeNode("MatMul", ["ln", "Wa"], ["a"], { name: "mm_a" }),
      makeNode("MatMul", ["ln", "Wb"], ["b"], { name: "mm_b" }),
      makeNode("Add", ["a", "b"], ["ab"], { name: "add_ab" }),
      makeNode("Mul", ["ab", "half"], ["h"], { name: "half_mul" }),
      makeNode("MatMul", ["h", "Wc"], ["c"], { name: "mm_c" }),
      makeNode("Relu", ["c"], ["r"], { name: "relu" }),
      makeNode("MatMul", ["r", "Wd"], ["y"], { name: "mm_d" }),
    ],
    ["x", [2, 16, K]],
    ["y", [2, 16, 8]],
    [
      init("two", [], [2]),
      init("eps", [], [1e-5]),
      init("gamma", [K], gamma),
      init("beta", [K], rand(K, 2, -0.1, 0.1)),
      init("Wa", [K, K], w(3)),
      init("Wb", [K, K], w(4)),
      init("half", [], [0.5]),
      init("Wc", [K, K], rand(K * K, 5, -0.3, 0.3)),
      init("Wd", [K, 8], rand(K * 8, 6, -0.3, 0.3)),
    ],
  );
}

test("SmoothQuant: exact in float; folded into LayerNorm gamma/beta, a constant Mul, or an inserted Mul", async () => {
  const m = block();
  const calib = batches("x", [2, 16, K], 4, 10);
  const { model: sm, report } = await smoothQuant(m, calib);
  const by = new Map(report.smoothed.map((s) => [s.tensor, s]));
  assert.deepEqual(by.get("ln")?.consumers, ["mm_a", "mm_b"], "one scale shared by both readers of the LayerNorm output");
  assert.equal(by.get("ln")?.foldedInto, "layernorm");
  assert.equal(by.get("h")?.foldedInto, "mul-constant");
  assert.equal(by.get("r")?.foldedInto, "inserted-mul");
  assert.ok(by.get("ln")!.outlierRatio.after < by.get("ln")!.outlierRatio.before / 3, JSON.stringify(by.get("ln")!.outlierRatio));
  assert.equal(sm.graph.node.filter((n) => n.opType === "Mul").length, 3, "only one Mul added");
  const evalData = batches("x", [2, 16, K], 2, 50);
  const [a, b] = [await outputs(m, evalData), await outputs(sm, evalData)];
  assert.ok(maxAbsDiff(a, b) < 1e-4 * maxAbs(a), `max |diff| ${maxAbsDiff(a, b)} vs ${maxAbs(a)}`);
});

test("SmoothQuant: INT8 output SQNR improves with outlier channels", async (t) => {
  const m = block();
  const calib = batches("x", [2, 16, K], 4, 10);
  const evalData = batches("x", [2, 16, K], 3, 60);
  const { model: sm } = await smoothQuant(m, calib, { alpha: 0.5 });
  const [q0, q1] = [await quantize(m, calib), await quantize(sm, calib)];
  const [s0, s1] = [await outputSqnr(m, q0.q, evalData), await outputSqnr(m, q1.q, evalData)];
  t.diagnostic(`default INT8 output SQNR ${s0.toFixed(2)} → ${s1.toFixed(2)} dB with SmoothQuant α=0.5`);
  assert.ok(s1 > s0 + 3, `INT8 output SQNR ${s0.toFixed(1)} → ${s1.toFixed(1)} dB`);
});

test("SmoothQuant: alpha out of range is refused", async () => {
  await assert.rejects(smoothQuant(block(), [], { alpha: 1.5 }), /alpha must be in \[0, 1\]/);
});

test("SmoothQuant: LayerNormalization op (opset 17) → Gemm transB=1, exact in float", async () => {
  const gamma = rand(K, 7, 0.5, 1.5);
  gamma[5] = 25;
  const m = model(
    [
      makeNode("LayerNormalization", ["x", "g", "bt"], ["ln"], { name: "ln", attributes: [attr.int("axis", -1)] }),
      makeNode("Gemm", ["ln", "Wt", "bias"], ["y"], { name: "gemm", attributes: [attr.int("transB", 1)] }),
    ],
    ["x", [16, K]],
    ["y", [16, 8]],
    [init("g", [K], gamma), init("bt", [K], rand(K, 8, -0.1, 0.1)), init("Wt", [8, K], rand(8 * K, 9, -0.3, 0.3)), init("bias", [8], rand(8, 10))],
    17,
  );
  const calib = batches("x", [16, K], 2, 20);
  const { model: sm, report } = await smoothQuant(m, calib);
  assert.deepEqual(report.smoothed.map((s) => [s.tensor, s.foldedInto, s.node]), [["ln", "layernorm", "ln"]]);
  const evalData = batches("x", [16, K], 2, 30);
  const [a, b] = [await outputs(m, evalData), await outputs(sm, evalData)];
  assert.ok(maxAbsDiff(a, b) < 1e-4 * maxAbs(a), `max |diff| ${maxAbsDiff(a, b)} vs ${maxAbs(a)}`);
  assert.ok(report.smoothed[0]!.outlierRatio.after < report.smoothed[0]!.outlierRatio.before / 2);
});
