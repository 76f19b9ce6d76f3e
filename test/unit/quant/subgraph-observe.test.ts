// Tensors computed inside If/Loop bodies can be observed: exposeBodyTensors threads them out to the main graph,
// where onnxruntime returns them (it cannot return a body's value directly). This is what calibrating inside bodies
// needs (docs/subgraphs.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode, makeValueInfo } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { exposeBodyTensors } from "../../../engine/quant/subgraph-observe";
import { makeModel, randomFloats, runModel, valueInfo } from "./build";
import { body, matmul } from "./subgraph-check";

const F = DataType.FLOAT;

/** If(cond) { t1 = x·W; If(cond2) { t2 = t1·W2 } else { Relu(t1) } } else { Neg(x·W) }, with a Shape (int64) in the nested branch. */
function nestedIf() {
  const then2 = body("then2", [makeNode("MatMul", ["t1", "W2"], ["t2"]), makeNode("Shape", ["t2"], ["t2_shape"])], [valueInfo("t2", F, [2, 4])], [makeTensor("W2", F, [4, 4], randomFloats(16, 2))]);
  const else2 = body("else2", [makeNode("Relu", ["t1"], ["t3"])], [valueInfo("t3", F, [2, 4])]);
  const thenB = body("then", [makeNode("MatMul", ["x", "W"], ["t1"]), makeNode("If", ["cond2"], ["then_out"], { name: "if2", attributes: [attr.graph("then_branch", then2), attr.graph("else_branch", else2)] })], [valueInfo("then_out", F, [2, 4])]);
  const elseB = body("else", [makeNode("MatMul", ["x", "W"], ["e1"]), makeNode("Neg", ["e1"], ["else_out"])], [valueInfo("else_out", F, [2, 4])]);
  return makeModel(
    [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", thenB), attr.graph("else_branch", elseB)] })],
    [valueInfo("x", F, [2, 3]), valueInfo("cond", DataType.BOOL, []), valueInfo("cond2", DataType.BOOL, [])],
    [valueInfo("y", F, [2, 4])],
    [makeTensor("W", F, [3, 4], randomFloats(12, 1))],
  );
}

test("If bodies: tensors one and two levels deep come out as main-graph values; a branch not taken gives an empty tensor", async () => {
  const proto = nestedIf();
  const { model, outputs } = exposeBodyTensors(Model.fromProto(proto), ["t1", "t2", "t2_shape", "e1", "x"]);
  assert.ok(!outputs.has("x"), "main-graph tensors are left to the calibrator as they are");
  assert.deepEqual([...outputs.keys()].sort(), ["e1", "t1", "t2", "t2_shape"]);
  model.graph.output.push(...[...outputs.values()].map((v) => makeValueInfo(v, F)));
  const x = randomFloats(6, 3);
  const w = randomFloats(12, 1);
  const t1 = matmul(x, w, 2, 3, 4);
  const run = (c1: boolean, c2: boolean) =>
    runModel(model.proto, { x: new ort.Tensor("float32", x, [2, 3]), cond: new ort.Tensor("bool", [c1], []), cond2: new ort.Tensor("bool", [c2], []) }, "disabled");
  const both = await run(true, true);
  const close = (a: ArrayLike<number>, b: ArrayLike<number>) => assert.ok(a.length === b.length && Array.from(a).every((v, i) => Math.abs(v - b[i]!) < 1e-5), `${Array.from(a)} vs ${Array.from(b)}`);
  close(both[outputs.get("t1")!]!.data as Float32Array, t1);
  close(both[outputs.get("t2")!]!.data as Float32Array, both.y!.data as Float32Array);
  close(both[outputs.get("t2_shape")!]!.data as Float32Array, [2, 4]);
  assert.equal((both[outputs.get("e1")!]!.data as Float32Array).length, 0, "the else branch did not run");
  const other = await run(false, true);
  close(other[outputs.get("e1")!]!.data as Float32Array, t1);
  assert.equal((other[outputs.get("t2")!]!.data as Float32Array).length, 0);
});

test("Loop body: a computed tensor and the carried state come out stacked over the iterations", async () => {
  const loopBody = body(
    "loop_body",
    [makeNode("MatMul", ["h_in", "W"], ["h_mm"]), makeNode("Tanh", ["h_mm"], ["h_out"]), makeNode("Identity", ["cond_in"], ["cond_out"])],
    [valueInfo("cond_out", DataType.BOOL, []), valueInfo("h_out", F, [2, 4])],
    [],
    [valueInfo("iter", DataType.INT64, []), valueInfo("cond_in", DataType.BOOL, []), valueInfo("h_in", F, [2, 4])],
  );
  const proto = makeModel(
    [makeNode("Loop", ["M", "", "h0"], ["y"], { name: "loop", attributes: [attr.graph("body", loopBody)] })],
    [valueInfo("h0", F, [2, 4]), valueInfo("M", DataType.INT64, [])],
    [valueInfo("y", F, [2, 4])],
    [makeTensor("W", F, [4, 4], randomFloats(16, 5, -0.5, 0.5))],
  );
  const { model, outputs } = exposeBodyTensors(Model.fromProto(proto), ["h_mm", "h_in"]);
  model.graph.output.push(...[...outputs.values()].map((v) => makeValueInfo(v, F)));
  const h0 = randomFloats(8, 6);
  const got = await runModel(model.proto, { h0: new ort.Tensor("float32", h0, [2, 4]), M: new ort.Tensor("int64", [3n], []) }, "disabled");
  const mm = got[outputs.get("h_mm")!]!;
  const hin = got[outputs.get("h_in")!]!;
  assert.deepEqual(mm.dims, [3, 2, 4]);
  assert.deepEqual(hin.dims, [3, 2, 4]);
  const d = mm.data as Float32Array;
  const y = got.y!.data as Float32Array;
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(Math.tanh(d[16 + i]!) - y[i]!) < 1e-5, "the last iteration's MatMul gives the result");
  assert.deepEqual(Array.from((hin.data as Float32Array).subarray(0, 8)), Array.from(h0), "the first iteration's state is the initial one");
});

test("a name found nowhere is an error naming it", () => {
  assert.throws(() => exposeBodyTensors(Model.fromProto(nestedIf()), ["nope"]), /no tensor named "nope"/);
});
