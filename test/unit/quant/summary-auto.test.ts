// calibration.method "auto" says what it chose: the conversion's summary carries the method per activation and why.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { takeBatches } from "../../../engine/analysis/analyze";
import { readNpyFolder } from "../../../engine/data/readers";
import { Model } from "../../../engine/onnx/model";
import { calibrate, convert, prepare, release } from "../../../engine/quant/index";

const FIX = path.join(import.meta.dirname, "../../fixtures");

test("auto (the default) says what it chose in the summary (and a fixed method leaves none)", async () => {
  const model = await Model.load(path.join(FIX, "models", "cnn.onnx"));
  const data = await takeBatches(readNpyFolder(path.join(FIX, "data", "calib", "npy"), model.proto, { batchSize: 8 }), 4);
  const auto = await prepare(model);
  await calibrate(auto, data);
  await release(auto);
  const { summary } = await convert(auto);
  const choices = Object.entries(summary.calibrationChoices ?? {});
  assert.ok(choices.length > 0);
  for (const [tensor, c] of choices) {
    assert.ok(["mse", "entropy", "percentile", "minmax"].includes(c.method), `${tensor}: ${c.method}`);
    assert.ok(c.why.length > 10, `${tensor}: why "${c.why}"`);
  }
  const mse = await prepare(model, { calibration: { method: "mse" } });
  await calibrate(mse, data);
  await release(mse);
  assert.equal((await convert(mse)).summary.calibrationChoices, undefined);
});
