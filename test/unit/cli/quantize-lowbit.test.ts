// `ptq quantize --mode int4|fp4` and `--target-sqnr` end to end through the CLI (source run with tsx).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ptq as ptqChild } from "./ptq-child";
import { readFileSync } from "node:fs";
import path from "node:path";
import { DataType, Model } from "../../../engine/onnx";
import { tempDir } from "../../temp";

const root = path.join(__dirname, "..", "..", "..");
const vit = path.join(root, "test", "fixtures", "models", "vit.onnx");
const cnn = path.join(root, "test", "fixtures", "models", "cnn.onnx");
const mobilenet = path.join(root, "test", "fixtures", "models", "mobilenet.onnx");
const calib = path.join(root, "test", "fixtures", "data", "calib", "npy");
const ptq = (...args: string[]) => ptqChild("quantize", ...args);
const tmp = () => tempDir("ptq-cli-lowbit-");

test("--mode int4 writes MatMulNBits weights (a Conv's as uint4 codes decoded by ops onnxruntime folds) and reports per-layer SQNR against RTN", () => {
  const out = path.join(tmp(), "vit.int4.onnx");
  const before = readFileSync(vit);
  const r = ptq(vit, "-o", out, "--mode", "int4", "--algorithm", "hqq", "--json");
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.ok(report.layers.length >= 8);
  for (const l of report.layers) assert.ok(l.sqnrDb >= l.rtnSqnrDb, `${l.node}: HQQ ${l.sqnrDb} < RTN ${l.rtnSqnrDb}`);
  const m = Model.loadSync(out);
  const convs = report.layers.filter((l: { opType: string }) => l.opType === "Conv").length;
  assert.equal(convs, 1, "the patch embedding");
  assert.equal(m.graph.node.filter((n) => n.opType === "MatMulNBits").length, report.layers.length - convs);
  assert.equal(m.graph.initializer.filter((t) => t.dataType === DataType.UINT4).length, convs, "the Conv's codes");
  assert.equal(m.graph.node.filter((n) => n.opType === "DequantizeLinear").length, 0);
  assert.equal(m.opset(), 21, "uint4");
  assert.deepEqual(readFileSync(vit), before, "the input is untouched");
});

test("--mode fp4 --fp4-export native upgrades to opset 23 and warns that onnxruntime CPU cannot run it", () => {
  const out = path.join(tmp(), "vit.nvfp4.onnx");
  const r = ptq(vit, "-o", out, "--mode", "fp4", "--fp4-export", "native");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /upgraded the model from opset 13 to 23/);
  assert.match(r.stdout, /no onnxruntime CPU kernel/);
  assert.equal(Model.loadSync(out).opset(), 23);
});

test("--mode fp4 --calib measures the outputs; --protect DB steps the layers that cost them most up to int8 until DB is met", () => {
  const dir = tmp();
  // The ladder on the MobileNet fixture: 21 low-bit layers (the CNN keeps 3 once its stem, among the smallest Convs,
  // stays float, and each of them alone costs more than a target above the all-FP4 figure allows).
  const measured = ptq(mobilenet, "-o", path.join(dir, "a.onnx"), "--mode", "fp4", "--calib", calib, "--json", "--no-protect");
  assert.equal(measured.status, 0, measured.stderr);
  const all = JSON.parse(measured.stdout).output;
  assert.equal(all.protected.length, 0);
  assert.equal(all.targetDb, undefined);
  const off = ptq(cnn, "-o", path.join(dir, "a2.onnx"), "--mode", "fp4", "--calib", calib, "--no-protect");
  assert.match(off.stdout, /worst output SQNR [0-9.]+ dB \(protection off\)/);
  // By default the outputs are kept at 20 dB within 0.35× of the float model's bytes.
  const byDefault = JSON.parse(ptq(cnn, "-o", path.join(dir, "a3.onnx"), "--mode", "fp4", "--calib", calib, "--json").stdout).output;
  assert.equal(byDefault.targetDb, 20);
  assert.equal(byDefault.maxSize, 0.35);
  assert.ok(byDefault.size <= 0.35 && (byDefault.sqnrDb >= 20 || byDefault.capped), JSON.stringify(byDefault));
  const target = Math.ceil(all.sqnrDb) + 6;
  const r = ptq(mobilenet, "-o", path.join(dir, "b.onnx"), "--mode", "fp4", "--calib", calib, "--protect", String(target), "--protect-max-size", "1", "--json");
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.ok(report.output.sqnrDb >= target, `${report.output.sqnrDb} dB ≥ ${target}`);
  assert.ok(report.output.protected.length > 0 && report.output.protected.length < report.layers.length);
  const int8 = new Set(report.layers.filter((l: { bits?: number }) => l.bits === 8).map((l: { node: string }) => l.node));
  for (const p of report.output.protected) assert.ok(p.as === "int8" && int8.has(p.node), `${p.node} protected as int8`);
  const text = ptq(mobilenet, "-o", path.join(dir, "c.onnx"), "--mode", "fp4", "--calib", calib, "--protect", String(target), "--protect-max-size", "1");
  assert.match(text.stdout, new RegExp(`worst output SQNR [0-9.]+ dB, target ${target} dB: ${report.output.protected.length} layer\\(s\\) stepped up`));
  const noData = ptq(cnn, "-o", path.join(dir, "d.onnx"), "--mode", "fp4", "--protect", "20");
  assert.equal(noData.status, 2);
  assert.match(noData.stderr, /--protect measures the outputs on calibration data: give --calib PATH/);
  const both = ptq(cnn, "-o", path.join(dir, "e.onnx"), "--mode", "fp4", "--calib", calib, "--protect-max-size", "0.5", "--no-protect");
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--protect-max-size and --no-protect contradict each other/);
});

