// A written QDQ file's Convs that onnxruntime runs in float (no 8-bit Q/DQ on both sides to fuse into QLinearConv)
// read their int8 weight and int32 bias through Cast/Sub/Mul, which it folds into float initializers at load,
// instead of DequantizeLinears it would run every time (engine/quant/unfused-weights). The fixture CNN, quantized
// by the real pipeline and run in onnxruntime-node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { openData } from "../../../engine/data/readers";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { calibrate, convert, prepare, quantizeStatic, release, type QConfig } from "../../../engine/quant/index";
import { decodeUnfusedWeights, encodeDecodedWeights } from "../../../engine/quant/unfused-weights";
import { correctBias, refineRounding } from "../../../engine/recovery/index";
import { weightErrors } from "../../../engine/analysis/quant-error";
import { createSession, type OptimizationLevel } from "../../../engine/runtime/session";

const FIX = path.join(__dirname, "..", "..", "fixtures");
const CNN = path.join(FIX, "models", "cnn.onnx");
const DATA = path.join(FIX, "data", "calib", "npy");
// Widened activations are written as Clips, so the Convs reading them run in float.
const WIDE: QConfig = { calibration: { method: "minmax", wideActivations: 0.3 } };

let reference: Model | undefined;

/** The fixture CNN prepared with `config` and calibrated. */
async function calibrated(config: QConfig) {
  const model = await Model.load(CNN);
  const prepared = await prepare(model, config);
  try {
    await calibrate(prepared, openData(DATA, model.proto, { batchSize: 4 }));
  } finally {
    await release(prepared);
  }
  return prepared;
}

/** convert()'s model; `reference` is set to the float model it was made from (prepare()'s). */
async function converted(config: QConfig) {
  const prepared = await calibrated(config);
  reference = prepared.model;
  return (await convert(prepared)).model;
}

async function outputs(model: Model, optimization: OptimizationLevel, optimizedModelPath?: string): Promise<Float32Array> {
  const x = new Float32Array(4 * 28 * 28).map((_, i) => Math.abs(Math.sin(i * 0.37)));
  const s = await createSession(model, { optimization, threads: 1, optimizedModelPath });
  try {
    return Object.values(await s.run({ input: { type: "float32" as const, dims: [4, 1, 28, 28], data: x } }))[0]!.data as Float32Array;
  } finally {
    await s.dispose();
  }
}

const producerOf = (m: Model, t: string) => m.graph.node.find((n) => n.output.includes(t));

