// calibration.wideActivations: calibrate() measures which activations' 8-bit grid costs the outputs most and
// convert() gives those 16 bits (a user's own override of a tensor wins); 0, the default, changes nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { openData } from "../../../engine/data/readers";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { calibrate, convert, prepare, release, type QConfig } from "../../../engine/quant/index";
import { sqnr } from "../../../engine/quant/math";
import { createSession } from "../../../engine/runtime/session";

const FIX = path.join(__dirname, "..", "..", "fixtures");
const CNN = path.join(FIX, "models", "cnn.onnx");
const DATA = path.join(FIX, "data", "calib", "npy");

async function quantize(config: QConfig) {
  const model = await Model.load(CNN);
  const prepared = await prepare(model, { ...config, calibration: { method: "minmax", ...config.calibration } });
  try {
    await calibrate(prepared, openData(DATA, model.proto, { batchSize: 4 }));
  } finally {
    await release(prepared);
  }
  return convert(prepared);
}

/** Activations read through a 16-bit DequantizeLinear (its output keeps the float tensor's name). */
function sixteenBit(model: Model): string[] {
  const g = model.graph;
  const wide = new Set(g.initializer.filter((t) => t.dataType === DataType.UINT16).map((t) => t.name));
  return g.node.filter((n) => n.opType === "DequantizeLinear" && wide.has(n.input[2]!)).map((n) => n.output[0]!);
}

async function outputSqnr(model: Model): Promise<number> {
  const x = new Float32Array(8 * 28 * 28).map((_, i) => Math.abs(Math.sin(i * 0.37)));
  const feeds = { input: { type: "float32" as const, dims: [8, 1, 28, 28], data: x } };
  const run = async (m: Model) => {
    const s = await createSession(m);
    try {
      return Object.values(await s.run(feeds))[0]!.data as Float32Array;
    } finally {
      await s.dispose();
    }
  };
  return sqnr(await run(await Model.load(CNN)), await run(model));
}

test("wideActivations 0 (the default) widens nothing and says nothing", async () => {
  const { model, summary } = await quantize({});
  assert.equal(summary.wideActivations, undefined);
  assert.deepEqual(sixteenBit(model), []);
});

test("wideActivations gives the measured activations 16 bits in the written model, at most the share asked, and the outputs come closer", async () => {
  const plain = await quantize({});
  const { model, summary } = await quantize({ calibration: { wideActivations: 0.3 } });
  const chosen = summary.wideActivations!.tensors;
  assert.ok(chosen.length > 0, summary.wideActivations!.why);
  assert.match(summary.wideActivations!.why, /of \d+ activations at 16 bits/);
  const total = Number(/of (\d+) activations/.exec(summary.wideActivations!.why)![1]);
  assert.ok(chosen.length <= Math.floor(0.3 * total), `${chosen.length} of ${total}`);
  // A Relu/Clip the rewrite folds into the Q after it hands its output's name to the tensor it read.
  const clampOf = new Map((await Model.load(CNN)).graph.node.filter((n) => n.opType === "Relu").map((n) => [n.input[0]!, n.output[0]!]));
  const written = new Set(sixteenBit(model));
  for (const t of chosen) assert.ok(written.has(t) || written.has(clampOf.get(t) ?? t), `${t} is quantized to uint16 (written: ${[...written].join(", ")})`);
  assert.ok((await outputSqnr(model)) > (await outputSqnr(plain.model)), "16 bits where the measurement says cut the output error");
});

test("a user's override of a chosen tensor wins, and a share outside [0, 1] is refused", async () => {
  const first = await quantize({ calibration: { wideActivations: 0.3 } });
  const t = first.summary.wideActivations!.tensors[0]!;
  const { model } = await quantize({ calibration: { wideActivations: 0.3 }, overrides: { [t]: { type: "uint8" } } });
  assert.ok(!sixteenBit(model).includes(t), `${t} keeps the user's uint8`);
  await assert.rejects(quantize({ calibration: { wideActivations: 1.5 } }), /wideActivations: 1.5 is not a share between 0 and 1/);
});
