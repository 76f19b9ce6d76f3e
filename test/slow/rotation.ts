// Data for the orientation fixture (test/fixtures/scripts/make_orient.py): Fashion-MNIST images rotated by seeded
// angles, labelled with the angle's 10° bin. The rotation is torch's affine_grid + grid_sample (bilinear,
// align_corners=False, zeros outside, applied to the background-shifted image) written out, so images made here
// are what the network was trained on; a unit test checks it against torch's own output
// (data/eval/ref/orient-rotations.npy). Nothing large is stored: any number of samples comes from the committed
// images at new angles.
//
//   node --import tsx test/unit/analysis/rotation.ts --write DIR [--copies 2] [--seed 7] [--from FILE]
// writes DIR/x.npy and DIR/y.npy: the images of FILE (default test/fixtures/data/eval/x.npy; .npz and .npy folders
// work too), each rotated `copies` times, and their angle bins.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Tensor } from "../../engine/data/feeds";
import { openData } from "../../engine/data/readers";
import type { ModelProto } from "onnx-buf";
import { randomFloats } from "../unit/quant/build";

export const BINS = 36;

/** Rotates each (1, H, W) image of `x` (N, 1, H, W) by its angle in degrees about the centre, as torch does. */
export function rotateImages(x: Tensor, anglesDeg: ArrayLike<number>): Float32Array {
  const [n, c, h, w] = x.dims as [number, number, number, number];
  if (c !== 1 || anglesDeg.length !== n) throw new Error(`rotateImages: expected (N,1,H,W) images and N angles, got ${x.dims} and ${anglesDeg.length}`);
  const src = x.data as Float32Array;
  let bg = Infinity;
  for (let i = 0; i < src.length; i++) bg = Math.min(bg, src[i]!);
  const out = new Float32Array(src.length);
  const at = (img: number, yy: number, xx: number) => (yy >= 0 && yy < h && xx >= 0 && xx < w ? src[img * h * w + yy * w + xx]! - bg : 0);
  for (let img = 0; img < n; img++) {
    const th = Math.fround((Math.fround(anglesDeg[img]!) * Math.PI) / 180);
    const cs = Math.cos(th);
    const sn = Math.sin(th);
    for (let i = 0; i < h; i++) {
      const gy0 = (2 * i + 1) / h - 1;
      for (let j = 0; j < w; j++) {
        const gx0 = (2 * j + 1) / w - 1;
        // affine_grid: (gx, gy) = θ · (x, y, 1) with θ = [[cos, -sin, 0], [sin, cos, 0]]; grid_sample unnormalizes.
        const ix = ((cs * gx0 - sn * gy0 + 1) * w - 1) / 2;
        const iy = ((sn * gx0 + cs * gy0 + 1) * h - 1) / 2;
        const x0 = Math.floor(ix);
        const y0 = Math.floor(iy);
        const fx = ix - x0;
        const fy = iy - y0;
        const v =
          at(img, y0, x0) * (1 - fx) * (1 - fy) + at(img, y0, x0 + 1) * fx * (1 - fy) + at(img, y0 + 1, x0) * (1 - fx) * fy + at(img, y0 + 1, x0 + 1) * fx * fy;
        out[img * h * w + i * w + j] = v + bg;
      }
    }
  }
  return out;
}

/** Seeded uniform angles in [0, 360): the same numbers on every machine. */
export function seededAngles(count: number, seed: number): Float32Array {
  return randomFloats(count, seed, 0, 360);
}

/**
 * `copies` rotated versions of every image (copy k uses seed + k), stacked: images (N·copies, 1, H, W) and their
 * angle bins as int64 labels.
 */
export function rotatedSet(x: Tensor, copies: number, seed: number): { x: Tensor; y: Tensor } {
  const n = x.dims[0]!;
  const per = (x.data as Float32Array).length / n;
  const xs = new Float32Array(n * copies * per);
  const ys = new BigInt64Array(n * copies);
  for (let k = 0; k < copies; k++) {
    const angles = seededAngles(n, seed + k);
    xs.set(rotateImages(x, angles), k * n * per);
    for (let i = 0; i < n; i++) ys[k * n + i] = BigInt(Math.floor(angles[i]! / (360 / BINS)) % BINS);
  }
  return { x: { type: "float32", dims: [n * copies, ...x.dims.slice(1)], data: xs }, y: { type: "int64", dims: [n * copies], data: ys } };
}

/** Every sample of a data file (.npz, .npy folder) for a one-input float model, as one (N, …) tensor. */
export function allSamples(file: string, model: ModelProto): Tensor {
  const input = model.graph!.input[0]!.name;
  const [first] = openData(file, model, { batchSize: 1 << 30 });
  const t = (first as Record<string, { data: Float32Array; dims: readonly number[] }>)[input]!;
  return { type: "float32", dims: [...t.dims], data: t.data };
}

async function main(): Promise<void> {
  const { parseArgs } = await import("node:util");
  const { readNpyTensor } = await import("../../engine/analysis/dataset");
  const { encodeNpy } = await import("../../engine/data/npy");
  const { Model } = await import("../../engine/onnx");
  const { values } = parseArgs({
    options: { write: { type: "string" }, copies: { type: "string", default: "2" }, seed: { type: "string", default: "7" }, from: { type: "string" } },
  });
  if (!values.write) throw new Error("usage: rotation.ts --write DIR [--copies 2] [--seed 7] [--from FILE]");
  const fixtures = path.join(__dirname, "..", "fixtures");
  const images = values.from
    ? allSamples(values.from, (await Model.load(path.join(fixtures, "models", "orient.onnx"))).proto)
    : readNpyTensor(path.join(fixtures, "data", "eval", "x.npy"));
  const set = rotatedSet(images, Number(values.copies), Number(values.seed));
  mkdirSync(values.write, { recursive: true });
  writeFileSync(path.join(values.write, "x.npy"), encodeNpy(set.x.data as Float32Array, set.x.dims));
  writeFileSync(path.join(values.write, "y.npy"), encodeNpy(set.y.data as BigInt64Array, set.y.dims));
  console.log(`wrote ${set.y.dims[0]} rotated images and their angle bins to ${values.write}`);
}

if (require.main === module) void main().catch((e) => (console.error(e instanceof Error ? e.message : e), process.exit(1)));
