// engine/calibrate/rows.ts: how a measurement after calibration runs its rows. Where the batch axis is free they run
// in parts whose tensors stay within MEASURE_RUN_BYTES (a stacked file's batch cut, single rows stacked), so peak
// memory follows one part, not the rows measured; a fixed batch axis runs the kept batches as they are.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../../../engine/onnx";
import { MEASURE_RUN_BYTES, measuredRows } from "../../../engine/calibrate/rows";
import type { Feeds } from "../../../engine/data/feeds";

const F = DataType.FLOAT;
const PLANE = 64 * 64;

/** x [batch, 1, 64, 64] → a 1×1 Conv to `channels` channels: one row's output weighs channels × 16 KiB. */
function conv(channels: number, batch: number | string = "N") {
  const w = makeTensor("w", F, [channels, 1, 1, 1], new Float32Array(channels));
  const g = makeGraph("g", [makeNode("Conv", ["x", "w"], ["y"])], [makeValueInfo("x", F, [batch, 1, 64, 64])], [makeValueInfo("y", F, [batch, channels, 64, 64])], { initializers: [w] });
  return makeModel(g);
}

const batch = (rows: number, first = 0): Feeds => ({ x: { data: Float32Array.from({ length: rows * PLANE }, (_, i) => first + Math.floor(i / PLANE)), dims: [rows, 1, 64, 64], type: "float32" } });
const shapes = (runs: Feeds[]) => runs.map((f) => f.x!.dims[0]);
/** Each run's rows, by the row index every value of a row holds. */
const order = (runs: Feeds[]) => runs.flatMap((f) => Array.from({ length: f.x!.dims[0]! }, (_, r) => (f.x!.data as Float32Array)[r * PLANE]));

test("measuredRows: runs of rows whose tensors stay within MEASURE_RUN_BYTES, in order, from one stacked batch or single rows", () => {
  const heavy = conv(Math.floor(MEASURE_RUN_BYTES / (PLANE * 4) / 2.5)); // a row's output: 0.4 of the cap, so 2 rows a run
  const stacked = measuredRows(heavy, [batch(8)], 7, undefined);
  assert.deepEqual(shapes(stacked), [2, 2, 2, 1], "a batch of 8 rows cut into runs of 2, the first 7 rows measured");
  assert.deepEqual(order(stacked), [0, 1, 2, 3, 4, 5, 6]);
  const singles = measuredRows(heavy, Array.from({ length: 5 }, (_, i) => batch(1, i)), 8, undefined);
  assert.deepEqual(shapes(singles), [2, 2, 1]);
  assert.deepEqual(order(singles), [0, 1, 2, 3, 4]);
  const light = conv(8);
  assert.deepEqual(shapes(measuredRows(light, [batch(3), batch(5, 3)], 8, undefined)), [8], "small rows: one run");
  const huge = conv(MEASURE_RUN_BYTES / (PLANE * 4) + 8);
  assert.deepEqual(shapes(measuredRows(huge, [batch(3)], 8, undefined)), [1, 1, 1], "a row over the cap alone: one row a run");
  assert.deepEqual(shapes(measuredRows(conv(1 << 14, 4), [batch(4), batch(4, 4), batch(4, 8)], 8, 4)), [4, 4], "a fixed batch axis: the kept batches as they are");
});

test("measuredRows: a model whose tensors inference cannot size stacks every row, as before", () => {
  const g = makeGraph("g", [makeNode("Foo", ["x"], ["y"], { domain: "custom" })], [makeValueInfo("x", F, ["N", 1, 64, 64])], [makeValueInfo("y", F, ["N"])]);
  assert.deepEqual(shapes(measuredRows(makeModel(g, { opsets: { "": 13, custom: 1 } }), [batch(1), batch(1, 1), batch(2, 2)], 8, undefined)), [4]);
});
