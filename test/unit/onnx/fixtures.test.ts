// The trained fixture models (test/fixtures/models, from the fixtures engineer): opset upgrade and Constant-node
// weights checked against onnxruntime on a fixed input batch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { Model, constantsToInitializers } from "../../../engine/onnx";
import { summarize } from "../../../engine/onnx/summary";
import { upgradeOpset } from "../../../engine/onnx/upgrade";
import { createSession } from "../../../engine/runtime/session";

const dir = path.join(__dirname, "..", "..", "fixtures", "models");
const has = (f: string) => existsSync(path.join(dir, f));
const batch = { input: { data: Float32Array.from({ length: 2 * 784 }, (_, i) => ((i * 37) % 255) / 255), dims: [2, 1, 28, 28] } };

async function logits(m: Model): Promise<Float32Array> {
  const s = await createSession(m, { threads: 1 });
  try {
    return (await s.run(batch)).logits!.data as Float32Array;
  } finally {
    await s.dispose();
  }
}

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-4 * (1 + Math.abs(a[i]!)), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

for (const file of ["cnn.opset9.onnx", "cnn.opset11.onnx"]) {
  test(`${file} upgraded to 13, 21 and 23 gives the same logits`, { skip: !has(file) }, async () => {
    const original = await Model.load(path.join(dir, file));
    const ref = await logits(original);
    for (const target of [13, 21, 23]) {
      const m = original.clone();
      upgradeOpset(m, target);
      assert.equal(m.opset(), target);
      assertClose(ref, await logits(m), `${file} → ${target}`);
    }
  });
}

test("cnn.constants.onnx: weights held in Constant nodes are found and moved to initializers", { skip: !has("cnn.constants.onnx") }, async () => {
  const m = await Model.load(path.join(dir, "cnn.constants.onnx"));
  const before = summarize(m);
  const ref = await logits(m);
  const moved = constantsToInitializers(m.graph);
  assert.equal(moved, before.ops.Constant);
  assert.ok(!m.graph.node.some((n) => n.opType === "Constant"));
  assert.equal(summarize(m).parameters.elements, before.parameters.elements, "same parameters, now as initializers");
  assertClose(ref, await logits(m), "constants → initializers");
});
