import { test } from "node:test";
import assert from "node:assert/strict";
import { ptq } from "../cli/ptq-child";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { configPath, configText, defaultOptions, excludeChoices, freePath, judgedOutputChoices, outputPath, quantizeArgs, quantizeJob, reportArgs, reproduceCommand } from "../../../src/quantize/options";
import { readJob } from "../../../engine/quant/options";
import { normalSamples, randomCalibrationNpy, randomCalibrationShape } from "../../../src/quantize/randomCalib";
import { prepareReportData, removeReportData } from "../../../src/quantize/reportData";
import { writeRunConfig } from "../../../src/quantize/runConfig";
import { openData } from "../../../engine/data/readers";
import { encodeNpy, parseNpy } from "../../../engine/data/npy";
import { floatTensor, graph, mlp, model, node, valueInfo } from "./build-model";
import { quantizerNotes, reportBody, type ReportSubset } from "../../../src/quantize/reportHtml";
import { resolveConfig } from "../../../engine/quant/types";

test("output names sit beside the input with the scheme's suffix, and never take an existing name unasked", () => {
  assert.equal(outputPath("/ws/models/cnn.onnx", "int8-static"), "/ws/models/cnn.int8.onnx");
  assert.equal(outputPath("/ws/m.ONNX", "int4-weights"), "/ws/m.int4.onnx");
  assert.equal(outputPath("/ws/m.onnx", "fp4-weights"), "/ws/m.fp4.onnx");
  const taken = new Set(["/ws/m.int8.onnx", "/ws/m.int8-2.onnx"]);
  assert.equal(freePath("/ws/m.int8.onnx", (p) => taken.has(p)), "/ws/m.int8-3.onnx");
  assert.equal(freePath("/ws/x.int8.onnx", (p) => taken.has(p)), "/ws/x.int8.onnx");
});

