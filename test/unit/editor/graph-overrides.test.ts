import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { openData } from "../../../engine/data/readers";
import { Model } from "../../../engine/onnx/model";
import { calibrate, convert, prepare, release } from "../../../engine/quant/index";
import { jobQConfig, readJob } from "../../../engine/quant/options";
import { modelGraph, nodesByName } from "../../../src/editor/graphModel";
import { activationTensors, addExclude, addSixteenBit, excludedNames, overridePath, parseOverrides, sixteenBitNodes } from "../../../src/editor/graphOverrides";
import { quantStateOfModel } from "../../../src/views/quantStateModel";
import { mlp } from "./build-model";

const FIX = path.join(__dirname, "..", "..", "fixtures");


test("the override file sits beside the model: cnn.onnx → cnn.ptq.json", () => {
  assert.equal(overridePath("/w/models/cnn.onnx"), "/w/models/cnn.ptq.json");
  assert.equal(overridePath("/w/models/cnn.int8.ONNX"), "/w/models/cnn.int8.ptq.json");
  assert.equal(overridePath("/w/models/model"), "/w/models/model.ptq.json");
});

test("keep in float adds the node to exclude once and keeps the file's other keys", () => {
  const first = addExclude(undefined, "/conv1/Conv", "f.json");
  assert.deepEqual(JSON.parse(first.text), { exclude: ["/conv1/Conv"] });
  const old = JSON.stringify({ weightType: "int8", exclude: ["a"], calibration: { method: "mse" } });
  const next = addExclude(old, 'b"<script>', "f.json");
  assert.deepEqual(JSON.parse(next.text), { weightType: "int8", calibration: { method: "mse" }, exclude: ["a", 'b"<script>'] });
  assert.deepEqual(addExclude(next.text, "a", "f.json").overrides.exclude, ["a", 'b"<script>']);
  assert.deepEqual(parseOverrides("  ", "f.json"), { exclude: [], overrides: {}, rest: {} });
});

test("regex selectors written by hand (ptq quantize --config's format) are kept; only exact names are marked", () => {
  const next = addExclude(JSON.stringify({ exclude: [{ regex: "^/attn/" }, "a"] }), "b", "f.json");
  assert.deepEqual(JSON.parse(next.text), { exclude: [{ regex: "^/attn/" }, "a", "b"] });
  assert.deepEqual(excludedNames(parseOverrides(next.text, "f.json")), ["a", "b"]);
});

test("a broken override file is refused with its name and what to do, never overwritten", () => {
  assert.throws(() => addExclude("{not json", "n", "/w/cnn.ptq.json"), /\/w\/cnn\.ptq\.json is not valid JSON .*fix or delete it/);
  assert.throws(() => addExclude("[1]", "n", "/w/cnn.ptq.json"), /\/w\/cnn\.ptq\.json must hold a JSON object/);
  assert.throws(() => addExclude('{"exclude": "conv"}', "n", "/w/cnn.ptq.json"), /"exclude" must be a list of node names/);
  assert.throws(() => addExclude('{"exclude": [1]}', "n", "/w/cnn.ptq.json"), /"exclude" must be a list/);
  assert.throws(() => addExclude('{"exclude": [{"re": "x"}]}', "n", "/w/cnn.ptq.json"), /\{"regex": "…"\} selectors/);
});

test("16-bit sets uint16 on the node's activations (what it reads from nodes or inputs, what it writes), keeping every other key", () => {
  const nodes = nodesByName(modelGraph(mlp()).graph);
  const matmul = nodes.get("/fc1/MatMul")!;
  assert.deepEqual(activationTensors(matmul), ["input", "/fc1/MatMul_output_0"], "the weight is not an activation");
  const old = JSON.stringify({ weightType: "int8", exclude: ["a"], overrides: { input: { range: { min: -1, max: 1 } }, other: { keepFloat: true } } });
  const next = addSixteenBit(old, activationTensors(matmul), "f.json");
  assert.deepEqual(JSON.parse(next.text), {
    weightType: "int8",
    overrides: { input: { range: { min: -1, max: 1 }, type: "uint16" }, other: { keepFloat: true }, "/fc1/MatMul_output_0": { type: "uint16" } },
    exclude: ["a"],
  });
  assert.deepEqual(sixteenBitNodes(nodes.values(), next.overrides), ["/fc1/MatMul"]);
  assert.deepEqual(sixteenBitNodes(nodes.values(), parseOverrides(old, "f.json")), []);
  // A tensor named __proto__ is a key of the file like any other, not the object's prototype.
  const proto = addSixteenBit(undefined, ["__proto__"], "f.json");
  assert.deepEqual(Object.keys(proto.overrides.overrides), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(proto.overrides.overrides), Object.prototype);
  assert.match(proto.text, /"__proto__": \{\s*"type": "uint16"/);
});

test("an override file whose overrides are not objects by tensor name is refused with its name", () => {
  assert.throws(() => addSixteenBit('{"overrides": [1]}', ["t"], "/w/cnn.ptq.json"), /\/w\/cnn\.ptq\.json: "overrides" must map tensor names to objects/);
  assert.throws(() => addExclude('{"overrides": {"t": "uint16"}}', "n", "/w/cnn.ptq.json"), /"overrides" must map tensor names/);
});

test("the next quantization reads the 16-bit override: the node's activations are quantized to uint16, the rest to uint8", async () => {
  const file = path.join(FIX, "models", "cnn.onnx");
  const model = await Model.load(file);
  const conv = nodesByName(modelGraph(model.proto).graph).get("/features/features.0/Conv")!;
  const text = addSixteenBit(undefined, activationTensors(conv), "/w/cnn.ptq.json").text;
  // As `ptq quantize --config cnn.ptq.json` reads it.
  const config = jobQConfig(readJob(text, "/w/cnn.ptq.json"));
  const prepared = await prepare(model, { ...config, calibration: { method: "minmax" } });
  try {
    await calibrate(prepared, openData(path.join(FIX, "data", "calib", "npy"), model.proto, { batchSize: 8 }));
  } finally {
    await release(prepared);
  }
  // Read back as the Quantization State view reads a model file: each node input's quantized type.
  const inputs = quantStateOfModel((await convert(prepared)).model.proto).filter((e) => e.role === "input");
  assert.deepEqual(inputs.filter((e) => e.node === conv.name).map((e) => e.type), ["uint16"], "the graph input the Conv reads");
  const others = inputs.filter((e) => e.node !== conv.name).map((e) => e.type);
  assert.ok(others.length >= 6 && others.every((t) => t === "uint8"), `the other activations stay uint8: ${others.join(", ")}`);
});
