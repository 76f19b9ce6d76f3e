// Calibrating tiny models built in code, on real onnxruntime-node: the ranges must be the ones computed from the
// same data in JS (min/max exactly; histogram methods equal to the pure threshold functions on the same values).
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeGraph, makeModel, makeNode, makeValueInfo } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { Calibrator, type CalibrationMethod, type Feeds } from "../../../engine/calibrate/index";
import { StreamingHistogram } from "../../../engine/calibrate/histogram";
import { entropyThreshold, mseThreshold, percentileThreshold } from "../../../engine/calibrate/thresholds";

const W = [0.5, -2, 1, 3];

/** x [n,4] -> Mul(x, w: Constant node) = y -> Relu = z. An If whose branch makes "inner". */
function tinyModel(opset: number, withIf = false): Model {
  const nodes = [
    makeNode("Constant", [], ["w"], { attributes: [attr.tensor("value", makeTensor("w", DataType.FLOAT, [4], W))] }),
    makeNode("Mul", ["x", "w"], ["y"], { name: "mul" }),
    makeNode("Relu", ["y"], ["z"], { name: "relu" }),
  ];
  const outputs = [makeValueInfo("z", DataType.FLOAT, ["n", 4])];
  if (withIf) {
    const branch = (k: number) =>
      makeGraph(`b${k}`, [makeNode("Neg", ["z"], [`inner${k}`])], [], [makeValueInfo(`inner${k}`, DataType.FLOAT, ["n", 4])]);
    nodes.push(makeNode("Constant", [], ["cond"], { attributes: [attr.tensor("value", makeTensor("cond", DataType.BOOL, [], [1]))] }));
    nodes.push(makeNode("If", ["cond"], ["out"], { attributes: [attr.graph("then_branch", branch(0)), attr.graph("else_branch", branch(1))] }));
    outputs.push(makeValueInfo("out", DataType.FLOAT, ["n", 4]));
  }
  return Model.fromProto(makeModel(makeGraph("tiny", nodes, [makeValueInfo("x", DataType.FLOAT, ["n", 4])], outputs), { opsets: { "": opset } }));
}

function batches(sizes: number[], seed = 1, poison = false): { feeds: Feeds[]; y: number[]; z: number[] } {
  let s = seed;
  const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 4 - 2;
  const feeds: Feeds[] = [];
  const y: number[] = [];
  const z: number[] = [];
  for (const n of sizes) {
    const x = Float32Array.from({ length: n * 4 }, rand);
    if (poison) x[1] = NaN;
    feeds.push({ x: { data: x, dims: [n, 4] } });
    x.forEach((v, i) => {
      const m = Math.fround(v * W[i % 4]!);
      y.push(m);
      z.push(Math.max(0, m));
    });
  }
  return { feeds, y, z };
}

const finite = (a: number[]) => a.filter(Number.isFinite);
const minOf = (a: number[]) => finite(a).reduce((m, v) => Math.min(m, v), Infinity);
const maxOf = (a: number[]) => finite(a).reduce((m, v) => Math.max(m, v), -Infinity);

for (const opset of [7, 13, 18, 21]) {
  test(`minmax at opset ${opset}: exact ranges of input, Constant-weight Mul and Relu over dynamic batches`, async () => {
    const cal = new Calibrator(tinyModel(opset), ["x", "y", "z", "w"], { method: "minmax" });
    try {
      const { feeds, y, z } = batches([3, 1, 5]);
      const progress: Array<[number, number | undefined]> = [];
      await cal.collect(feeds, { onProgress: (d, t) => progress.push([d, t]) });
      assert.deepEqual(progress, [[1, 3], [2, 3], [3, 3]]);
      const r = cal.ranges();
      const xs = feeds.flatMap((f) => [...(f["x"]!.data as Float32Array)]);
      assert.deepEqual(r.get("x"), { min: minOf(xs), max: maxOf(xs) });
      assert.deepEqual(r.get("y"), { min: minOf(y), max: maxOf(y) });
      assert.deepEqual(r.get("z"), { min: 0, max: maxOf(z) });
      assert.deepEqual(r.get("w"), { min: -2, max: 3 });
      assert.equal(cal.histograms().size, 0);
    } finally {
      await cal.dispose();
    }
  });
}