test("wizard options become a ptq quantize --config job, the command that runs it, and report arguments", () => {
  const o = { ...defaultOptions("/ws/cnn.onnx"), calibrationDir: "/ws/calib", exclude: ["fc2", "head"], calibrationMethod: "entropy" as const };
  const method = resolveConfig().calibration.method;
  const jobs = {
    folder: quantizeJob(o),
    random: quantizeJob({ ...defaultOptions("/ws/cnn.onnx"), randomData: true, perChannel: false }, "/ws/cnn.int8.random-calib.npy"),
    dynamic: quantizeJob(defaultOptions("/ws/m.onnx", "int8-dynamic")),
    dynamicData: quantizeJob({ ...defaultOptions("/ws/m.onnx", "int8-dynamic"), calibrationDir: "/ws/calib" }),
    int4: quantizeJob({ ...defaultOptions("/ws/llm.onnx", "int4-weights"), blockSize: 64 }),
    fp4: quantizeJob({ ...defaultOptions("/ws/llm.onnx", "fp4-weights"), exclude: ["lm_head"] }),
    fp4Data: quantizeJob({ ...defaultOptions("/ws/llm.onnx", "fp4-weights"), calibrationDir: "/ws/calib" }),
    rounding: quantizeJob({ ...defaultOptions("/ws/cnn.onnx"), calibrationDir: "/ws/calib", rounding: "auto" }),
    roundingDynamic: quantizeJob({ ...defaultOptions("/ws/m.onnx", "int8-dynamic"), rounding: "auto" }),
    roundingFp4: quantizeJob({ ...defaultOptions("/ws/llm.onnx", "fp4-weights"), calibrationDir: "/ws/calib", rounding: "auto" }),
    roundingFp4NoData: quantizeJob({ ...defaultOptions("/ws/llm.onnx", "fp4-weights"), rounding: "auto" }),
    // FP4 with samples rounds auto by default: the wizard's "Nearest" is written out.
    nearestFp4: quantizeJob({ ...defaultOptions("/ws/llm.onnx", "fp4-weights"), calibrationDir: "/ws/calib", rounding: "nearest" }),
  };
  assert.deepEqual(jobs, {
    folder: { mode: "static", calib: "/ws/calib", calibration: { method: "entropy" }, exclude: ["fc2", "head"] },
    random: { mode: "static", calib: "/ws/cnn.int8.random-calib.npy", perChannel: false, calibration: { method } },
    dynamic: { mode: "dynamic" },
    dynamicData: { mode: "dynamic", calib: "/ws/calib" },
    int4: { mode: "int4", lowBit: { blockSize: 64 } },
    fp4: { mode: "fp4", exclude: ["lm_head"] },
    fp4Data: { mode: "fp4", calib: "/ws/calib" },
    rounding: { mode: "static", calib: "/ws/calib", calibration: { method }, rounding: "auto" },
    roundingDynamic: { mode: "dynamic" },
    roundingFp4: { mode: "fp4", calib: "/ws/calib", rounding: "auto" },
    roundingFp4NoData: { mode: "fp4" },
    nearestFp4: { mode: "fp4", calib: "/ws/calib", rounding: "nearest" },
  });
  // What the wizard writes is what the CLI reads back: every key is the table's.
  for (const job of Object.values(jobs)) assert.deepEqual(readJob(configText(job), "/ws/x.ptq.json"), job);
  assert.throws(() => quantizeJob({ ...defaultOptions("/ws/cnn.onnx"), randomData: true }), /needs calibration data/);
  assert.equal(configPath(o), "/ws/cnn.int8.ptq.json");
  assert.deepEqual(quantizeArgs(o, "/ws/.cnn.int8.onnx.tmp", configPath(o)), ["quantize", "/ws/cnn.onnx", "-o", "/ws/.cnn.int8.onnx.tmp", "--config", "/ws/cnn.int8.ptq.json", "--json"]);
  // A run on part of the folder (the rest held out for the report) overrides the config's data on the command line.
  assert.deepEqual(quantizeArgs(o, "t", "c.json", "/tmp/split").slice(4), ["--config", "c.json", "--calib", "/tmp/split", "--json"]);
  assert.equal(reproduceCommand(o), "ptq quantize /ws/cnn.onnx -o /ws/cnn.int8.onnx --config /ws/cnn.int8.ptq.json");
  assert.equal(reproduceCommand(defaultOptions("/ws/my model's.onnx")), `ptq quantize '/ws/my model'\\''s.onnx' -o '/ws/my model'\\''s.int8.onnx' --config '/ws/my model'\\''s.int8.ptq.json'`);
  // The report measures on the held-out samples it is given, never on the calibration folder by default.
  assert.deepEqual(reportArgs(o), ["report", "/ws/cnn.onnx", "/ws/cnn.int8.onnx", "--runs", "30", "--json"]);
  assert.deepEqual(reportArgs(o, { heldout: "/tmp/h", metric: "cosine" }).slice(6), ["--data", "/tmp/h", "--metric", "cosine"]);
  // "Quantize with default settings" is the engine's default, not a weaker one passed explicitly.
  assert.equal(defaultOptions("/ws/m.onnx").calibrationMethod, method);
  assert.equal(defaultOptions("/ws/m.onnx").perChannel, resolveConfig().perChannel);
});

