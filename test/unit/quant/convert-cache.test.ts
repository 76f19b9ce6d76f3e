// convert(prepared, { cache }): what does not change between conversions of one model (weights decoded, their
// parameters, their quantized values) is kept, and the bytes out are the same as a fresh conversion's under every
// configuration, in any order.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { openData } from "../../../engine/data/readers";
import { calibrate, convert, ConvertCache, prepare, release, type PreparedModel, type ResolvedQConfig } from "../../../engine/quant/index";
import { makeModel, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;
const FIX = path.join(__dirname, "..", "..", "fixtures");

const bytes = async (prepared: PreparedModel, config: ResolvedQConfig, cache?: ConvertCache) => Buffer.from((await convert({ ...prepared, config }, { cache })).model.toBytes());

/** Converts under each config in turn with one cache and checks every output against a fresh conversion. */
async function sameAsFresh(prepared: PreparedModel, configs: ResolvedQConfig[]): Promise<ConvertCache> {
  const cache = new ConvertCache();
  for (const [i, config] of configs.entries()) {
    const fresh = await bytes(prepared, config);
    assert.ok((await bytes(prepared, config, cache)).equals(fresh), `configuration ${i}: the cached conversion differs from a fresh one`);
  }
  return cache;
}

test("the cnn fixture: cached conversions equal fresh ones with nodes excluded, 16-bit activations, and back", async () => {
  const model = await Model.load(path.join(FIX, "models", "cnn.onnx"));
  const prepared = await prepare(model);
  const data = openData(path.join(FIX, "data", "calib", "calib.npz"), model.proto, { batchSize: 32 });
  await calibrate(prepared, (async function* () {
    let n = 0;
    for await (const b of data) if (n++ < 2) yield b;
  })());
  await release(prepared);
  const base = prepared.config;
  const { summary } = await convert(prepared);
  const [first, second] = summary.quantized.filter((q) => q.opType === "Conv" || q.opType === "Gemm" || q.opType === "MatMul");
  assert.ok(first && second, "the fixture has two weighted quantized nodes");
  const input = first.tensors.find((t) => t.type !== "int32" && !t.perChannel)!.name;
  const cache = await sameAsFresh(prepared, [
    base,
    { ...base, exclude: [first.name] },
    { ...base, overrides: { ...base.overrides, [input]: { type: "int16" } } },
    { ...base, exclude: [second.name] },
    base,
  ]);
  assert.ok(cache.hits > 0, "later conversions reuse the quantized weights");
});

test("a bias that widens its weight's scale does not change the cached parameters of later conversions", async () => {
  // One Conv whose bias is too large for int32 at its input's tiny scale: the weight scale is widened for it.
  // Converting with the Conv's input at 16 bits (another input scale, another widening) and then at 8 bits again
  // must give what a fresh conversion gives each time.
  const w = randomFloats(72, 1, -1e-6, 1e-6);
  const m = Model.fromProto(
    makeModel(
      [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] })],
      [valueInfo("x", F, [1, 2, 4, 4])],
      [valueInfo("y", F, [1, 4, 4, 4])],
      [makeTensor("W", F, [4, 2, 3, 3], w), makeTensor("B", F, [4], Float32Array.of(3e3, -2e3, 1e3, 5e2))],
      13,
    ),
  );
  const prepared = await prepare(m, {}, { optimize: false });
  await calibrate(prepared, [{ x: { data: randomFloats(32, 2, -1e-4, 1e-4), dims: [1, 2, 4, 4], type: "float32" } }]);
  const base = prepared.config;
  const first = await convert(prepared);
  assert.deepEqual(first.summary.biasOverflow, ["B"], "the bias widens the weight's scale");
  await sameAsFresh(prepared, [base, { ...base, overrides: { x: { type: "int16" } } }, base]);
});

test("a cache serves one model: another prepared model's conversion is refused with what to do", async () => {
  const model = await Model.load(path.join(FIX, "models", "cnn.onnx"));
  const calib = openData(path.join(FIX, "data", "calib", "calib.npz"), model.proto, { batchSize: 32 });
  const batches = [];
  for await (const b of calib) if (batches.push(b) >= 1) break;
  const [a, b] = [await prepare(model), await prepare(model)];
  for (const p of [a, b]) await calibrate(p, batches);
  const cache = new ConvertCache();
  await convert(a, { cache });
  await assert.rejects(convert(b, { cache }), /another model.*one cache per PreparedModel/);
  for (const p of [a, b]) await release(p);
});