test("collect can be called again: ranges widen with more data; symmetric and moving average", async () => {
  const cal = new Calibrator(tinyModel(13), ["y"], { method: "minmax", symmetric: true });
  const a = batches([4], 3);
  const b = batches([4], 9);
  await cal.collect(a.feeds);
  await cal.releaseSessions(); // calibrate() frees them before its measurements; collect() opens them again
  await cal.collect(b.feeds);
  const m = Math.max(Math.abs(minOf([...a.y, ...b.y])), maxOf([...a.y, ...b.y]));
  assert.deepEqual(cal.ranges().get("y"), { min: -m, max: m });
  await cal.dispose();
  await cal.dispose(); // idempotent

  // ORT's moving average: the batches of one collect() are averaged, later collect() calls move it by c.
  const c3 = batches([4], 17);
  const avg = new Calibrator(tinyModel(13), ["y"], { method: "minmax", movingAverage: true, averagingConstant: 0.25 });
  await avg.collect([...a.feeds, ...b.feeds]);
  await avg.collect(c3.feeds);
  const round1 = { min: (minOf(a.y) + minOf(b.y)) / 2, max: (maxOf(a.y) + maxOf(b.y)) / 2 };
  const want = {
    min: round1.min + 0.25 * (minOf(c3.y) - round1.min),
    max: round1.max + 0.25 * (maxOf(c3.y) - round1.max),
  };
  const got = avg.ranges().get("y")!;
  assert.ok(Math.abs(got.min - want.min) < 1e-6 && Math.abs(got.max - want.max) < 1e-6, JSON.stringify({ got, want }));
  await avg.dispose();
});

for (const method of ["entropy", "percentile", "mse"] as CalibrationMethod[]) {
  test(`${method}: ranges equal the threshold functions on histograms of the same values`, async () => {
    const opts = { method, numBins: 256, numQuantizedBins: 32, percentile: 99 };
    const cal = new Calibrator(tinyModel(13), ["y", "z"], opts);
    const { feeds, y, z } = batches([50, 20, 70], 5);
    await cal.collect(feeds, { onProgress() {} });
    for (const [name, values] of [["y", y], ["z", z]] as const) {
      const h = new StreamingHistogram(256);
      // The calibrator sees the values batch by batch: replay the same batch boundaries (50, 20, 70 rows of 4).
      h.observe(values.slice(0, 200));
      h.observe(values.slice(200, 280));
      h.observe(values.slice(280));
      const snap = h.snapshot()!;
      const want =
        method === "entropy" ? entropyThreshold(snap, 32) : method === "percentile" ? percentileThreshold(snap, 99) : mseThreshold(snap);
      assert.deepEqual(cal.ranges().get(name), want, `${method} ${name}`);
      assert.deepEqual([...cal.histograms().get(name)!.counts], [...snap.counts]);
    }
    await cal.dispose();
  });
}

test("NaN in the data: ignored for the range, counted, and the warning names the tensor", async () => {
  const warnings: string[] = [];
  const cal = new Calibrator(tinyModel(13), ["x", "y", "z"], { method: "minmax", onWarning: (m) => warnings.push(m) });
  const { feeds, y } = batches([3, 2], 4, true);
  await cal.collect(feeds);
  assert.deepEqual(cal.ranges().get("y"), { min: minOf(y), max: maxOf(y), nonFinite: 2 });
  assert.ok(Number.isFinite(cal.ranges().get("x")!.min));
  assert.ok(warnings.some((w) => /tensor "y": 2 NaN\/Inf value\(s\)/.test(w)), warnings.join("\n"));
  await cal.dispose();
  const hist = new Calibrator(tinyModel(13), ["y"], { method: "percentile", onWarning: (m) => warnings.push(m) });
  await hist.collect(feeds);
  assert.ok(Number.isFinite(hist.ranges().get("y")!.max));
  await hist.dispose();
});

