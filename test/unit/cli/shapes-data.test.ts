// --shape on bench/report/inspect, and one data contract: report/bench --data read what --calib reads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ptq } from "./ptq-child";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { crc32 } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "onnx-buf";
import { run as inspect } from "../../../cli/inspect";
import { parseShapeFlags, requireShapes, resolveShapes, UsageError } from "../../../cli/args";
import { loadData, loadDataDir } from "../../../engine/analysis/dataset";
import { benchmark, shapesAtBatch } from "../../../engine/analysis/benchmark";
import { evaluate } from "../../../engine/analysis/evaluate";
import { createSession } from "../../../engine/runtime/session";
import { firstSamples, sampleAxes, samplesIn } from "../../../engine/analysis/feeds";
import { encodeNpy } from "../../../engine/data/npy";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeGraph, makeModel, makeNode, makeValueInfo, type Dim } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";

function withDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-shapes-"));
  return Promise.resolve(fn(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/**
 * x [batch, 4, seq] → AveragePool (kernel 1, stride 4 along seq) → ReduceMean over seq → MatMul → logits [batch, 3].
 * The pooled seq dim is 1 at seq 1 and 2 (what inspect used to run at) and changes only for larger sizes.
 */
function seqModel(dir: string, name: string, xShape: Dim[] = ["batch", 4, "seq"], scale = 1): string {
  const w = Float32Array.from({ length: 12 }, (_, i) => ((i * 7) % 5 - 2) * scale);
  const g = makeGraph(
    "seq",
    [
      makeNode("AveragePool", ["x"], ["pooled"], { attributes: [attr.ints("kernel_shape", [1]), attr.ints("strides", [4])] }),
      makeNode("ReduceMean", ["pooled"], ["mean"], { attributes: [attr.ints("axes", [2]), attr.int("keepdims", 0)] }),
      makeNode("MatMul", ["mean", "W"], ["logits"]),
    ],
    [makeValueInfo("x", DataType.FLOAT, xShape)],
    [makeValueInfo("logits", DataType.FLOAT, ["batch", 3])],
    { initializers: [makeTensor("W", DataType.FLOAT, [4, 3], w)] },
  );
  const file = path.join(dir, name);
  writeFileSync(file, Model.fromProto(makeModel(g, { opsets: { "": 13 } })).toBytes());
  return file;
}

function samples(n: number, seq: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n * 4 * seq }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1);
}

