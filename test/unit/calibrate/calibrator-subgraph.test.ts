// Calibration inside If/Loop bodies: the calibrator threads body tensors out to the main graph
// (exposeBodyTensors) and reports their ranges under their own names; a branch not taken observes nothing, and a
// tensor no batch reached has no range.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Calibrator } from "../../../engine/calibrate/calibrator";
import type { CalibrationMethod } from "../../../engine/calibrate/types";
import type { Feeds } from "../../../engine/data/feeds";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { makeModel, valueInfo } from "../quant/build";
import { body } from "../quant/subgraph-check";

const F = DataType.FLOAT;

/** y = If(cond) { a = x · 2; Relu(a) } else { b = x · -3; Neg(b) }; cond is an input, so a batch takes one branch. */
function ifModel(): Model {
  const thenB = body("then", [makeNode("Mul", ["x", "two"], ["a"]), makeNode("Relu", ["a"], ["a_out"])], [valueInfo("a_out", F, ["n", 4])]);
  const elseB = body("else", [makeNode("Mul", ["x", "minus3"], ["b"]), makeNode("Neg", ["b"], ["b_out"])], [valueInfo("b_out", F, ["n", 4])]);
  return Model.fromProto(
    makeModel(
      [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", thenB), attr.graph("else_branch", elseB)] })],
      [valueInfo("x", F, ["n", 4]), valueInfo("cond", DataType.BOOL, [])],
      [valueInfo("y", F, ["n", 4])],
      [makeTensor("two", F, [], [2]), makeTensor("minus3", F, [], [-3])],
    ),
  );
}

/** h ← Tanh(h + x) repeated M times (the carried state "h" is a body input, "s" a value the body computes). */
function loopModel(): Model {
  const loopBody = body(
    "loop",
    [makeNode("Add", ["h", "x"], ["s"]), makeNode("Tanh", ["s"], ["h_next"]), makeNode("Identity", ["c_in"], ["c_out"])],
    [valueInfo("c_out", DataType.BOOL, []), valueInfo("h_next", F, [1, 4])],
    [],
    [valueInfo("i", DataType.INT64, []), valueInfo("c_in", DataType.BOOL, []), valueInfo("h", F, [1, 4])],
  );
  return Model.fromProto(
    makeModel(
      [makeNode("Loop", ["M", "", "h0"], ["y"], { name: "loop", attributes: [attr.graph("body", loopBody)] })],
      [valueInfo("x", F, [1, 4]), valueInfo("h0", F, [1, 4]), valueInfo("M", DataType.INT64, [])],
      [valueInfo("y", F, [1, 4])],
    ),
  );
}

const x = (values: number[]) => ({ data: Float32Array.from(values), dims: [values.length / 4, 4] });
const cond = (c: boolean) => ({ data: Uint8Array.of(c ? 1 : 0), dims: [] });

for (const method of ["minmax", "percentile"] as CalibrationMethod[]) {
  test(`${method}: ranges of tensors inside If branches, each from the batches that took its branch`, async () => {
    const warnings: string[] = [];
    const cal = new Calibrator(ifModel(), ["x", "a", "a_out", "b"], { method, percentile: 100, numBins: 64, onWarning: (m) => warnings.push(m) });
    assert.deepEqual([...cal.tensors].sort(), ["a", "a_out", "b", "x"]);
    assert.deepEqual(cal.skipped, []);
    const data: Feeds[] = [
      { x: x([1, -2, 0.5, 3, 0, 1, 1, 1]), cond: cond(true) },
      { x: x([-1, 2, 0.25, 0]), cond: cond(false) },
    ];
    await cal.collect(data);
    const r = cal.ranges();
    const near = (got: { min: number; max: number } | undefined, min: number, max: number, what: string) => {
      assert.ok(got, `${what}: no range`);
      assert.ok(Math.abs(got.min - min) < 0.1 && Math.abs(got.max - max) < 0.1, `${what}: [${got.min}, ${got.max}], expected [${min}, ${max}]`);
    };
    near(r.get("x"), -2, 3, "x");
    near(r.get("a"), -4, 6, "a (then branch, first batch only)");
    near(r.get("a_out"), 0, 6, "a_out");
    near(r.get("b"), -6, 3, "b (else branch, second batch only)");
    assert.deepEqual(warnings, []);
    await cal.dispose();
  });
}

test("a branch no batch took leaves its tensors without a range, and nothing else is disturbed", async () => {
  const cal = new Calibrator(ifModel(), ["x", "a", "b"], { method: "percentile", percentile: 100, numBins: 64 });
  await cal.collect([{ x: x([1, -2, 0.5, 3]), cond: cond(true) }, { x: x([0, 1, 1, 1]), cond: cond(true) }]);
  const r = cal.ranges();
  assert.ok(r.has("x") && r.has("a"));
  assert.equal(r.has("b"), false, "b was never computed");
  assert.equal(cal.histograms().has("b"), false);
  await cal.dispose();
});

test("Loop body: a computed value and the carried state are observed over every iteration", async () => {
  const cal = new Calibrator(loopModel(), ["s", "h"], { method: "minmax" });
  await cal.collect([{ x: x([1, -1, 0.5, 0]), h0: x([0, 0, 0, 0]), M: { data: BigInt64Array.of(3n), dims: [] } }]);
  // Iterations: h = 0 → s = x; h = tanh(x) → s = x + tanh(x); h = tanh(x + tanh(x)) → s = x + that.
  const t = Math.tanh;
  const s = [1, -1, 0.5, 0].flatMap((v) => [v, v + t(v), v + t(v + t(v))]);
  const h = [1, -1, 0.5, 0].flatMap((v) => [0, t(v), t(v + t(v))]);
  const r = cal.ranges();
  assert.ok(Math.abs(r.get("s")!.min - Math.min(...s)) < 1e-5 && Math.abs(r.get("s")!.max - Math.max(...s)) < 1e-5, JSON.stringify(r.get("s")));
  assert.ok(Math.abs(r.get("h")!.min - Math.min(...h)) < 1e-5 && Math.abs(r.get("h")!.max - Math.max(...h)) < 1e-5, JSON.stringify(r.get("h")));
  await cal.dispose();
  assert.throws(() => new Calibrator(loopModel(), ["nope"], { method: "minmax" }), /no tensor named "nope"/);
});

test("a branch no batch takes does not stop small batches from being joined into one run", async () => {
  // cond = ReduceSum(x) > 0, so the batch axis stays free (a scalar input would make the model unsplittable).
  const thenB = body("then", [makeNode("Mul", ["x", "two"], ["a"])], [valueInfo("a", F, ["n", 4])]);
  const elseB = body("else", [makeNode("Mul", ["x", "minus3"], ["b"])], [valueInfo("b", F, ["n", 4])]);
  const model = Model.fromProto(
    makeModel(
      [
        makeNode("ReduceSum", ["x"], ["s"], { attributes: [attr.int("keepdims", 0)] }),
        makeNode("Greater", ["s", "zero"], ["cond"]),
        makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", thenB), attr.graph("else_branch", elseB)] }),
      ],
      [valueInfo("x", F, ["n", 4])],
      [valueInfo("y", F, ["n", 4])],
      [makeTensor("zero", F, [], [0]), makeTensor("two", F, [], [2]), makeTensor("minus3", F, [], [-3])],
    ),
  );
  // Counts the calibrator's session runs (its private observe(), one call per run).
  const proto = Calibrator.prototype as unknown as { observe: (...a: unknown[]) => Promise<number> };
  const observe = proto.observe;
  let runs = 0;
  proto.observe = function (this: unknown, ...a: unknown[]) {
    runs++;
    return observe.apply(this, a);
  };
  try {
    const cal = new Calibrator(model, ["x", "a", "b"], { method: "percentile", percentile: 100 });
    await cal.collect(Array.from({ length: 64 }, (_, i) => ({ x: x([i, 1, 2, 3]) })));
    assert.ok(runs <= 4, `64 single-row batches ran as ${runs} run(s)`);
    assert.deepEqual([...cal.ranges().keys()].sort(), ["a", "x"]);
    assert.ok(Math.abs(cal.ranges().get("a")!.max - 126) < 1, JSON.stringify(cal.ranges().get("a")));
    await cal.dispose();
  } finally {
    proto.observe = observe;
  }
});
