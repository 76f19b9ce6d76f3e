// rounding "auto": learned rounding fitted on half the kept calibration rows and judged on the other half (both ways
// round), written only where the judged rows measure it better at the outputs; otherwise convert()'s nearest codes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Feeds } from "../../../engine/data/feeds";
import { encodeNpy } from "../../../engine/data/npy";
import { seededRandom } from "../../../engine/data/random";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { Model } from "../../../engine/onnx/model";
import { searchMixedPrecision } from "../../../engine/analysis/sensitivity";
import { calibrate, prepare, quantizeDynamic, quantizeStatic as quantizeStaticOfQuant, release } from "../../../engine/quant/index";
import { checkSequences } from "../../../engine/quant/sequence-check";
import { resolveConfig } from "../../../engine/quant/types";
import { chooseRounding, learnedWins, quantizeStatic, ROUNDING_BOUND_DB, splitRows } from "../../../engine/recovery/rounding-choice";
import { batches, init, model, outputSqnr, quantize, rand, sequenceModel } from "./build";
import { ptq as ptqChild, said } from "../cli/ptq-child";

/** Batches of [4, 8, 10, 10] whose channels share one smooth component, as neighbouring channels of images do: there
 *  learned rounding has correlations to exploit (with independent inputs it has none). */
function correlated(count: number, seed: number): Feeds[] {
  const next = seededRandom(seed);
  const dims = [4, 8, 10, 10];
  return Array.from({ length: count }, () => {
    const data = new Float32Array(4 * 8 * 100);
    for (let n = 0; n < 4; n++) {
      const common = Float32Array.from({ length: 100 }, (_, i) => Math.sin((i % 10) / 3 + Math.floor(i / 10) / 5 + 6 * next()) + 0.5);
      for (let c = 0; c < 8; c++) for (let i = 0; i < 100; i++) data[(n * 8 + c) * 100 + i] = common[i]! * (1 + 0.3 * next()) + 0.2 * (next() - 0.5);
    }
    return { x: { data, dims } };
  });
}

const conv = () =>
  model(
    [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] })],
    ["x", [4, 8, 10, 10]],
    ["y", [4, 16, 10, 10]],
    [init("W", [16, 8, 3, 3], rand(16 * 8 * 9, 7, -0.5, 0.5)), init("B", [16], rand(16, 8, -0.1, 0.1))],
  );

test("splitRows: every other row fits, the rows between judge", () => {
  assert.deepEqual(splitRows([0, 1, 2, 3, 4]), { fit: [0, 2, 4], judge: [1, 3] });
  assert.deepEqual(splitRows([]), { fit: [], judge: [] });
});

test("learnedWins: only where the judged rows bound the gain above zero", () => {
  assert.equal(ROUNDING_BOUND_DB, 0);
  assert.equal(learnedWins({ mean: 0.58, lower: 0.03, rows: 16 }), true, "ppocr-v3-det-en's figures");
  assert.equal(learnedWins({ mean: 0.23, lower: -0.33, rows: 16 }), false, "ppocr-v3-det-ch's: better on average, not measurably");
  assert.equal(learnedWins({ mean: 0.5, lower: 0, rows: 16 }), false, "a bound of exactly zero is not above it");
  assert.equal(learnedWins({ mean: 2, lower: 1, rows: 1 }), false, "one row bounds nothing");
  assert.equal(learnedWins({ mean: 4.12, lower: -13.54, pooledLower: 5.06, rows: 16 }), true, "oww-hey-jarvis's: a score a row, the pooled bound clears");
  assert.equal(learnedWins({ mean: 0.58, lower: 0.03, pooledLower: -0.1, rows: 16 }), true, "either bound");
  assert.equal(learnedWins({ mean: 0.23, lower: -0.33, pooledLower: -0.22, rows: 16 }), false);
});

test("chooseRounding writes learned codes where the rows they were not fitted on measure them better", async () => {
  const m = conv();
  const calib = correlated(8, 1);
  const { float, q } = await quantize(m, calib);
  const { model: chosen, choice } = await chooseRounding(float, q, calib);
  assert.equal(choice.method, "learned", choice.why);
  assert.ok(choice.difference!.lower > 0 && choice.difference!.rows === 8, JSON.stringify(choice.difference));
  assert.match(choice.why, /^rounding auto chose learned rounding: learned codes fitted on every other of 8 calibration batches and judged on the batches between, and the other way round \(1 layer\(s\), mean layer output SQNR [\d.]+ → [\d.]+ dB and [\d.]+ → [\d.]+ dB\): worst-output SQNR nearest [\d.]+ dB, learned [\d.]+ dB; learned − nearest per batch: mean \+[\d.]+ dB, lower bound \+[\d.]+ dB; pooled \+[\d.]+ dB, lower bound \+[\d.]+ dB \(learned is taken where either bound is above 0 dB\); written: fitted on all 8 batches \(1 layer\(s\), mean layer output SQNR [\d.]+ → [\d.]+ dB\)$/);
  assert.notDeepEqual(chosen.toBytes(), q.toBytes());
  const heldOut = correlated(4, 900);
  const [near, learned] = [await outputSqnr(m, q, heldOut), await outputSqnr(m, chosen, heldOut)];
  assert.ok(learned > near, `held out: nearest ${near.toFixed(2)}, learned ${learned.toFixed(2)} dB`);
});