/** An .npz (stored, uncompressed) holding the given arrays. */
function writeNpz(file: string, arrays: Record<string, Uint8Array>): void {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [key, data] of Object.entries(arrays)) {
    const name = Buffer.from(`${key}.npy`);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(data.length, 20);
    c.writeUInt32LE(data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    parts.push(local, name, Buffer.from(data));
    central.push(c, name);
    offset += 30 + name.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(arrays).length, 8);
  end.writeUInt16LE(Object.keys(arrays).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(file, Buffer.concat([...parts, cd, end]));
}

test("--shape parsing: NAME=DIMS or DIMS for one input; bad values, unknown names, wrong ranks and fixed dims are usage errors", () => {
  assert.deepEqual(parseShapeFlags(["x=1x3x48x320", "input:0=2,8", "7X5"]).map((f) => [f.name, f.dims]), [["x", [1, 3, 48, 320]], ["input:0", [2, 8]], [undefined, [7, 5]]]);
  for (const bad of ["x=", "=1x2", "x=1x0", "x=1xW", "1.5x2"]) assert.throws(() => parseShapeFlags([bad]), (e: unknown) => e instanceof UsageError && /--shape takes NAME=1x3x224x224/.test((e as Error).message), bad);
  const inputs = [{ name: "x", shape: ["batch", 4, "seq"] as Dim[] }];
  assert.deepEqual(resolveShapes(parseShapeFlags(["1x4x16"]), inputs), { x: [1, 4, 16] });
  assert.throws(() => resolveShapes(parseShapeFlags(["y=1x4x16"]), inputs), /--shape y=1x4x16: the model has no input "y" \(inputs: "x"\)/);
  assert.throws(() => resolveShapes(parseShapeFlags(["x=1x4"]), inputs), /input "x" has rank 3 \(\[batch, 4, seq\]\), the shape has 2 dims/);
  assert.throws(() => resolveShapes(parseShapeFlags(["x=1x5x16"]), inputs), /axis 1 of input "x" is fixed at 4/);
  assert.throws(() => resolveShapes(parseShapeFlags(["x=1x4x16", "x=1x4x8"]), inputs), /given twice for input "x"/);
  const two = [...inputs, { name: "mask", shape: [-1, null] as Dim[] }];
  assert.throws(() => resolveShapes(parseShapeFlags(["1x4x16"]), two), /the model has 2 inputs \("x", "mask"\); name one: --shape NAME=1x4x16/);
  // The batch may stay dynamic; any other unknown dim needs a shape, and the message shows the flag to pass.
  assert.doesNotThrow(() => requireShapes([{ name: "b", shape: ["batch", 4] }], {}));
  assert.throws(() => requireShapes(two, { x: [1, 4, 16] }), /input "mask" \[\?, \?\] has an unknown dim at axis 1.*--shape mask=1xN /);
});

test("ptq bench and report: a symbolic dim without --shape exits 2 naming the input, the dim and the flag; with --shape they measure", () =>
  withDir((dir) => {
    const m = seqModel(dir, "m.onnx");
    const q = seqModel(dir, "q.onnx", undefined, 1.01);
    for (const cmd of [["bench", m, "--runs", "2"], ["report", m, q, "--runs", "2"]]) {
      const r = ptq(...cmd);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /input "x" \[batch, 4, seq\] has symbolic dim "seq" at axis 2.*--shape x=1x4xseq/);
      assert.doesNotMatch(r.stderr, /options\.shapes/);
    }
    const b = ptq("bench", m, q, "--shape", "x=1x4x16", "--batch", "1,3", "--runs", "2", "--warmup", "0", "--threads", "1", "--json");
    assert.equal(b.status, 0, b.stderr);
    // The batch sizes replace the shape's dynamic first size.
    assert.deepEqual(JSON.parse(b.stdout).models[0].batches.map((x: { batch: number }) => x.batch), [1, 3]);
    const r = ptq("report", m, q, "--shape", "1x4x16", "--limit", "20", "--runs", "2", "--threads", "1", "--json");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).evaluation.samples, 20);
    const both = ptq("report", m, q, "--shape", "1x4x16", "--data", dir);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /give --shape or --data, not both/);
    const bad = ptq("bench", m, "--shape", "x=1x5x16");
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /axis 1 of input "x" is fixed at 4/);
  }));

