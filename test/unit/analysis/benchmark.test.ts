import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { benchmark } from "../../../engine/analysis/benchmark";
import { evaluate } from "../../../engine/analysis/evaluate";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { makeGraph, makeModel, makeNode, makeValueInfo } from "../../../engine/onnx/proto";
import { MIME } from "../../../kernel/display-types";
import { toBundle } from "../../../kernel/display";
import { buildClassifierPair, D } from "./models";

test("benchmark: two real models interleaved, structure and sanity of every figure", async () => {
  const { dir, fp32, int8 } = buildClassifierPair();
  try {
    const r = await benchmark({ fp32, int8 }, { batchSizes: [1, 8], runs: 12, warmup: 2, threads: 1 });
    const j = r.toJSON();
    assert.equal(j.kind, "ptq.benchmark");
    assert.deepEqual(j.models.map((m) => m.name), ["fp32", "int8"]);
    assert.equal(j.settings.threads, 1);
    assert.equal(j.settings.interOpThreads, 1);
    assert.deepEqual(j.settings.batchSizes, [1, 8]);
    assert.equal(j.settings.data, "generated");
    for (const m of j.models) {
      assert.equal(m.fileBytes, statSync(m.name === "fp32" ? fp32 : int8).size);
      assert.ok(m.loadMs > 0);
      assert.equal(typeof m.rssDeltaBytes, "number");
      assert.deepEqual(m.batches.map((b) => b.batch), [1, 8]);
      for (const b of m.batches) {
        assert.equal(b.samplesMs.length, 12);
        assert.equal(b.latencyMs.n, 12);
        assert.ok(b.latencyMs.p50 > 0 && b.latencyMs.p50 <= b.latencyMs.p90 && b.latencyMs.p90 <= b.latencyMs.p99);
        assert.ok(b.coldMs > 0);
        assert.ok(Math.abs(b.throughput - (b.batch * 1000) / b.latencyMs.p50) < 1e-9);
      }
    }
    assert.equal(j.models[0]!.batches[0]!.vsFirst, undefined);
    const v = j.models[1]!.batches[0]!.vsFirst!;
    assert.ok(v.latencyRatio.lo <= v.latencyRatio.estimate && v.latencyRatio.estimate <= v.latencyRatio.hi);
    assert.ok(Math.abs(v.speedup * v.latencyRatio.estimate - 1) < 1e-9);
    assert.equal(typeof v.verdict.trustworthy, "boolean");
    // The int8 weight file is smaller than the float one.
    assert.ok(j.models[1]!.sizeRatio! < 1);

    const bundle = toBundle(r); // what a notebook cell whose value is the result shows
    assert.ok(MIME.benchmark in bundle && MIME.plotly in bundle && "text/html" in bundle);
    const text = String(bundle["text/plain"]);
    assert.match(text, /fp32/);
    assert.match(text, /1 intra-op thread/);
    const plot = bundle[MIME.plotly] as { data: { y: number[] }[] };
    assert.equal(plot.data.length, 2);
    assert.equal(plot.data[0]!.y.length, 2);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), JSON.parse(JSON.stringify(j)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("benchmark: given feeds fix the batch; seconds mode runs at least 10 rounds; bad input is named", async () => {
  const { dir, fp32 } = buildClassifierPair();
  try {
    const feeds = { x: { type: "float32" as const, dims: [4, D], data: new Float32Array(4 * D) } };
    const r = await benchmark([fp32], { data: feeds, batchSizes: [1, 2], seconds: 0.05, warmup: 0, threads: 1 });
    const j = r.toJSON();
    assert.deepEqual(j.settings.batchSizes, [4]);
    assert.equal(j.settings.data, "given");
    assert.ok(j.models[0]!.batches[0]!.samplesMs.length >= 10);
    assert.ok(j.notes.some((n) => /batchSizes ignored/.test(n)));
    await assert.rejects(benchmark([fp32], { data: { y: feeds.x }, runs: 1 }), /no data for input\(s\) "x"/);
    await assert.rejects(benchmark([dir + "/missing.onnx"], { runs: 1 }), /cannot read model file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("benchmark and evaluate take in-memory Models (convert()'s result) as well as paths", async () => {
  const { dir, fp32, int8 } = buildClassifierPair();
  try {
    const mem = Model.fromBytes(readFileSync(int8));
    const r = (await benchmark({ file: fp32, mem }, { runs: 3, warmup: 0, threads: 1 })).toJSON();
    assert.deepEqual(r.models.map((m) => m.name), ["file", "mem"]);
    assert.equal(r.models[1]!.fileBytes, mem.toBytes().byteLength);
    const listed = (await benchmark([mem], { runs: 2, warmup: 0, threads: 1 })).toJSON();
    assert.equal(listed.models[0]!.name, "in-memory model");
    const x = { x: { type: "float32" as const, dims: [8, D], data: new Float32Array(8 * D).fill(0.5) } };
    const e = await evaluate({ file: int8, mem }, { inputs: x }, "agreement", { threads: 1 });
    assert.equal(e.models[1]!.score.estimate, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a model with a fixed batch of 1: benchmark reports the batch that ran, evaluate feeds it one row at a time", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-fixed-"));
  try {
    const file = path.join(dir, "fixed.onnx");
    const io = (n: string) => makeValueInfo(n, DataType.FLOAT, [1, 3]);
    writeFileSync(file, Model.fromProto(makeModel(makeGraph("fixed", [makeNode("Relu", ["a"], ["b"])], [io("a")], [io("b")]))).toBytes());
    const r = (await benchmark([file], { batchSizes: [8], runs: 2, warmup: 0, threads: 1 })).toJSON();
    assert.equal(r.models[0]!.batches[0]!.batch, 1);
    assert.ok(r.notes.some((n) => /batch 8 asked, but the inputs have 1 rows/.test(n)));
    const x = { a: { type: "float32" as const, dims: [5, 3], data: Float32Array.from({ length: 15 }, (_, i) => i - 7) } };
    const e = await evaluate([file, file], { inputs: x }, "cosine", { threads: 1, batchSize: 64 });
    assert.equal(e.json.samples, 5);
    assert.ok(Math.abs(e.models[1]!.score.estimate - 1) < 1e-12);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
