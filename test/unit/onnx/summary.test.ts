import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DataType, attr, makeTensor } from "../../../engine/onnx";
import { formatSummary, summarize } from "../../../engine/onnx/summary";
import { intermediateShapes } from "../../../engine/runtime/shapes";
import { run as inspect } from "../../../cli/inspect";
import { int4QuantDequant, smallMlp, withIf } from "./helpers";

test("summarize: inputs, outputs, op histogram, parameters per dtype, opsets", () => {
  const m = smallMlp();
  m.graph.initializer.push(makeTensor("q", DataType.INT4, [5], [1, 2, 3, 4, 5]));
  const s = summarize(m);
  assert.deepEqual(s.inputs, [{ name: "x", dtype: "float", shape: ["batch", 4] }]);
  assert.deepEqual(s.outputs, [{ name: "y", dtype: "float", shape: ["batch", 3] }]);
  assert.deepEqual(s.ops, { Add: 1, Constant: 1, MatMul: 1, Mul: 1, Relu: 1 });
  assert.deepEqual(s.parameters.byDtype, { float: { tensors: 3, elements: 18, bytes: 72 }, int4: { tensors: 1, elements: 5, bytes: 3 } });
  assert.equal(s.parameters.elements, 23);
  assert.deepEqual(s.opsets, [{ domain: "ai.onnx", version: 17 }]);
  assert.match(formatSummary(s), /Parameters: 23 \(75 B\)/);
  const ifs = summarize(withIf());
  assert.deepEqual(ifs.ops, { Add: 1, If: 1, Sub: 1 });
  assert.equal(ifs.subgraphs, 2);
});

test("intermediateShapes runs the model and marks dimensions that follow a symbolic input", async () => {
  const shapes = await intermediateShapes(smallMlp());
  assert.deepEqual(
    shapes.map((s) => [s.name, s.op, s.dtype, s.shape]),
    [
      ["h", "MatMul", "float32", ["batch", 3]],
      ["z", "Add", "float32", ["batch", 3]],
      ["k", "Constant", "float32", [3]],
      ["z2", "Mul", "float32", ["batch", 3]],
      ["y", "Relu", "float32", ["batch", 3]],
    ],
  );
  const fixed = await intermediateShapes(smallMlp(), { dims: { batch: 4 } });
  assert.deepEqual(fixed[0]!.shape, ["batch", 3]);
});

test("intermediateShapes does not fetch int4 tensors (which would abort Node) and says why", async () => {
  const shapes = await intermediateShapes(int4QuantDequant());
  assert.deepEqual(shapes.map((s) => [s.name, s.dtype, s.shape, s.note]), [
    ["q", "int4", undefined, "onnxruntime-node cannot return int4 tensors"],
    ["y", "float32", [4], undefined],
  ]);
  void attr;
});

test("ptq inspect prints text and JSON; a bad file exits 1 with the file named", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-inspect-"));
  let out = "";
  let err = "";
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s) };
  try {
    const file = path.join(dir, "m.onnx");
    await smallMlp().save(file);
    assert.equal(await inspect([file], io), 0);
    assert.match(out, /Inputs:\n  x: float \[batch, 4\]/);
    assert.match(out, /Mul +float32 +\[batch, 3\] +z2\n/);
    out = "";
    assert.equal(await inspect([file, "--json", "--no-shapes"], io), 0);
    const j = JSON.parse(out);
    assert.equal(j.nodes, 5);
    assert.equal(j.intermediateShapes, undefined);
    assert.equal(await inspect([path.join(dir, "nope.onnx")], io), 1);
    assert.match(err, /nope\.onnx: cannot read the model file/);
    assert.equal(await inspect([], io), 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
