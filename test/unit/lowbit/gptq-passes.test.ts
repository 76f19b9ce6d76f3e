// GPTQ's Hessians in passes: where the int4 layers' matrices would not fit the cap and the data reads again, each
// pass collects some layers' Hessians, rounds them and drops them before the next. The file written is the one a
// single pass writes, byte for byte, on every path lowBitModelCalibrated takes (measure only, protection's deferred
// collection, rounding auto's half fits); data that reads once is read in one pass whatever the cap.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lowBitModelCalibrated, type LowBitOptions } from "../../../engine/lowbit";
import type { Feeds } from "../../../engine/data/feeds";
import { buildModel, randomArray } from "./models";

/** Gemm(x[·, 64]) → Relu → MatMul[48, 40], and Conv(img, 3 → 8, 3×3): float64 Hessians of 32, 18 and 5.7 KiB. */
const model = () => buildModel();

const batches = (n: number): Feeds[] =>
  Array.from({ length: n }, (_, b) => ({
    x: { data: randomArray(4 * 64, 10 + b, 1), dims: [4, 64] },
    img: { data: randomArray(4 * 3 * 64, 20 + b, 1), dims: [4, 3, 8, 8] },
  }));

/** Under this cap each of the three layers takes a pass of its own. */
const CAP = 20 * 1024;

const passesNote = (notes: readonly string[]) => notes.find((n) => /in \d+ passes over the data/.test(n));

async function same(options: LowBitOptions & { rounding?: "learned" | "auto" | "nearest" }, passes: number | undefined): Promise<string[]> {
  const data = batches(4);
  const one = await lowBitModelCalibrated(model(), options, data);
  const split = await lowBitModelCalibrated(model(), options, data, { passBytes: CAP });
  assert.deepEqual(Buffer.from(split.model.toBytes()), Buffer.from(one.model.toBytes()), "the file written in passes is the one-pass file");
  assert.deepEqual(split.report.layers, one.report.layers);
  assert.equal(passesNote(one.report.notes), undefined, one.report.notes.join("; "));
  const note = passesNote(split.report.notes);
  if (passes === undefined) assert.equal(note, undefined, split.report.notes.join("; "));
  else assert.match(note ?? split.report.notes.join("; "), new RegExp(`in ${passes} passes over the data, each collecting up to 20 KiB of Hessians`));
  return split.report.notes;
}

test("GPTQ in passes (measure only: every layer's Hessians, one pass each) writes the one-pass file", async () => {
  const notes = await same({ mode: "int4", algorithm: "gptq", blockSize: 16, protect: false }, 3);
  assert.ok(notes.some((n) => n.startsWith("GPTQ calibration: 16 batches, 16 activation rows per layer; 1 Conv(s) on")), notes.join("; "));
});

test("GPTQ in passes after protection's choice (the deferred collection, the layers it leaves int4) writes the one-pass file", async () => {
  await same({ mode: "int4", algorithm: "gptq", blockSize: 16, protect: { minOutputSqnrDb: 0 } }, 3);
});

test("rounding auto's half fits and the codes written, in passes, give the one-pass file", async () => {
  const notes = await same({ mode: "int4", blockSize: 16, rounding: "learned" }, 3);
  assert.ok(notes.some((n) => n.startsWith("learned rounding (GPTQ) calibration:")), notes.join("; "));
  const data = batches(4);
  const auto = { mode: "int4", blockSize: 16, rounding: "auto", protect: { minOutputSqnrDb: 0 } } as const;
  const one = await lowBitModelCalibrated(model(), auto, data);
  const split = await lowBitModelCalibrated(model(), auto, data, { passBytes: CAP });
  assert.deepEqual(Buffer.from(split.model.toBytes()), Buffer.from(one.model.toBytes()));
  const why = (notes: readonly string[]) => notes.find((n) => n.startsWith("rounding auto"))?.replace(/; [\d.]+ s\)/, ")");
  assert.equal(why(split.report.notes), why(one.report.notes), "the half fits judged the same");
});

test("data that reads once is read in one pass whatever the cap", async () => {
  const once = (async function* () {
    yield* batches(4);
  })();
  const { model: q, report } = await lowBitModelCalibrated(model(), { mode: "int4", algorithm: "gptq", blockSize: 16, protect: false }, once, { passBytes: CAP });
  assert.equal(passesNote(report.notes), undefined, report.notes.join("; "));
  const again = await lowBitModelCalibrated(model(), { mode: "int4", algorithm: "gptq", blockSize: 16, protect: false }, batches(4));
  assert.deepEqual(Buffer.from(q.toBytes()), Buffer.from(again.model.toBytes()));
});