test("the Convs onnxruntime runs in float read their weights and biases through Cast/Mul, the same values bit for bit, folded at load", async () => {
  const dq = await converted(WIDE);
  const decoded = dq.clone();
  const readers = (m: Model, t: string) => m.graph.node.filter((n) => n.input.includes(t));
  // onnxruntime fuses DQ → Conv → Q: a Conv with a DequantizeLinear input and one QuantizeLinear after it.
  const fuses = (m: Model, conv: (typeof m.graph.node)[number]) =>
    producerOf(m, conv.input[0]!)?.opType === "DequantizeLinear" && readers(m, conv.output[0]!).map((n) => n.opType).join() === "QuantizeLinear";
  const floatConvs = dq.graph.node.filter((n) => n.opType === "Conv" && !fuses(dq, n));
  assert.ok(floatConvs.some((n) => producerOf(dq, n.input[0]!)?.opType === "Clip"), "the Clip file has Convs reading a Clip");
  assert.equal(decodeUnfusedWeights(decoded), floatConvs.length);
  for (const conv of decoded.graph.node.filter((n) => n.opType === "Conv")) {
    const float = floatConvs.some((f) => f.name === conv.name);
    for (const input of conv.input.slice(1)) {
      const p = producerOf(decoded, input)!;
      assert.equal(p.opType, float ? "Mul" : "DequantizeLinear", `${conv.name} reads ${input}`);
      if (!float) continue;
      // uint8 weights (U8U8, zero point 128) subtract it: Cast → Sub → Mul.
      let cast = producerOf(decoded, p.input[0]!)!;
      if (cast.opType === "Sub") cast = producerOf(decoded, cast.input[0]!)!;
      assert.equal(cast.opType, "Cast");
      const codes = decoded.graph.initializer.find((t) => t.name === cast.input[0])!;
      assert.ok([DataType.INT8, DataType.UINT8, DataType.INT32].includes(codes.dataType), `${conv.name}: integer codes`);
    }
  }
  // The fused Convs keep their DequantizeLinears: a DQ input and one Q after them.
  const dqCount = (m: Model) => m.graph.node.filter((n) => n.opType === "DequantizeLinear").length;
  assert.ok(dqCount(decoded) > 0 && dqCount(decoded) < dqCount(dq));
  const read = new Set(decoded.graph.node.flatMap((n) => n.input));
  assert.deepEqual(decoded.graph.initializer.filter((t) => !read.has(t.name)).map((t) => t.name), [], "the replaced scales and zero points are gone");

  assert.deepEqual(await outputs(decoded, "disabled"), await outputs(dq, "disabled"), "the same values as the DequantizeLinears'");
  // The error analysis of a written file finds the decoded weights and biases as it finds dequantized ones.
  const byTensor = (m: Model) => Object.fromEntries(weightErrors(reference!, m).map((e) => [e.tensor, e]));
  assert.ok(Object.keys(byTensor(dq)).length >= 2 * floatConvs.length);
  assert.deepEqual(byTensor(decoded), byTensor(dq));
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-unfused-"));
  try {
    const file = path.join(dir, "basic.onnx");
    const folded = await outputs(decoded, "basic", file);
    assert.deepEqual(folded, await outputs(dq, "basic"), "and at 'basic'");
    const opt = Model.fromBytes(readFileSync(file));
    const inits = new Set(opt.graph.initializer.map((t) => t.name));
    for (const f of floatConvs) {
      const conv = opt.graph.node.find((n) => n.name === f.name)!;
      assert.ok(conv.input.slice(1).every((i) => inits.has(i)), `${f.name}: onnxruntime folded its weight and bias into initializers`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a file whose Convs all fuse is left as it is; quantizeStatic writes the decode and says so", async () => {
  const plain = await converted({ calibration: { method: "minmax" } });
  const before = plain.toBytes();
  assert.equal(decodeUnfusedWeights(plain), 0);
  assert.deepEqual(plain.toBytes(), before);

  const dir = mkdtempSync(path.join(tmpdir(), "ptq-unfused-"));
  try {
    const out = path.join(dir, "cnn.int8.onnx");
    const model = await Model.load(CNN);
    const summary = await quantizeStatic(model, out, openData(DATA, model.proto, { batchSize: 4 }), WIDE);
    assert.ok(summary.warnings.some((w) => /Conv\/ConvTranspose node\(s\) that onnxruntime runs in float .* read their int8 weights through Cast\/Mul/.test(w)), summary.warnings.join("\n"));
    const written = Model.loadSync(out);
    const codes = new Set(written.graph.initializer.filter((t) => t.dataType === DataType.INT8 || t.dataType === DataType.UINT8).map((t) => t.name));
    assert.ok(written.graph.node.some((n) => n.opType === "Cast" && codes.has(n.input[0]!)), "the file holds the decode");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a Conv between 16-bit Q/DQ (--wide-form qdq) is not fused either: its weights are decoded, the same outputs", async () => {
  const dq = await converted({ calibration: { method: "minmax", wideActivations: 0.3, wideForm: "qdq" } });
  const decoded = dq.clone();
  const n = decodeUnfusedWeights(decoded);
  assert.ok(n >= 1, `${n} decoded`);
  const sixteen = new Set(dq.graph.initializer.filter((t) => t.dataType === DataType.UINT16).map((t) => t.name));
  const convs = decoded.graph.node.filter((c) => c.opType === "Conv" && producerOf(decoded, c.input[1]!)?.opType === "Mul");
  assert.ok(
    convs.some((c) => sixteen.has(producerOf(decoded, c.input[0]!)?.input[2] ?? "")),
    "one of them reads a 16-bit DequantizeLinear",
  );
  assert.deepEqual(await outputs(decoded, "disabled"), await outputs(dq, "disabled"));
});

test("a decoded file reads back as its DequantizeLinears: bias correction and learned rounding give the decoded form of what they give on convert()'s", async () => {
  const dq = await converted(WIDE);
  const float = reference!;
  const decoded = dq.clone();
  const n = decodeUnfusedWeights(decoded);
  assert.ok(n >= 1);
  const encoded = decoded.clone();
  // Each decoded Conv's weight, and its bias where it has one.
  const decodes = decoded.graph.node.filter((x) => x.opType === "Mul" && x.output[0]!.endsWith("_DequantizeLinear_Output")).length;
  assert.ok(decodes >= n);
  assert.equal(encodeDecodedWeights(encoded), decodes);
  assert.ok(!encoded.graph.node.some((x) => x.opType === "Cast"), "no decode left");
  const read = new Set(encoded.graph.node.flatMap((x) => x.input));
  assert.deepEqual(encoded.graph.initializer.filter((t) => !read.has(t.name)).map((t) => t.name), [], "the float copies are gone");
  for (const conv of encoded.graph.node.filter((x) => x.opType === "Conv")) {
    for (const input of conv.input.slice(1)) assert.equal(producerOf(encoded, input)?.opType, "DequantizeLinear", `${conv.name} reads ${input}`);
  }
  assert.deepEqual(await outputs(encoded, "disabled"), await outputs(dq, "disabled"));
  // Decoded again, it is the decoded file's twin.
  assert.equal(decodeUnfusedWeights(encoded), n);
  assert.deepEqual(await outputs(encoded, "disabled"), await outputs(decoded, "disabled"));

  const calib = () => openData(DATA, float.proto, { batchSize: 4 });
  const fromDq = await correctBias(float, dq, calib());
  const fromDecoded = await correctBias(float, decoded, calib());
  assert.deepEqual(fromDecoded.report, fromDq.report);
  assert.ok(fromDq.report.corrected.length >= n, `${fromDq.report.corrected.length} corrected`);
  assert.ok(fromDecoded.model.graph.node.some((x) => x.opType === "Cast"), "bias correction writes a decoded model back decoded");
  decodeUnfusedWeights(fromDq.model);
  assert.deepEqual(await outputs(fromDecoded.model, "disabled"), await outputs(fromDq.model, "disabled"));

  const roundDq = await refineRounding(float, dq, calib());
  const roundDecoded = await refineRounding(float, decoded, calib());
  const layers = (r: typeof roundDq) => r.report.layers.map((l) => [l.node, l.afterDb]);
  assert.ok(roundDq.report.layers.length >= n);
  assert.deepEqual(layers(roundDecoded), layers(roundDq));
  decodeUnfusedWeights(roundDq.model);
  assert.deepEqual(await outputs(roundDecoded.model, "disabled"), await outputs(roundDq.model, "disabled"));
});

test("a notebook's convert() (the ptq module's) gives the model quantizeStatic writes: decoded, said in its summary", async () => {
  const api = await import("../../../kernel/api");
  const prepared = await calibrated(WIDE);
  const engine = (await convert(prepared)).model;
  const notebook = await api.convert(prepared);
  const expected = engine.clone();
  assert.ok(decodeUnfusedWeights(expected) >= 1);
  assert.deepEqual(notebook.toBytes(), expected.toBytes());
  assert.ok(notebook.summary.warnings.some((w) => /read their int8 weights through Cast\/Mul/.test(w)), notebook.summary.warnings.join("\n"));
  // What a cell does next with it: correct the biases, and the result is still decoded.
  const { model: fixed, report } = await api.correctBias(prepared.model, notebook, openData(DATA, prepared.model.proto, { batchSize: 4 }));
  assert.ok(report.corrected.length > 0 && fixed.graph.node.some((n) => n.opType === "Cast"));
});
