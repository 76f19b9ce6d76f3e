import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeGraph, makeModel, makeNode, makeValueInfo } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { augmentModel, locateTensors } from "../../../engine/calibrate/augment";

// x(float) -> Relu -> a; Cast(a, fp16) -> h; Relu(h) -> b (fp16); Constant w (float) -> Mul(a, w) -> c
const model = Model.fromProto(
  makeModel(
    makeGraph(
      "g",
      [
        makeNode("Relu", ["x"], ["a"]),
        makeNode("Cast", ["a"], ["h"], { attributes: [attr.int("to", DataType.FLOAT16)] }),
        makeNode("Relu", ["h"], ["b"]),
        makeNode("Constant", [], ["w"], { attributes: [attr.tensor("value", makeTensor("w", DataType.FLOAT, [1], [2]))] }),
        makeNode("Mul", ["a", "w"], ["c"]),
      ],
      [makeValueInfo("x", DataType.FLOAT, [2])],
      [makeValueInfo("b", DataType.FLOAT16, [2]), makeValueInfo("c", DataType.FLOAT, [2])],
    ),
  ),
);

test("augment: reduces per tensor, casts only tensors not known to be float32, replaces the outputs", () => {
  const { model: aug, outputs } = augmentModel(model, ["a", "b", "c", "w"], true);
  const ops = aug.graph.node.map((n) => n.opType);
  // b is float16 (declared output): the only new Cast. a, c (propagated through Relu/Mul) and w (Constant) are float.
  assert.equal(ops.filter((o) => o === "Cast").length, 2); // the model's own Cast + one for b
  assert.equal(ops.filter((o) => o === "ReduceMin").length, 4);
  assert.deepEqual(aug.graph.output.length, 12);
  assert.equal(outputs.find((o) => o.tensor === "b")!.min, "b__calib_min");
  assert.equal(model.graph.output.length, 2, "the input model is not modified");
  const raw = augmentModel(model, ["x"], false);
  // A graph input cannot be a graph output under the same name: it goes through an Identity.
  assert.deepEqual(raw.model.graph.node.at(-1)!.opType, "Identity");
  assert.deepEqual(raw.outputs, [{ tensor: "x", raw: "x__calib_raw" }]);
});

test("locateTensors sorts names into main graph, subgraph-only and unknown", () => {
  assert.deepEqual(locateTensors(model.graph, ["a", "x", "w", "zz"]), { main: ["a", "x", "w"], inSubgraph: [], unknown: ["zz"] });
});

test("augment with stats: whole tensors plus one output with every tensor's ReduceMin/ReduceMax/ReduceSum", () => {
  const { model: aug, outputs, stats } = augmentModel(model, ["a", "b"], false, { stats: true });
  assert.deepEqual(outputs.map((o) => [o.tensor, o.statsAt, o.min]), [["a", 0, undefined], ["b", 3, undefined]]);
  assert.deepEqual(aug.graph.output.map((o) => o.name), [...outputs.map((o) => o.raw), stats]);
  const concat = aug.graph.node.find((n) => n.output[0] === stats)!;
  assert.equal(concat.opType, "Concat");
  // b's min is the 4th part: ReduceMin over the same float32 tensor that is returned (b through its Cast).
  const reshape = aug.graph.node.find((n) => n.output[0] === concat.input[3])!;
  const reduceMin = aug.graph.node.find((n) => n.output[0] === reshape.input[0])!;
  assert.deepEqual([reshape.opType, reduceMin.opType, reduceMin.input[0]], ["Reshape", "ReduceMin", outputs[1]!.raw]);
});