test("random calibration: a valid .npy of seeded normal samples shaped from the model's single input", () => {
  const shape = randomCalibrationShape(mlp(), 8, "mlp.onnx");
  assert.deepEqual(shape, [8, 4]);
  const v = normalSamples(4000, 7);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  assert.ok(Math.abs(mean) < 0.1 && Math.abs(sd - 1) < 0.1, `${mean} ${sd}`);
  assert.deepEqual(normalSamples(3, 7), normalSamples(3, 7));
  const npy = encodeNpy(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  const headerLen = npy[8]! | (npy[9]! << 8);
  assert.equal((10 + headerLen) % 64, 0);
  const header = new TextDecoder().decode(npy.subarray(10, 10 + headerLen));
  assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
  assert.deepEqual([...new Float32Array(npy.slice(10 + headerLen).buffer)], [1, 2, 3, 4, 5, 6]);
  // Every type parseNpy reads back as written, shape included (1-D shapes need the trailing comma).
  for (const data of [new Float64Array([1.5, -2]), new Int8Array([-3, 4]), new BigInt64Array([5n, -6n]), new Uint16Array([7, 8])]) {
    const back = parseNpy(encodeNpy(data, [2]), "x.npy");
    assert.deepEqual([back.dims, [...back.data]], [[2], [...data]]);
  }
  assert.throws(() => encodeNpy(new Float32Array(5), [2, 3]), /shape \[2,3\] does not hold 5 values/);
  const two = model(graph("g", [node("Add", ["a", "b"], ["c"])], [valueInfo("a", 1, [1]), valueInfo("b", 1, [1])], [valueInfo("c", 1, [1])]));
  assert.throws(() => randomCalibrationShape(two, 8, "two.onnx"), /two\.onnx: random calibration data supports models with one input; this one has 2/);
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
  const html = reportBody({ input: "/ws/<img onerror=x>.onnx", output: "/ws/q.onnx", scheme: "int8-static", inputBytes: 4000, outputBytes: 1000, seconds: 3.2, report, warnings: ["random data"], sqnr: { kind: "ptq.sqnr", layers: [] }, dataNote: "Measured on 2 of the 10 data files <b>" });
  assert.match(html, /<p id="data-note">Measured on 2 of the 10 data files &lt;b&gt;<\/p>/);
  assert.ok(!/<script>|<img/.test(html), html);
  assert.match(html, /0\.25× \(4\.0× smaller\)/);
  assert.match(html, /latency p50 \(batch 1\)<\/td><td class="num">2\.00 ms<\/td><td class="num">1\.00 ms/);
  assert.match(html, /latency p99/);
  assert.match(html, /2\.00× /);
  assert.match(html, /class="num warn">2\.00 percentage points/);
  assert.match(html, /id="sqnr"/);
  assert.match(html, /data-command="ptq\.openReportInNotebook"/);
  assert.doesNotMatch(html, /quantizer-notes/, "no notes, no list");
  const noted = reportBody({ input: "a.onnx", output: "b.onnx", scheme: "int8-static", inputBytes: 10, outputBytes: 5, seconds: 1, warnings: [], notes: ["sequence outputs (<y>): 13 of 16 calibration rows decode as the float model's"] });
  assert.match(noted, /<ul id="quantizer-notes" class="muted"><li>sequence outputs \(&lt;y&gt;\): 13 of 16 calibration rows decode as the float model&#39;s<\/li><\/ul>/);
  const none = reportBody({ input: "a.onnx", output: "b.onnx", scheme: "int4-weights", inputBytes: 10, outputBytes: 5, seconds: 1, reportError: "cancelled", warnings: [], reproduce: "ptq quantize a.onnx -o b.onnx --config '<b>.ptq.json'" });
  assert.match(none, /Not measured: cancelled/);
  assert.match(none, /<p class="muted" id="reproduce">From a terminal: <code>ptq quantize a\.onnx -o b\.onnx --config &#39;&lt;b&gt;\.ptq\.json&#39;<\/code><\/p>/);
});

test("the outputs the measurements judge: offered for a model that also exports tensors it reads itself, in the INT8 job with data only", () => {
  const F = 1;
  const g = (outputs: string[]) =>
    model(graph("g", [node("Relu", ["x"], ["feat"]), node("Sigmoid", ["feat"], ["mask"]), node("Neg", ["feat"], ["side"])], [valueInfo("x", F, [1, 4])], outputs.map((o) => valueInfo(o, F, [1, 4]))));
  assert.deepEqual(judgedOutputChoices(g(["mask", "feat", "side"])), [
    { label: "mask", name: "mask", picked: true },
    { label: "feat", description: "also read inside the model (an intermediate tensor)", name: "feat", picked: false },
    { label: "side", name: "side", picked: true },
  ]);
  assert.deepEqual(judgedOutputChoices(g(["mask", "side"])), [], "nothing exported is read inside: nothing to choose");
  assert.deepEqual(judgedOutputChoices(g(["feat"])), [], "one output");
  const judged = { judgeOutputs: ["mask", "side"] };
  assert.deepEqual(quantizeJob({ ...defaultOptions("/ws/m.onnx"), calibrationDir: "/ws/c", ...judged }).calibration, { method: "auto", outputs: ["mask", "side"] });
  assert.deepEqual(quantizeJob({ ...defaultOptions("/ws/m.onnx", "int8-dynamic"), calibrationDir: "/ws/c", ...judged }).calibration, { outputs: ["mask", "side"] });
  assert.equal(quantizeJob({ ...defaultOptions("/ws/m.onnx", "int8-dynamic"), ...judged }).calibration, undefined, "dynamic without data measures nothing");
  assert.equal(quantizeJob({ ...defaultOptions("/ws/m.onnx", "fp4-weights"), calibrationDir: "/ws/c", ...judged }).calibration, undefined, "low-bit protection judges every output");
  assert.deepEqual(readJob(configText(quantizeJob({ ...defaultOptions("/ws/m.onnx"), calibrationDir: "/ws/c", ...judged })), "job.json").calibration?.outputs, ["mask", "side"]);
});

test("quantizerNotes: the weight type for the target, measured layers, then the summary's notes (a low-bit run's too)", () => {
  assert.deepEqual(quantizerNotes(undefined), []);
  assert.deepEqual(
    quantizerNotes({
      weights: { type: "uint8", targetCpu: "any", why: "weightType auto chose uint8 (U8U8)" },
      protectedLayers: { nodes: ["conv1"], why: "protected layers: 1 node(s) kept float" },
      wideActivations: { why: "2 of 9 activations at 16 bits" },
      rounding: { why: "rounding auto kept nearest rounding: 3 calibration row(s), too few" },
      outputCheck: { rows: 8, outputs: [{ name: "logits", sqnrDb: 24.04 }] },
      warnings: ["upgraded the model from opset 10 to 13"],
    }),
    [
      'weights uint8 for target CPU "any": weightType auto chose uint8 (U8U8)',
      "protected layers: 1 node(s) kept float",
      "16-bit activations: 2 of 9 activations at 16 bits",
      "rounding auto kept nearest rounding: 3 calibration row(s), too few",
      'outputs against the float model on 8 calibration row(s), SQNR: "logits" 24.0 dB',
      "upgraded the model from opset 10 to 13",
    ],
  );
  // No protected node: the measurement is not news. 7-bit weights say so.
  assert.deepEqual(quantizerNotes({ weights: { type: "int8", targetCpu: "avx2", reduceRange: true }, protectedLayers: { nodes: [], why: "protected layers: none" } }), ['weights int8 (7 bits) for target CPU "avx2"']);
  assert.deepEqual(quantizerNotes({ notes: ["2 MatMul weights left float: K not a multiple of 32"] }), ["2 MatMul weights left float: K not a multiple of 32"]);
  // An output the float model leaves 0 on every row checked: the report says so, as the CLI does.
  const [silent] = quantizerNotes({ outputCheck: { rows: 8, outputs: [], silent: ["39"] } });
  assert.match(silent ?? "", /^outputs against the float model on 8 calibration row\(s\): "39" is 0 on every row in the float model, nothing to compare: .*calibrate on data the model responds to/);
});

test("excluded nodes named like a list (\"a,b\") or a pattern (\"/x/\") keep exactly those nodes in float, whatever the scheme", () => {
  // MatMuls named so that the old comma-joined --exclude would have excluded "a", "b" and, as the regex /x/, "xx".
  const names = ["a,b", "a", "b", "/x/", "xx"];
  const w = (i: number) => floatTensor(`w${i}`, [4, 4], Array.from({ length: 16 }, (_, k) => ((k * 7 + i) % 5) - 2));
  const nodes = names.map((name, i) => node("MatMul", [i ? `t${i}` : "x", `w${i}`], [i === names.length - 1 ? "y" : `t${i + 1}`], {}, { name }));
  const m = model(graph("g", nodes, [valueInfo("x", 1, [1, 4])], [valueInfo("y", 1, [1, 4])], names.map((_, i) => w(i))));
  assert.deepEqual(excludeChoices(m).map((c) => c.name), names, "the wizard offers every node by its exact name");
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-wizard-exclude-"));
  try {
    const input = path.join(dir, "m.onnx");
    writeFileSync(input, toBinary(ModelProtoSchema, m));
    for (const scheme of ["int8-dynamic", "int4-weights"] as const) {
      const o = { ...defaultOptions(input, scheme), exclude: ["a,b", "/x/"], blockSize: 16 };
      writeFileSync(configPath(o), configText(quantizeJob(o)));
      const args = quantizeArgs(o, path.join(dir, `${scheme}.onnx`), configPath(o));
      const r = ptq(...args);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { float?: { name: string; reason: string }[]; skipped?: { node: string; reason: string }[] };
      const kept = scheme === "int8-dynamic" ? out.float!.map((f) => f.name) : out.skipped!.map((s) => s.node);
      assert.deepEqual(kept.sort(), ["/x/", "a,b"], `${scheme}: ${r.stdout}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("wizard report data: random calibration and the report's samples are disjoint (another seed), and removed after", () => {
  const d = prepareReportData({ ...defaultOptions("/ws/mlp.onnx"), randomData: true }, mlp());
  try {
    assert.ok(d.calib && d.heldout && d.calib !== d.heldout);
    const [c, h] = [d.calib, d.heldout].map((dir) => readFileSync(path.join(dir, readdirSync(dir)[0]!)));
    const calibRows = [...openData(d.calib, mlp())].flatMap((f) => [...(f.input!.data as Float32Array)]);
    const heldRows = [...openData(d.heldout, mlp())].flatMap((f) => [...(f.input!.data as Float32Array)]);
    assert.equal(calibRows.length, 32 * 4);
    assert.equal(heldRows.length, 64 * 4);
    assert.ok(!c!.equals(h!));
    const calibSet = new Set(calibRows);
    assert.ok(heldRows.every((v) => !calibSet.has(v)), "no held-out value is a calibration value");
    assert.equal(d.metric, "cosine");
    assert.match(d.note, /64 random samples held out from calibration \(calibrated on 32 others\)/);
    // One value per sample (a wake-word score): its cosine is only its sign, so the report scores mse.
    const one = mlp();
    one.graph!.output[0] = valueInfo("out_t", 1, ["N", 1]);
    const o = prepareReportData({ ...defaultOptions("/ws/mlp.onnx"), randomData: true }, one);
    removeReportData(o);
    assert.equal(o.metric, "mse");
  } finally {
    removeReportData(d);
  }
  assert.ok(!existsSync(d.calib!) && !existsSync(d.heldout!));
});

test("wizard report data: a folder of batches is split by file (last fifth held out, labels in neither); one file says why", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-wizard-split-"));
  try {
    const batches = path.join(dir, "calib");
    mkdirSync(batches);
    for (let i = 0; i < 10; i++) writeFileSync(path.join(batches, `batch_${i}.npy`), encodeNpy(normalSamples(8, i + 1), [2, 4]));
    writeFileSync(path.join(batches, "y.npy"), encodeNpy(new BigInt64Array(20), [20]));
    writeFileSync(path.join(batches, "README.txt"), "notes");
    const before = readdirSync(batches).sort();
    const d = prepareReportData({ ...defaultOptions(path.join(dir, "mlp.onnx")), calibrationDir: batches }, mlp());
    try {
      assert.deepEqual(readdirSync(d.calib!).sort(), Array.from({ length: 8 }, (_, i) => `batch_${i}.npy`).sort());
      assert.deepEqual(readdirSync(d.heldout!).sort(), ["batch_8.npy", "batch_9.npy"]);
      // Both read through the readers --calib and report --data use.
      assert.equal([...openData(d.heldout!, mlp())].length, 2);
      assert.match(d.note, /Measured on 2 of the 10 data files .*batch_8\.npy … batch_9\.npy.*the other 8\. y\.npy labels every sample/);
      assert.deepEqual(reportArgs(defaultOptions("/ws/m.onnx"), d).slice(6), ["--data", d.heldout]);
    } finally {
      removeReportData(d);
    }
    assert.deepEqual(readdirSync(batches).sort(), before, "the user's folder is untouched");
    assert.ok(!existsSync(d.calib!) && !existsSync(d.heldout!));
    // Low-bit weights with the same folder are split the same way (the run protects its outputs on the calib part);
    // without a folder the report makes its own samples.
    const low = prepareReportData({ ...defaultOptions(path.join(dir, "mlp.onnx"), "fp4-weights"), calibrationDir: batches }, mlp());
    try {
      assert.deepEqual(readdirSync(low.heldout!).sort(), ["batch_8.npy", "batch_9.npy"]);
      assert.equal(readdirSync(low.calib!).length, 8);
    } finally {
      removeReportData(low);
    }
    const none = prepareReportData(defaultOptions(path.join(dir, "mlp.onnx"), "fp4-weights"), mlp());
    assert.deepEqual([none.calib, none.heldout], [undefined, undefined]);
    assert.match(none.note, /No calibration data/);

    const one = path.join(dir, "one");
    mkdirSync(one);
    writeFileSync(path.join(one, "x.npy"), encodeNpy(normalSamples(40, 1), [10, 4]));
    writeFileSync(path.join(one, "y.npy"), encodeNpy(new BigInt64Array(10), [10]));
    const s = prepareReportData({ ...defaultOptions(path.join(dir, "mlp.onnx")), calibrationDir: one }, mlp());
    assert.deepEqual([s.calib, s.heldout, s.temp], [one, one, []]);
    assert.match(s.note, /Measured on the calibration samples themselves, so the figures are optimistic: .*a single data file \(x\.npy\).*several files/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("random calibration data is bounded by the feedBytes limit before anything is allocated", () => {
  const huge = model(graph("g", [node("Relu", ["x"], ["y"])], [valueInfo("x", 1, ["N", 3, 8192, 8192])], [valueInfo("y", 1, ["N", 3, 8192, 8192])]));
  const t0 = performance.now();
  // 32 samples × 3 × 8192 × 8192 float32 = 25.8 GB: refused by the limit, not by the allocator.
  assert.throws(() => randomCalibrationNpy(huge, "huge.onnx"), /huge\.onnx: random samples: input "x" with shape \[32, 3, 8192, 8192\] needs .*PTQ_LIMIT_FEED_BYTES/);
  assert.throws(() => prepareReportData({ ...defaultOptions("/ws/huge.onnx"), randomData: true }, huge), /PTQ_LIMIT_FEED_BYTES/);
  assert.ok(performance.now() - t0 < 2000);
  // The override raises it: 32 × 4 float32 = 512 bytes.
  assert.throws(() => randomCalibrationNpy(mlp(), "mlp.onnx", 32, 1, { feedBytes: 511 }), /over the limit of 511 bytes/);
  assert.ok(randomCalibrationNpy(mlp(), "mlp.onnx", 32, 1, { feedBytes: 512 }).length > 512);
});

test("the run's config beside OUT: random samples kept beside it and named; a folder named whole while the run calibrates on its split", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-wizard-config-"));
  try {
    const input = path.join(dir, "mlp.onnx");
    const r = { ...defaultOptions(input), randomData: true };
    const d = prepareReportData(r, mlp());
    try {
      const c = writeRunConfig(r, mlp(), d);
      const npy = path.join(dir, "mlp.int8.random-calib.npy");
      assert.deepEqual([c.file, c.calib, c.created], [path.join(dir, "mlp.int8.ptq.json"), undefined, [npy, c.file]]);
      assert.deepEqual(readJob(readFileSync(c.file, "utf8"), c.file), { mode: "static", calib: npy, calibration: { method: resolveConfig().calibration.method } });
      // The same samples the temp folder holds: the run and a later `ptq quantize --config` calibrate alike.
      assert.ok(readFileSync(npy).equals(readFileSync(path.join(d.calib!, readdirSync(d.calib!)[0]!))));
      assert.deepEqual(writeRunConfig(r, mlp(), d).created, [c.file], "identical samples are reused, not written again");
    } finally {
      removeReportData(d);
    }
    const batches = path.join(dir, "calib");
    mkdirSync(batches);
    for (let i = 0; i < 5; i++) writeFileSync(path.join(batches, `batch_${i}.npy`), encodeNpy(normalSamples(8, i + 1), [2, 4]));
    const f = { ...defaultOptions(input), calibrationDir: batches, exclude: ["a,b"] };
    const s = prepareReportData(f, mlp());
    try {
      const c = writeRunConfig(f, mlp(), s);
      assert.equal(c.calib, s.calib, "this run calibrates on the part not held out");
      assert.notEqual(c.calib, batches);
      assert.deepEqual(readJob(readFileSync(c.file, "utf8"), c.file), { mode: "static", calib: batches, calibration: { method: resolveConfig().calibration.method }, exclude: ["a,b"] });
    } finally {
      removeReportData(s);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
