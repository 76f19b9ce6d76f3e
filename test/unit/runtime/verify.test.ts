// Every model we write is run by onnxruntime before we say it was written (runtime/verify.ts): one that does not
// load, or loads but fails where its source runs, is an error naming the output; inputs the source fails on too
// make a note, not an error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { quantizeDynamic, quantizeStatic } from "../../../engine/quant/index";
import { verifyRunnable } from "../../../engine/runtime/verify";
import { makeModel, randomFloats, valueInfo } from "../quant/build";

const F = DataType.FLOAT;

const matmul = (opset = 17) =>
  Model.fromProto(
    makeModel([makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })], [valueInfo("x", F, [2, 8])], [valueInfo("y", F, [2, 4])], [makeTensor("W", F, [8, 4], randomFloats(32, 1))], opset),
  );

test("a model onnxruntime cannot load is refused, naming the output", async () => {
  // Mod does not exist at opset 9: what FP4 on an opset-9 model used to write.
  const broken = Model.fromProto(
    makeModel([makeNode("Mod", ["x", "x"], ["y"], { name: "mod" })], [valueInfo("x", F, [2, 8])], [valueInfo("y", F, [2, 8])], [], 9),
  );
  await assert.rejects(verifyRunnable(broken, matmul(), "/out/model.int8.onnx"), /\/out\/model\.int8\.onnx.*onnxruntime cannot load the model made from the input, so it was not written: .*Mod/s);
});

test("a model that loads but fails where its source runs is refused; a source that fails too gives a note", async () => {
  // Reshape to a shape that does not fit: loads, fails at run time.
  const bad = Model.fromProto(
    makeModel(
      [makeNode("Reshape", ["x", "shape"], ["y"], { name: "reshape" })],
      [valueInfo("x", F, [2, 8])],
      [valueInfo("y", F, [3, 5])],
      [makeTensor("shape", DataType.INT64, [2], [3, 5])],
    ),
  );
  await assert.rejects(verifyRunnable(bad, matmul(), "out.onnx"), /loads but cannot run the model made from the input, which runs on the same inputs; it was not written/);
  const note = await verifyRunnable(bad, bad, "out.onnx");
  assert.match(note ?? "", /running it was not checked: the input model fails on the same zero inputs too/);
  assert.equal(await verifyRunnable(matmul(), matmul(), "out.onnx"), undefined, "a good model passes silently");
});

test("quantizeDynamic runs the model it made before writing it", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-verify-"));
  try {
    const src = path.join(dir, "m.onnx");
    const clip = Model.fromProto(
      makeModel(
        [
          makeNode("MatMul", ["x", "W"], ["h"], { name: "mm" }),
          makeNode("Reshape", ["h", "shape"], ["y"], { name: "reshape", attributes: [attr.int("allowzero", 0)] }),
        ],
        [valueInfo("x", F, ["batch", 8])],
        [valueInfo("y", F, [-1, 4])],
        [makeTensor("W", F, [8, 4], randomFloats(32, 2)), makeTensor("shape", DataType.INT64, [2], [-1, 4])],
      ),
    );
    clip.saveSync(src);
    const summary = await quantizeDynamic(src, path.join(dir, "m.int8.onnx"));
    assert.ok(existsSync(path.join(dir, "m.int8.onnx")));
    assert.ok(!summary.warnings.some((w) => /not checked|not run/.test(w)), summary.warnings.join("\n"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an input declared with dimension -1 (paddle2onnx's batch) is run at 1, as onnxruntime reads it", async () => {
  // PaddleOCR's text-orientation classifier declares x[-1, 3, 48, 192]: the check used to stop at "invalid dimension -1".
  const m = () =>
    Model.fromProto(
      makeModel([makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })], [valueInfo("x", F, [-1, 8])], [valueInfo("y", F, [-1, 4])], [makeTensor("W", F, [8, 4], randomFloats(32, 1))], 17),
    );
  assert.equal(await verifyRunnable(m(), m(), "/out/model.int8.onnx"), undefined, "run, no note");
});

test("with calibration data the check runs a calibration row: a model that cannot take zeros at size 1 is still run", async () => {
  // A 3×3 Conv without padding on x[N, 16, H, W]: at H = W = 1 (what zero inputs use for symbolic sizes) onnxruntime
  // refuses the shape, so without data the check could only say it was not run.
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-verify-"));
  try {
    const src = path.join(dir, "conv.onnx");
    Model.fromProto(
      makeModel(
        [makeNode("Conv", ["x", "W", "B"], ["c"], { name: "conv" }), makeNode("Relu", ["c"], ["y"], { name: "relu" })],
        [valueInfo("x", F, ["N", 16, "H", "W"])],
        [valueInfo("y", F, ["N", 16, "h", "w"])],
        [makeTensor("W", F, [16, 16, 3, 3], randomFloats(2304, 3)), makeTensor("B", F, [16], randomFloats(16, 4))],
        13,
      ),
    ).saveSync(src);
    const rows = Array.from({ length: 8 }, (_, i) => ({ x: { data: randomFloats(1024, 10 + i, -1, 1), dims: [1, 16, 8, 8] } }));
    const notChecked = (w: string[]) => w.filter((m) => /not checked|not run/.test(m));
    const plain = await quantizeDynamic(src, path.join(dir, "plain.onnx"));
    assert.equal(notChecked(plain.warnings).length, 1, "without data: zeros at 1×1, which the source fails on too");
    const dynamic = await quantizeDynamic(src, path.join(dir, "dynamic.onnx"), {}, { data: rows });
    assert.deepEqual(notChecked(dynamic.warnings), []);
    const stat = await quantizeStatic(src, path.join(dir, "static.onnx"), rows);
    assert.deepEqual(notChecked(stat.warnings), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the check's sessions are quiet: onnxruntime's own error lines do not repeat the failure the note explains", () => {
  // onnxruntime logs from native code to the process's stderr: run the check in a child to see what it prints.
  const script = [
    `const { verifyRunnable } = require(${JSON.stringify(path.resolve(__dirname, "../../../engine/runtime/verify"))});`,
    `const { Model } = require(${JSON.stringify(path.resolve(__dirname, "../../../engine/onnx/model"))});`,
    `const { makeModel, valueInfo } = require(${JSON.stringify(path.resolve(__dirname, "../quant/build"))});`,
    `const { makeNode } = require(${JSON.stringify(path.resolve(__dirname, "../../../engine/onnx/proto"))});`,
    `const { makeTensor } = require(${JSON.stringify(path.resolve(__dirname, "../../../engine/onnx/tensor"))});`,
    `const bad = Model.fromProto(makeModel([makeNode("Reshape", ["x", "shape"], ["y"], { name: "reshape" })], [valueInfo("x", 1, [2, 8])], [valueInfo("y", 1, [3, 5])], [makeTensor("shape", 7, [2], [3, 5])]));`,
    `verifyRunnable(bad, bad, "out.onnx").then((note) => console.log(JSON.stringify(note)));`,
  ].join("\n");
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /running it was not checked/);
  assert.doesNotMatch(r.stderr, /onnxruntime/);
});
