import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { readFileSync } from "node:fs";
import { DataType } from "../../../engine/onnx/dtype";
import { makeGraph, makeModel, makeValueInfo } from "../../../engine/onnx/proto";
import { parseNpy } from "../../../engine/data/npy";
import { describeImagePlan, imagePlan, readImageFolder } from "../../../engine/data/images";
import { openData } from "../../../engine/data/readers";

const files = path.join(__dirname, "files", "images");
const npy = (name: string) => parseNpy(readFileSync(path.join(files, name)), name).data as Float32Array;
const modelOf = (shape: (number | string)[]) => makeModel(makeGraph("g", [], [makeValueInfo("img", DataType.FLOAT, shape)], []));

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test("PNG folder, NCHW gray 28x28: exactly the pixels / 255", () => {
  const batches = [...readImageFolder(path.join(files, "gray"), modelOf(["N", 1, 28, 28]), { batchSize: 2 })];
  assert.deepEqual(batches.map((b) => b["img"]!.dims), [[2, 1, 28, 28], [1, 1, 28, 28]]);
  const all = new Float32Array([...(batches[0]!["img"]!.data as Float32Array), ...(batches[1]!["img"]!.data as Float32Array)]);
  assert.equal(maxDiff(all, npy("gray_expected.npy")), 0);
});

test("bilinear resize matches torch interpolate(align_corners=False)", () => {
  const [b] = [...readImageFolder(path.join(files, "gray"), modelOf(["N", 1, 14, 20]), { scale: 1 })];
  assert.deepEqual(b!["img"]!.dims, [3, 1, 14, 20]);
  assert.ok(maxDiff(b!["img"]!.data as Float32Array, npy("gray_resized_14x20.npy")) < 1e-3);
});

test("JPEG decodes within a few levels of PIL's decoder", () => {
  const [b] = [...openData(path.join(files, "jpeg"), modelOf(["N", 1, 28, 28]))];
  const got = Float32Array.from(b!["img"]!.data as Float32Array, (v) => v * 255);
  assert.ok(maxDiff(got, npy("jpeg_pil.npy")) <= 4, `max diff ${maxDiff(got, npy("jpeg_pil.npy"))}`);
});

test("RGB, NHWC with mean/std, fixed batch; leftover images warned about; bad models refused", () => {
  const [b] = [...readImageFolder(path.join(files, "rgb"), modelOf([1, 5, 7, 3]), { mean: [0.5], std: [0.25] })];
  assert.deepEqual(b!["img"]!.dims, [1, 5, 7, 3]);
  assert.ok(maxDiff(b!["img"]!.data as Float32Array, npy("rgb_expected_nhwc.npy")) < 1e-5);
  const warnings: string[] = [];
  const batches = [...readImageFolder(path.join(files, "gray"), modelOf([2, 1, 28, 28]), { warn: (m) => warnings.push(m) })];
  assert.equal(batches.length, 1);
  assert.match(warnings[0]!, /batch is fixed at 2; the last 1 image\(s\) were not used/);
  assert.throws(() => [...readImageFolder(path.join(files, "gray"), modelOf(["N", 8, "h", "w"]))], /cannot tell NCHW from NHWC/);
  assert.throws(() => [...readImageFolder(path.join(files, "gray"), modelOf(["N", 1, "h", "w"]))], /no fixed height\/width; pass options.size/);
  assert.throws(() => [...readImageFolder(path.join(files, "nope"), modelOf(["N", 1, 28, 28]))], /nope: not a folder/);
});

test("openData's images options: per-channel normalization, layout and size as a training pipeline sets them; the plan told as read; bad values named", () => {
  const rgb = path.join(files, "rgb");
  const plain = [...openData(rgb, modelOf([1, 3, 5, 7]))][0]!["img"]!.data as Float32Array;
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const [b] = [...openData(rgb, modelOf([1, 3, 5, 7]), { images: { mean, std } })];
  const got = b!["img"]!.data as Float32Array;
  for (let c = 0; c < 3; c++) for (let i = 0; i < 35; i++) assert.ok(Math.abs(got[c * 35 + i]! - (plain[c * 35 + i]! - mean[c]!) / std[c]!) < 1e-5);
  // scale 1 keeps 0–255; size resizes a symbolic H×W; layout NHWC puts channels last.
  const [raw] = [...openData(rgb, modelOf(["N", "c", "h", "w"]), { images: { scale: 1, layout: "NCHW", size: [5, 7] } })];
  assert.deepEqual(raw!["img"]!.dims, [1, 3, 5, 7]);
  assert.ok(maxDiff(raw!["img"]!.data as Float32Array, Float32Array.from(plain, (v) => v * 255)) < 1e-3);
  const plan = imagePlan(rgb, modelOf([1, 3, 224, 224]), { mean, std });
  assert.equal(describeImagePlan(plan), 'input "img" = (pixel × 1/255 − [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], RGB, NCHW 224×224 (bilinear resize)');
  assert.equal(describeImagePlan(imagePlan(rgb, modelOf([1, 28, 28, 1]))), 'input "img" = (pixel × 1/255 − 0) / 1, gray, NHWC 28×28 (bilinear resize)');
  assert.throws(() => [...openData(rgb, modelOf([1, 3, 5, 7]), { images: { mean: [0.5, 0.5] } })], /rgb: image mean \[0\.5, 0\.5\] for input "img" with 3 channel\(s\): give one number, or one per channel/);
  assert.throws(() => [...openData(rgb, modelOf([1, 3, 5, 7]), { images: { std: [1, 0, 1] } })], /image std \[1, 0, 1\] holds a 0/);
  assert.throws(() => [...openData(rgb, modelOf([1, 3, 5, 7]), { images: { scale: -1 } })], /image scale -1: give a positive number/);
  assert.throws(() => [...openData(rgb, modelOf(["N", 3, "h", "w"]))], /no fixed height\/width; pass options.size \(ptq: --image-size HxW\)/);
});
