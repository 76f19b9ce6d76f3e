// calibration.method "auto" says what it chose: the conversion's summary carries the method per activation and why.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { takeBatches } from "../../../engine/analysis/analyze";
import { readNpyFolder } from "../../../engine/data/readers";
import { Model } from "../../../engine/onnx/model";
import { calibrate, convert, prepare, release } from "../../../engine/quant/index";
import { Calibrator } from "../../../engine/calibrate/index";
import { DataType } from "../../../engine/onnx/dtype";
import { makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { makeModel, quantizeTiny, randomFloats, valueInfo } from "./build";

const FIX = path.join(import.meta.dirname, "../../fixtures");

test("auto (the default) says what it chose in the summary (and a fixed method leaves none)", async () => {
  const model = await Model.load(path.join(FIX, "models", "cnn.onnx"));
  const data = await takeBatches(readNpyFolder(path.join(FIX, "data", "calib", "npy"), model.proto, { batchSize: 8 }), 4);
  const auto = await prepare(model);
  await calibrate(auto, data);
  await release(auto);
  const { summary } = await convert(auto);
  // At the outputs the fixture CNN keeps mse's ranges (bench/calibration-auto.ts: mse for its 11 tensors), and the
  // summary says which alternative came closest.
  assert.equal(summary.calibrationAuto?.assignment, "mse");
  assert.match(summary.calibrationAuto!.why, /^mse's ranges kept: no other method gained on the first \d+ calibration row\(s\) with a lower bound above \+0\.00 dB \(closest: [\w -]+, per row: mean [+−][\d.]+ dB, lower bound [+−][\d.]+ dB; pooled [+−][\d.]+ dB, lower bound [+−][\d.]+ dB\); --method mse skips this measurement$/);
  const choices = Object.entries(summary.calibrationChoices ?? {});
  assert.ok(choices.length > 0);
  for (const [tensor, c] of choices) {
    assert.ok(["mse", "entropy", "percentile", "minmax"].includes(c.method), `${tensor}: ${c.method}`);
    assert.ok(c.why.length > 10, `${tensor}: why "${c.why}"`);
  }
  const mse = await prepare(model, { calibration: { method: "mse" } });
  await calibrate(mse, data);
  await release(mse);
  const fixed = (await convert(mse)).summary;
  assert.equal(fixed.calibrationChoices, undefined);
  assert.equal(fixed.calibrationAuto, undefined);
});

test("auto measures an assignment with another's ranges once and says whose file it is", async () => {
  // x [4, 16] · W: 64 values a tensor, so percentile's 99.999 % keeps every one of them: minmax's ranges.
  const w = randomFloats(16 * 8, 3);
  const { summary } = await quantizeTiny(
    makeModel([makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })], [valueInfo("x", DataType.FLOAT, [4, 16])], [valueInfo("y", DataType.FLOAT, [4, 8])], [
      makeTensor("W", DataType.FLOAT, [16, 8], w),
    ]),
    { x: [4, 16] },
  );
  const whys = Object.values(summary.calibrationChoices ?? {}).map((c) => c.why);
  assert.ok(whys.length > 0);
  for (const why of whys) {
    assert.match(why, /, percentile: minmax's ranges, /, why);
    assert.match(why, /, minmax [-\d.]+ dB \(per row/, why);
  }
});

/**
 * x -> MatMul (identity) -> h -> Sigmoid -> e, x uniform in [-1, 1] but for 0.2 % spread over [1, 40]: mse keeps h's
 * tail, where Sigmoid is flat, at the cost of resolution in [-1, 1]; a tighter range wins at the output, on the rows
 * that made it and on each half's rows with the other half's ranges. 16 batches of 4 rows.
 */
function sigmoidTail(): { model: Model; data: { x: { data: Float32Array; dims: number[] } }[] } {
  const eye = new Float32Array(64 * 64);
  for (let i = 0; i < 64; i++) eye[i * 65] = 1;
  const model = Model.fromProto(makeModel([makeNode("MatMul", ["x", "W"], ["h"], { name: "mm" }), makeNode("Sigmoid", ["h"], ["e"], { name: "s" })],
    [valueInfo("x", DataType.FLOAT, ["n", 64])], [valueInfo("e", DataType.FLOAT, ["n", 64])], [makeTensor("W", DataType.FLOAT, [64, 64], eye)]));
  let s = 7;
  const rand = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const value = () => (rand() < 0.002 ? 1 + rand() * 39 : rand() * 2 - 1);
  const data = Array.from({ length: 16 }, () => ({ x: { data: Float32Array.from({ length: 4 * 64 }, value), dims: [4, 64] } }));
  return { model, data };
}

test("auto's winner other than mse is judged across the halves of its rows too, and written where it holds", async () => {
  const { model, data } = sigmoidTail();
  const prepared = await prepare(model, { rounding: "nearest" });
  await calibrate(prepared, data);
  await release(prepared);
  const { summary } = await convert(prepared);
  assert.notEqual(summary.calibrationAuto?.assignment, "mse", summary.calibrationAuto?.why);
  assert.match(summary.calibrationAuto!.why, /, on the first 16 calibration row\(s\); judged across the halves of those rows \(each half's ranges on the other half\): per row: mean \+[\d.]+ dB, lower bound [+−][\d.]+ dB; pooled \+[\d.]+ dB, lower bound [+−][\d.]+ dB$/);
  for (const c of Object.values(summary.calibrationChoices ?? {})) assert.match(c.why, /judged across the halves of those rows/);
});

test("a winner whose ranges from one half read worse than mse's on the other half is not written: mse's ranges, and the summary says why", async () => {
  // The same model and rows; each half's ranges for the winner are replaced by a range that clips nearly everything
  // (what ranges fitted to rows unlike the others do on them), so across halves it loses to mse.
  const { model, data } = sigmoidTail();
  const original = Calibrator.prototype.halves;
  const spoiled: string[] = [];
  Calibrator.prototype.halves = async function (this: Calibrator, only) {
    const halves = await original.call(this, only);
    for (const h of halves) {
      for (const [t, c] of h.candidates) {
        if (only) c.set(only, { min: -0.01, max: 0.01 });
        else h.ranges.set(t, { min: -0.01, max: 0.01 });
        spoiled.push(t);
      }
    }
    return halves;
  };
  let prepared;
  try {
    prepared = await prepare(model, { rounding: "nearest" });
    await calibrate(prepared, data);
    await release(prepared);
  } finally {
    Calibrator.prototype.halves = original;
  }
  assert.ok(spoiled.length > 0, "halves() was not called: step 3 kept mse");
  const { summary } = await convert(prepared);
  assert.equal(summary.calibrationAuto?.assignment, "mse", summary.calibrationAuto?.why);
  assert.match(summary.calibrationAuto!.why, /^mse's ranges kept: (the per-tensor choices|\w+ for every tensor): .*, on the first 16 calibration row\(s\), but not when judged across the halves of those rows \(each half's ranges on the other half\): per row: mean −[\d.]+ dB, lower bound −[\d.]+ dB; pooled −[\d.]+ dB, lower bound −[\d.]+ dB; --method mse skips this measurement$/);
  for (const [t, c] of prepared.choices) assert.equal(c.method, "mse", `${t}: ${c.why}`);
});
