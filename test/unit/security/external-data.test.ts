// Hostile external data and the data file on save: a location that is a symbolic link out of the model's folder
// (to a secret file, or a linked folder), a folder as location, tensors of 2 GiB and more, an existing data file,
// readers that must never pair a model with another save's data, failed saves, and locations outside the output.
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import fs, {
  closeSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  DataType,
  Model,
  TensorProtoSchema,
  create,
  externalRef,
  makeGraph,
  makeModel,
  makeTensor,
  makeValueInfo,
  readTensor,
  tensorRawBytes,
  type TensorProto,
} from "../../../engine/onnx";
import { bigWeights } from "../onnx/helpers";

const posix = process.platform !== "win32";
const N = 2000; // floats in bigWeights' "big": 8000 bytes, stored externally

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), "ptq-extdata-"));
}

/** bigWeights(N) with its "big" values times `scale`. */
function weights(scale: number): Model {
  const m = bigWeights(N);
  m.graph.initializer[0] = makeTensor("big", DataType.FLOAT, [N], Float32Array.from({ length: N }, (_, i) => scale * Math.sin(i)));
  return m;
}

const listing = (dir: string) => readdirSync(dir).sort();

/** A model in `dir` whose "big" lives in m.onnx.data, which the caller then replaces. */
function savedWithData(dir: string): string {
  const file = path.join(dir, "m.onnx");
  bigWeights(N).saveSync(file, { externalData: true });
  return file;
}