test("tensors inside If subgraphs are observed; unknown names, bad and empty data are errors", async () => {
  const warnings: string[] = [];
  const model = tinyModel(13, true);
  const cal = new Calibrator(model, ["y", "inner0"], { method: "minmax", onWarning: (m) => warnings.push(m) });
  assert.deepEqual(cal.tensors, ["y", "inner0"]);
  assert.deepEqual(cal.skipped, []);
  assert.deepEqual(warnings, []);
  await cal.collect(batches([2]).feeds);
  assert.ok(cal.ranges().has("y"));
  assert.ok(cal.ranges().has("inner0"));
  await assert.rejects(cal.collect([]), /calibration data is empty/);
  await assert.rejects(cal.collect([{ x: { data: new Float32Array(6), dims: [2, 3] } }]), /input "x": expected shape \[n, 4\], got \[2, 3\]/);
  await assert.rejects(cal.collect([{ x: { data: new Float64Array(8), dims: [2, 4] } }]), /input "x" must be float \(Float32Array\), got Float64Array/);
  await cal.dispose();
  const none = new Calibrator(model, ["inner0"], { method: "minmax", onWarning: () => {} });
  await none.collect(batches([2, 3]).feeds); // a body tensor only: observed through its If, the data checked and counted
  assert.equal(none.batches, 2);
  assert.deepEqual([...none.ranges().keys()], ["inner0"]);
  await assert.rejects(none.collect([{ x: { data: new Float32Array(6), dims: [2, 3] } }]), /expected shape/);
  await none.dispose();
  assert.throws(() => new Calibrator(model, ["nope"], { method: "minmax" }), /no tensor named "nope"/);
  assert.throws(() => new Calibrator(model, ["y"], { method: "kl" as CalibrationMethod }), /unknown calibration method "kl"/);
});

test("abort between batches keeps what was collected; batchSize splits big batches", async () => {
  const ctl = new AbortController();
  const cal = new Calibrator(tinyModel(13), ["y"], { method: "minmax", batchSize: 2 });
  const { feeds } = batches([5, 5]);
  await assert.rejects(
    cal.collect(feeds, { signal: ctl.signal, onProgress: () => ctl.abort(new Error("stop")) }),
    /stop/,
  );
  assert.equal(cal.batches, 3); // first batch of 5 rows ran as 2 + 2 + 1
  assert.ok(cal.ranges().has("y"));
  await cal.dispose();
});

test("async iterables, tensors split over several sessions, and ep cuda falling back to cpu give the same ranges", async () => {
  const { feeds } = batches([6, 3, 4], 11);
  const ref = new Calibrator(tinyModel(13), ["x", "y", "z"], { method: "percentile", numBins: 64 });
  await ref.collect(feeds);
  const warnings: string[] = [];
  const split = new Calibrator(tinyModel(13), ["x", "y", "z"], {
    method: "percentile",
    numBins: 64,
    tensorsPerSession: 1,
    ep: "cuda",
    onWarning: (m) => warnings.push(m),
  });
  async function* stream() {
    for (const f of feeds) {
      await new Promise((r) => setImmediate(r));
      yield f;
    }
  }
  await split.collect(stream());
  assert.deepEqual([...split.ranges()], [...ref.ranges()]);
  // This machine has no CUDA provider: each session says so once (and would be silent on a CUDA machine).
  assert.ok(warnings.length === 0 || warnings.every((w) => /CUDA/.test(w)), warnings.join("\n"));
  await ref.dispose();
  await split.dispose();
});

test("minmax with keepHistograms: same ranges as in-graph reduction, plus the histograms", async () => {
  const { feeds, y } = batches([4, 7], 2);
  const cal = new Calibrator(tinyModel(13), ["y"], { method: "minmax", keepHistograms: true, numBins: 64 });
  await cal.collect(feeds);
  assert.deepEqual(cal.ranges().get("y"), { min: minOf(y), max: maxOf(y) });
  const h = cal.histograms().get("y")!;
  assert.equal(h.counts.reduce((a, c) => a + c, 0), y.length);
  assert.deepEqual([h.min, h.max], [minOf(y), maxOf(y)]);
  await cal.dispose();
});

