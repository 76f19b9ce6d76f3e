// Issue #6's done-when on a real trained model where default INT8 loses more than 1 pp: the orientation estimator
// (test/fixtures/scripts/make_orient.py: a narrow MobileNetV3-style network predicting a Fashion-MNIST image's
// rotation in 36 bins). The data is the committed images rotated at seeded angles (rotation.ts, checked against
// torch's own rotation here): the search sees the 2000 eval images at 8 angles each, and 4 more angles each are held
// out to check that what it found is not an accident of its data. Slow: two conversions and runs per node to rank,
// ~20 searches over 16000 images.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { readNpyTensor } from "../../engine/analysis/dataset";
import { sliceRows } from "../../engine/analysis/feeds";
import { classLabels } from "../../engine/analysis/metrics";
import { modelOutputs, searchMixedPrecision, top1 } from "../../engine/analysis/sensitivity";
import type { Feeds, Tensor } from "../../engine/data/feeds";
import { splitRows } from "../../engine/calibrate/rows";
import { Model } from "../../engine/onnx";
import { calibrate, convert, prepare, release } from "../../engine/quant";
import { allSamples, rotatedSet, rotateImages } from "./rotation";

const FIX = path.join(__dirname, "..", "fixtures");
const manifest = JSON.parse(readFileSync(path.join(FIX, "models", "manifest.json"), "utf8")) as Record<string, { rotationRef: { anglesDeg: number[] } }>;

const batches = (x: Tensor, size: number): Feeds[] => [...splitRows({ input: x }, size)];

test("the TypeScript rotation is torch's (affine_grid + grid_sample) on the fixture's reference images", () => {
  const x = readNpyTensor(path.join(FIX, "data", "eval", "x.npy"));
  const ref = readNpyTensor(path.join(FIX, "data", "eval", "ref", "orient-rotations.npy"));
  const angles = manifest.orient!.rotationRef.anglesDeg;
  // The background is the smallest value of the batch torch rotated (the first 8 images).
  const first = sliceRows(x, 0, angles.length);
  const got = rotateImages({ ...first, dims: [angles.length, 1, 28, 28] }, angles);
  const want = ref.data as Float32Array;
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  assert.ok(worst < 1e-4, `largest difference from torch ${worst}`);
});

test("orient: default INT8 loses over twice the 0.3 pp target; the search recovers it to <= 0.3 pp with >= 90 % int8 weights and names the nodes", { timeout: 300_000 }, async () => {
  const source = await Model.load(path.join(FIX, "models", "orient.onnx"));
  const images = readNpyTensor(path.join(FIX, "data", "eval", "x.npy"));
  const calibImages = allSamples(path.join(FIX, "data", "calib", "calib.npz"), source.proto);
  const calib = batches(rotatedSet(calibImages, 1, 11).x, 32);
  // 16000 search samples: the paired drop's standard error is ~0.2 pp there (~5 % of predictions flip), small
  // enough that a configuration just meeting 0.3 pp does so on new data too (with 4000 it did not: 0.66 pp).
  const search = rotatedSet(images, 8, 21);
  const held = rotatedSet(images, 4, 41);
  const data = batches(search.x, 500);
  const heldData = batches(held.x, 500);

  const prepared = await prepare(source);
  await calibrate(prepared, calib);
  await release(prepared);
  const { model: full } = await convert(prepared);
  const score = async (m: Model, d: Feeds[], y: Tensor) => top1(await modelOutputs(m, d), classLabels(y));
  const fp32 = await score(prepared.model, data, search.y);
  const int8 = await score(full, data, search.y);
  assert.ok(fp32 > 70, `FP32 top-1 on rotated eval images ${fp32}`);
  // The default loses well over the target, so the search has work to do (1.0 pp here since Conv kernels keep their
  // sums, 2026-12-05; more before).
  assert.ok(fp32 - int8 > 0.6, `default INT8 drop ${fp32 - int8} pp`);

  const r = await searchMixedPrecision(prepared, data, { kind: "drop", maxPp: 0.3, labels: search.y }, { rankData: calib.slice(0, 8), minInt8WeightShare: 0.9 });
  assert.ok(r.chosen.met, `drop ${fp32 - r.chosen.metric} pp`);
  assert.ok(fp32 - r.chosen.metric <= 0.3);
  assert.ok(r.chosen.int8WeightShare >= 0.9, `int8 weight share ${r.chosen.int8WeightShare}`);
  assert.deepEqual(r.warnings, [], "16000 samples resolve a 0.3 pp target");
  const named = [...r.chosen.int16, ...r.chosen.keptFloat];
  assert.ok(named.length >= 1 && named.length < r.ranking.layers.length, `changed ${named.join(", ")}`);
  for (const n of named) assert.ok(source.graph.node.some((x) => x.name === n), `${n} is a node of the model`);
  assert.ok(Math.abs((await score(r.model, data, search.y)) - r.chosen.metric) < 1e-9, "the returned model is the one measured");

  // On 1000 samples the same target cannot be resolved (~5 % of predictions flip): the result says so.
  const few = await searchMixedPrecision(prepared, data.slice(0, 2), { kind: "drop", maxPp: 0.3, labels: sliceRows(search.y, 0, 1000) }, { rankData: calib.slice(0, 8), minInt8WeightShare: 0.9 });
  assert.equal(few.warnings.length, 1, JSON.stringify(few.warnings));
  assert.match(few.warnings[0]!, /^on 1000 labelled samples the chosen model's top-1 drop has a standard error of [\d.]+ pp, more than the 0\.3 pp target: the choice may not hold on new data; about \d+ samples would bring it to half the target$/);

  // Held-out rotations the search never saw: the drop stays near the target (0.3 pp plus about one standard error).
  const heldFp32 = await score(prepared.model, heldData, held.y);
  const heldInt8 = heldFp32 - (await score(full, heldData, held.y));
  const heldSearched = heldFp32 - (await score(r.model, heldData, held.y));
  assert.ok(heldInt8 > 0.6, `default INT8 on held-out rotations: ${heldInt8} pp`);
  // 0.3 pp plus about one standard error of the paired drop on 8000 held-out samples (~0.3 pp), and below the default.
  assert.ok(heldSearched <= 0.6 && heldSearched < heldInt8, `held-out drop: searched ${heldSearched} pp vs default ${heldInt8} pp`);
});