test("ptq report/bench --data: every format --calib reads (batch_*.npy, .npz with labels, test_data_set_*), shapes from the data", () =>
  withDir(async (dir) => {
    const m = seqModel(dir, "m.onnx");
    const q = seqModel(dir, "q.onnx", undefined, 1.01);
    const seq = 12;
    // A folder of batches, as --calib takes it: the old report wanted input.npy or x.npy here.
    const batches = path.join(dir, "batches");
    mkdirSync(batches);
    for (let i = 0; i < 3; i++) writeFileSync(path.join(batches, `batch_${i}.npy`), encodeNpy(samples(5, seq, i + 1), [5, 4, seq]));
    const r = ptq("report", m, q, "--data", batches, "--runs", "2", "--threads", "1", "--json");
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.evaluation.samples, 15);
    assert.equal(j.evaluation.reference, "first model");
    assert.equal(j.evaluation.metric, "agreement", "unlabelled class scores [batch, 3]: agreement");
    // The benchmark ran on the data (its symbolic seq comes from there, no --shape needed).
    assert.equal(j.benchmark.settings.data, "given");
    const b = ptq("bench", m, "--data", batches, "--batch", "4", "--runs", "2", "--warmup", "0", "--threads", "1", "--json");
    assert.equal(b.status, 0, b.stderr);
    assert.equal(JSON.parse(b.stdout).models[0].batches[0].batch, 4);
    // A model that fixes its batch at 1 (BlazeFace, M-LSD) runs at 1 whatever was asked, and the benchmark says so.
    const one = seqModel(dir, "one.onnx", [1, 4, "seq"]);
    const f = ptq("bench", one, "--data", batches, "--batch", "1,4", "--runs", "2", "--warmup", "0", "--threads", "1", "--json");
    assert.equal(f.status, 0, f.stderr);
    const fj = JSON.parse(f.stdout);
    assert.deepEqual(fj.models[0].batches.map((x: { batch: number }) => x.batch), [1, 1]);
    assert.ok(fj.notes.some((n: string) => /batch 4 asked, but the inputs have 1 rows/.test(n)), fj.notes.join("\n"));
    // A notebook's benchmark() given more samples than such a model takes times its first batch, and says so.
    const three = { x: { type: "float32" as const, dims: [3, 4, seq], data: samples(3, seq) } };
    const nb = (await benchmark({ one }, { data: three, runs: 2, warmup: 0, threads: 1 })).toJSON();
    assert.equal(nb.models[0]!.batches[0]!.batch, 1);
    assert.ok(nb.notes.some((n) => /the data has 3 samples but one takes batches of exactly 1: timing its first 1/.test(n)), nb.notes.join("\n"));
    // Fed as they are, onnxruntime's "invalid dimensions" becomes a message that names the input, the axis and the fix.
    const session = await createSession(one, { threads: 1 });
    try {
      await assert.rejects(session.run(three), /input "x" is \[3, 4, 12\], but the model fixes axis 0 at 1 \(\[1, 4, seq\]\): feed batches of exactly 1 sample/);
    } finally {
      await session.dispose();
    }

    // .npz with the labels inside as "y": scored against them.
    const npz = path.join(dir, "held.npz");
    writeNpz(npz, { x: encodeNpy(samples(6, seq, 9), [6, 4, seq]), y: encodeNpy(new BigInt64Array([0n, 1n, 2n, 0n, 1n, 2n]), [6]) });
    const zr = ptq("report", m, q, "--data", npz, "--runs", "2", "--threads", "1", "--json");
    assert.equal(zr.status, 0, zr.stderr);
    const zj = JSON.parse(zr.stdout);
    assert.deepEqual([zj.evaluation.metric, zj.evaluation.reference, zj.evaluation.samples], ["top1", "labels", 6]);

    // x.npy + y.npy beside it: y.npy is the labels, not a batch of inputs.
    const xy = path.join(dir, "xy");
    mkdirSync(xy);
    writeFileSync(path.join(xy, "x.npy"), encodeNpy(samples(8, seq, 3), [8, 4, seq]));
    writeFileSync(path.join(xy, "y.npy"), encodeNpy(new BigInt64Array(8), [8]));
    const xr = ptq("report", m, q, "--data", xy, "--runs", "2", "--threads", "1", "--json");
    assert.equal(xr.status, 0, xr.stderr);
    assert.deepEqual([JSON.parse(xr.stdout).evaluation.reference, JSON.parse(xr.stdout).evaluation.samples], ["labels", 8]);

    // ONNX test data folders.
    const td = path.join(dir, "td");
    for (let i = 0; i < 2; i++) {
      mkdirSync(path.join(td, `test_data_set_${i}`), { recursive: true });
      const t = create(TensorProtoSchema, { name: "x", dims: [2n, 4n, BigInt(seq)], dataType: DataType.FLOAT, rawData: new Uint8Array(samples(2, seq, i + 5).buffer as ArrayBuffer) });
      writeFileSync(path.join(td, `test_data_set_${i}`, "input_0.pb"), toBinary(TensorProtoSchema, t));
    }
    const tr = ptq("report", m, q, "--data", td, "--runs", "2", "--threads", "1", "--json");
    assert.equal(tr.status, 0, tr.stderr);
    assert.equal(JSON.parse(tr.stdout).evaluation.samples, 4);

    // Samples of different sizes cannot be stacked for one evaluation: said, with the fix.
    const mixed = path.join(dir, "mixed");
    mkdirSync(mixed);
    writeFileSync(path.join(mixed, "a.npy"), encodeNpy(samples(2, 8), [2, 4, 8]));
    writeFileSync(path.join(mixed, "b.npy"), encodeNpy(samples(2, 9), [2, 4, 9]));
    const mr = ptq("report", m, q, "--data", mixed, "--runs", "2");
    assert.equal(mr.status, 1);
    assert.match(mr.stderr, /mixed: input "x": batch 1 is float32 \[2,4,9\] but batch 0 is float32 \[2,4,8\].*same shape/);
  }));