test("maxRunBytes: a batch runs in parts and the histograms are identical; a fixed batch or NaN runs whole", async () => {
  const data = batches([40, 7, 64, 3], 5);
  const histogramsWith = async (options: { maxRunBytes?: number }, feeds: Feeds[], model = tinyModel(13)) => {
    const cal = new Calibrator(model, ["x", "y", "z"], { method: "mse", numBins: 256, ...options });
    let runs = 0;
    const run = cal["observe"].bind(cal);
    cal["observe"] = async (...a: Parameters<typeof run>) => (runs++, run(...a));
    try {
      await cal.collect(feeds);
      return { runs, hist: cal.histograms(), ranges: cal.ranges() };
    } finally {
      await cal.dispose();
    }
  };
  const whole = await histogramsWith({ maxRunBytes: Infinity }, data.feeds);
  // Each row fetches 3 tensors x 4 floats = 48 bytes: a 100-byte cap runs 2 rows at a time.
  const parts = await histogramsWith({ maxRunBytes: 100 }, data.feeds);
  assert.ok(parts.runs > 50, `runs: ${parts.runs}`);
  assert.ok(whole.runs <= 5, `runs: ${whole.runs}`);
  assert.deepEqual(parts.hist, whole.hist);
  assert.deepEqual(parts.ranges, whole.ranges);
  // NaN in the first batch: its range cannot be seeded exactly, so it runs whole; the counts still agree.
  const poisoned = batches([40, 9], 3, true);
  const p1 = await histogramsWith({ maxRunBytes: 100 }, poisoned.feeds);
  const p2 = await histogramsWith({ maxRunBytes: Infinity }, poisoned.feeds);
  assert.deepEqual(p1.hist, p2.hist);
  // Relu output all zeros in the first batch (x's signs opposite to w's): its range comes from the second batch,
  // which is seeded too, so its counts still match a whole run.
  const zeroFirst: Feeds = { x: { data: Float32Array.from({ length: 40 * 4 }, (_, i) => [-1, 1, -1, -1][i % 4]! * (1 + (i % 5))), dims: [40, 4] } };
  const z1 = await histogramsWith({ maxRunBytes: 100 }, [zeroFirst, ...data.feeds]);
  const z2 = await histogramsWith({ maxRunBytes: Infinity }, [zeroFirst, ...data.feeds]);
  assert.deepEqual(z1.hist, z2.hist);
  assert.ok(z1.runs > 50);
  // A model with a fixed batch size is never split (it could not run a smaller batch).
  const fixed = Model.fromProto(makeModel(makeGraph("fixed", [makeNode("Relu", ["x"], ["z"], { name: "relu" })],
    [makeValueInfo("x", DataType.FLOAT, [40, 4])], [makeValueInfo("z", DataType.FLOAT, [40, 4])])));
  const cal = new Calibrator(fixed, ["z"], { method: "mse", maxRunBytes: 16 });
  await cal.collect([data.feeds[0]!]);
  assert.ok(cal.ranges().get("z")!.max > 0);
  await cal.dispose();
});

/** x → Mul(x, 2) = y → Relu = z, x of `shape` ([1, 3, 256, 256] fixed, or symbolic): 196608 values (768 KiB) per tensor and row. */
function mulRelu(shape: (number | string)[], opset: number): Model {
  const two = makeTensor("two", DataType.FLOAT, [], [2]);
  const nodes = [makeNode("Mul", ["x", "two"], ["y"], { name: "mul" }), makeNode("Relu", ["y"], ["z"], { name: "relu" })];
  return Model.fromProto(makeModel(makeGraph("mulrelu", nodes, [makeValueInfo("x", DataType.FLOAT, shape)], [makeValueInfo("z", DataType.FLOAT, shape)], { initializers: [two] }), { opsets: { "": opset } }));
}

/** Feeds of `rows` × 3 × 256 × 256 roughly normal values (a sum of uniforms), so the mse range sits inside the extremes. */
function normalRows(seed: number): (rows: number) => Feeds {
  let s = seed;
  const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  return (rows) => ({ x: { data: Float32Array.from({ length: rows * 196608 }, () => rand() + rand() + rand() - 1.5), dims: [rows, 3, 256, 256] } });
}

