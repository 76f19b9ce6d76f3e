import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "onnx-buf";
import { DataType, Model, attr, attrInts, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, readTensor } from "../../../engine/onnx";
import { upgradeOpset } from "../../../engine/onnx/upgrade";
import { createSession } from "../../../engine/runtime/session";
import { ortType, type Feeds, type Tensor } from "../../../engine/runtime/tensors";

const f = (n: number, seed = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed) * 2);
const init = (name: string, dims: number[], data: ArrayLike<number>) => makeTensor(name, DataType.FLOAT, dims, data);

/** Opset 7: attribute forms of Upsample, BatchNormalization(spatial), Clip, Pad, Slice, Unsqueeze, Squeeze, Softmax, Dropout. */
function opset7(): Model {
  const nodes = [
    makeNode("Upsample", ["x"], ["u"], { name: "up", attributes: [attr.floats("scales", [1, 1, 2, 2]), attr.string("mode", "nearest")] }),
    makeNode("BatchNormalization", ["u", "s", "b", "m", "v"], ["bn"], { name: "bn", attributes: [attr.int("spatial", 1)] }),
    makeNode("Clip", ["bn"], ["c"], { name: "clip", attributes: [attr.float("min", -1), attr.float("max", 1.5)] }),
    makeNode("Pad", ["c"], ["p"], { name: "pad", attributes: [attr.ints("pads", [0, 0, 1, 0, 0, 0, 0, 2]), attr.float("value", 0.5)] }),
    makeNode("Slice", ["p"], ["sl"], { name: "slice", attributes: [attr.ints("starts", [1, 0]), attr.ints("ends", [8, 5]), attr.ints("axes", [2, 3])] }),
    makeNode("Unsqueeze", ["sl"], ["us"], { name: "unsq", attributes: [attr.ints("axes", [0])] }),
    makeNode("Squeeze", ["us"], ["sq"], { name: "sq", attributes: [attr.ints("axes", [0])] }),
    makeNode("Softmax", ["sq"], ["sm"], { name: "softmax", attributes: [attr.int("axis", 2)] }),
    makeNode("Dropout", ["sm"], ["y"], { name: "drop", attributes: [attr.float("ratio", 0.3)] }),
  ];
  const g = makeGraph("old7", nodes, [makeValueInfo("x", DataType.FLOAT, [1, 2, 4, 4])], [makeValueInfo("y", DataType.FLOAT, undefined)], {
    initializers: [init("s", [2], [1.5, 0.5]), init("b", [2], [0.1, -0.2]), init("m", [2], [0.3, -0.1]), init("v", [2], [2, 0.5])],
  });
  return Model.fromProto(makeModel(g, { opsets: { "": 7 } }));
}

/** Opset 9: Upsample with a scales input (linear), TopK(k), Split(split), ReduceSum/ReduceMean(axes). */
function opset9(): Model {
  const nodes = [
    makeNode("Upsample", ["x", "scales"], ["u"], { name: "up", attributes: [attr.string("mode", "linear")] }),
    makeNode("Split", ["u"], ["a", "b"], { name: "split", attributes: [attr.int("axis", 3), attr.ints("split", [3, 5])] }),
    makeNode("ReduceSum", ["a"], ["ra"], { name: "rsum", attributes: [attr.ints("axes", [3]), attr.int("keepdims", 0)] }),
    makeNode("ReduceMean", ["b"], ["rb"], { name: "rmean", attributes: [attr.ints("axes", [1, 3]), attr.int("keepdims", 1)] }),
    makeNode("Flatten", ["rb"], ["fb"], { name: "flat", attributes: [attr.int("axis", 0)] }),
    makeNode("TopK", ["fb"], ["vals", "idx"], { name: "topk", attributes: [attr.int("k", 3), attr.int("axis", 1)] }),
  ];
  const g = makeGraph(
    "old9",
    nodes,
    [makeValueInfo("x", DataType.FLOAT, [1, 2, 4, 4])],
    [makeValueInfo("ra", DataType.FLOAT, undefined), makeValueInfo("vals", DataType.FLOAT, undefined), makeValueInfo("idx", DataType.INT64, undefined)],
    { initializers: [init("scales", [4], [1, 1, 1.5, 2])] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 9 } }));
}

/** Opset 10 Resize (two inputs) and opset 11 LogSoftmax with a declared rank, ReduceMax(axes). */
function opset10(): Model {
  const nodes = [
    makeNode("Resize", ["x", "scales"], ["r"], { name: "resize", attributes: [attr.string("mode", "nearest")] }),
    makeNode("ReduceMax", ["r"], ["m"], { name: "rmax", attributes: [attr.ints("axes", [1]), attr.int("keepdims", 1)] }),
    makeNode("LogSoftmax", ["m"], ["y"], { name: "lsm", attributes: [attr.int("axis", 1)] }),
  ];
  const g = makeGraph("old10", nodes, [makeValueInfo("x", DataType.FLOAT, [1, 2, 4, 4])], [makeValueInfo("y", DataType.FLOAT, undefined)], {
    initializers: [init("scales", [4], [1, 1, 2, 0.5])],
  });
  return Model.fromProto(makeModel(g, { opsets: { "": 10 } }));
}

