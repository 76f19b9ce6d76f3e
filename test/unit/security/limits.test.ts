// Hostile and broken data files (issue #16): images, .npz archives and .npy files that claim far more than they
// hold, and tiny models whose declared inputs are gigabytes. Each is built here, in a fresh folder, and must be
// refused before the memory it asks for is allocated, with a message naming the file or input, the limit and how to
// raise it. The end-to-end cases use lowered limits, so even without the checks they stay small and quick.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { crc32, deflateRawSync, deflateSync } from "node:zlib";
import { toBinary } from "@bufbuild/protobuf";
import jpeg from "jpeg-js";
import { ModelProtoSchema } from "onnx-buf";
import { PNG } from "pngjs";
import { generateFeeds } from "../../../engine/analysis/feeds";
import { run as inspect } from "../../../cli/inspect";
import { imageHeader, readImageFolder } from "../../../engine/data/images";
import { checkFeedBytes, LIMITS, LimitError, limitOf } from "../../../engine/onnx/limits";
import { encodeNpy, parseNpy } from "../../../engine/data/npy";
import { openData, readNpyFolder, readNpz } from "../../../engine/data/readers";
import { randomData } from "../../../engine/data/random";
import { DataType } from "../../../engine/onnx/dtype";
import { makeGraph, makeModel, makeNode, makeValueInfo, type Dim } from "../../../engine/onnx/proto";
import { intermediateShapes } from "../../../engine/runtime/shapes";
import { Model } from "../../../engine/onnx/model";

const MiB = 2 ** 20;

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-limits-"));
  const done = () => rmSync(dir, { recursive: true, force: true });
  try {
    const r = fn(dir);
    if (r instanceof Promise) return r.finally(done) as T;
    done();
    return r;
  } catch (e) {
    done();
    throw e;
  }
}

async function withEnv<T>(name: string, value: string, fn: () => Promise<T> | T): Promise<T> {
  const before = process.env[name];
  process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

const oneInput = (shape: Dim[], type = DataType.FLOAT) =>
  makeModel(makeGraph("g", [makeNode("Identity", ["x"], ["y"])], [makeValueInfo("x", type, shape)], [makeValueInfo("y", type, shape)]));

test("limits: defaults, the environment overrides them, an option overrides both, a bad value is named", () => {
  assert.equal(limitOf("imagePixels", undefined, {}), 100_000_000);
  assert.equal(limitOf("npzBytes", undefined, {}), 2 ** 30);
  assert.equal(limitOf("feedBytes", undefined, {}), 2 ** 30);
  for (const info of Object.values(LIMITS)) assert.match(info.env, /^PTQ_LIMIT_[A-Z_]+$/);
  assert.equal(limitOf("feedBytes", undefined, { PTQ_LIMIT_FEED_BYTES: "4294967296" }), 2 ** 32);
  assert.equal(limitOf("feedBytes", { feedBytes: 5 }, { PTQ_LIMIT_FEED_BYTES: "4294967296" }), 5);
  assert.throws(() => limitOf("imagePixels", undefined, { PTQ_LIMIT_IMAGE_PIXELS: "lots" }), /PTQ_LIMIT_IMAGE_PIXELS=lots: give a positive whole number of pixels/);
  assert.throws(() => limitOf("npzBytes", undefined, { PTQ_LIMIT_NPZ_BYTES: "-1" }), /PTQ_LIMIT_NPZ_BYTES=-1/);
});

// ---- images ----

function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/** A PNG whose IHDR says width×height (8-bit RGBA) and whose IDAT is `idat` deflated: a few hundred bytes. */
function hostilePng(width: number, height: number, idat: Uint8Array = new Uint8Array(16), interlaced = false): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, interlaced ? 1 : 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(idat)), chunk("IEND", new Uint8Array())]);
}

function realPng(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  png.data.fill(128);
  return PNG.sync.write(png);
}

function realJpeg(width: number, height: number): Buffer {
  return Buffer.from(jpeg.encode({ width, height, data: Buffer.alloc(width * height * 4, 100) }, 90).data);
}

const gray = (shape: Dim[] = ["N", 1, 8, 8]) => oneInput(shape);