test("chooseRounding keeps nearest codes where learned ones do not measure better, and where there is too little to judge", async () => {
  const m = conv();
  // Independent uniform inputs: error feedback has nothing to exploit, so the learned codes gain nothing on the rows
  // they were not fitted on, beside the output's own 8-bit rounding (kept: keepFinalConvFloat off).
  const calib = batches("x", [4, 8, 10, 10], 8, 3);
  const { float, q } = await quantize(m, calib, { keepFinalConvFloat: false });
  const r = await chooseRounding(float, q, calib);
  assert.equal(r.choice.method, "nearest", r.choice.why);
  assert.equal(r.model, q, "convert()'s model itself");
  assert.ok(!learnedWins(r.choice.difference!), JSON.stringify(r.choice.difference));
  assert.match(r.choice.why, /^rounding auto kept nearest rounding: learned codes fitted on every other of 8 calibration/);
  const few = await chooseRounding(float, q, calib.slice(0, 3));
  assert.equal(few.model, q);
  assert.equal(few.choice.why, "rounding auto kept nearest rounding: 3 calibration row(s), too few to fit on some and judge on the others (it needs 4 or more)");
});

test("quantizeStatic with rounding auto writes the chosen codes and says why; the value is checked", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-rounding-auto-"));
  try {
    const m = conv();
    const calib = correlated(8, 1);
    const src = path.join(dir, "conv.onnx");
    await m.save(src);
    const auto = await quantizeStatic(src, path.join(dir, "auto.onnx"), calib, { rounding: "auto" });
    assert.equal(auto.rounding?.method, "learned", auto.rounding?.why);
    const plain = await quantizeStatic(src, path.join(dir, "nearest.onnx"), calib, { rounding: "nearest" });
    assert.equal(plain.rounding, undefined, "nearest, asked for, measures nothing");
    // Not asked for: this model's layers are light (under ROUNDING_AUTO_MACS a row), so static INT8's default is auto.
    const byDefault = await quantizeStatic(src, path.join(dir, "default.onnx"), calib);
    assert.equal(byDefault.rounding?.asked, "auto");
    assert.match(byDefault.rounding!.why, /^rounding auto \(the default: the quantized layers do [\d.]+ M multiply-adds a calibration batch, at most 200 M, where its fits cost little\) chose learned rounding: /);
    assert.deepEqual((await Model.load(path.join(dir, "default.onnx"))).toBytes(), (await Model.load(path.join(dir, "auto.onnx"))).toBytes());
    const [a, n] = [await Model.load(path.join(dir, "auto.onnx")), await Model.load(path.join(dir, "nearest.onnx"))];
    assert.notDeepEqual(a.toBytes(), n.toBytes());
    const heldOut = correlated(4, 900);
    assert.ok((await outputSqnr(m, a, heldOut)) > (await outputSqnr(m, n, heldOut)));
    const qop = await quantizeStatic(src, path.join(dir, "qop.onnx"), calib, { rounding: "auto", format: "qoperator" });
    assert.equal(qop.rounding?.method, "nearest");
    assert.match(qop.rounding!.why, /the format is qoperator/);
    // engine/quant's own quantizeStatic sits below learned rounding: asked for auto without the chooser, it refuses
    // before calibrating.
    await assert.rejects(quantizeStaticOfQuant(src, path.join(dir, "none.onnx"), calib, { rounding: "auto" }), /QConfig.rounding "auto" needs learned rounding, which this quantizeStatic \(engine\/quant\) does not load/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => resolveConfig({ rounding: "best" as never }), /QConfig.rounding: "best" is not one of nearest, learned, adaround, auto/);
});

