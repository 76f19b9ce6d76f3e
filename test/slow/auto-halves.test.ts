// calibration auto on a real model where the winner on the calibration rows does not hold: the corpus's PP-OCRv4
// English recogniser calibrated on the 16 samples of seed 2 (bench/corpus/samples.ts --seed 2). There the
// per-tensor choices beat mse on the rows that made their ranges (+1.61 dB pooled, bound +0.33, on the machine of
// docs/calibration.md "auto judged across halves"), and read 95.1 % of 512 held-out lines against mse's 96.3 % (FP32
// 96.7 %); judged across the halves of those rows they read worse than mse, so mse's ranges are written. Slow: one
// calibration with its measurements (~80 s on 2 shared cores). Skips when the corpus cache is absent
// (`npm run corpus:fetch`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { byId, loadCatalog, modelPath } from "../../bench/corpus/catalog";
import { FrontEnd, makeSamples } from "../../bench/corpus/inputs";
import { Model } from "../../engine/onnx/model";
import { calibrate, prepare, release } from "../../engine/quant/index";

const catalog = loadCatalog();
const m = byId(catalog, "ppocr-v4-rec-en");
const file = modelPath(m);

test("ppocr-v4-rec-en on its second calibration set: auto writes mse's ranges, not per-tensor choices that do not hold across halves", { skip: existsSync(file) ? false : `corpus model absent: ${file}`, timeout: 600_000 }, async () => {
  const fe = new FrontEnd(catalog);
  const samples = await makeSamples(m, 16, 2, fe).finally(() => fe.dispose());
  const prepared = await prepare(await Model.load(file));
  try {
    await calibrate(prepared, samples);
  } finally {
    await release(prepared);
  }
  const auto = prepared.autoAtOutputs!;
  console.log(`ppocr-v4-rec-en, seed-2 calibration: ${auto.assignment}: ${auto.why}`);
  assert.equal(auto.assignment, "mse", auto.why);
  // Where the rows that made the ranges still pick a winner (they did on the machine this was measured on), the
  // summary says it did not hold across their halves.
  if (!/^mse's ranges kept: no other method gained/.test(auto.why)) {
    assert.match(auto.why, /^mse's ranges kept: the per-tensor choices: .*, but not when judged across the halves of those rows \(each half's ranges on the other half\): per row: mean −/);
  }
  const mse = [...prepared.choices.values()].every((c) => c.method === "mse");
  assert.ok(mse, "every tensor at mse's range");
});