test("ptq inspect: a dim that follows a symbolic input dim prints as that symbol (or ?), never as the size it ran at; --shape shows sizes", () =>
  withDir(async (dir) => {
    let out = "";
    let err = "";
    const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s) };
    const m = seqModel(dir, "m.onnx");
    assert.equal(await inspect([m], io), 0, err);
    // pooled = ceil(seq / 4): 1 at seq 1 and 2, so a run at those sizes printed [batch, 4, 1].
    assert.match(out, /AveragePool +float32 +\[batch, 4, seq\] +pooled\n/);
    assert.match(out, /ReduceMean +float32 +\[batch, 4\] +mean\n/);
    out = "";
    assert.equal(await inspect([m, "--shape", "x=2x4x40"], io), 0, err);
    assert.match(out, /AveragePool +float32 +\[2, 4, 10\] +pooled\n/);
    out = "";
    // Two symbols: each dim is named after the one it follows; unnamed dims (-1, none) print as ?.
    const two = seqModel(dir, "two.onnx", [-1, 4, null]);
    assert.equal(await inspect([two, "--json"], io), 0, err);
    const shapes = JSON.parse(out).intermediateShapes as { name: string; shape: Dim[] }[];
    assert.deepEqual(shapes.find((s) => s.name === "pooled")!.shape, ["?", 4, "?"]);
    const named = seqModel(dir, "named.onnx", ["n", 4, "len"]);
    out = "";
    assert.equal(await inspect([named, "--json"], io), 0, err);
    assert.deepEqual((JSON.parse(out).intermediateShapes as { name: string; shape: Dim[] }[]).map((s) => s.shape), [["n", 4, "len"], ["n", 4], ["n", 3]]);
    err = "";
    assert.equal(await inspect([m, "--shape", "x=1x5x8"], io), 2);
    assert.match(err, /axis 1 of input "x" is fixed at 4/);
    assert.equal(await inspect([m, "--dim", "seq"], io), 2);
    assert.deepEqual(readdirSync(dir).sort(), ["m.onnx", "named.onnx", "two.onnx"]);
  }));

test("ptq inspect: a model that cannot run at the sizes picked for its symbolic dims says so once, without onnxruntime's own error line", () =>
  withDir(async (dir) => {
    // x [batch, len] → Reshape to [-1, 8, 120]: runs only where len is a multiple of 960 (as PaddleOCR's Chinese
    // recogniser runs only at height 48; inspect picks other sizes).
    const g = makeGraph(
      "fixed",
      [makeNode("Reshape", ["x", "to"], ["y"])],
      [makeValueInfo("x", DataType.FLOAT, ["batch", "len"])],
      [makeValueInfo("y", DataType.FLOAT, [null, 8, 120])],
      { initializers: [makeTensor("to", DataType.INT64, [3], new BigInt64Array([-1n, 8n, 120n]))] },
    );
    const file = path.join(dir, "fixed.onnx");
    writeFileSync(file, Model.fromProto(makeModel(g, { opsets: { "": 13 } })).toBytes());
    const r = ptq("inspect", file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Intermediate shapes unavailable: .*onnxruntime failed to run the model: .*Reshape.* It ran with x \[\d+, \d+\], sizes picked for its symbolic dims; give real ones with --shape NAME=DIMS/);
    assert.doesNotMatch(r.stderr, /onnxruntime/, "the error is the summary's line, not also onnxruntime's log");
    const sized = ptq("inspect", file, "--shape", "x=2x960");
    assert.equal(sized.status, 0, sized.stderr);
    assert.match(sized.stdout, /Reshape +float32 +\[2, 8, 120\] +y\n/);
  }));