async function outputs(m: Model, feeds: Feeds): Promise<Record<string, number[]>> {
  const s = await createSession(m, { optimization: "disabled", threads: 1 });
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v.data as ArrayLike<number | bigint>, Number)]));
  } finally {
    await s.dispose();
  }
}

function assertClose(a: Record<string, number[]>, b: Record<string, number[]>, what: string): void {
  assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort(), what);
  for (const k of Object.keys(a)) {
    assert.equal(b[k]!.length, a[k]!.length, `${what}: ${k} length`);
    for (let i = 0; i < a[k]!.length; i++) assert.ok(Math.abs(a[k]![i]! - b[k]![i]!) <= 1e-5 * (1 + Math.abs(a[k]![i]!)), `${what}: ${k}[${i}] ${a[k]![i]} vs ${b[k]![i]}`);
  }
}

for (const [name, build] of [["opset 7", opset7], ["opset 9", opset9], ["opset 10", opset10]] as const) {
  test(`${name} model upgraded to 13, 21 and 23 gives the same outputs in onnxruntime`, async () => {
    const original = build();
    const feeds = { x: { data: f(32), dims: [1, 2, 4, 4] } };
    const ref = await outputs(original, feeds);
    for (const target of [13, 21, 23]) {
      const m = original.clone();
      upgradeOpset(m, target);
      assert.equal(m.opset(), target);
      assertClose(ref, await outputs(m, feeds), `${name} → ${target}`);
      assert.ok(!m.graph.node.some((n) => n.opType === "Upsample"), "Upsample became Resize");
      for (const n of m.graph.node) {
        if (target >= 18 || !n.opType.startsWith("Reduce")) assert.equal(attrInts(n, "axes"), undefined, `${n.name}: axes moved to an input`);
      }
    }
    assert.equal(original.opset(), build().opset(), "clone-then-upgrade leaves the original alone");
  });
}

test("upgrade refuses downgrades and unknown targets, naming the file", () => {
  const m = opset9();
  assert.throws(() => upgradeOpset(m, 8), /cannot downgrade from opset 9 to 8/);
  assert.throws(() => upgradeOpset(m, 99), /newer than this upgrader knows/);
});

/** Conformance models from libonnx-testdata (opsets 9–15), with their recorded inputs. */
test("libonnx-testdata models upgraded to 21 and 23 reproduce onnxruntime's outputs", { skip: existsSync("/usr/share/libonnx-testdata/data/node") ? false : "/usr/share/libonnx-testdata missing: apt-get install libonnx-testdata" }, async () => {
  const root = "/usr/share/libonnx-testdata/data/node";
  const cases = ["test_softmax_axis_0", "test_softmax_axis_1", "test_softmax_default_axis", "test_logsoftmax_axis_1", "test_slice", "test_clip", "test_split_equal_parts_2d", "test_squeeze", "test_unsqueeze_axis_1", "test_reduce_mean_do_not_keepdims_random", "test_reduce_sum_keepdims_random", "test_top_k", "test_upsample_nearest", "test_batchnorm_example", "test_dropout_default_old", "test_reduce_max_keepdims_random", "test_reduce_l2_keepdims_random", "test_reduce_log_sum_exp_keepdims_random", "test_reduce_sum_square_do_not_keepdims_random"];
  let tested = 0;
  for (const c of cases) {
    const file = path.join(root, c, "model.onnx");
    if (!existsSync(file)) continue;
    const original = await Model.load(file);
    if ((original.opset() ?? 99) >= 21) continue;
    const feeds: Record<string, Tensor> = {};
    const inits = new Set(original.graph.initializer.map((t) => t.name));
    original.graph.input.filter((v) => !inits.has(v.name)).forEach((v, i) => {
      const t = readTensor(fromBinary(TensorProtoSchema, readFileSync(path.join(root, c, "test_data_set_0", `input_${i}.pb`))));
      feeds[v.name] = { data: t.data, dims: t.dims, type: ortType(t.dtype) };
    });
    const ref = await outputs(original, feeds);
    for (const target of [21, 23]) {
      const m = original.clone();
      upgradeOpset(m, target);
      assertClose(ref, await outputs(m, feeds), `${c} (opset ${original.opset()}) → ${target}`);
    }
    tested++;
  }
  assert.ok(tested >= 10, `only ${tested} conformance models found`);
});