test("images: a 60000×60000 PNG or JPEG is refused by its header under the default limit", () => {
  const png = hostilePng(60000, 60000);
  assert.ok(png.length < 400, `the hostile PNG is ${png.length} bytes`);
  assert.deepEqual(imageHeader(png), { width: 60000, height: 60000, interlaced: false });
  // A JPEG's frame header (SOF0) after an APP0 segment: 60000 = 0xea60.
  const app0 = [0xff, 0xe0, 0x00, 0x10, ...Buffer.from("JFIF\0"), 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const sof0 = [0xff, 0xc0, 0x00, 0x0b, 8, 0xea, 0x60, 0xea, 0x60, 1, 1, 0x11, 0];
  assert.deepEqual(imageHeader(Uint8Array.from([0xff, 0xd8, ...app0, ...sof0, 0xff, 0xd9])), { width: 60000, height: 60000, interlaced: false });
  assert.deepEqual(imageHeader(realJpeg(40, 30)), { width: 40, height: 30, interlaced: false });
  assert.ok(60000 * 60000 > limitOf("imagePixels", undefined, {}));
});

test("images: a PNG or JPEG declaring more pixels than the limit is refused before decoding, naming file, size and limit", () =>
  withDir((dir) => {
    writeFileSync(path.join(dir, "a.png"), realPng(40, 30));
    // Under the limit it reads; one pixel less and it is refused.
    assert.equal([...readImageFolder(dir, gray(), { limits: { imagePixels: 1200 } })].length, 1);
    assert.throws(
      () => [...readImageFolder(dir, gray(), { limits: { imagePixels: 1199 } })],
      (e: Error) =>
        e instanceof LimitError &&
        e.message.includes(path.join(dir, "a.png")) &&
        /declares 40×30 = 1200 pixels, over the limit of 1199 pixels \(PTQ_LIMIT_IMAGE_PIXELS\)/.test(e.message) &&
        /PTQ_LIMIT_IMAGE_PIXELS=1200, or the option limits\.imagePixels/.test(e.message),
    );
    rmSync(path.join(dir, "a.png"));
    writeFileSync(path.join(dir, "b.jpg"), realJpeg(40, 30));
    assert.throws(() => [...readImageFolder(dir, gray(), { limits: { imagePixels: 1000 } })], /b\.jpg: declares 40×30 = 1200 pixels/);
    // The environment variable reaches the readers the CLI uses.
    return withEnv("PTQ_LIMIT_IMAGE_PIXELS", "1000", () => assert.throws(() => [...openData(dir, gray())], /b\.jpg: declares 40×30/));
  }));

test("images: a lying PNG header (tiny data, 3000×3000 declared) is refused by its header, not decoded", () =>
  withDir((dir) => {
    writeFileSync(path.join(dir, "bomb.png"), hostilePng(3000, 3000));
    assert.throws(() => [...readImageFolder(dir, gray(), { limits: { imagePixels: 1_000_000 } })], /bomb\.png: declares 3000×3000 = 9000000 pixels, over the limit/);
  }));

test("images: an interlaced PNG whose data inflates past its declared size is refused", () =>
  withDir((dir) => {
    // 16×16 RGBA holds about 1 KiB; its IDAT inflates to 32 MiB (about 32 KiB on disk).
    writeFileSync(path.join(dir, "i.png"), hostilePng(16, 16, new Uint8Array(32 * MiB), true));
    assert.throws(() => [...readImageFolder(dir, gray())], /i\.png: its image data inflates past the \d+ bytes a 16×16 image can hold/);
  }));

test("images: a batch sized by the model larger than the feed limit is refused before it is allocated", () =>
  withDir((dir) => {
    writeFileSync(path.join(dir, "a.png"), realPng(4, 4));
    // 1 × 3 × 512 × 512 float32 = 3 MiB.
    assert.throws(
      () => [...readImageFolder(dir, oneInput(["N", 3, 512, 512]), { limits: { feedBytes: MiB } })],
      /a batch of 1 image\(s\): input "x" with shape \[1, 3, 512, 512\] needs 3145728 bytes \(3 MiB\), over the limit of 1048576 bytes \(1 MiB\) \(PTQ_LIMIT_FEED_BYTES\)/,
    );
  }));

// ---- .npz ----

interface ZipItem {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** What the headers claim, when they lie. */
  size?: number;
  compressedSize?: number;
}

/** A zip (what numpy.savez writes): local headers and data, central directory, end record. */
function zip(items: ZipItem[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const it of items) {
    const body = it.deflate ? deflateRawSync(it.data) : Buffer.from(it.data);
    const name = Buffer.from(it.name);
    const fields = (h: Buffer, at: number) => {
      h.writeUInt16LE(it.deflate ? 8 : 0, at);
      h.writeUInt32LE(crc32(it.data), at + 6);
      h.writeUInt32LE(it.compressedSize ?? body.length, at + 10);
      h.writeUInt32LE(it.size ?? it.data.length, at + 14);
      h.writeUInt16LE(name.length, at + 18);
    };
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    fields(local, 8);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    fields(dir, 10);
    dir.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    central.push(dir, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(items.length, 8);
  end.writeUInt16LE(items.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

const floats = (rows: number, cols: number) => encodeNpy(new Float32Array(rows * cols), [rows, cols]);
const vec = oneInput(["n", 1024]);

test("npz: an archive inflating past the npzBytes limit is refused, naming file, entry and limit", () =>
  withDir((dir) => {
    const file = path.join(dir, "calib.npz");
    writeFileSync(file, zip([{ name: "x.npy", data: floats(256, 1024), deflate: true }])); // 1 MiB, a few KiB on disk
    assert.equal([...readNpz(file, vec)].length, 1);
    assert.throws(
      () => [...readNpz(file, vec, { limits: { npzBytes: 512 * 1024 } })],
      (e: Error) =>
        e instanceof LimitError &&
        e.message.startsWith(`${file}: entry "x.npy" declares that it inflates to 1048704 bytes (1 MiB), over`) &&
        /over the limit of 524288 bytes \(512 KiB\) \(PTQ_LIMIT_NPZ_BYTES\)/.test(e.message) &&
        /PTQ_LIMIT_NPZ_BYTES=1048704/.test(e.message),
    );
    // The limit is per archive: two entries of 600 KiB each pass it together.
    writeFileSync(file, zip([{ name: "x.npy", data: floats(150, 1024), deflate: true }, { name: "y.npy", data: floats(150, 1024), deflate: true }]));
    assert.throws(() => [...readNpz(file, vec, { limits: { npzBytes: MiB } })], /entry "y\.npy" declares \d+ bytes, bringing the archive to \d+ bytes \(1\.17 MiB\), over/);
    return withEnv("PTQ_LIMIT_NPZ_BYTES", String(MiB), () => assert.throws(() => [...openData(file, vec)], /PTQ_LIMIT_NPZ_BYTES/));
  }));

test("npz: an entry whose header understates its size stops inflating at the declared size", () =>
  withDir((dir) => {
    const file = path.join(dir, "bomb.npz");
    // 32 MiB of zeros deflate to ~32 KiB; the headers say 128 bytes.
    writeFileSync(file, zip([{ name: "x.npy", data: floats(8192, 1024), deflate: true, size: 128 }]));
    assert.throws(() => [...readNpz(file, vec)], /bomb\.npz: zip entry "x\.npy" inflates to more than the 128 bytes its header declares/);
  }));

test("npz: an entry declaring 4 GiB, or compressed bytes past the end of the file, is refused before reading it", () =>
  withDir((dir) => {
    const file = path.join(dir, "big.npz");
    writeFileSync(file, zip([{ name: "x.npy", data: floats(1, 1024), deflate: true, size: 0xfffffffe }]));
    assert.throws(() => [...readNpz(file, vec)], /big\.npz: entry "x\.npy" declares that it inflates to 4294967294 bytes \(4 GiB\), over the limit of 1073741824 bytes \(1 GiB\)/);
    writeFileSync(file, zip([{ name: "x.npy", data: floats(1, 1024), compressedSize: 0x7fffffff }]));
    assert.throws(() => [...readNpz(file, vec)], /big\.npz: zip entry "x\.npy" is truncated \(2147483647 bytes declared past the end of the file\)/);
  }));

// ---- .npy ----

function npyWithShape(shape: string, data: Uint8Array = new Uint8Array(0), descr = "<f4"): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const header = dict + " ".repeat((64 - ((10 + dict.length + 1) % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(Buffer.from(header, "latin1"), 10);
  out.set(data, 10 + header.length);
  return out;
}

test("npy: negative or fractional dimensions, data that does not match the shape and short headers are refused by name", () =>
  withDir((dir) => {
    const file = path.join(dir, "neg.npy");
    writeFileSync(file, npyWithShape("(-1, 1, 28, 28)", new Uint8Array(4 * 784)));
    assert.throws(() => [...readNpyFolder(dir, oneInput(["N", 1, 28, 28]))], (e: Error) =>
      e.message === `${file}: .npy shape (-1, 1, 28, 28) has the dimension "-1"; dimensions must be whole numbers >= 0`);
    assert.throws(() => parseNpy(npyWithShape("(2.5,)", new Uint8Array(8)), "frac.npy"), /frac\.npy: .npy shape \(2\.5,\) has the dimension "2\.5"/);
    // More data than the shape holds: the header does not describe the file.
    assert.throws(() => parseNpy(npyWithShape("(2,)", new Uint8Array(16)), "long.npy"), /long\.npy: shape \[2\] needs 8 bytes of data, but the file has 16/);
    // A header length past the end of the file.
    const cut = npyWithShape("(2,)", new Uint8Array(8));
    cut[8] = 0xff;
    cut[9] = 0xff;
    assert.throws(() => parseNpy(cut, "cut.npy"), /cut\.npy: truncated: its .npy header says 65535 bytes/);
    // Python 2's long integers still read.
    assert.deepEqual(parseNpy(npyWithShape("(2L, 1L)", new Uint8Array(8)), "py2.npy").dims, [2, 1]);
  }));

// ---- generated feeds ----

test("feeds: the default limit refuses an input of [20000, 20000] floats by name and shape, without allocating it", () => {
  assert.throws(
    () => checkFeedBytes([{ name: "x", dims: [20000, 20000], bytesPerElement: 4 }], "zero-filled inputs to run the model on", {}),
    /zero-filled inputs to run the model on: input "x" with shape \[20000, 20000\] needs 1600000000 bytes \(1\.49 GiB\), over the limit of 1073741824 bytes \(1 GiB\)/,
  );
  checkFeedBytes([{ name: "x", dims: [256, 3, 224, 224], bytesPerElement: 4 }], "random data", {}); // 154 MB: fine
});

test("feeds: randomData and generateFeeds (bench, report) refuse inputs past the limit, naming input and shape", async () => {
  const model = oneInput(["n", 1024]);
  assert.equal([...randomData(model, 1, { batchSize: 256, warn: () => undefined, limits: { feedBytes: MiB } })].length, 1);
  assert.throws(
    () => [...randomData(model, 1, { batchSize: 257, warn: () => undefined, limits: { feedBytes: MiB } })],
    /random data: input "x" with shape \[257, 1024\] needs 1052672 bytes \(1 MiB\), over the limit of 1048576 bytes \(1 MiB\)/,
  );
  // Two inputs count together; the message names the larger.
  const two = makeModel(makeGraph("g", [], [makeValueInfo("a", DataType.FLOAT, [512]), makeValueInfo("ids", DataType.INT64, [200, 1024])], []));
  assert.throws(() => [...randomData(two, 1, { warn: () => undefined, limits: { feedBytes: MiB } })], /input "ids" with shape \[200, 1024\] \(1638400 bytes \(1\.56 MiB\) of it for this input\) needs 1640448 bytes/);
  await withEnv("PTQ_LIMIT_FEED_BYTES", String(MiB), () =>
    assert.throws(() => generateFeeds([{ name: "x", type: "float32", shape: [-1, 1024] }], 512), /input "x" with shape \[512, 1024\] needs 2097152 bytes/));
});

test("feeds: intermediateShapes sizes both runs' zero inputs before running; ptq inspect still prints the summary", () =>
  withDir(async (dir) => {
    const file = path.join(dir, "wide.onnx");
    writeFileSync(file, toBinary(ModelProtoSchema, oneInput(["batch", 1024])));
    const model = await Model.load(file);
    // 1 × 1024 float32 = 4 KiB for the first run, 8 KiB for the second (symbolic dims doubled): both are checked.
    assert.equal((await intermediateShapes(model, { limits: { feedBytes: 8192 } })).length, 1);
    await assert.rejects(intermediateShapes(model, { limits: { feedBytes: 8191 } }), /zero-filled inputs to run the model on: input "x" with shape \[2, 1024\] needs 8192 bytes/);
    let out = "";
    const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
    const before = readdirSync(dir);
    await withEnv("PTQ_LIMIT_FEED_BYTES", "4095", async () => {
      assert.equal(await inspect([file], io), 0);
      assert.match(out, /Inputs:\n  x: float \[batch, 1024\]/);
      assert.match(out, /Intermediate shapes unavailable: the model was not run: zero-filled inputs .*input "x" with shape \[1, 1024\] needs 4096 bytes \(4 KiB\), over the limit of 4095 bytes \(4 KiB\) \(PTQ_LIMIT_FEED_BYTES\)/);
      out = "";
      assert.equal(await inspect([file, "--json"], io), 0);
      assert.match(JSON.parse(out).shapeError, /the model was not run: .*PTQ_LIMIT_FEED_BYTES/);
    });
    assert.deepEqual(readdirSync(dir), before);
  }));
