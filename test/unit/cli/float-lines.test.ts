// ptq quantize's text summary groups the nodes left in float by their reason (cli/quantize floatLines): a real model
// leaves dozens float for a handful of reasons, and one line per node buried the rest of the summary
// (ppocr-v4-rec-en: 93 such lines). Each node's own reason stays in --json's `float`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { floatLines } from "../../../cli/quantize";

const fed = "fed only by float ops: quantizing it alone adds error without an int8 kernel";
const small = (w: number, share: number) =>
  `one of the model's smallest Convs (${w} weights; with the others kept so, ${share} % of its weights): onnxruntime runs this Conv in float (no 8-bit Q/DQ on both sides to fuse into QLinearConv), so int8 would save only these bytes`;

test("nodes whose reasons differ only in their figures share a line: op types by count, the first names, the reason without the figures", () => {
  const lines = floatLines([
    { name: "add1", opType: "Add", reason: fed },
    { name: "mul1", opType: "Mul", reason: fed },
    { name: "conv0", opType: "Conv", reason: small(144, 0.46) },
    { name: "add2", opType: "Add", reason: fed },
    { name: "conv1", opType: "Conv", reason: small(288, 0.46) },
    { name: "add3", opType: "Add", reason: fed },
    { name: "soft", opType: "Softmax", reason: "a final Softmax stays float" },
  ]);
  assert.deepEqual(lines, [
    `  float, 4 nodes: Add ×3, Mul ×1 (add1, mul1, add2 and 1 more): ${fed}`,
    "  float, 2 nodes: Conv ×2 (conv0, conv1): one of the model's smallest Convs: onnxruntime runs this Conv in float, so int8 would save only these bytes",
    "  float: soft (Softmax): a final Softmax stays float",
    "  (each float node's own reason: --json, `float`)",
  ]);
});

test("every node alone on its reason: one line each with its whole reason, as before, and no pointer", () => {
  assert.deepEqual(floatLines([{ name: "conv0", opType: "Conv", reason: small(144, 0.46) }, { name: "", opType: "Mul", reason: fed }]), [
    `  float: conv0 (Conv): ${small(144, 0.46)}`,
    `  float: (unnamed) (Mul): ${fed}`,
  ]);
  assert.deepEqual(floatLines([]), []);
});