/** mse calibration of y and z under `maxRunBytes`: the sampled steps, ranges, histograms, and the values each binned. */
async function mulReluHistograms(model: Model, feeds: Feeds[], maxRunBytes: number) {
  const cal = new Calibrator(model, ["y", "z"], { method: "mse", maxRunBytes });
  try {
    await cal.collect(feeds);
    const total = (t: string) => cal.histograms().get(t)!.counts.reduce((a, b) => a + b, 0);
    return { sampled: cal.sampled(), ranges: cal.ranges(), hist: cal.histograms(), totals: [total("y"), total("z")] };
  } finally {
    await cal.dispose();
  }
}

/** A 256 KiB cap samples every 3rd value (the smallest odd step that brings 196608 values under a sixteenth of the cap
 *  in values, but not under 65536); the extremes are the whole tensor's (reduced in the graph), the range near its. */
function assertSampledLikeWhole(sampled: Awaited<ReturnType<typeof mulReluHistograms>>, whole: typeof sampled, rows: number): void {
  assert.deepEqual([...sampled.sampled], [["y", 3], ["z", 3]]);
  assert.deepEqual(sampled.totals, [rows * 65536, rows * 65536]);
  assert.deepEqual([...whole.sampled], []);
  assert.deepEqual(whole.totals, [rows * 196608, rows * 196608]);
  for (const t of ["y", "z"]) {
    assert.equal(sampled.hist.get(t)!.min, whole.hist.get(t)!.min);
    assert.equal(sampled.hist.get(t)!.max, whole.hist.get(t)!.max);
    const [a, b] = [sampled.ranges.get(t)!, whole.ranges.get(t)!];
    assert.ok(Math.abs(a.max - b.max) < 0.05 * (b.max - b.min), `${t}: ${JSON.stringify({ a, b })}`);
  }
}

test("a fixed-batch tensor whose one row exceeds the run cap: its histogram from every step-th value, min/max exact", async () => {
  const feed = normalRows(11);
  const feeds = Array.from({ length: 4 }, () => feed(1));
  const fixed = (opset: number) => mulRelu([1, 3, 256, 256], opset);
  const whole = await mulReluHistograms(fixed(13), feeds, Infinity);
  assertSampledLikeWhole(await mulReluHistograms(fixed(13), feeds, 256 * 1024), whole, 4);
  const all = feeds.flatMap((f) => [...(f.x.data as Float32Array)].map((v) => Math.fround(v * 2)));
  assert.equal(whole.hist.get("y")!.min, all.reduce((m, v) => Math.min(m, v), Infinity));
  // Opset 9 has no Slice with steps: the tensors come back whole under the same cap.
  const old = await mulReluHistograms(fixed(9), feeds, 256 * 1024);
  assert.deepEqual(old.totals, [4 * 196608, 4 * 196608]);
});

test("a tensor of symbolic shape one row of which exceeds the run cap: sized on the first batch, then sampled as a static one", async () => {
  // x [N, 3, H, W], fed one row, then two (split into rows), then one: no static shape says what a row weighs, so a
  // reduce-only run on the first batch's first row measures it (sizeRows).
  const feed = normalRows(5);
  const feeds = [feed(1), feed(2), feed(1)];
  const model = mulRelu(["N", 3, "H", "W"], 13);
  const whole = await mulReluHistograms(model, feeds, Infinity);
  assertSampledLikeWhole(await mulReluHistograms(model, feeds, 256 * 1024), whole, 4);
  // A row under the cap is fetched whole, as before (the sizing run finds nothing to sample).
  const small = await mulReluHistograms(model, feeds, 1024 * 1024);
  assert.deepEqual([...small.sampled], []);
  assert.deepEqual(small.totals, [4 * 196608, 4 * 196608]);
});

