// Old exporters (IR < 4, opset 9 here) list every initializer as a graph input too. The low-bit paths replace a
// weight by its packed form, so the input of the same name must go, or onnxruntime asks the user to feed it and
// the written model is refused ("missing input head.1.weight").
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Model } from "../../../engine/onnx";
import { quantizeLowBit } from "../../../engine/lowbit";
import type { LowBitOptions } from "../../../engine/lowbit";

const FIXTURE = path.join(import.meta.dirname, "../../fixtures/models/cnn.opset9.onnx");

for (const options of [{ mode: "int4" }, { mode: "fp4", format: "nvfp4" }] as LowBitOptions[]) {
  test(`${options.mode} on an opset-9 model whose weights are graph inputs writes a model that runs on the image alone`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ptq-oldir-"));
    try {
      const out = path.join(dir, "out.onnx");
      const report = await quantizeLowBit(FIXTURE, out, options);
      assert.ok(report.layers.length > 0);
      assert.ok(report.notes.some((n) => /initializers were also listed as graph inputs/.test(n)), report.notes.join("; "));
      const written = await Model.load(out);
      assert.deepEqual(written.graph.input.map((v) => v.name), ["input"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
