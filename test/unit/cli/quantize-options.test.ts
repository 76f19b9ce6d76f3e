// `ptq quantize`'s options from one table (engine/quant/options): every flag lands at its key, help states the
// engine's defaults, a --config file is read by the same schema (flags over it, unknown keys and bad JSON refused
// with the key or line named), and progress prints as one line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { UsageError } from "../../../cli/args";
import { calibrationProgress, progressLine, progressLines, progressPrinter, PROGRESS_PREFIX } from "../../../cli/progress";
import { PROGRESS_PREFIX as RUNNER_PREFIX } from "../../../src/quantize/runner";
import { parseQuantizeArgs, quantizeHelp, type QuantizeCall } from "../../../cli/quantize-options";
import { CALIBRATION_METHODS, DEFAULT_CALIBRATION_METHOD } from "../../../engine/calibrate/types";
import { configSource, DEFAULT_BATCH_SIZE, defaultConfigSource, defaultText, LOWBIT_DEFAULTS, getKey, jobQConfig, jobReaderOptions, QUANT_OPTIONS, valueFromText, type QuantOption } from "../../../engine/quant/options";
import { resolveConfig } from "../../../engine/quant/types";

const IMAGES = path.join(__dirname, "..", "data", "files", "images", "gray");
const parse = (...argv: string[]): QuantizeCall => {
  const c = parseQuantizeArgs(["m.onnx", "-o", "out.onnx", ...argv]);
  assert.notEqual(c, "help");
  return c as QuantizeCall;
};
const usage = (re: RegExp, ...argv: string[]) => assert.throws(() => parseQuantizeArgs(["m.onnx", "-o", "out.onnx", ...argv]), (e: unknown) => e instanceof UsageError && re.test((e as Error).message), argv.join(" "));

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-options-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A valid command-line value for a row, and what the job should then hold. */
function sample(o: QuantOption): { text?: string; value: unknown } {
  switch (o.kind) {
    case "enum": {
      const v = o.values![1] ?? o.values![0]!;
      return { text: String(v), value: v };
    }
    case "int":
      return { text: "8", value: 8 };
    case "number":
      return o.fromText ? { text: "drop<=0.5", value: 0.5 } : { text: "0.5", value: 0.5 };
    case "boolean":
      return { value: o.sets ?? true };
    case "list":
      return { text: "Conv, MatMul", value: ["Conv", "MatMul"] };
    case "numbers":
      return o.count === 2 ? { text: "48x320", value: [48, 320] } : { text: "0.5, 0.25,2", value: [0.5, 0.25, 2] };
    case "nodes":
      return { text: "a,/b.*/", value: ["a", { regex: "b.*" }] };
    case "node":
      return { text: "a,/b/", value: ["a,/b/"] };
    default:
      return { text: "some/path", value: "some/path" };
  }
}

test("every flag of the table lands at its key in the job, in the mode it applies to", () => {
  const flagged = QUANT_OPTIONS.filter((o) => o.flag && o.key !== "mode");
  assert.ok(flagged.length >= 30);
  for (const o of flagged) {
    const s = sample(o);
    const mode = o.modes.includes("static") ? "static" : o.modes[0]!;
    // The --image-* flags describe a folder of images: their --calib must be one.
    const calib = o.key.startsWith("images.") ? IMAGES : "c";
    const needs = [...(mode === "static" && o.key !== "calib" ? ["--calib", calib] : []), ...(o.key === "target.drop" ? ["--eval", "e"] : [])];
    const extra = o.key.startsWith("target.") && !["target.sqnr", "target.drop", "target.agreement", "target.eval"].includes(o.key) ? ["--target-sqnr", "30"] : [];
    const gptq = o.key.startsWith("lowBit.gptq") ? ["--algorithm", "gptq", "--calib", "c"] : o.key === "lowBit.protect" || o.key === "lowBit.protectMaxSize" ? ["--calib", "c"] : [];
    const c = parse("--mode", mode, ...needs, ...extra, ...gptq, o.flag!, ...(s.text !== undefined ? [s.text] : []));
    assert.deepEqual(getKey(c.job, o.key), s.value, `${o.flag} → ${o.key}`);
  }
  // No argv peeking: an inline --mode=int4 is the mode (the old walker looked for the word "--mode").
  assert.equal(parse("--mode=int4").mode, "int4");
  assert.equal(parse("--calib", "c").mode, "static");
  // --exclude reads "/re/" as a pattern for INT8, as a name for the low-bit modes (they match names only).
  assert.deepEqual(parse("--mode", "dynamic", "--exclude", "/x/", "--exclude-node", "y").job.exclude, [{ regex: "x" }, "y"]);
  assert.deepEqual(parse("--mode", "int4", "--exclude", "/x/").job.exclude, ["/x/"]);
  assert.deepEqual(jobQConfig(parse("--mode", "dynamic", "--exclude", "/x/,y").job).exclude, [/x/, "y"]);
});

