// The fixture calibration set is written three ways by test/fixtures/scripts/make_data.py (256 .npy files of one
// image, one .npz, four test_data_set_* folders of 64): every reader must yield the same 256 images in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { DataType } from "../../../engine/onnx/dtype";
import { makeGraph, makeModel, makeValueInfo } from "../../../engine/onnx/proto";
import type { Feeds } from "../../../engine/data/feeds";
import { openData, readNpyFolder, readNpz, readTestDataSets } from "../../../engine/data/readers";

const calib = path.join(__dirname, "..", "..", "fixtures", "data", "calib");
const evalDir = path.join(__dirname, "..", "..", "fixtures", "data", "eval");
const missing = !existsSync(path.join(calib, "calib.npz")) && "fixture data not generated (test/fixtures/scripts/make_data.py)";

const dynamic = makeModel(makeGraph("g", [], [makeValueInfo("input", DataType.FLOAT, ["N", 1, 28, 28])], []));
const fixed1 = makeModel(makeGraph("g", [], [makeValueInfo("input", DataType.FLOAT, [1, 1, 28, 28])], []));

function flatten(batches: Iterable<Feeds>): { count: number; samples: number; sum: number; firstPixels: number[] } {
  let count = 0;
  let samples = 0;
  let sum = 0;
  let offset = 0;
  let firstPixels: number[] = [];
  for (const b of batches) {
    const t = b["input"]!;
    const d = t.data as Float32Array;
    if (count === 0) firstPixels = Array.from(d.subarray(300, 310));
    count++;
    samples += t.dims[0]!;
    for (let i = 0; i < d.length; i++) sum += d[i]! * (((offset + i) % 97) + 1); // position-weighted: order matters
    offset += d.length;
  }
  return { count, samples, sum, firstPixels };
}

test("fixture calib set: .npy folder, .npz and test_data_set_* give the same 256 images", { skip: missing }, () => {
  const npy = flatten(readNpyFolder(path.join(calib, "npy"), dynamic));
  const npz = flatten(readNpz(path.join(calib, "calib.npz"), dynamic, { batchSize: 64 }));
  const pb = flatten(readTestDataSets(calib, dynamic));
  assert.deepEqual([npy.count, npy.samples], [256, 256]);
  assert.deepEqual([npz.count, npz.samples], [4, 256]);
  assert.deepEqual([pb.count, pb.samples], [4, 256]);
  assert.ok(npy.sum !== 0);
  assert.ok(Math.abs(npz.sum - npy.sum) < 1e-6 * Math.abs(npy.sum), `${npz.sum} vs ${npy.sum}`);
  assert.ok(Math.abs(pb.sum - npy.sum) < 1e-6 * Math.abs(npy.sum), `${pb.sum} vs ${npy.sum}`);
  assert.deepEqual(npz.firstPixels, npy.firstPixels);
  // A model with batch fixed at 1 gets the stacked arrays one image at a time.
  assert.equal(flatten(openData(path.join(calib, "calib.npz"), fixed1)).count, 256);
});

test("fixture eval/x.npy reads as one stacked array; the int64 labels are refused for a float input", { skip: missing }, () => {
  const x = flatten(openData(path.join(evalDir, "x.npy"), dynamic, { batchSize: 500 }));
  assert.equal(x.samples, 2000);
  assert.equal(x.count, 4);
  assert.throws(() => [...openData(path.join(evalDir, "y.npy"), dynamic)], /y\.npy.*input "input"/);
});
