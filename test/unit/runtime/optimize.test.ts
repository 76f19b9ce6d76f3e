import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DataType, Model, attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../../../engine/onnx";
import { optimizeModel } from "../../../engine/runtime/optimize";
import { createSession } from "../../../engine/runtime/session";

/** Conv → BatchNormalization → Relu, with a Constant-node bias: "basic" fuses the BN and folds the Constant. */
function convBn(): Model {
  const w = makeTensor("w", DataType.FLOAT, [2, 1, 3, 3], Array.from({ length: 18 }, (_, i) => ((i % 5) - 2) / 3));
  const k = makeNode("Constant", [], ["cb"], { attributes: [attr.tensor("value", makeTensor("", DataType.FLOAT, [2], [0.1, -0.1]))] });
  const g = makeGraph(
    "convbn",
    [
      k,
      makeNode("Conv", ["x", "w", "cb"], ["c"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
      makeNode("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], { name: "bn" }),
      makeNode("Relu", ["bn"], ["y"], { name: "relu" }),
    ],
    [makeValueInfo("x", DataType.FLOAT, [1, 1, 5, 5])],
    [makeValueInfo("y", DataType.FLOAT, [1, 2, 5, 5])],
    {
      initializers: [
        w,
        makeTensor("s", DataType.FLOAT, [2], [1.5, 0.5]),
        makeTensor("b", DataType.FLOAT, [2], [0.2, -0.3]),
        makeTensor("m", DataType.FLOAT, [2], [0.1, 0.4]),
        makeTensor("v", DataType.FLOAT, [2], [2, 0.25]),
      ],
    },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 17 } }));
}

async function run(m: Model): Promise<Float32Array> {
  const s = await createSession(m, { optimization: "disabled" });
  const out = await s.run({ x: { data: Float32Array.from({ length: 25 }, (_, i) => Math.cos(i)), dims: [1, 1, 5, 5] } });
  await s.dispose();
  return out.y!.data as Float32Array;
}

test("optimizeModel 'basic' fuses Conv+BatchNorm, folds Constant nodes, keeps outputs, writes atomically", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-opt-"));
  try {
    const m = convBn();
    const out = path.join(dir, "opt.onnx");
    const opt = await optimizeModel(m, out);
    assert.deepEqual(opt.graph.node.map((n) => n.opType), ["Conv", "Relu"]);
    const a = await run(m);
    const b = await run(opt);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5);
    assert.deepEqual(readdirSync(dir), ["opt.onnx"]);
    await assert.rejects(optimizeModel(m, out), /opt\.onnx: the file exists/);
    await assert.rejects(optimizeModel(opt, out, "basic", { overwrite: true }), /over its source/);
    await assert.rejects(optimizeModel(m, path.join(dir, "all.onnx"), "all"), /CPU-specific ops/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