test("usage errors name the flag and what it takes", () => {
  usage(/^unknown option --bogus$/, "--bogus");
  usage(/^--exclude: \/\(\/ is not a regular expression/, "--mode", "dynamic", "--exclude", "/(/");
  usage(new RegExp(`--method takes ${CALIBRATION_METHODS.slice(0, -1).join(", ")} or ${CALIBRATION_METHODS.at(-1)}, not "foo"`), "--calib", "c", "--method", "foo");
  usage(/--batch-size takes a positive integer, not "0"/, "--calib", "c", "--batch-size", "0");
  usage(/--target takes "drop<=PP", not "drop<0.5"/, "--calib", "c", "--target", "drop<0.5");
  usage(/--fp4-format: fp4 options given with --mode int4/, "--mode", "int4", "--fp4-format", "mxfp4");
  usage(/--block-size: int4 options given with --mode static/, "--calib", "c", "--block-size", "64");
  usage(/static quantization needs --calib PATH/);
  usage(/--remedy needs --target, --target-sqnr or --target-agreement/, "--calib", "c", "--remedy", "float");
  usage(/--target-agreement takes a percentage in \(0, 100\]/, "--calib", "c", "--target-agreement", "150");
  usage(/--target "drop<=PP" needs --eval DIR/, "--calib", "c", "--target", "drop<=1");
  assert.throws(() => parseQuantizeArgs(["m.onnx", "--calib", "c"]), /-o OUT is required/);
});

test("help is generated from the table and states the engine's real defaults", () => {
  const help = quantizeHelp();
  for (const o of QUANT_OPTIONS.filter((x) => x.flag)) assert.match(help, new RegExp(`\\n  ${o.flag}\\b`), `${o.flag} in help`);
  const line = (flag: string) => help.slice(help.indexOf(`\n  ${flag} `), help.indexOf("\n  --", help.indexOf(`\n  ${flag} `) + 3));
  assert.match(line("--method"), new RegExp(`\\(default ${DEFAULT_CALIBRATION_METHOD}\\)`));
  assert.match(line("--percentile"), new RegExp(`\\(default ${resolveConfig().calibration.percentile}\\)`));
  assert.match(line("--weight-type"), /\(default auto for any\/avx2, int8 for vnni\/arm\)/);
  assert.match(line("--format"), /\(default qdq\)/);
  // Options a config file may set without a flag are listed with their defaults too.
  assert.match(help, /In --config only: +activationSymmetric \(default false\), weightSymmetric \(default true\)/);
  const flat = help.replace(/\s+/g, " ");
  for (const o of QUANT_OPTIONS) if (o.default) assert.ok(flat.includes(`(default ${defaultText(o)})`), `${o.key}'s default in help`);
  assert.equal(parseQuantizeArgs(["--help"]), "help");
});

test("--config: a JSON job, paths relative to it, flags over it", () =>
  withDir((dir) => {
    const file = path.join(dir, "q.json");
    writeFileSync(file, JSON.stringify({
      mode: "static", calib: "calib", perChannel: false, calibration: { method: "minmax", numBins: 512 },
      exclude: ["a,b", { regex: "^head" }], target: { drop: 0.5, eval: "/data/eval" }, overrides: { t: { keepFloat: true } },
    }));
    const c = parse("--config", file);
    assert.equal(c.job.calib, path.join(dir, "calib"));
    assert.deepEqual(jobQConfig(c.job), { perChannel: false, calibration: { method: "minmax", numBins: 512 }, overrides: { t: { keepFloat: true } }, exclude: ["a,b", /^head/] });
    // Flags win: a flag replaces the file's value (lists whole), --target-sqnr replaces the file's drop target.
    const o = parse("--config", file, "--method", "entropy", "--exclude-node", "z", "--target-sqnr", "30", "--calib", "mine");
    assert.deepEqual([o.job.calibration, o.job.exclude, o.job.target, o.job.calib], [{ method: "entropy", numBins: 512 }, ["z"], { sqnr: 30, eval: "/data/eval" }, "mine"]);
    assert.deepEqual(parse("--config", file, "--target-agreement", "99").job.target, { agreement: 99, eval: "/data/eval" }, "--target-agreement replaces it too");
    // The mode from the file decides what applies; a file option outside it is named with the file.
    writeFileSync(file, JSON.stringify({ mode: "int4", perChannel: false }));
    usage(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: perChannel: static/dynamic options given with --mode int4`), "--config", file);
    writeFileSync(file, JSON.stringify({ mode: "int4", exclude: [{ regex: "x" }] }));
    usage(/exclude: \{ "regex" \} patterns apply to --mode static and dynamic; --mode int4 takes node names/, "--config", file);
    writeFileSync(file, JSON.stringify({ mode: "int4", lowBit: { blockSize: 64 } }));
    assert.deepEqual(parse("--config", file, "--mode", "int4", "--bits", "8").job.lowBit, { blockSize: 64, bits: 8 });
  }));

test("--config refuses unknown keys (naming them and the allowed ones), bad values and bad JSON (naming line and column)", () =>
  withDir((dir) => {
    const file = path.join(dir, "q.json");
    const refused = (text: string, re: RegExp) => {
      writeFileSync(file, text);
      usage(re, "--config", file);
    };
    refused(`{ "mode": "dynamic", "perChanel": false }`, /q\.json: unknown key "perChanel" \(allowed: mode, calib, batchSize, calibration, perChannel, /);
    refused(`{ "calibration": { "bins": 3 } }`, /q\.json: unknown key "calibration\.bins" \(allowed in calibration: method, percentile, yardstick, outputs, wideActivations, wideForm, numBins, numQuantizedBins, movingAverage, averagingConstant\)/);
    refused(`{ "lowBit": { "gptq": { "damp": 1 } } }`, /unknown key "lowBit\.gptq\.damp" \(allowed in lowBit\.gptq: damping, actOrder\)/);
    const methods = CALIBRATION_METHODS.map((m) => `"${m}"`);
    refused(`{ "calibration": { "method": "kl" } }`, new RegExp(`q\\.json: calibration\\.method takes ${methods.slice(0, -1).join(", ")} or ${methods.at(-1)}, not "kl"`));
    refused(`{ "mode": "dynamic", "exclude": "a,b" }`, /exclude takes a list of node names and \{ "regex": "…" \} objects, not "a,b"/);
    refused(`{ "mode": "dynamic", "exclude": [{ "regex": "(" }] }`, /q\.json: exclude: \/\(\/ is not a regular expression \(Invalid regular expression/);
    refused(`{ "calibration": "mse" }`, /q\.json: calibration is an object of method, percentile/);
    refused(`{ "overrides": { "t": { "keep": true } } }`, /overrides\["t"\]: unknown key "keep" \(allowed: type, range, scale, zeroPoint, symmetric, keepFloat\)/);
    refused(`{\n  "mode": "dynamic",\n  "perChannel": false,\n}\n`, /q\.json: not valid JSON at line 4, column 1/);
    refused(`["static"]`, /q\.json: a config is a JSON object/);
    refused(``, /q\.json: not valid JSON \(the file is empty\)/);
    usage(/--config .*missing\.json: cannot read it \(ENOENT\)/, "--config", path.join(dir, "missing.json"));
  }));

test("flag values and config values are checked by the same row", () => {
  const damping = QUANT_OPTIONS.find((o) => o.flag === "--damping")!;
  assert.equal(valueFromText(damping, "0.05"), 0.05);
  assert.throws(() => valueFromText(damping, "2"), /--damping takes a number between 0 and 1 \(e\.g\. 0\.01\), not "2"/);
  assert.throws(() => valueFromText(QUANT_OPTIONS.find((o) => o.flag === "--bits")!, "3"), /--bits takes 2, 4 or 8, not "3"/);
  assert.equal(valueFromText(QUANT_OPTIONS.find((o) => o.flag === "--accuracy-level")!, "4"), 4);
});

test("a config as notebook source: keys in order, node names as strings, patterns as RegExp", () => {
  assert.equal(configSource({ perChannel: false, calibration: { method: "entropy" }, exclude: ["a,b", "/x/", { regex: "^h" }, /y/] }),
    `{ perChannel: false, calibration: { method: "entropy" }, exclude: ["a,b", "/x/", new RegExp("^h"), new RegExp("y")] }`);
  assert.equal(configSource({ overrides: { "a/b:0": { keepFloat: true } }, skipped: undefined }), `{ overrides: { "a/b:0": { keepFloat: true } } }`);
  assert.equal(configSource({}), "{}");
  // The notebook templates' QConfig at the engine's defaults: evaluated, it resolves to exactly the defaults.
  const literal = defaultConfigSource();
  assert.match(literal, new RegExp(`calibration: \\{ method: "${DEFAULT_CALIBRATION_METHOD}" \\}`));
  assert.deepEqual(resolveConfig(new Function(`return ${literal}`)()), resolveConfig({}));
});

test("one progress line: bar and counts, the engine's ETA when it gives one, nothing when disabled", () => {
  assert.equal(progressLine({ stage: "calibrating", done: 3, total: 10, unit: "batches" }), `calibrating: [#########.....................] 3/10 batches`);
  assert.equal(progressLine({ stage: "ranking nodes", done: 4, total: 8, unit: "nodes", etaS: 75 }), `ranking nodes: [###############...............] 4/8 nodes, ETA 1 min 15 s`);
  assert.equal(progressLine({ stage: "GPTQ calibration", done: 7, unit: "batches" }), "GPTQ calibration: 7 batches");
  assert.equal(progressLine({ stage: "ranking nodes", done: 8, total: 8, unit: "nodes", etaS: 0 }), `ranking nodes: [${"#".repeat(30)}] 8/8 nodes`, "no ETA once nothing is left");
  assert.equal(progressLine({ stage: "search", detail: "2 float → 41.20" }), "search: 2 float → 41.20");
  let out = "";
  const p = progressPrinter(true, (s) => void (out += s));
  p.callback("ranking nodes", "nodes")(1, 4, { etaS: 30 });
  p.callback("ranking nodes", "nodes")(2, 4, 12);
  p.done();
  assert.equal(out, "\rranking nodes: [########......................] 1/4 nodes, ETA 30 s\x1b[K\rranking nodes: [###############...............] 2/4 nodes, ETA 12 s\x1b[K\n");
  let quiet = "";
  const q = progressPrinter(false, (s) => void (quiet += s));
  q.update({ stage: "calibrating", done: 1 });
  q.done();
  assert.equal(quiet, "");
});

test("progress as lines for a program reading stderr: prefixed, a new stage at once, the same stage at most once a second (its last step always); calibrate()'s phases under their own names", () => {
  const lines: string[] = [];
  let t = 0;
  const p = progressLines((s) => void lines.push(s), 1000, () => t);
  const cal = calibrationProgress(p);
  cal(1, 4);
  t = 200;
  cal(2, 4); // same stage within a second: skipped
  t = 1300;
  cal(3, 4);
  t = 1400;
  cal(4, 4); // the stage's last step
  cal(0, 32, { phase: "measuring protected layers", unit: "nodes" });
  t = 1500;
  cal(5, 32, { phase: "measuring protected layers", unit: "nodes", etaSeconds: 130 });
  assert.deepEqual(lines, [
    `${PROGRESS_PREFIX}calibrating: [########......................] 1/4 batches\n`,
    `${PROGRESS_PREFIX}calibrating: [#######################.......] 3/4 batches\n`,
    `${PROGRESS_PREFIX}calibrating: [##############################] 4/4 batches\n`,
    `${PROGRESS_PREFIX}measuring protected layers: [..............................] 0/32 nodes\n`,
  ]);
  t = 2600;
  cal(6, 32, { phase: "measuring protected layers", unit: "nodes", etaSeconds: 120 });
  assert.equal(lines.at(-1), `${PROGRESS_PREFIX}measuring protected layers: [######........................] 6/32 nodes, ETA 2 min 00 s\n`);
  // The extension's runner reads the lines by the same prefix.
  assert.equal(RUNNER_PREFIX, PROGRESS_PREFIX);
});

test("docs/config.md lists every key of the table with its flags", () => {
  const doc = readFileSync(path.join(__dirname, "..", "..", "..", "docs", "config.md"), "utf8");
  for (const o of QUANT_OPTIONS) {
    const row = doc.split("\n").find((l) => l.startsWith(`| \`${o.key}\` |`));
    assert.ok(row, `${o.key} documented`);
    if (o.flag) assert.ok(row.includes(`\`${o.flag}\``), `${o.flag} in ${o.key}'s row`);
  }
});

test("the low-bit defaults help states are engine/lowbit's: spelled out or left out, the same bytes", async () => {
  const { lowBitModel } = await import("../../../engine/lowbit/index");
  const { Model } = await import("../../../engine/onnx/model");
  const vit = await Model.load(path.join(__dirname, "..", "..", "fixtures", "models", "vit.onnx"));
  const bytes = (o: Parameters<typeof lowBitModel>[1]) => Buffer.from(lowBitModel(vit, o).model.toBytes());
  const { blockSize, algorithm, bits, format, accuracyLevel, fp4Format, export: fp4Export } = LOWBIT_DEFAULTS;
  assert.ok(bytes({ mode: "int4" }).equals(bytes({ mode: "int4", blockSize, algorithm, bits, format, accuracyLevel })), "int4");
  assert.ok(!bytes({ mode: "int4" }).equals(bytes({ mode: "int4", blockSize: blockSize * 2 })), "a block size that is not the default changes the bytes");
  assert.ok(bytes({ mode: "fp4" }).equals(bytes({ mode: "fp4", fp4Format, export: fp4Export })), "fp4");
  const { DEFAULT_PROTECT_DB, DEFAULT_PROTECT_MAX_SIZE } = await import("../../../engine/lowbit/index");
  assert.deepEqual([LOWBIT_DEFAULTS.protect, LOWBIT_DEFAULTS.protectMaxSize], [DEFAULT_PROTECT_DB, DEFAULT_PROTECT_MAX_SIZE], "protection's target and size cap");
});

test("--image-*: how --calib images become the input, checked against the data and given to the reader", () => {
  const c = parse("--calib", IMAGES, "--image-mean", "0.485,0.456,0.406", "--image-std", "0.229,0.224,0.225", "--image-scale", "1", "--image-layout", "NHWC", "--image-size", "48x320");
  assert.deepEqual(c.job.images, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1, layout: "NHWC", size: [48, 320] });
  assert.deepEqual(jobReaderOptions(c.job), { batchSize: DEFAULT_BATCH_SIZE, images: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1, layout: "NHWC", size: [48, 320] } });
  // Not a QConfig field: the engine's conversion never sees it.
  assert.equal("images" in jobQConfig(c.job), false);
  assert.deepEqual(jobReaderOptions(parse("--calib", IMAGES).job), { batchSize: DEFAULT_BATCH_SIZE });
  usage(/--image-mean says how --calib images become the input: give --calib/, "--mode", "dynamic", "--image-mean", "0.5");
  usage(/--image-std applies to a folder of \.png\/\.jpg images; --calib .* holds npy/, "--calib", path.join(__dirname, "..", "..", "fixtures", "data", "eval"), "--image-std", "0.5");
  usage(/--image-std takes comma-separated values \(S\[,S,S\]\), each a non-zero number, not "0.2,0"/, "--calib", IMAGES, "--image-std", "0.2,0");
  usage(/--image-size takes 2 comma-separated values \(HxW\), each a positive integer, not "48"/, "--calib", IMAGES, "--image-size", "48");
  usage(/--image-mean takes comma-separated numbers \(M\[,M,M\]\), not "0.5,,1"/, "--calib", IMAGES, "--image-mean", "0.5,,1");
  withDir((dir) => {
    const file = path.join(dir, "job.json");
    writeFileSync(file, JSON.stringify({ calib: IMAGES, images: { mean: [0.5], std: [0.5] } }));
    assert.deepEqual(parse("--config", file, "--image-std", "0.25").job.images, { mean: [0.5], std: [0.25] });
    writeFileSync(file, JSON.stringify({ calib: IMAGES, images: { mean: "0.5" } }));
    assert.throws(() => parseQuantizeArgs(["m.onnx", "-o", "o.onnx", "--config", file]), /images\.mean takes a list of numbers, not "0\.5"/);
    writeFileSync(file, JSON.stringify({ calib: IMAGES, images: { gamma: 2 } }));
    assert.throws(() => parseQuantizeArgs(["m.onnx", "-o", "o.onnx", "--config", file]), /unknown key "images\.gamma" \(allowed in images: mean, std, scale, layout, size\)/);
  });
});
