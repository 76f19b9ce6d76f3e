// calibration.wideActivations: calibrate() measures which activations' 8-bit grid costs the outputs most and
// convert() gives those 16 bits (a user's own override of a tensor wins). Unset (the default) it measures only
// whether the outputs with every activation at 8 bits read below 6 dB, and widens only then; 0 turns that off.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { openData } from "../../../engine/data/readers";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { calibrate, convert, prepare, release, type QConfig } from "../../../engine/quant/index";
import { sqnr } from "../../../engine/quant/math";
import { createSession } from "../../../engine/runtime/session";
import { makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { WIDE_AUTO_BELOW_DB } from "../../../engine/quant/types";
import { makeModel, quantizeTiny, randomFloats, valueInfo } from "./build";

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

test("wideActivations unset (the default) widens nothing where 8 bits read above 6 dB, and says nothing", async () => {
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

/**
 * x[N, 16] ⊙ mask → u → MatMul W → y, where the mask stretches feature 0 by `k` and W reads nothing from it: u's
 * 8-bit grid is set by feature 0, which the outputs ignore, and the other features fall on a step of 2k/255.
 */
function stretched(k: number) {
  const mask = new Float32Array(16).fill(1);
  mask[0] = k;
  const w = randomFloats(16 * 8, 5);
  for (let c = 0; c < 8; c++) w[c] = 0;
  return makeModel(
    [makeNode("Mul", ["x", "mask"], ["u"], { name: "stretch" }), makeNode("MatMul", ["u", "W"], ["y"], { name: "mm" })],
    [valueInfo("x", DataType.FLOAT, ["N", 16])],
    [valueInfo("y", DataType.FLOAT, ["N", 8])],
    [makeTensor("mask", DataType.FLOAT, [16], mask), makeTensor("W", DataType.FLOAT, [16, 8], w)],
  );
}

test("unset, wideActivations widens where the outputs with 8-bit activations read below 6 dB, and 0 turns that off", async () => {
  const auto = await quantizeTiny(stretched(200), { x: [16, 16] });
  const wide = auto.summary.wideActivations;
  assert.ok(wide && wide.tensors.includes("u"), JSON.stringify(wide));
  assert.match(wide!.why, new RegExp(`^automatic \\(8-bit outputs below ${WIDE_AUTO_BELOW_DB} dB; --wide-activations 0 to keep 8 bits\\): \\d+ of \\d+ activations at 16 bits: output SQNR with every activation at 8 bits [\\d.]+ dB`));
  assert.match(wide!.why, /no 16-bit kernels on CPU.*ptq bench/);
  const off = await quantizeTiny(stretched(200), { x: [16, 16] }, { calibration: { wideActivations: 0 } });
  assert.equal(off.summary.wideActivations, undefined);
  assert.ok(auto.sqnr > off.sqnr + 10, `widened ${auto.sqnr.toFixed(1)} dB against 8-bit ${off.sqnr.toFixed(1)} dB`);
  // A mild stretch reads above the trigger: nothing measured further, nothing said.
  const mild = await quantizeTiny(stretched(2), { x: [16, 16] });
  assert.equal(mild.summary.wideActivations, undefined);
});

test("a 16-bit override on a tensor only float nodes read leaves the file's Q/DQ in the standard domain", async () => {
  // As oww-melspectrogram's widened input of its protected MatMul: no Q/DQ is written for it.
  const twoMatMuls = makeModel(
    [makeNode("MatMul", ["x", "W0"], ["u"], { name: "mm0" }), makeNode("MatMul", ["u", "W"], ["y"], { name: "mm" })],
    [valueInfo("x", DataType.FLOAT, ["N", 16])],
    [valueInfo("y", DataType.FLOAT, ["N", 8])],
    [makeTensor("W0", DataType.FLOAT, [16, 16], randomFloats(256, 6)), makeTensor("W", DataType.FLOAT, [16, 8], randomFloats(128, 7))],
  );
  const r = await quantizeTiny(twoMatMuls, { x: [16, 16] }, { overrides: { u: { type: "uint16" } }, exclude: ["mm"], calibration: { wideActivations: 0 } });
  assert.ok(r.summary.quantized.some((n) => n.name === "mm0"), "mm0 is quantized");
  const domains = new Set(r.qdq.graph.node.filter((n) => n.opType.endsWith("QuantizeLinear")).map((n) => n.domain || "ai.onnx"));
  assert.deepEqual([...domains], ["ai.onnx"]);
  assert.ok(!r.summary.warnings.some((w) => /com\.microsoft/.test(w)), r.summary.warnings.join("\n"));
});
