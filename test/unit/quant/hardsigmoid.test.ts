// HardSigmoid on the integer codes (engine/quant/hardsigmoid): a quantized DQ → HardSigmoid → Q becomes an integer
// Clip, equal to HardSigmoid of the dequantized input (whose scale widens a little), and HardSwish's Mul still fuses
// to a QLinearMul.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import type { ModelProto } from "onnx-buf";
import { DataType } from "../../../engine/onnx/dtype";
import { uniqueName, usedNames } from "../../../engine/onnx/graph";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { integerHardSigmoids } from "../../../engine/quant/hardsigmoid";
import { makeModel, opCounts, quantizeTiny, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;
const U8 = DataType.UINT8;

/** x → Conv → c; y = c · HardSigmoid(c) (HardSwish as paddle2onnx writes it) and an SE-style HardSigmoid(α 0.2) gate. */
function hardSwishNet(): ModelProto {
  return makeModel(
    [
      makeNode("Conv", ["x", "W", "B"], ["c"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
      makeNode("HardSigmoid", ["c"], ["h"], { name: "hs", attributes: [attr.float("alpha", 1 / 6), attr.float("beta", 0.5)] }),
      makeNode("Mul", ["c", "h"], ["a"], { name: "hswish" }),
      makeNode("Conv", ["a", "W2"], ["g"], { name: "gate_conv" }),
      makeNode("HardSigmoid", ["g"], ["gh"], { name: "gate", attributes: [attr.float("alpha", 0.2), attr.float("beta", 0.5)] }),
      makeNode("Mul", ["a", "gh"], ["y"], { name: "scale" }),
    ],
    [valueInfo("x", F, ["N", 4, 8, 8])],
    [valueInfo("y", F, ["N", 6, 8, 8])],
    [
      makeTensor("W", F, [6, 4, 3, 3], randomFloats(6 * 4 * 9, 1, -1, 1)),
      makeTensor("B", F, [6], randomFloats(6, 2, -0.5, 0.5)),
      makeTensor("W2", F, [6, 6, 1, 1], randomFloats(36, 3, -1, 1)),
    ],
    13,
  );
}

test("a quantized HardSwish runs as integer Clip + QLinearMul, close to float", async () => {
  const r = await quantizeTiny(hardSwishNet(), { x: [2, 4, 8, 8] }, {}, -1.5, 1.5);
  assert.equal(r.ops.HardSigmoid, undefined, `no DQ → HardSigmoid → Q left: ${JSON.stringify(r.ops)}`);
  assert.equal(r.ops.Clip, 2);
  assert.equal(r.fused.QLinearMul, 2, `the Muls still fuse: ${JSON.stringify(r.fused)}`);
  const hs = r.summary.quantized.filter((n) => n.opType === "HardSigmoid");
  assert.deepEqual(hs.map((n) => [n.name, n.tensors.map((t) => t.type)]), [["hs", ["uint8", "uint8"]], ["gate", ["uint8", "uint8"]]]);
  assert.equal(r.summary.float.filter((n) => n.opType === "HardSigmoid").length, 0, "not reported float");
  // Measured 29.59 dB (29.64 with the float HardSigmoid between DQ and Q).
  assert.ok(r.sqnr > 28.5, `SQNR vs float ${r.sqnr.toFixed(1)} dB`);
});

/** x → Q(s, z) → DQ → HardSigmoid(α, β) → Q(1/255, 0) → DQ → y, built by hand. */
function qdqHardSigmoid(s: number, z: number, alpha: number, beta: number, opset = 13, extraReader?: "xd" | "h", type = U8): ModelProto {
  const nodes = [
    makeNode("QuantizeLinear", ["x", "s", "z"], ["xq"], { name: "qx" }),
    makeNode("DequantizeLinear", ["xq", "s", "z"], ["xd"], { name: "dqx" }),
    makeNode("HardSigmoid", ["xd"], ["h"], { name: "hs", attributes: [attr.float("alpha", alpha), attr.float("beta", beta)] }),
    makeNode("QuantizeLinear", ["h", "sh", "zh"], ["hq"], { name: "qh" }),
    makeNode("DequantizeLinear", ["hq", "sh", "zh"], ["y"], { name: "dqh" }),
  ];
  const outputs = [valueInfo("y", F, [256])];
  if (extraReader) {
    nodes.push(makeNode("Neg", [extraReader], ["n"], { name: "neg" }));
    outputs.push(valueInfo("n", F, [256]));
  }
  return makeModel(
    nodes,
    [valueInfo("x", F, [256])],
    outputs,
    [makeTensor("s", F, [], [s]), makeTensor("z", type, [], [z]), makeTensor("sh", F, [], [1 / 255]), makeTensor("zh", type, [], [type === U8 ? 0 : -128])],
    opset,
  );
}

function rewrite(m: ModelProto): number {
  const g = m.graph!;
  const taken = usedNames(g);
  return integerHardSigmoids(g, Number(m.opsetImport[0]!.version), (b) => uniqueName(g, b, taken)).length;
}

test("the integer Clip equals HardSigmoid of the dequantized input at every code; the input's scale widens by ≤ 1/k", async () => {
  const cases = [[0.0598, 88, 1 / 6, 0.5, U8], [0.1076, 94, 0.2, 0.5, U8], [0.031, 200, 1 / 6, 0.5, U8], [0.05, 30, 0.2, 0.3, U8], [0.0598, -40, 1 / 6, 0.5, DataType.INT8]] as const;
  for (const [s, z, alpha, beta, type] of cases) {
    const m = qdqHardSigmoid(s, z, alpha, beta, 13, undefined, type);
    assert.equal(rewrite(m), 1);
    assert.deepEqual(opCounts(m), { QuantizeLinear: 1, Clip: 1, DequantizeLinear: 1 });
    const wide = m.graph!.initializer.find((t) => t.name === "s")!;
    const s2 = new DataView(wide.rawData.buffer, wide.rawData.byteOffset, 4).getFloat32(0, true);
    const k = Math.floor(beta / (alpha * s));
    assert.ok(s2 >= s * (1 - 1e-6) && s2 <= s * (1 + 1 / k), `scale ${s} → ${s2} (k ${k})`);
    const qmin = type === U8 ? 0 : -128;
    const codes = Float32Array.from({ length: 256 }, (_, i) => s2 * (i + qmin - z));
    const got = (await runModel(m, { x: new ort.Tensor("float32", codes, [256]) })).y!.data as Float32Array;
    let worst = 0;
    codes.forEach((x, i) => (worst = Math.max(worst, Math.abs(got[i]! - Math.min(1, Math.max(0, alpha * x + beta))))));
    assert.ok(worst < 1e-6, `s ${s} z ${z}: differs from HardSigmoid by ${worst}`);
  }
});

test("left as it was where the Clip cannot stand for it", () => {
  const cases: [string, ModelProto][] = [
    // Codes 0..255 read as [0, 5.1]: the lower knee (−3) is below the lowest code, its zero point would not fit uint8.
    ["input range above the lower knee", qdqHardSigmoid(0.02, 0, 1 / 6, 0.5)],
    ["opset 11 (no integer Clip)", qdqHardSigmoid(0.06, 88, 1 / 6, 0.5, 11)],
    ["HardSigmoid output also read in float", qdqHardSigmoid(0.06, 88, 1 / 6, 0.5, 13, "h")],
    // Its scale cannot widen: another reader (here a float Neg; a Conv's bias would be quantized with it) needs it.
    ["input also read by another op", qdqHardSigmoid(0.06, 88, 1 / 6, 0.5, 13, "xd")],
  ];
  for (const [what, m] of cases) {
    assert.equal(rewrite(m), 0, what);
    assert.equal(opCounts(m).HardSigmoid, 1, what);
  }
});
