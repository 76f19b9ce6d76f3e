import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultOptions, freePath, outputPath, quantizeArgs, reportArgs } from "../../../src/quantize/options";
import { reportBody, type ReportSubset } from "../../../src/quantize/reportHtml";

test("output names sit beside the input with the scheme's suffix, and never take an existing name unasked", () => {
  assert.equal(outputPath("/ws/models/cnn.onnx", "int8-static"), "/ws/models/cnn.int8.onnx");
  assert.equal(outputPath("/ws/m.ONNX", "int4-weights"), "/ws/m.int4.onnx");
  assert.equal(outputPath("/ws/m.onnx", "fp4-weights"), "/ws/m.fp4.onnx");
  const taken = new Set(["/ws/m.int8.onnx", "/ws/m.int8-2.onnx"]);
  assert.equal(freePath("/ws/m.int8.onnx", (p) => taken.has(p)), "/ws/m.int8-3.onnx");
  assert.equal(freePath("/ws/x.int8.onnx", (p) => taken.has(p)), "/ws/x.int8.onnx");
});

test("wizard options become ptq quantize / report arguments", () => {
  const o = { ...defaultOptions("/ws/cnn.onnx"), calibrationDir: "/ws/calib", exclude: ["fc2", "head"], calibrationMethod: "entropy" as const };
  assert.deepEqual(quantizeArgs(o, "/ws/.cnn.int8.onnx.tmp"), ["quantize", "/ws/cnn.onnx", "--out", "/ws/.cnn.int8.onnx.tmp", "--scheme", "int8-static", "--calib", "/ws/calib", "--method", "entropy", "--per-channel", "--exclude", "fc2,head", "--json"]);
  const r = { ...defaultOptions("/ws/cnn.onnx"), randomData: true, perChannel: false };
  assert.deepEqual(quantizeArgs(r, "t").slice(6), ["--random-calib", "--method", "minmax", "--per-tensor", "--json"]);
  const i4 = defaultOptions("/ws/llm.onnx", "int4-weights");
  assert.deepEqual(quantizeArgs(i4, "t").slice(5), ["int4-weights", "--block-size", "32", "--json"]);
  assert.deepEqual(reportArgs(o), ["report", "/ws/cnn.onnx", "/ws/cnn.int8.onnx", "--runs", "30", "--json", "--data", "/ws/calib"]);
});

test("report page: size ratio, latency percentiles, speed-up, metric drop; names escaped", () => {
  const report: ReportSubset = {
    reference: "cnn.onnx", candidate: "cnn.int8.onnx",
    evaluation: { metric: "agreement", samples: 256, models: [{ name: "a", score: { estimate: 1 } }, { name: "b", score: { estimate: 0.98 } }] },
    benchmark: { kind: "ptq.benchmark", models: [
      { name: "cnn.onnx", fileBytes: 4000, batches: [{ batch: 1, latencyMs: { p50: 2, p90: 3, p99: 4 }, throughput: 500 }] },
      { name: "<script>", fileBytes: 1000, batches: [{ batch: 1, latencyMs: { p50: 1, p90: 1.5, p99: 2 }, throughput: 1000, vsFirst: { speedup: 2, verdict: { trustworthy: true, reason: "" } } }] },
    ] },
    drop: 2, dropUnit: "percentage points of agreement lost", speedup: 2, speedupTrustworthy: true, notes: [],
  };
  const html = reportBody({ input: "/ws/<img onerror=x>.onnx", output: "/ws/q.onnx", scheme: "int8-static", inputBytes: 4000, outputBytes: 1000, seconds: 3.2, report, warnings: ["random data"], sqnr: { kind: "ptq.sqnr", layers: [] } });
  assert.ok(!/<script>|<img/.test(html), html);
  assert.match(html, /0\.25× \(4\.0× smaller\)/);
  assert.match(html, /latency p50 \(batch 1\)<\/td><td class="num">2\.00 ms<\/td><td class="num">1\.00 ms/);
  assert.match(html, /latency p99/);
  assert.match(html, /2\.00× /);
  assert.match(html, /class="num warn">2\.00 percentage points/);
  assert.match(html, /id="sqnr"/);
  assert.match(html, /data-command="ptq\.openReportInNotebook"/);
  const none = reportBody({ input: "a.onnx", output: "b.onnx", scheme: "int4-weights", inputBytes: 10, outputBytes: 5, seconds: 1, reportError: "cancelled", warnings: [] });
  assert.match(none, /Not measured: cancelled/);
});