test("single-sample batches are joined into larger runs after the first; histograms and ranges as one run per batch", async () => {
  const data = batches(Array.from({ length: 60 }, () => 1), 9);
  const collectWith = async (maxRunBytes: number) => {
    const cal = new Calibrator(tinyModel(13), ["x", "y", "z"], { method: "mse", numBins: 256, maxRunBytes });
    let runs = 0;
    const run = cal["observe"].bind(cal);
    cal["observe"] = async (...a: Parameters<typeof run>) => (runs++, run(...a));
    const progress: number[] = [];
    try {
      await cal.collect(data.feeds, { onProgress: (d) => progress.push(d) });
      return { runs, progress, batches: cal.batches, hist: cal.histograms(), ranges: cal.ranges() };
    } finally {
      await cal.dispose();
    }
  };
  const one = await collectWith(Infinity);
  // 48 bytes a row: joins fill a quarter of the cap, so a 1920-byte cap joins 10 samples a run (the first alone).
  const joined = await collectWith(1920);
  assert.equal(one.runs, 60);
  assert.ok(joined.runs <= 8, `runs: ${joined.runs}`);
  assert.deepEqual(joined.hist, one.hist);
  assert.deepEqual(joined.ranges, one.ranges);
  assert.equal(joined.batches, 60);
  assert.deepEqual(joined.progress, one.progress);
});

test("minmax (reduced in the graph) runs large batches in parts too; min/max and the moving average as one run per batch", async () => {
  // onnxruntime holds a whole batch's activations even when only scalars come back (a PP-OCR recogniser, 32 rows:
  // 3 GB), so reduce-only runs obey maxRunBytes as well. Per row: x, y, z, w = 4 + 4 + 4 + 4 elements = 64 bytes.
  const data = batches([40, 7, 64], 11);
  const rangesWith = async (maxRunBytes: number) => {
    const cal = new Calibrator(tinyModel(13), ["x", "y", "z"], { method: "minmax", movingAverage: true, averagingConstant: 0.5, maxRunBytes });
    let runs = 0;
    const run = cal["observe"].bind(cal);
    cal["observe"] = async (...a: Parameters<typeof run>) => (runs++, run(...a));
    try {
      await cal.collect([data.feeds[0]!, data.feeds[1]!]);
      await cal.collect([data.feeds[2]!]);
      return { runs, ranges: cal.ranges() };
    } finally {
      await cal.dispose();
    }
  };
  const whole = await rangesWith(Infinity);
  const parts = await rangesWith(100);
  assert.equal(whole.runs, 3);
  assert.ok(parts.runs > 50, `runs: ${parts.runs}`);
  // Averaged per batch (per part would weigh the 40- and 64-row batches many times over): exactly equal.
  assert.deepEqual(parts.ranges, whole.ranges);
});

/** x [n,4] -> Sigmoid -> e. */
const sigmoidModel = () =>
  Model.fromProto(makeModel(makeGraph("sig", [makeNode("Sigmoid", ["x"], ["e"], { name: "sigmoid" })],
    [makeValueInfo("x", DataType.FLOAT, ["n", 4])], [makeValueInfo("e", DataType.FLOAT, ["n", 4])]), { opsets: { "": 13 } }));

/** `count` batches of `rows` x 4 values, uniform in [-1, 1] but for a share `tail` spread over [1, 40] (seeded). */
function tailedBatches(seed: number, count: number, rows: number, tail: number): Feeds[] {
  let s = seed;
  const rand = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const value = () => (rand() < tail ? 1 + rand() * 39 : rand() * 2 - 1);
  return Array.from({ length: count }, () => ({ x: { data: Float32Array.from({ length: rows * 4 }, value), dims: [rows, 4] } }));
}