test("external data through a symbolic link out of the model's folder is refused on load, read and save", { skip: !posix }, async () => {
  const dir = tmp();
  const outside = tmp();
  try {
    // A "secret" outside the folder, big enough that the old check (size only) passed.
    const secret = path.join(outside, "secret");
    writeFileSync(secret, Buffer.alloc(N * 4, "S"));
    const file = savedWithData(dir);
    rmSync(path.join(dir, "m.onnx.data"));
    symlinkSync(secret, path.join(dir, "m.onnx.data"));
    const re = /external data file "m\.onnx\.data" for tensor "big" leads outside the model's folder .*symbolic link/;
    await assert.rejects(Model.load(file), (e: Error) => e.message.startsWith(`${file}: `) && re.test(e.message));
    // Reading agrees with validation, and a save (as `quantize` does) copies nothing.
    const raw = Model.fromBytes(readFileSync(file), { path: file, skipValidation: true });
    assert.throws(() => raw.readTensor(raw.graph.initializer[0]!), re);
    const out = path.join(outside, "out.onnx");
    assert.throws(() => raw.saveSync(out), re);
    assert.throws(() => raw.saveSync(out, { externalData: true }), re);
    assert.deepEqual(listing(outside), ["secret"], "nothing written");

    // A linked folder: location "sub/w.bin" with sub → the outside folder.
    const dir2 = path.join(dir, "two");
    mkdirSync(path.join(dir2, "sub"), { recursive: true });
    const file2 = path.join(dir2, "m.onnx");
    bigWeights(N).saveSync(file2, { externalData: { location: "sub/w.bin" } });
    rmSync(path.join(dir2, "sub"), { recursive: true });
    writeFileSync(path.join(outside, "w.bin"), Buffer.alloc(N * 4, "S"));
    symlinkSync(outside, path.join(dir2, "sub"));
    await assert.rejects(Model.load(file2), /external data file "sub\/w\.bin" for tensor "big" leads outside the model's folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});

test("links that stay inside the model's folder still load", { skip: !posix }, async () => {
  const dir = tmp();
  try {
    const real = path.join(dir, "real");
    mkdirSync(real);
    const file = savedWithData(real);
    // The data file is a link to another file of the folder; the folder itself is reached through a link.
    const data = path.join(real, "m.onnx.data");
    fs.renameSync(data, path.join(real, "weights.bin"));
    symlinkSync("weights.bin", data);
    symlinkSync(real, path.join(dir, "linked"));
    for (const f of [file, path.join(dir, "linked", "m.onnx")]) {
      const m = await Model.load(f);
      assert.deepEqual(m.readTensor(m.graph.initializer[0]!).data, readTensor(bigWeights(N).graph.initializer[0]!).data);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a folder as external data location is refused by validation and by reading", async () => {
  const dir = tmp();
  try {
    const file = savedWithData(dir);
    rmSync(path.join(dir, "m.onnx.data"));
    mkdirSync(path.join(dir, "m.onnx.data"));
    const re = /external data file "m\.onnx\.data" for tensor "big" is a directory, not a regular file/;
    await assert.rejects(Model.load(file), re);
    const raw = Model.fromBytes(readFileSync(file), { path: file, skipValidation: true });
    assert.throws(() => raw.readTensor(raw.graph.initializer[0]!), re);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A model with one uint8 initializer of `n` bytes, external in "w.bin" at offset 0 (n set, bytes not). */
function oneExternal(n: number): Model {
  const t = create(TensorProtoSchema, {
    name: "huge",
    dataType: DataType.UINT8,
    dims: [BigInt(n)],
    dataLocation: 1,
    externalData: [
      { $typeName: "onnx.StringStringEntryProto", key: "location", value: "w.bin" },
      { $typeName: "onnx.StringStringEntryProto", key: "offset", value: "0" },
      { $typeName: "onnx.StringStringEntryProto", key: "length", value: String(n) },
    ],
  });
  const g = makeGraph("huge", [], [], [makeValueInfo("huge", DataType.UINT8, [n])], { initializers: [t] });
  return Model.fromProto(makeModel(g));
}

const HUGE = 2 ** 31 + 16; // one byte array past what one readSync/writeSync call takes
const MARKS = [0, 2 ** 30 - 1, 2 ** 30, 2 ** 31 - 1, 2 ** 31, HUGE - 1];

test("a tensor of more than 2 GiB is read from external data (sparse file, no disk used)", async () => {
  const dir = tmp();
  try {
    const fd = openSync(path.join(dir, "w.bin"), "w");
    ftruncateSync(fd, HUGE + 8192);
    MARKS.forEach((at, i) => writeSync(fd, Uint8Array.of(i + 1), 0, 1, at));
    closeSync(fd);
    const file = path.join(dir, "huge.onnx");
    writeFileSync(file, oneExternal(HUGE).toBytes());
    const m = await Model.load(file);
    const bytes = tensorRawBytes(m.graph.initializer[0]!, m.dir);
    assert.equal(bytes.byteLength, HUGE);
    assert.deepEqual(MARKS.map((at) => bytes[at]), MARKS.map((_, i) => i + 1));
    assert.equal(bytes[12345], 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a tensor of more than 2 GiB is written to external data", async () => {
  const dir = tmp();
  try {
    const raw = new Uint8Array(HUGE); // untouched pages cost no memory
    MARKS.forEach((at, i) => (raw[at] = i + 1));
    const t: TensorProto = create(TensorProtoSchema, { name: "huge", dataType: DataType.UINT8, dims: [BigInt(HUGE)], rawData: raw });
    const g = makeGraph("huge", [], [], [makeValueInfo("huge", DataType.UINT8, [HUGE])], { initializers: [t] });
    const file = path.join(dir, "huge.onnx");
    await Model.fromProto(makeModel(g)).save(file, { externalData: true });
    assert.deepEqual(listing(dir), ["huge.onnx", "huge.onnx.data"]);
    assert.equal(statSync(path.join(dir, "huge.onnx.data")).size, HUGE);
    const fd = openSync(path.join(dir, "huge.onnx.data"), "r");
    const one = new Uint8Array(1);
    const got = MARKS.map((at) => (readSync(fd, one, 0, 1, at), one[0]));
    closeSync(fd);
    assert.deepEqual(got, MARKS.map((_, i) => i + 1));
    const back = await Model.load(file);
    assert.deepEqual(externalRef(back.graph.initializer[0]!), { location: "huge.onnx.data", offset: 0, length: HUGE });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an existing data file is part of the output: refused without overwrite", async () => {
  const dir = tmp();
  try {
    const out = path.join(dir, "out.onnx");
    writeFileSync(out + ".data", "another model's weights");
    await assert.rejects(
      weights(1).save(out, { externalData: true }),
      /out\.onnx\.data: the external data file of this output exists: choose another output, or replace it \(CLI: --overwrite; API: \{ overwrite: true \}\)/,
    );
    assert.deepEqual(listing(dir), ["out.onnx.data"]);
    assert.equal(readFileSync(out + ".data", "utf8"), "another model's weights");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const bigOf = (m: Model) => m.readTensor(m.graph.initializer.find((t) => t.name === "big")!).data;

test("overwriting a model with external data: a reader sees the old pair or the new pair, never a mix", async () => {
  const dir = tmp();
  try {
    const out = path.join(dir, "out.onnx");
    const old = weights(1);
    const next = weights(2);
    await old.save(out, { externalData: true });
    const unrelated = path.join(dir, "out.onnx.7.data"); // named like ours, but the old model does not use it
    writeFileSync(unrelated, "keep");
    const [oldBig, newBig] = [old, next].map((m) => JSON.stringify(bigOf(m)));
    const views: string[] = [];
    const reader = () => {
      const v = JSON.stringify(bigOf(Model.loadSync(out)));
      views.push(v === oldBig ? "old" : v === newBig ? "new" : "MIXED");
    };
    // Every rename is a moment another process may open the output: look just before and just after each.
    const rename = fs.renameSync;
    mock.method(fs, "renameSync", (from: fs.PathLike, to: fs.PathLike) => {
      reader();
      rename(from, to);
      reader();
    });
    try {
      await next.save(out, { externalData: true, overwrite: true });
    } finally {
      mock.restoreAll();
    }
    assert.ok(views.length >= 4 && !views.includes("MIXED"), `reader views: ${views.join(", ")}`);
    assert.equal(views.at(-1), "new");
    // The new data went under a fresh name; the old data file is gone once nothing uses it.
    const back = await Model.load(out);
    assert.deepEqual(bigOf(back), bigOf(next));
    assert.equal(externalRef(back.graph.initializer[0]!).location, "out.onnx.1.data");
    assert.deepEqual(listing(dir), ["out.onnx", "out.onnx.1.data", "out.onnx.7.data"]);
    // Saving again goes back to the plain name and removes the fresh one; inline removes the data file.
    await old.save(out, { externalData: true, overwrite: true });
    assert.deepEqual(listing(dir), ["out.onnx", "out.onnx.7.data", "out.onnx.data"]);
    await old.save(out, { overwrite: true });
    assert.deepEqual(listing(dir), ["out.onnx", "out.onnx.7.data"]);
    assert.equal(readFileSync(unrelated, "utf8"), "keep");
  } finally {
    mock.restoreAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a save that fails leaves the old output and nothing else", async () => {
  const dir = tmp();
  try {
    const out = path.join(dir, "out.onnx");
    await weights(1).save(out, { externalData: true });
    const before = new Map(listing(dir).map((f) => [f, readFileSync(path.join(dir, f))]));
    const rename = fs.renameSync;
    // The model's rename fails (disk full, a crash of the disk...), after its data was written.
    mock.method(fs, "renameSync", (from: fs.PathLike, to: fs.PathLike) => {
      if (path.resolve(String(to)) === out) throw new Error("injected: rename failed");
      rename(from, to);
    });
    try {
      await assert.rejects(weights(2).save(out, { externalData: true, overwrite: true }), /injected: rename failed/);
      await assert.rejects(weights(2).save(out, { overwrite: true }), /injected: rename failed/);
    } finally {
      mock.restoreAll();
    }
    assert.deepEqual(listing(dir), [...before.keys()]);
    for (const [f, bytes] of before) assert.deepEqual(readFileSync(path.join(dir, f)), bytes, f);
    // Failing while writing the data (a tensor whose own external file is missing) leaves nothing either.
    const src = path.join(dir, "src");
    mkdirSync(src);
    await weights(3).save(path.join(src, "s.onnx"), { externalData: true });
    const broken = Model.fromBytes(readFileSync(path.join(src, "s.onnx")), { path: path.join(src, "s.onnx"), skipValidation: true });
    rmSync(path.join(src, "s.onnx.data"));
    await assert.rejects(broken.save(path.join(dir, "new.onnx"), { externalData: true }), /is missing/);
    assert.deepEqual(listing(dir), [...before.keys(), "src"].sort());
  } finally {
    mock.restoreAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("externalData.location must stay inside the output's folder", { skip: !posix }, async () => {
  const parent = tmp();
  const outside = tmp();
  try {
    const dir = path.join(parent, "out");
    mkdirSync(dir);
    const out = path.join(dir, "m.onnx");
    const m = weights(1);
    for (const location of ["../x.bin", "a/../../x.bin", path.join(outside, "x.bin"), "", "."]) {
      await assert.rejects(
        m.save(out, { externalData: { location } }),
        new RegExp(`m\\.onnx: externalData\\.location ".*" must be a relative path inside the output's folder`),
        location,
      );
    }
    symlinkSync(outside, path.join(dir, "sub"));
    await assert.rejects(m.save(out, { externalData: { location: "sub/x.bin" } }), /externalData\.location "sub\/x\.bin" leads outside the output's folder/);
    await assert.rejects(m.save(out, { externalData: { location: "nope/x.bin" } }), /the folder of externalData\.location "nope\/x\.bin" does not exist/);
    assert.deepEqual(listing(parent), ["out"]);
    assert.deepEqual(listing(dir), ["sub"]);
    assert.deepEqual(listing(outside), []);
    // A normalised location inside the folder is fine, and is what the model records.
    mkdirSync(path.join(dir, "w"));
    await m.save(out, { externalData: { location: "./w//data.bin" } });
    assert.equal(externalRef((await Model.load(out)).graph.initializer[0]!).location, "w/data.bin");
  } finally {
    rmSync(parent, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});