test("quantizeStatic applies rounding learned and adaround itself (the library's, the kernel's and the CLI's), and refuses it where it does not apply", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-rounding-fixed-"));
  try {
    const m = conv();
    const calib = correlated(8, 1);
    const src = path.join(dir, "conv.onnx");
    await m.save(src);
    const out = (name: string) => path.join(dir, name);
    const plain = await quantizeStatic(src, out("nearest.onnx"), calib, { rounding: "nearest" });
    const heldOut = correlated(4, 900);
    const near = await outputSqnr(m, await Model.load(out("nearest.onnx")), heldOut);
    for (const asked of ["learned", "adaround"] as const) {
      const s = await quantizeStatic(src, out(`${asked}.onnx`), calib, { rounding: asked });
      assert.equal(s.rounding?.asked, asked);
      assert.equal(s.rounding?.method, asked, s.rounding?.why);
      assert.equal(s.rounding?.layers, 1);
      assert.match(s.rounding!.why, new RegExp(`^${asked} rounding: 1 layer\\(s\\) on their inputs from the quantized model, fitted on 8 calibration batches, mean layer output SQNR [\\d.]+ → [\\d.]+ dB$`));
      assert.ok(s.outputCheck, "the written codes are checked at the outputs, as nearest ones are");
      const written = await Model.load(out(`${asked}.onnx`));
      assert.notDeepEqual(written.toBytes(), (await Model.load(out("nearest.onnx"))).toBytes());
      const got = await outputSqnr(m, written, heldOut);
      assert.ok(got > near, `${asked} held out ${got.toFixed(2)} dB, nearest ${near.toFixed(2)} dB`);
    }
    assert.equal(plain.rounding, undefined);
    // Refused before the data is read: Q/DQ codes only, static only, and never by engine/quant's own quantizeStatic.
    let read = false;
    const watched = (async function* () {
      read = true;
      yield* calib;
    })();
    await assert.rejects(quantizeStatic(src, out("qop.onnx"), watched, { rounding: "learned", format: "qoperator" }), /QConfig.rounding "learned" rewrites the weight codes of a Q\/DQ model: use format "qdq"/);
    assert.equal(read, false, "refused before calibrating");
    await assert.rejects(quantizeStaticOfQuant(src, out("none.onnx"), calib, { rounding: "adaround" }), /QConfig.rounding "adaround" needs learned rounding, which this quantizeStatic \(engine\/quant\) does not load/);
    await assert.rejects(quantizeDynamic(src, out("dyn.onnx"), { rounding: "learned" }), /QConfig.rounding "learned" chooses weight codes against calibrated layer outputs: static INT8 and the low-bit modes take it, dynamic INT8 does not/);
    const prepared = await prepare(m, { rounding: "learned" });
    try {
      await calibrate(prepared, calib);
      await assert.rejects(searchMixedPrecision(prepared, calib, { kind: "sqnr", minDb: 30 }), /QConfig.rounding "learned" is not applied by the accuracy-target search/);
    } finally {
      await release(prepared);
    }
    for (const name of ["qop.onnx", "none.onnx", "dyn.onnx"]) assert.equal(existsSync(out(name)), false, `${name} not written`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a stop asked through the progress callback rejects the choice: it is not taken for a fit that failed", async () => {
  const calib = correlated(8, 1);
  const { float, q } = await quantize(conv(), calib);
  const steps: number[] = [];
  const onStep = (done: number) => {
    steps.push(done);
    if (done === 1) throw new Error("stopped by the test"); // as quantizeStatic's phase progress throws on an abort
  };
  await assert.rejects(chooseRounding(float, q, calib, {}, onStep), /stopped by the test/);
  assert.deepEqual(steps, [0, 1], "stopped after the first fit");
});

test("a sequence model's summary reads the codes written: learned ones where auto chose them", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-rounding-auto-seq-"));
  try {
    const { m, rows } = sequenceModel(24, 16, 10);
    const src = path.join(dir, "seq.onnx");
    await m.save(src);
    const config = { calibration: { wideActivations: 0 } };
    const auto = await quantizeStatic(src, path.join(dir, "auto.onnx"), rows, { ...config, rounding: "auto" });
    const plain = await quantizeStatic(src, path.join(dir, "nearest.onnx"), rows, { ...config, rounding: "nearest" });
    assert.equal(auto.rounding?.method, "learned", auto.rounding?.why);
    const written = await checkSequences(m, await Model.load(path.join(dir, "auto.onnx")), rows);
    assert.deepEqual(auto.sequences, { outputs: ["y"], rows: 16, same: written!.same });
    assert.notEqual(auto.sequences!.same, plain.sequences!.same, "the learned codes read another number of rows alike than the nearest ones");
    const notes = auto.warnings.filter((w) => w.startsWith("sequence outputs ("));
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, new RegExp(`^sequence outputs \\(y\\): ${written!.same} of 16 calibration rows decode`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `ptq quantize ARGS` (test/unit/cli/ptq-child): the exit code and what it printed. */
function ptq(args: string[]): { code: number | null; said: string } {
  const r = ptqChild("quantize", ...args);
  return { code: r.status, said: said(r) };
}

test("ptq quantize --rounding auto prints the choice (static INT8, int4) and is refused where it does not apply", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-rounding-auto-cli-"));
  try {
    await conv().save(path.join(dir, "conv.onnx"));
    mkdirSync(path.join(dir, "calib"));
    const calib = correlated(8, 1);
    const all = new Float32Array(32 * 800);
    calib.forEach((b, i) => all.set(b.x!.data as Float32Array, i * 3200));
    writeFileSync(path.join(dir, "calib", "x.npy"), encodeNpy(all, [32, 8, 10, 10]));
    const args = (out: string) => [path.join(dir, "conv.onnx"), "-o", path.join(dir, out), "--calib", path.join(dir, "calib"), "--batch-size", "4", "--no-optimize"];
    const auto = ptq([...args("auto.onnx"), "--rounding", "auto"]);
    assert.equal(auto.code, 0, auto.said);
    assert.match(auto.said, /\n {2}rounding auto chose learned rounding: learned codes fitted on every other of 8 calibration batches .* \([\d.]+ s\)\n/);
    const lowBit = (mode: string) => [path.join(dir, "conv.onnx"), "-o", path.join(dir, `${mode}.onnx`), "--calib", path.join(dir, "calib"), "--mode", mode];
    const refused: [string[], RegExp][] = [
      [[...args("target.onnx"), "--target-sqnr", "30"], /--rounding auto is not applied by the accuracy-target search/],
    ];
    const fp4 = ptq([...lowBit("fp4"), "--rounding", "auto"]);
    assert.equal(fp4.code, 0, fp4.said);
    // This Conv is small enough to be stored int8 (its FP4 form would be larger): nothing for learned codes.
    assert.match(fp4.said, /\n  note: rounding auto wrote nearest FP4 codes: no layer is left in FP4 for learned codes \(each one is int8, protected or small, or float\)\n/);
    const int4 = ptq([...lowBit("int4"), "--rounding", "auto"]);
    assert.equal(int4.code, 0, int4.said);
    assert.match(int4.said, /\n {2}note: rounding auto (chose GPTQ|kept nearest) int4 rounding: GPTQ codes fitted on every other of \d+ calibration /);
    for (const [argv, why] of refused) {
      const r = ptq([...argv, "--rounding", "auto"]);
      assert.equal(r.code, 1, `${argv.join(" ")}: ${r.said}`);
      assert.match(r.said, why);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("static INT8's default rounding: auto where the quantized layers do at most ROUNDING_AUTO_MACS multiply-adds, nearest above, and the summary says which and why", async () => {
  // One 3×3 Conv, 8 → 16 channels, on 512×512: 16·8·9 multiply-adds at each of 262 144 positions = 302 M a batch.
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-rounding-default-"));
  try {
    const heavy = model(
      [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] })],
      ["x", [1, 8, 512, 512]],
      ["y", [1, 16, 512, 512]],
      [init("W", [16, 8, 3, 3], rand(16 * 8 * 9, 7, -0.5, 0.5)), init("B", [16], rand(16, 8, -0.1, 0.1))],
    );
    const src = path.join(dir, "heavy.onnx");
    await heavy.save(src);
    const calib = [1, 2].map((seed) => ({ x: { data: rand(8 * 512 * 512, seed, -1, 1), dims: [1, 8, 512, 512] } }));
    const s = await quantizeStatic(src, path.join(dir, "heavy.int8.onnx"), calib);
    assert.deepEqual({ asked: s.rounding?.asked, method: s.rounding?.method }, { asked: "default", method: "nearest" });
    assert.equal(
      s.rounding!.why,
      "nearest rounding, static INT8's default here: the quantized layers do 302 M multiply-adds a calibration batch, over 200 M, where learned rounding's fits take 2–3× the conversion (--rounding auto measures them anyway)",
    );
    const asked = await quantizeStatic(src, path.join(dir, "nearest.int8.onnx"), calib, { rounding: "nearest" });
    assert.equal(asked.rounding, undefined, "nearest, asked for, says nothing");
    assert.deepEqual((await Model.load(path.join(dir, "heavy.int8.onnx"))).toBytes(), (await Model.load(path.join(dir, "nearest.int8.onnx"))).toBytes());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
