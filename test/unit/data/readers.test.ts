import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { readFileSync } from "node:fs";
import { DataType } from "../../../engine/onnx/dtype";
import { makeGraph, makeModel, makeValueInfo } from "../../../engine/onnx/proto";
import { batchesOf, checkFeeds, type Feeds } from "../../../engine/data/feeds";
import { loadNpy, parseNpy } from "../../../engine/data/npy";
import { openData, readNpyFolder, readNpz, readTestDataSets } from "../../../engine/data/readers";
import { randomData, seededRandom } from "../../../engine/data/random";

const dir = path.join(__dirname, "files");
const f = (...p: string[]) => path.join(dir, ...p);

const single = makeModel(makeGraph("g", [], [makeValueInfo("x", DataType.FLOAT, ["batch", 2, 3])], []));
const fixedBatch2 = makeModel(makeGraph("g", [], [makeValueInfo("x", DataType.FLOAT, [2, 2, 3])], []));
const two = makeModel(
  makeGraph("g", [], [makeValueInfo("x", DataType.FLOAT, ["n", 2, 3]), makeValueInfo("ids", DataType.INT64, ["n", 2])], []),
);
const values = (feeds: Feeds, k: string) => Array.from(feeds[k]!.data as ArrayLike<number | bigint>, Number);

test("parseNpy reads numpy's files: float32, big-endian float64, int64, bool", () => {
  const a = parseNpy(readFileSync(f("npy", "s1.npy")), "s1.npy");
  assert.equal(a.dtype, DataType.FLOAT);
  assert.deepEqual(a.dims, [1, 2, 3]);
  assert.deepEqual([...a.data as Float32Array], [10, 11, 12, 13, 14, 15]);
  const be = parseNpy(readFileSync(f("big_endian_f8.npy")), "be");
  assert.ok(be.data instanceof Float64Array);
  assert.deepEqual([...be.data as Float64Array], [0, 1, 2, 3, 4, 5]);
  const i = loadNpy(f("int64.npy"));
  assert.deepEqual([...i.data as BigInt64Array], [-2n, -1n, 0n, 1n]);
  const b = parseNpy(readFileSync(f("bool.npy")), "b");
  assert.equal(b.dtype, DataType.BOOL);
  assert.deepEqual([...b.data as Uint8Array], [1, 0, 1]);
});

test("parseNpy rejects Fortran order, truncated and non-npy files by name", () => {
  assert.throws(() => parseNpy(readFileSync(f("fortran.npy")), "fortran.npy"), /fortran\.npy: Fortran-ordered/);
  const whole = readFileSync(f("npy", "s0.npy"));
  assert.throws(() => parseNpy(whole.subarray(0, whole.length - 4), "cut.npy"), /cut\.npy: truncated/);
  assert.throws(() => parseNpy(new Uint8Array(20), "zeros.npy"), /zeros\.npy: not a \.npy file/);
});

