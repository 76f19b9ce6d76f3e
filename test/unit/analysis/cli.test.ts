import { test } from "node:test";
import assert from "node:assert/strict";
import { ptq } from "../cli/ptq-child";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildClassifierPair, D, labelledSamples, writeNpy } from "./models";

// Runs the CLI from source through tsx, so the test needs no build step.

test("ptq bench: usage errors exit 2, a missing model exits 1, --json has the documented shape", () => {
  const { dir, fp32, int8 } = buildClassifierPair();
  try {
    assert.equal(ptq("bench").status, 2);
    const badRuns = ptq("bench", fp32, "--runs", "zero");
    assert.equal(badRuns.status, 2);
    assert.match(badRuns.stderr, /--runs must be an integer/);
    assert.equal(ptq("bench", fp32, "--frobnicate").status, 2);
    const missing = ptq("bench", path.join(dir, "nope.onnx"));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope\.onnx/);
    const help = ptq("bench", "--help");
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Exit codes/);

    const r = ptq("bench", fp32, int8, "--runs", "10", "--warmup", "1", "--threads", "1", "--batch", "1,4", "--json");
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.kind, "ptq.benchmark");
    assert.equal(j.version, 1);
    assert.equal(j.models.length, 2);
    assert.deepEqual(j.settings.batchSizes, [1, 4]);
    assert.ok(j.models[1].batches[1].vsFirst.speedup > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ptq report: accuracy with labels from --data, --max-drop exit 3, HTML written, JSON shape", () => {
  const { dir, fp32, int8 } = buildClassifierPair(3);
  try {
    const data = path.join(dir, "data");
    mkdirSync(data);
    const n = 200;
    const { x, y } = labelledSamples(n);
    writeNpy(path.join(data, "x.npy"), x, [n, D]);
    writeNpy(path.join(data, "y.npy"), y, [n]);
    const tooBig = ptq("bench", fp32, "--data", data, "--batch", "1000", "--runs", "1");
    assert.equal(tooBig.status, 1);
    assert.match(tooBig.stderr, /holds only 200 samples/);
    assert.equal(ptq("report", fp32).status, 2);
    assert.equal(ptq("report", fp32, int8, "--metric", "bleu").status, 2);

    const html = path.join(dir, "report.html");
    const ok = ptq("report", fp32, int8, "--data", data, "--runs", "10", "--threads", "1", "--html", html, "--json", "--max-drop", "100");
    assert.equal(ok.status, 0, ok.stderr);
    const j = JSON.parse(ok.stdout);
    assert.equal(j.kind, "ptq.report");
    assert.equal(j.evaluation.metric, "top1");
    assert.equal(j.evaluation.reference, "labels");
    assert.equal(j.evaluation.samples, n);
    assert.equal(j.checks[0].name, "max-drop");
    assert.equal(j.passed, true);
    assert.ok(Math.abs(j.drop - (j.evaluation.models[0].score.estimate - j.evaluation.models[1].score.estimate) * 100) < 1e-9);
    assert.ok(existsSync(html));
    assert.match(readFileSync(html, "utf8"), /<h2>Accuracy<\/h2>/);

    // An impossible speed-up always fails; the max-drop limit sits below the measured drop when there is one.
    const limit = j.drop > 0 ? (j.drop / 2).toString() : "0";
    const strict = ptq("report", fp32, int8, "--data", data, "--runs", "3", "--threads", "1", "--max-drop", limit, "--min-speedup", "1000");
    assert.equal(strict.status, 3, strict.stdout + strict.stderr);
    assert.match(strict.stdout, /FAIL min-speedup/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ptq demo: quantizes the bundled CNN into --out, never touches the fixture, prints the FP32-vs-INT8 table", () => {
  const out = path.join(os.tmpdir(), `ptq-demo-test-${process.pid}`);
  const cnn = path.join(__dirname, "..", "..", "fixtures", "models", "cnn.onnx");
  const before = statSync(cnn).mtimeMs;
  try {
    const r = ptq("demo", "--out", out, "--seconds", "0.3", "--calib-samples", "16");
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^FP32 .*91\.00%/m); // the fixture's FP32 top-1 on its 2000 held-out images
    assert.match(r.stdout, /^INT8 .* pp \[/m);
    assert.ok(existsSync(path.join(out, "cnn.int8.onnx")));
    assert.ok(existsSync(path.join(out, "report.html")));
    assert.ok(statSync(path.join(out, "cnn.int8.onnx")).size < statSync(cnn).size / 2);
    assert.equal(statSync(cnn).mtimeMs, before);
    assert.equal(ptq("demo", "--seconds", "-1").status, 2);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
