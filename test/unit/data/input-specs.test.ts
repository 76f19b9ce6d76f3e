// The one conversion from what a session reports about its inputs to the specs the data readers, checks and
// generators take: scalar inputs ([]: a session reads the file, since onnxruntime gives no dims for a scalar and for
// an unknown rank alike) and inputs of unknown rank (no shape), symbolic and -1
// dims, inputs that cannot be fed from JavaScript, and the batch size a model fixes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkFeeds, DataError, fixedBatchSize, inputSpecsOf } from "../../../engine/data/feeds";
import { makeGraph, makeValueInfo, type Dim } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { DataType } from "../../../engine/onnx/dtype";
import { generateFeeds } from "../../../engine/analysis/feeds";

test("inputSpecsOf: symbolic dims keep their names, -1 is dynamic, [] is a scalar, no shape an unknown rank", () => {
  const specs = inputSpecsOf([
    { name: "x", type: "float32", shape: ["batch", 3, -1] },
    { name: "ids", type: "int64", shape: [2, 5] },
    { name: "t", type: "float32", shape: [] },
    { name: "u", type: "bool", shape: undefined },
  ]);
  assert.deepEqual(specs, [
    { name: "x", elemType: DataType.FLOAT, shape: ["batch", 3, null] },
    { name: "ids", elemType: DataType.INT64, shape: [2, 5] },
    { name: "t", elemType: DataType.FLOAT, shape: [] },
    { name: "u", elemType: DataType.BOOL, shape: undefined },
  ]);
});

test("inputSpecsOf: an input that is no tensor, or of a type JavaScript cannot feed, is refused by name", () => {
  assert.throws(() => inputSpecsOf([{ name: "seq", type: undefined, shape: undefined }]), (e: Error) => e instanceof DataError && /input "seq" is not a tensor, which cannot be fed from JavaScript/.test(e.message));
  assert.throws(() => inputSpecsOf([{ name: "q", type: "float8e4m3fn", shape: [4] }]), /input "q" is float8e4m3fn, which cannot be fed from JavaScript/);
});

test("an input of unknown rank is not refused for its data's shape, a scalar is, a symbolic one keeps its fixed dims", () => {
  const specs = inputSpecsOf([
    { name: "t", type: "float32" },
    { name: "x", type: "float32", shape: ["batch", 3] },
  ]);
  const feeds = { t: { data: new Float32Array(2), dims: [2], type: "float32" }, x: { data: new Float32Array(6), dims: [2, 3], type: "float32" } };
  assert.doesNotThrow(() => checkFeeds(feeds, specs, "batch 0"));
  const wrong = { ...feeds, x: { data: new Float32Array(8), dims: [2, 4], type: "float32" } };
  assert.throws(() => checkFeeds(wrong, specs, "batch 0"), /batch 0: input "x": expected shape \[batch, 3\], got \[2, 4\]/);
  const scalar = inputSpecsOf([{ name: "t", type: "float32", shape: [] }, { name: "x", type: "float32", shape: ["batch", 3] }]);
  assert.throws(() => checkFeeds(feeds, scalar, "batch 0"), /batch 0: input "t": expected shape \[\], got \[2\]/);
});

test("generateFeeds: a rank-0 input gets a scalar, the symbolic first dim the batch, other symbolic dims a shape", () => {
  const feeds = generateFeeds([
    { name: "t", type: "float32", shape: [] },
    { name: "x", type: "float32", shape: ["batch", 3] },
    { name: "ids", type: "int64", shape: [-1, 4] },
  ], 2);
  assert.deepEqual(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [t.type, t.dims, t.data.length]])), {
    t: ["float32", [], 1],
    x: ["float32", [2, 3], 6],
    ids: ["int64", [2, 4], 8],
  });
  assert.throws(() => generateFeeds([{ name: "x", type: "float32", shape: ["batch", "seq"] }], 2), /input "x" has a symbolic dim seq at axis 1; pass its shape/);
  assert.deepEqual(generateFeeds([{ name: "x", type: "float32", shape: ["batch", "seq"] }], 2, 1, { x: [2, 7] }).x!.dims, [2, 7]);
  assert.deepEqual(generateFeeds([{ name: "u", type: "float32" }], 2).u!.dims, [], "an unknown rank: a scalar");
  assert.deepEqual(generateFeeds([{ name: "u", type: "float32" }], 2, 1, { u: [5] }).u!.dims, [5], "a given shape wins");
});

test("fixedBatchSize: the first fed input's first axis when a positive number; symbolic, -1, 0 and weights listed as inputs do not fix it", () => {
  const graph = (first: Dim, weightFirst = false) => {
    const w = makeValueInfo("w", DataType.FLOAT, [16, 3]);
    const x = makeValueInfo("x", DataType.FLOAT, [first, 3]);
    // An IR < 4 model lists its initializers among the graph inputs, here before the input that is fed.
    return makeGraph("g", [], weightFirst ? [w, x] : [x], [], { initializers: [makeTensor("w", DataType.FLOAT, [16, 3], new Float32Array(48))] });
  };
  assert.equal(fixedBatchSize(graph(8)), 8);
  assert.equal(fixedBatchSize(graph(1)), 1);
  assert.equal(fixedBatchSize(graph("N")), undefined);
  assert.equal(fixedBatchSize(graph(-1)), undefined);
  assert.equal(fixedBatchSize(graph(0)), undefined);
  assert.equal(fixedBatchSize(graph("N", true)), undefined, "the weight's 16 rows are not a batch");
  assert.equal(fixedBatchSize(inputSpecsOf([{ name: "x", type: "float32", shape: [-1, 3] }])), undefined);
  assert.equal(fixedBatchSize(inputSpecsOf([{ name: "x", type: "float32", shape: [4, 3] }])), 4);
  assert.equal(fixedBatchSize([]), undefined);
});
