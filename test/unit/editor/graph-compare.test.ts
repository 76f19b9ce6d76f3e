import { test } from "node:test";
import assert from "node:assert/strict";
import { anchorOf, viewAt, type NavIndex } from "../../../media/graph/nav";
import { floatTwinPath, quantizedTwinPath } from "../../../src/editor/graphOverrides";

const ix = (boxes: Record<string, [number, number]>): NavIndex => ({
  boxes: new Map(Object.entries(boxes).map(([id, [x, y]]) => [id, { x, y, width: 100, height: 40 }])),
  succ: new Map(),
  pred: new Map(),
});

test("compare: the twin puts the node nearest the canvas centre at the same place, though its layout differs", () => {
  const canvas = { w: 800, h: 600 };
  // The float side draws a Relu the quantized side folded away: the nodes below it sit higher there.
  const float = ix({ conv: [0, 0], relu: [0, 100], pool: [0, 200] });
  const quant = ix({ q0: [50, 0], q2: [50, 100] });
  const names: Record<string, string> = { conv: "conv", relu: "relu", pool: "pool", q0: "conv", q2: "pool" };
  const view = { x: 300, y: 20, k: 1.5 };
  const inTwin = new Set(["conv", "pool"]);
  // Canvas centre in graph units: ((400-300)/1.5, (300-20)/1.5) = (66.7, 186.7): nearest of those both draw is pool.
  const a = anchorOf(float, view, canvas, (id) => inTwin.has(names[id]!))!;
  assert.equal(a.node, "pool");
  assert.ok(Math.abs(a.dx - (200 / 3 - 50)) < 1e-9 && Math.abs(a.dy - (560 / 3 - 220)) < 1e-9 && a.k === 1.5);
  // The twin's view puts its pool (id q2) at the same screen spot, at the same zoom.
  const v = viewAt(quant, { ...a, node: "q2" }, canvas);
  const screen = (b: { x: number; y: number }, w: typeof view) => [w.x + (b.x + 50) * w.k, w.y + (b.y + 20) * w.k];
  assert.deepEqual(screen(quant.boxes.get("q2")!, v).map((x) => Math.round(x * 1e6) / 1e6), screen(float.boxes.get("pool")!, view).map((x) => Math.round(x * 1e6) / 1e6));
  assert.equal(v.k, 1.5);
  // Without the relu filter it would anchor on the relu, which the twin does not draw.
  assert.equal(anchorOf(float, { x: 300, y: 170, k: 1.5 }, canvas, () => true)!.node, "relu");
  assert.equal(anchorOf(float, view, canvas, () => false), undefined);
});

test("compare finds the twin beside the model: cnn.onnx ↔ cnn.int8.onnx", () => {
  assert.equal(quantizedTwinPath("/w/m/cnn.onnx"), "/w/m/cnn.int8.onnx");
  assert.equal(quantizedTwinPath("/w/m/cnn.ONNX"), "/w/m/cnn.int8.onnx");
  assert.equal(quantizedTwinPath("/w/m/cnn"), undefined);
  assert.equal(floatTwinPath("/w/m/cnn.int8.onnx"), "/w/m/cnn.onnx");
  assert.equal(floatTwinPath("/w/m.int8.d/cnn.onnx"), undefined);
});