test("auto: a tensor read by Sigmoid gets a tighter range than mse (its clipped tail saturates anyway)", async () => {
  // x [n,4] -> Sigmoid -> e. 99.8 % of x in [-1, 1], 0.2 % spread over [1, 40]. mse keeps nearly the whole tail (it
  // counts x's own error), which costs resolution in [-1, 1]; past about 6 Sigmoid is flat, so clipping there costs
  // nothing where x is used: the error at the consumer, which auto measures, prefers a tighter range.
  const model = sigmoidModel();
  const feeds = tailedBatches(7, 64, 64, 0.002);
  const calibrated = async (method: CalibrationMethod) => {
    const cal = new Calibrator(model, ["x", "e"], { method });
    try {
      await cal.collect(feeds);
      return { range: cal.ranges().get("x")!, choices: cal.choices() };
    } finally {
      await cal.dispose();
    }
  };
  const mse = await calibrated("mse");
  assert.ok(mse.range.max > 30, `mse keeps the tail: ${JSON.stringify(mse.range)}`);
  assert.equal(mse.choices.size, 0);
  const auto = await calibrated("auto");
  const x = auto.choices.get("x")!;
  assert.notEqual(x.method, "mse", x.why);
  assert.ok(auto.range.max < mse.range.max - 1, `auto clips the tail: ${JSON.stringify(auto.range)} (${x.why})`);
  assert.match(x.why, /less error than mse.*at Sigmoid.*on the first 4 calibration sample\(s\)/);
  assert.ok(x.errors[x.method]! < 0.98 * x.errors.mse!);
  // e (a graph output, read by no op) is measured on itself.
  assert.equal(auto.choices.get("e")!.measuredAt, "itself");
});

test("auto: its candidates come from every calibration row, so its mse is mse's range (and the first rows are measured)", async () => {
  // A row held out of the histograms is a row mse's ranges do not see: auto that kept mse wrote other ranges than mse
  // (on the corpus, 2 of 16 samples held out cost oww-timer 4 dB against mse). Batches of 3 rows, 24 samples: one in
  // 8 used to be held out (the last row of the third batch, say), and here that row holds the peak.
  const model = sigmoidModel();
  const feeds = tailedBatches(5, 8, 3, 0);
  (feeds[2]!.x!.data as Float32Array)[2 * 4 + 1] = 30;
  const fixed = async (method: CalibrationMethod) => {
    const c = new Calibrator(model, ["x", "e"], { method });
    try {
      await c.collect(feeds);
      return c.ranges();
    } finally {
      await c.dispose();
    }
  };
  const cal = new Calibrator(model, ["x", "e"], { method: "auto" });
  try {
    await cal.collect(feeds);
    const candidates = cal.candidateRanges();
    for (const method of ["mse", "minmax"] as const) {
      for (const [t, r] of await fixed(method)) assert.deepEqual(candidates.get(t)!.get(method), r, `${method} of ${t}`);
    }
    assert.equal(candidates.get("x")!.get("minmax")!.max, 30);
    const rows = [...cal.autoRows()];
    assert.equal(rows.length, 16);
    assert.deepEqual(rows.map((f) => f.x!.dims), rows.map(() => [1, 4]));
    const first = [...feeds.flatMap((f) => [...(f.x!.data as Float32Array)])].slice(0, 16 * 4);
    assert.deepEqual(rows.flatMap((f) => [...(f.x!.data as Float32Array)]), first);
  } finally {
    await cal.dispose();
  }
});

test("auto: a probe of many tensors runs in parts of at most 16 tensors (onnxruntime opens a large graph slowly)", async () => {
  // x -> Sigmoid -> t1 -> Sigmoid -> … -> t20: 21 tensors, however small.
  const nodes = Array.from({ length: 20 }, (_, i) => makeNode("Sigmoid", [i ? `t${i}` : "x"], [`t${i + 1}`], { name: `s${i}` }));
  const model = Model.fromProto(makeModel(makeGraph("chain", nodes, [makeValueInfo("x", DataType.FLOAT, ["n", 4])], [makeValueInfo("t20", DataType.FLOAT, ["n", 4])]), { opsets: { "": 13 } }));
  const tensors = ["x", ...nodes.map((n) => n.output[0]!)];
  const feeds = tailedBatches(3, 4, 8, 0.05);
  const cal = new Calibrator(model, tensors, { method: "auto" });
  const sizes: number[] = [];
  const run = cal["runProbe"].bind(cal);
  const calibrationSessionsOpen: boolean[] = [];
  cal["runProbe"] = async (probe: Parameters<typeof run>[0], samples: Parameters<typeof run>[1]) => {
    sizes.push(probe.entries.length);
    calibrationSessionsOpen.push(cal["pool"]["main"] !== undefined);
    return run(probe, samples);
  };
  try {
    await cal.collect(feeds);
    assert.deepEqual(sizes, [16, 5]);
    // The calibration sessions are freed before the probe opens its own (mlsd-320-large: 994 → 844 MiB peak).
    assert.deepEqual(calibrationSessionsOpen, [false, false]);
    assert.equal(cal.choices().size, 21);
  } finally {
    await cal.dispose();
  }
});