test("npy folder: samples in natural order, stacked file split by batchSize or a fixed model batch", () => {
  const batches = [...readNpyFolder(f("npy"), single, { batchSize: 2 })];
  // s0, s1, s2 (one sample each), then s10 (4 samples) in batches of 2
  assert.deepEqual(batches.map((b) => b["x"]!.dims), [[1, 2, 3], [1, 2, 3], [1, 2, 3], [2, 2, 3], [2, 2, 3]]);
  assert.deepEqual(values(batches[1]!, "x"), [10, 11, 12, 13, 14, 15]);
  assert.deepEqual(values(batches[4]!, "x").slice(0, 2), [112, 113]);
  const whole = [...readNpyFolder(f("npy"), single)];
  assert.deepEqual(whole.at(-1)!["x"]!.dims, [4, 2, 3]);
  // A model with batch fixed at 2 cannot take the one-sample files: the error names the file and the shapes.
  assert.throws(() => [...readNpyFolder(f("npy"), fixedBatch2)], /s0\.npy.*not a multiple of the model's batch 2/);
});

test("npy folder: a literal -1 (or 0) batch dim is dynamic, as paddle2onnx writes it", () => {
  for (const any of [-1, 0]) {
    const m = makeModel(makeGraph("g", [], [makeValueInfo("x", DataType.FLOAT, [any, 2, 3])], []));
    const batches = [...readNpyFolder(f("npy"), m, { batchSize: 32 })]; // "1 samples ... not a multiple of the model's batch -1" before
    assert.deepEqual(batches.map((b) => b["x"]!.dims[0]), [1, 1, 1, 4]);
  }
});

test("npy folder: multi-input models are refused with a pointer to .npz", () => {
  assert.throws(() => [...readNpyFolder(f("npy"), two)], /single-input models only.*"x", "ids".*\.npz/);
});

test("npz, stored and deflated: keys are input names, split along the first axis", () => {
  for (const file of ["two_inputs.npz", "two_inputs_deflate.npz"]) {
    const batches = [...readNpz(f(file), two, { batchSize: 1 })];
    assert.equal(batches.length, 2);
    assert.deepEqual(batches[1]!["x"]!.dims, [1, 2, 3]);
    assert.deepEqual(values(batches[1]!, "x"), [6, 7, 8, 9, 10, 11]);
    assert.deepEqual(values(batches[1]!, "ids"), [3, 4]);
  }
  assert.throws(() => [...readNpz(f("bad_key.npz"), two)], /bad_key\.npz.*"idz" is not an input of the model \(inputs: "x", "ids"\)/);
});

test("ONNX test_data_set folders: named tensors by name, unnamed by position", () => {
  const batches = [...readTestDataSets(f("pb"), two)];
  assert.equal(batches.length, 2);
  assert.deepEqual(values(batches[1]!, "x"), [7, 8, 9, 10, 11, 12]);
  assert.deepEqual(values(batches[1]!, "ids"), [3, 4]);
  assert.equal([...openData(f("pb", "test_data_set_0"), two)].length, 1);
});

test("a recurrent model's inputs (silero-vad): a scalar goes whole to every batch, a state [layers, batch, hidden] makes one run", () => {
  const specs = [
    { name: "input", elemType: DataType.FLOAT, shape: ["batch", 4] },
    { name: "sr", elemType: DataType.INT64, shape: [] },
    { name: "h", elemType: DataType.FLOAT, shape: [2, "batch", 3] },
  ];
  const arr = (dtype: DataType, dims: number[], data: Float32Array | BigInt64Array) => ({ dtype, dims, data });
  const sr = arr(DataType.INT64, [], BigInt64Array.of(16000n));
  const one = new Map([
    ["input", arr(DataType.FLOAT, [1, 4], new Float32Array(4))],
    ["sr", sr],
    ["h", arr(DataType.FLOAT, [2, 1, 3], new Float32Array(6))],
  ]);
  const runs = [...batchesOf(one, specs, "set_0", 32)];
  assert.equal(runs.length, 1);
  assert.deepEqual(Object.fromEntries(Object.entries(runs[0]!).map(([k, t]) => [k, t.dims])), { input: [1, 4], sr: [], h: [2, 1, 3] });
  // The scalar beside inputs split into batches of 2.
  const stacked = new Map([["input", arr(DataType.FLOAT, [4, 4], new Float32Array(16))], ["sr", sr]]);
  const split = [...batchesOf(stacked, specs.slice(0, 2), "set_1", 2)];
  assert.deepEqual(split.map((b) => [b.input!.dims, b.sr!.dims]), [[[2, 4], []], [[2, 4], []]]);
  // An input whose rank the model does not state takes a scalar whole too.
  const unknownRank = [specs[0]!, { name: "sr", elemType: DataType.INT64, shape: undefined }];
  assert.deepEqual([...batchesOf(stacked, unknownRank, "set_3", 2)].map((b) => b.sr!.dims), [[], []]);
  // Disagreeing first axes that would have to be split: which axis holds the samples is unknown.
  const many = new Map([...one, ["input", arr(DataType.FLOAT, [4, 4], new Float32Array(16))]]);
  assert.throws(() => [...batchesOf(many, specs, "set_2", 2)], /set_2: inputs disagree on the number of samples \(4 vs 2 for "h"\): split into batches/);
});

test("wrong shape, dtype, name and empty data give errors naming the input, source and shapes", () => {
  assert.throws(() => [...openData(f("wrong_shape.npy"), single)], /wrong_shape\.npy: input "x": expected shape \[batch, 2, 3\], got \[1, 3, 3\]/);
  assert.throws(() => [...openData(f("float64.npy"), single)], /float64\.npy: input "x" must be float \(Float32Array\), got float64/);
  assert.throws(() => checkFeeds({ y: { data: new Float32Array(6), dims: [1, 2, 3] } }, [{ name: "x", elemType: DataType.FLOAT, shape: [1, 2, 3] }], "batch 0"), /batch 0: "y" is not an input/);
  assert.throws(() => checkFeeds({ x: { data: new Float32Array(0), dims: [0, 2, 3] } }, [{ name: "x", elemType: DataType.FLOAT, shape: ["n", 2, 3] }], "batch 0"), /batch 0: input "x" is empty/);
  assert.throws(() => checkFeeds({ x: { data: new Float32Array(5), dims: [1, 2, 3] } }, [{ name: "x", elemType: DataType.FLOAT, shape: ["n", 2, 3] }], "b"), /dims \[1, 2, 3\] do not match its 5 values/);
  assert.throws(() => [...openData(f("nothing-here"), single)], /nothing-here: no such file or folder/);
});

test("randomData warns, is repeatable and fills symbolic batch dims", () => {
  const warnings: string[] = [];
  const a = [...randomData(two, 2, { batchSize: 3, warn: (m) => warnings.push(m), seed: 5 })];
  const b = [...randomData(two, 2, { batchSize: 3, warn: () => {}, seed: 5 })];
  assert.match(warnings[0]!, /RANDOM data/);
  assert.equal(a.length, 2);
  assert.deepEqual(a[0]!["x"]!.dims, [3, 2, 3]);
  assert.deepEqual(values(a[1]!, "x"), values(b[1]!, "x"));
  assert.ok(values(a[0]!, "ids").every((v) => v >= 0 && v < 10));
  const symbolic = makeModel(makeGraph("g", [], [makeValueInfo("t", DataType.FLOAT, ["n", "seq"])], []));
  assert.throws(() => [...randomData(symbolic, 1, { warn: () => {} })], /input "t" has a symbolic dim seq at axis 1/);
});

test("randomData draws from the engine's one seeded generator: float values are its Box-Muller normals", () => {
  const [feeds] = [...randomData(single, 1, { batchSize: 1, seed: 9, warn: () => {} })];
  const next = seededRandom(9);
  const expected = Array.from({ length: 6 }, () => Math.fround(Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next())));
  assert.deepEqual(values(feeds!, "x"), expected);
  // The first draws for seed 1, as analysis/stats' generator gave them before it moved here: bootstrap intervals
  // and generated inputs must not drift.
  const r = seededRandom(1);
  assert.deepEqual([r(), r()].map((v) => Math.round(v * 4294967296)), [2693262067, 11749833]);
});

test("loadNpy names a missing file", () => {
  assert.throws(() => loadNpy(f("missing.npy")), /missing\.npy: cannot read/);
});
