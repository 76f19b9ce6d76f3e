// ptq quantize's text summaries (cli/summary-lines): the nodes left in float grouped by their reason (a real model
// leaves dozens float for a handful of reasons: ppocr-v4-rec-en printed 93 such lines), and a low-bit file's layers
// cut to the ten of lowest SQNR (blazeface-back's int4 file: 69 lines). Each node's and layer's own figures stay in
// --json.
import { test } from "node:test";
import assert from "node:assert/strict";
import { floatLines, layerLines } from "../../../cli/summary-lines";
import type { LowBitReport } from "../../../engine/lowbit/index";

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

test("a low-bit summary lists every layer up to ten; past that the ten of lowest output SQNR in the report's order, and the rest counted", () => {
  type Layer = LowBitReport["layers"][number];
  const layer = (i: number, sqnrDb: number, outputSqnrDb?: number) => ({ node: `n${i}`, sqnrDb, ...(outputSqnrDb !== undefined && { outputSqnrDb }) }) as Layer;
  const line = (l: Layer) => `  ${l.node}`;
  const few = Array.from({ length: 10 }, (_, i) => layer(i, 20 + i));
  assert.deepEqual(layerLines(few, line), few.map(line));
  // Twelve layers, weight SQNR only: n3 and n7 are the two best, left out and counted.
  const weights = Array.from({ length: 12 }, (_, i) => layer(i, i === 3 ? 30 : i === 7 ? 31 : 20 + i / 10));
  assert.deepEqual(layerLines(weights, line), [
    "  the 10 layers of lowest weight SQNR:",
    ...weights.filter((l) => l.node !== "n3" && l.node !== "n7").map(line),
    "  and 2 more at 30.0–31.0 dB weight SQNR (every layer: --json, `layers`)",
  ]);
  // Measured outputs decide where there are some: n0 has the worst weights but the best output.
  const outputs = Array.from({ length: 11 }, (_, i) => layer(i, i === 0 ? 5 : 20, i === 0 ? 60 : 30 + i));
  const lines = layerLines(outputs, line);
  assert.equal(lines[0], "  the 10 layers of lowest output SQNR:");
  assert.ok(!lines.includes("  n0"));
  assert.equal(lines.at(-1), "  and 1 more at 60.0–60.0 dB output SQNR (every layer: --json, `layers`)");
});
