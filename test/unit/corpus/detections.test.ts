// An anchor detector's detections (bench/corpus/evaluate.ts): anchors decoded into boxes, suppressed, and the
// candidate's matched to FP32's; on a built head and on the corpus's BlazeFace (front) over crops of real photographs.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { formatTable } from "../../../bench/corpus";
import { byId, ensureFetched, loadCatalog, modelPath, type DetectorHead } from "../../../bench/corpus/catalog";
import { detect, detectionScores, formatDetections, iou, type Box } from "../../../bench/corpus/evaluate";
import { FrontEnd, makeSamples } from "../../../bench/corpus/inputs";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { createSession } from "../../../engine/runtime/session";

const tensor = (data: number[], dims: number[]) => ({ data: Float32Array.from(data), dims, type: "float32" as const, dtype: DataType.FLOAT });

test("detect: anchors above the logit decoded from their cell's centre, then suppressed by IoU", () => {
  // One scale, a 2×2 grid of one anchor per cell, 100-pixel input. Anchor 0 (centre 0.25, 0.25) and anchor 1
  // (centre 0.75, 0.25, moved 45 px left) are nearly the same box: the lower score goes. Anchor 3 is below 0.
  const head: DetectorHead = { scales: [{ scores: "s", boxes: "b", grid: 2, perCell: 1 }], inputSize: 100, at: 0, iou: 0.3 };
  const boxes = [0, 0, 40, 40, -45, 0, 40, 40, 0, 0, 20, 10, 0, 0, 40, 40];
  const found = detect(head, { s: tensor([5, 4, 1, -2], [1, 4, 1]), b: tensor(boxes, [1, 4, 4]) });
  const round = (b: Box) => [b.x0, b.y0, b.x1, b.y1, b.score].map((v) => Math.round(v * 100) / 100);
  assert.deepEqual(found.map(round), [
    [0.05, 0.05, 0.45, 0.45, 5],
    [0.15, 0.7, 0.35, 0.8, 1], // anchor 2: cell (row 1, column 0), centre (0.25, 0.75), 20 × 10 px
  ]);
  assert.throws(() => detect(head, { s: tensor([5, 4, 1], [1, 3, 1]), b: tensor(boxes, [1, 4, 4]) }), /"s" holds 3 scores .* not 4 anchors' \(2² cells × 1\)/);
  assert.throws(() => detect(head, { s: tensor([5, 4, 1, -2], [1, 4, 1]) }), /"s" and "b" are not both among the model's outputs/);
});

test("detectionScores: each candidate detection matched to one of FP32's on the same sample at IoU ≥ 0.5, best overlaps first", () => {
  const box = (x0: number, y0: number, side: number): Box => ({ x0, y0, x1: x0 + side, y1: y0 + side, score: 1 });
  const [a, b] = [box(0, 0, 0.2), box(0.5, 0.5, 0.2)];
  const a2 = box(0.02, 0, 0.2); // IoU with a: 0.18 / 0.22
  const elsewhere = box(0.3, 0, 0.1);
  // Sample 1: FP32 finds a and b, the candidate a2 and a box elsewhere. Sample 2: FP32 finds a, the candidate a and
  // a2 (one of FP32's detections matches once). Sample 3: neither finds any.
  const d = detectionScores([[a, b], [a], []], [[a2, elsewhere], [a2, a], []]);
  assert.equal(d.fp32, 3);
  assert.equal(d.candidate, 4);
  assert.equal(d.recall, 2 / 3);
  assert.equal(d.precision, 2 / 4);
  assert.ok(Math.abs(d.iou - (iou(a, a2) + 1) / 2) < 1e-12, String(d.iou));
  assert.equal(formatDetections(d), `detections: recall 66.7 %, precision 50.0 % of FP32's 3, IoU ${((iou(a, a2) + 1) / 2).toFixed(2)}`);
  assert.equal(formatDetections(detectionScores([[]], [[]])), "detections: recall —, precision — of FP32's 0, IoU —");
  const table = formatTable([{ model: "m", mode: "static", works: "yes", seconds: 1, command: "", positives: { fp32: 4, candidate: 4, recall: 1, precision: 1 }, detections: d }]);
  assert.match(table, /positives: recall 100\.0 %, precision 100\.0 % of FP32's 4; detections: recall 66\.7 %/);
});

const catalog = loadCatalog();
before(() => ensureFetched(["blazeface-front"]));

test("the corpus's BlazeFace finds faces in crops of real photographs: square boxes inside the crop, the same in FP32 as in FP32", async () => {
  const m = byId(catalog, "blazeface-front");
  const fe = new FrontEnd(catalog);
  const samples = await makeSamples(m, 4, 1000, fe).finally(() => fe.dispose());
  const s = await createSession(await Model.load(modelPath(m)), { threads: 1 });
  const found = [];
  try {
    for (const f of samples) found.push(detect(m.detections!, await s.run(f)));
  } finally {
    await s.dispose();
  }
  assert.ok(found.every((faces) => faces.length >= 1), `faces per crop: ${found.map((f) => f.length)}`);
  for (const b of found.flat()) {
    const [w, h] = [b.x1 - b.x0, b.y1 - b.y0];
    assert.ok(w > 0.05 && w < 0.6 && Math.abs(w - h) < 0.05, `a face's box ${JSON.stringify(b)}`);
    assert.ok(b.x0 > -0.2 && b.y0 > -0.2 && b.x1 < 1.2 && b.y1 < 1.2, `a face's box ${JSON.stringify(b)}`);
  }
  assert.deepEqual(detectionScores(found, found), { fp32: found.flat().length, candidate: found.flat().length, recall: 1, precision: 1, iou: 1 });
});