/**
 * A stateful model laid out as silero-vad is: x [batch, 4], a scalar sample rate sr, a state h [2, batch, 3] with its
 * samples on the second axis. y [batch, 1] = x·W + sr · Σ h[:, b, :], so a sample sliced on the wrong axis changes it.
 */
function stateModel(dir: string, name: string, scale = 1): string {
  const w = Float32Array.from({ length: 4 }, (_, i) => (i - 1.5) * scale);
  const g = makeGraph(
    "state",
    [
      makeNode("MatMul", ["x", "W"], ["xw"]),
      makeNode("ReduceSum", ["h", "axes"], ["hs"], { attributes: [attr.int("keepdims", 0)] }),
      makeNode("Unsqueeze", ["hs", "one"], ["hs1"]),
      makeNode("Cast", ["sr"], ["srf"], { attributes: [attr.int("to", DataType.FLOAT)] }),
      makeNode("Mul", ["hs1", "srf"], ["hsr"]),
      makeNode("Add", ["xw", "hsr"], ["y"]),
    ],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 4]), makeValueInfo("sr", DataType.INT64, []), makeValueInfo("h", DataType.FLOAT, [2, "batch", 3])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 1])],
    {
      initializers: [
        makeTensor("W", DataType.FLOAT, [4, 1], w),
        makeTensor("axes", DataType.INT64, [2], new BigInt64Array([0n, 2n])),
        makeTensor("one", DataType.INT64, [1], new BigInt64Array([1n])),
      ],
    },
  );
  const file = path.join(dir, name);
  writeFileSync(file, Model.fromProto(makeModel(g, { opsets: { "": 13 } })).toBytes());
  return file;
}

test("without data, a stateful model's scalar is generated whole and its state [2, batch, 3] at the batch; --shape puts the batch on the state's batch axis", () =>
  withDir(async (dir) => {
    const m = stateModel(dir, "m.onnx");
    const q = stateModel(dir, "q.onnx", 1.1);
    const s = await createSession(m, { threads: 1 });
    const inputs = s.inputs;
    await s.dispose();
    // onnxruntime gives no dims for sr; the file says it is a scalar.
    assert.deepEqual(inputs.map((i) => i.shape), [["batch", 4], [], [2, "batch", 3]]);
    requireShapes(inputs, {});
    assert.deepEqual(shapesAtBatch(inputs, { h: [2, 1, 3], x: [1, 4] }, 4), { h: [2, 4, 3], x: [4, 4] });
    const b = ptq("bench", m, q, "--batch", "1,4", "--runs", "2", "--warmup", "0", "--threads", "1", "--json");
    assert.equal(b.status, 0, b.stderr);
    assert.deepEqual(JSON.parse(b.stdout).models[1].batches.map((x: { batch: number }) => x.batch), [1, 4]);
    const r = ptq("report", m, q, "--runs", "2", "--threads", "1", "--json");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).evaluation.metric, "mse");
  }));