test("auto: a probe whose tensors exceed the run cap runs in parts and chooses as one probe does", async () => {
  // The probe keeps every tensor it measures until its end, so on a large model (mlsd-320-large: 1.3 GiB) it runs in
  // parts of at most 4 run caps of tensors per row. Here a row of x or e is 16 bytes: a 4-byte cap gives one part each.
  const model = sigmoidModel();
  const feeds = tailedBatches(11, 16, 8, 0.01);
  const chosen = async (maxRunBytes: number) => {
    const cal = new Calibrator(model, ["x", "e"], { method: "auto", maxRunBytes });
    let probes = 0;
    const run = cal["runProbe"].bind(cal);
    cal["runProbe"] = async (...a: Parameters<typeof run>) => (probes++, run(...a));
    try {
      await cal.collect(feeds);
      const ranges = cal.ranges();
      return { probes, ranges, choices: [...cal.choices()].map(([t, c]) => [t, c.method, c.errors]) };
    } finally {
      await cal.dispose();
    }
  };
  const one = await chosen(Infinity);
  const parts = await chosen(4);
  assert.equal(one.probes, 1);
  assert.equal(parts.probes, 2);
  assert.deepEqual(parts.choices, one.choices);
  assert.deepEqual(parts.ranges, one.ranges);
});

test("auto: halves() calibrates the even and the odd first rows alone, each judged on the other half", async () => {
  const model = sigmoidModel();
  const feeds = tailedBatches(13, 4, 4, 0.05);
  const calibrated = async (method: CalibrationMethod, data: Feeds[]) => {
    const c = new Calibrator(model, ["x", "e"], { method, outputRows: 2 });
    try {
      await c.collect(data);
      return { ranges: c.ranges(), candidates: c.candidateRanges() };
    } finally {
      await c.dispose();
    }
  };
  const cal = new Calibrator(model, ["x", "e"], { method: "auto" });
  try {
    await cal.collect(feeds);
    const rows = [...cal.autoRows()];
    assert.equal(rows.length, 16);
    const halves = await cal.halves();
    assert.equal(halves.length, 2);
    const even = rows.filter((_, i) => i % 2 === 0);
    const odd = rows.filter((_, i) => i % 2 === 1);
    assert.deepEqual(halves[0]!.judgedOn, odd);
    assert.deepEqual(halves[1]!.judgedOn, even);
    for (const [half, fit] of [[halves[0]!, even], [halves[1]!, odd]] as const) {
      const alone = await calibrated("auto", fit);
      assert.deepEqual(half.ranges, alone.ranges);
      assert.deepEqual(half.candidates, alone.candidates);
      // The half's mse candidate is mse on its rows: not the whole calibration's.
      assert.deepEqual(half.candidates.get("x")!.get("mse"), (await calibrated("mse", fit)).ranges.get("x"));
    }
    assert.notDeepEqual(halves[0]!.candidates.get("x")!.get("minmax"), cal.candidateRanges().get("x")!.get("minmax"));
    // Judging one method against mse: only their candidates, no probe (every tensor at mse's range).
    const two = await cal.halves("minmax");
    for (const [k, half] of two.entries()) {
      assert.deepEqual([...half.candidates.get("x")!.keys()], ["mse", "minmax"]);
      assert.deepEqual(half.candidates.get("x")!.get("minmax"), halves[k]!.candidates.get("x")!.get("minmax"));
      assert.deepEqual(half.ranges.get("x"), halves[k]!.candidates.get("x")!.get("mse"));
    }
  } finally {
    await cal.dispose();
  }
  // One row: nothing to judge across.
  const one = new Calibrator(model, ["x", "e"], { method: "auto" });
  try {
    await one.collect(tailedBatches(3, 1, 1, 0));
    assert.deepEqual(await one.halves(), []);
  } finally {
    await one.dispose();
  }
});
