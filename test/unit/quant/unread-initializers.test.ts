// Initializers no node reads (tf2onnx's const_fold_opt__ leftovers in BlazeFace and M-LSD) are left out of every
// file we write (engine/quant/preprocess dropUnreadWeights): onnxruntime warns about each one whenever it loads a
// file. Before, the int4 and FP4 files kept them (static and dynamic lost them in onnxruntime's optimization pass,
// but not with `optimize: false`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { GraphProtoSchema } from "onnx-buf";
import { DataType } from "../../../engine/onnx/dtype";
import { forEachGraph } from "../../../engine/onnx/graph";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { prepare } from "../../../engine/quant/index";
import { lowBitModel } from "../../../engine/lowbit/index";
import { makeModel, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;

/**
 * x·W, then an If whose then-branch adds O (a top-level initializer only the branch reads) and holds an unread one,
 * and whose else-branch adds its own; two unread top-level initializers.
 */
function leftovers(): Model {
  const branch = (name: string, reads: string, extra: boolean) =>
    create(GraphProtoSchema, {
      name,
      node: [makeNode("Add", ["m", reads], [`${name}_out`], { name: `${name}_add` })],
      initializer: extra ? [makeTensor(`${name}_unread`, F, [3], [1, 2, 3])] : [makeTensor(`${name}_k`, F, [32], randomFloats(32, 9))],
      output: [valueInfo(`${name}_out`, F, [2, 32])],
    });
  return Model.fromProto(
    makeModel(
      [
        makeNode("MatMul", ["x", "W"], ["m"], { name: "mm" }),
        makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", branch("then", "O", true)), attr.graph("else_branch", branch("else", "else_k", false))] }),
      ],
      [valueInfo("x", F, [2, 64]), valueInfo("cond", DataType.BOOL, [])],
      [valueInfo("y", F, [2, 32])],
      [makeTensor("W", F, [64, 32], randomFloats(64 * 32, 3)), makeTensor("O", F, [32], randomFloats(32, 4)), makeTensor("const_fold_opt__1", F, [4], [1, 2, 3, 4]), makeTensor("const_fold_opt__2", DataType.INT64, [2], [1n, 2n])],
    ),
  );
}

function initializerNames(m: Model): string[] {
  const names: string[] = [];
  forEachGraph(m.graph, (g) => names.push(...g.initializer.map((t) => t.name)));
  return names.sort();
}

test("prepare (static, dynamic) leaves out the initializers no node reads, bodies included, and keeps one only a body reads", async () => {
  const prepared = await prepare(leftovers(), {}, { optimize: false });
  assert.deepEqual(initializerNames(prepared.model), ["O", "W", "else_k"]);
  assert.ok(prepared.warnings.includes("3 initializer(s) that no node reads are left out of the output"), prepared.warnings.join("\n"));
  const clean = await prepare(Model.fromProto(makeModel([makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })], [valueInfo("x", F, [2, 64])], [valueInfo("y", F, [2, 32])], [makeTensor("W", F, [64, 32], randomFloats(64 * 32, 3))])), {}, { optimize: false });
  assert.ok(!clean.warnings.some((w) => /no node reads/.test(w)), clean.warnings.join("\n"));
});

test("the low-bit modes leave them out too, and an initializer the old IR also lists as a graph input stays a weight", () => {
  for (const mode of ["int4", "fp4"] as const) {
    const { model, report } = lowBitModel(leftovers(), { mode });
    const names = initializerNames(model);
    for (const gone of ["const_fold_opt__1", "const_fold_opt__2", "then_unread"]) assert.ok(!names.includes(gone), `${mode}: ${gone} left out: ${names.join(", ")}`);
    assert.ok(names.includes("O"), `${mode}: O is read by the then-branch`);
    assert.ok(report.notes.includes("3 initializer(s) that no node reads are left out of the output"), `${mode}: ${report.notes.join("\n")}`);
  }
  // IR 3: every initializer is also a graph input; taken out of the inputs first, the unread one is then left out.
  const old = leftovers();
  old.proto.irVersion = 3n;
  old.graph.input.push(valueInfo("const_fold_opt__1", F, [4]), valueInfo("W", F, [64, 32]));
  const { model } = lowBitModel(old, { mode: "int4" });
  assert.ok(!initializerNames(model).includes("const_fold_opt__1"));
  assert.deepEqual(model.graph.input.map((v) => v.name), ["x", "cond"]);
});