test("--mode fp4: a size cap below what the target needs writes the last step within it and says so", () => {
  const dir = tmp();
  const r = ptq(cnn, "-o", path.join(dir, "a.onnx"), "--mode", "fp4", "--calib", calib, "--protect", "60", "--protect-max-size", "0.4");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /target 60 dB not met within the size cap: .*0\.[0-9]+× the float model's size, cap 0\.4× \(--protect-max-size raises it/);
});

test("--mode fp4 --rounding learned chooses FP4 codes on the calibration data: the outputs come closer to the float model's", () => {
  const dir = tmp();
  const nearest = ptq(cnn, "-o", path.join(dir, "n.onnx"), "--mode", "fp4", "--calib", calib, "--rounding", "nearest", "--json");
  assert.equal(nearest.status, 0, nearest.stderr);
  assert.ok(!JSON.parse(nearest.stdout).notes.some((x: string) => /^(rounding auto|learned rounding)/.test(x)), "nearest as asked: nothing fitted");
  // Not asked: rounding auto, FP4's default with calibration data, and the note says so.
  // …with its fits on the progress line a program reading stderr (the VS Code extension) shows.
  process.env.PTQ_PROGRESS = "lines";
  let byDefault: ReturnType<typeof ptq>;
  try {
    byDefault = ptq(cnn, "-o", path.join(dir, "d.onnx"), "--mode", "fp4", "--calib", calib, "--json");
  } finally {
    delete process.env.PTQ_PROGRESS;
  }
  assert.equal(byDefault.status, 0, byDefault.stderr);
  assert.match(byDefault.stderr, /^progress: learned FP4 rounding \(rounding auto: fitted on half the rows, judged on the others\): \[#+\] 4\/4 steps$/m);
  assert.ok(JSON.parse(byDefault.stdout).notes.some((x: string) => /^rounding auto (chose learned|kept nearest) FP4 rounding: .*Rounding auto is the low-bit modes' default with calibration data; rounding "nearest" skips its fits$/.test(x)), byDefault.stdout);
  const learned = ptq(cnn, "-o", path.join(dir, "l.onnx"), "--mode", "fp4", "--calib", calib, "--rounding", "learned", "--json");
  assert.equal(learned.status, 0, learned.stderr);
  const [n, l] = [JSON.parse(nearest.stdout), JSON.parse(learned.stdout)];
  assert.ok(l.notes.some((x: string) => /learned/i.test(x)), `a note says what learned rounding did: ${l.notes.join("; ")}`);
  assert.ok(l.output.sqnrDb > n.output.sqnrDb, `learned ${l.output.sqnrDb} dB > nearest ${n.output.sqnrDb} dB`);
  const noData = ptq(cnn, "-o", path.join(dir, "x.onnx"), "--mode", "fp4", "--rounding", "learned");
  assert.notEqual(noData.status, 0);
  assert.match(noData.stderr, /give --calib/);
});

test("usage errors exit 2 and name the problem", () => {
  const out = path.join(tmp(), "x.onnx");
  assert.equal(ptq(vit, "-o", out, "--mode", "int4", "--block-size", "24").status, 2);
  const mixed = ptq(vit, "-o", out, "--mode", "int4", "--fp4-format", "mxfp4");
  assert.equal(mixed.status, 2);
  assert.match(mixed.stderr, /fp4 options given with --mode int4/);
  const noEval = ptq(cnn, "-o", out, "--calib", calib, "--target", "drop<=0.5");
  assert.equal(noEval.status, 2);
  assert.match(noEval.stderr, /needs --eval DIR/);
});

test("--target-sqnr keeps the most sensitive nodes in float until the output SQNR target is met", () => {
  const out = path.join(tmp(), "cnn.mixed.onnx");
  const r = ptq(cnn, "-o", out, "--calib", calib, "--target-sqnr", "47", "--remedy", "float", "--json");
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.chosen.met, true);
  assert.ok(j.chosen.metric >= 47);
  assert.ok(j.chosen.keptFloat.length >= 1, "the fully quantized CNN is below 47 dB, so something stays float");
  assert.ok(j.steps[0].metric < 47);
  // The ranking's prefix or, where that is not monotone, greedy re-ranking: the smallest float set measured to meet it.
  const met = j.steps.filter((s: { metric: number }) => s.metric >= 47).map((s: { keptFloat: string[] }) => s.keptFloat.length);
  assert.equal(j.chosen.keptFloat.length, Math.min(...met), "the smallest float set that met the target");
  const ranked = new Set(j.ranking.layers.map((l: { node: string }) => l.node));
  assert.ok(j.chosen.keptFloat.every((n: string) => ranked.has(n)), "only ranked nodes stay float");
});

test("--target-sqnr by default tries 16-bit activations first, then float; --remedy int16 keeps every weight int8", () => {
  const out = path.join(tmp(), "cnn.mixed16.onnx");
  const auto = ptq(cnn, "-o", out, "--calib", calib, "--target-sqnr", "47");
  assert.equal(auto.status, 0, auto.stderr);
  assert.match(auto.stdout, /target ≥ 47 dB output SQNR met/);
  // auto measures 16-bit activations first and takes whichever remedy changes fewer nodes.
  const steps = auto.stdout.slice(auto.stdout.indexOf("search steps"));
  assert.ok(steps.indexOf("at 16-bit activations") >= 0 && steps.indexOf("at 16-bit activations") < steps.indexOf("in float"), steps);
  const r = ptq(cnn, "-o", out, "--calib", calib, "--target-sqnr", "47", "--remedy", "int16", "--overwrite");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /chosen: \d+ node\(s\) at 16-bit activations → [\d.]+ dB output SQNR; 100\.0 % of weights int8/);
  assert.match(r.stdout, /\n  int16: \S+: at 16 bits it should gain \+[\d.]+ dB SQNR by its error quantized alone \(rank 1 of \d+\)/);
  const timed = ptq(cnn, "-o", path.join(tmp(), "cnn.t.onnx"), "--calib", calib, "--target-sqnr", "47", "--tradeoff");
  assert.equal(timed.status, 0, timed.stderr);
  assert.match(timed.stdout, /Mixed precision trade-off: every configuration the search measured \(p50 latency, one interleaved benchmark\)\n.*p50 \(ms\)/);
  assert.match(timed.stdout, /\nfloat model +0 +0 +— +0 +[\d.]+ +[\d.]+\n/);
  const bad = ptq(cnn, "-o", out, "--calib", calib, "--target-sqnr", "45", "--remedy", "bf16");
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--remedy takes auto, int16 or float, not "bf16"/);
});

test("--target-agreement keeps the float model's decisions on the calibration samples, without labels", () => {
  const r = ptq(cnn, "-o", path.join(tmp(), "cnn.agree.onnx"), "--calib", calib, "--target-agreement", "100", "--json");
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual([j.target.kind, j.target.minPct, j.chosen.met], ["agreement", 100, true]);
  assert.equal(j.chosen.metric, 100);
});

test("--reduce-range asks for 7-bit weights (QConfig.reduceRange)", async () => {
  const { parseQuantizeArgs } = await import("../../../cli/quantize-options");
  const { jobQConfig } = await import("../../../engine/quant/options");
  const config = (argv: string[]) => {
    const c = parseQuantizeArgs(argv);
    assert.notEqual(c, "help");
    return jobQConfig(c === "help" ? {} : c.job);
  };
  const a = config([cnn, "-o", "/tmp/x.onnx", "--calib", calib, "--weight-type", "int8", "--reduce-range"]);
  assert.equal(a.reduceRange, true);
  assert.equal(a.weightType, "int8");
  assert.equal(config([cnn, "-o", "/tmp/x.onnx", "--calib", calib]).reduceRange, undefined);
});