test("--data on a stateful model: a scalar input goes to every batch whole, a state [2, batch, 3] is stacked and sliced on its batch axis", () =>
  withDir(async (dir) => {
    const m = stateModel(dir, "m.onnx");
    const q = stateModel(dir, "q.onnx", 1.1);
    // Four runs of one sample each, as ONNX test data folders (silero-vad's calibration sets look like this).
    const td = path.join(dir, "td");
    const pb = (name: string, dims: number[], type: DataType, data: ArrayBufferView) =>
      toBinary(TensorProtoSchema, create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: type, rawData: new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength) }));
    const xs = samples(4, 1, 3);
    const hs = samples(4, 6, 4); // 4 samples × [2, 3]
    for (let i = 0; i < 4; i++) {
      const d = path.join(td, `test_data_set_${i}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, "input_0.pb"), pb("x", [1, 4], DataType.FLOAT, xs.subarray(i * 4, i * 4 + 4)));
      writeFileSync(path.join(d, "input_1.pb"), pb("sr", [], DataType.INT64, new BigInt64Array([16000n])));
      writeFileSync(path.join(d, "input_2.pb"), pb("h", [2, 1, 3], DataType.FLOAT, hs.subarray(i * 6, i * 6 + 6)));
    }
    const inputs = [
      { name: "x", type: "float32", shape: ["batch", 4] },
      { name: "sr", type: "int64", shape: [] },
      { name: "h", type: "float32", shape: [2, "batch", 3] },
    ];
    const data = loadDataDir(td, inputs);
    // A notebook reads the same from the model itself ("ptq"'s loadData: the declared shapes, the scalar included).
    assert.deepEqual(loadData(td, await Model.load(m)), data);
    assert.deepEqual(data.inputs.sr!.dims, []);
    assert.deepEqual(data.inputs.h!.dims, [2, 4, 3]);
    // h[l, b, :] is sample b's layer l.
    for (let b = 0; b < 4; b++) for (let l = 0; l < 2; l++) for (let k = 0; k < 3; k++) assert.equal(data.inputs.h!.data[(l * 4 + b) * 3 + k], hs[b * 6 + l * 3 + k]);
    const two = firstSamples(data.inputs, sampleAxes(inputs), 2);
    assert.deepEqual([two.x!.dims, two.sr!.dims, two.h!.dims], [[2, 4], [], [2, 2, 3]]);
    assert.deepEqual([...(two.h!.data as Float32Array)], [0, 1, 4, 5].flatMap((r) => [...(data.inputs.h!.data as Float32Array).subarray(r * 3, r * 3 + 3)]));
    assert.equal(samplesIn(data.inputs, sampleAxes(inputs)), 4);

    // Batches of 1 and of 3 (a partial last one) score alike only when every batch took the right samples.
    const one = await evaluate({ m, q }, data, "mse", { batchSize: 1, threads: 1 });
    const three = await evaluate({ m, q }, data, "mse", { batchSize: 3, threads: 1 });
    const mse = (e: typeof one) => e.toJSON().models[1]!.score.estimate;
    assert.ok(mse(one) > 0);
    assert.ok(Math.abs(mse(one) - mse(three)) <= 1e-6 * mse(one), `${mse(one)} vs ${mse(three)}`);

    const b = ptq("bench", m, q, "--data", td, "--batch", "1,4", "--runs", "2", "--warmup", "0", "--threads", "1", "--json");
    assert.equal(b.status, 0, b.stderr);
    assert.deepEqual(JSON.parse(b.stdout).models[0].batches.map((x: { batch: number }) => x.batch), [1, 4]);
    const r = ptq("report", m, q, "--data", td, "--metric", "mse", "--runs", "2", "--threads", "1", "--json");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).evaluation.samples, 4);
    // One score per sample [batch, 1]: its argmax is always 0 and its cosine only its sign, so the default is mse.
    const d = ptq("report", m, q, "--data", td, "--runs", "2", "--threads", "1", "--json");
    assert.equal(d.status, 0, d.stderr);
    assert.equal(JSON.parse(d.stdout).evaluation.metric, "mse");

    // A scalar that differs between runs cannot be stacked into one evaluation: said.
    writeFileSync(path.join(td, "test_data_set_3", "input_1.pb"), pb("sr", [], DataType.INT64, new BigInt64Array([8000n])));
    assert.throws(() => loadDataDir(td, inputs), /input "sr": a scalar .* batch 3 gives 8000 and batch 0 16000/);
  }));
