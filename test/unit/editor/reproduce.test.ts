// "Open in notebook" from the quantization report: the notebook's quantization cell, run against the kernel's API,
// writes the same bytes as the wizard's `ptq quantize` run (static on random data, dynamic), and the cell sources
// carry every wizard option. The random samples file is the run's, reused when identical, never overwritten.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, copyFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import * as api from "../../../kernel/api";
import { run as cliQuantize } from "../../../cli/quantize";
import { configPath, configText, defaultOptions, IMAGE_PRESETS, imageFlags, quantizeArgs, quantizeJob, reportArgs, type QuantizeOptions } from "../../../src/quantize/options";
import { randomCalibrationNpy, writeRandomCalibration, writeRandomCalibrationFile } from "../../../src/quantize/randomCalib";
import { notebookOutput, randomCalibrationFile, reproduceCells } from "../../../src/quantize/reproduce";
import { tempDir, removeAtExit } from "../../temp";

const CNN = path.join(__dirname, "..", "..", "fixtures", "models", "cnn.onnx");

/** Runs a generated cell as the kernel would: `import … from "ptq"` bound to kernel/api, top-level await allowed. */
async function runCell(source: string): Promise<void> {
  const body = source.replace(/^import \{([^}]+)\} from "ptq";$/gm, "const {$1} = ptq;");
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (ptq: unknown) => Promise<void>;
  await new AsyncFunction("ptq", body)(api);
}

function workspace(): { dir: string; input: string } {
  const dir = tempDir("ptq-reproduce-");
  const input = path.join(dir, "cnn.onnx");
  copyFileSync(CNN, input);
  return { dir, input };
}

/** The wizard's run: its config written beside OUT, then `ptq quantize … --config`. */
async function cliRun(o: QuantizeOptions, calib?: string): Promise<void> {
  writeFileSync(configPath(o), configText(quantizeJob(o, calib)));
  // Not silenced: under node:test, stdout carries the runner's own messages. It prints the --json summary.
  assert.equal(await cliQuantize(quantizeArgs(o, o.output, configPath(o)).slice(1)), 0); // without the subcommand name
}

test("INT8 static on random data: the notebook calibrates on the run's samples and writes the run's bytes", async () => {
  const { input } = workspace();
  const o: QuantizeOptions = { ...defaultOptions(input), randomData: true };
  const proto = fromBinary(ModelProtoSchema, readFileSync(input));
  await cliRun(o, removeAtExit(writeRandomCalibration(proto, input)));
  const npy = writeRandomCalibrationFile(proto, input, randomCalibrationFile(o));
  assert.equal(npy, path.join(path.dirname(input), "cnn.int8.random-calib.npy"));
  const cells = reproduceCells(o, npy);
  assert.deepEqual(cells.map((c) => c.kind), ["markdown", "code", "code"]);
  const code = cells[1]!.source;
  assert.match(code, /openData\(".*cnn\.int8\.random-calib\.npy", model, \{ batchSize: 32 \}\)/);
  assert.match(code, /calibration: \{ method: "auto" \}/);
  assert.match(cells[0]!.source, /random data/);
  assert.match(cells[0]!.source, /From a terminal, the run's config \(`cnn\.int8\.ptq\.json`\) does the same: `ptq quantize \S+cnn\.onnx -o \S+cnn\.int8\.onnx --config \S+cnn\.int8\.ptq\.json`/);
  await runCell(code);
  assert.ok(readFileSync(notebookOutput(o)).equals(readFileSync(o.output)), "the notebook's model is byte-identical to the run's");
  assert.match(cells[2]!.source, /benchmark\(\{ fp32: ".*cnn\.onnx", run: ".*cnn\.int8\.onnx", notebook: ".*cnn\.int8\.notebook\.onnx" \}/);
});

test("INT8 static with weight rounding \"auto\": the notebook asks for it and writes the run's bytes", async () => {
  const { input } = workspace();
  const o: QuantizeOptions = { ...defaultOptions(input), randomData: true, rounding: "auto" };
  const proto = fromBinary(ModelProtoSchema, readFileSync(input));
  await cliRun(o, removeAtExit(writeRandomCalibration(proto, input)));
  const code = reproduceCells(o, writeRandomCalibrationFile(proto, input, randomCalibrationFile(o)))[1]!.source;
  assert.match(code, /rounding: "auto"/);
  await runCell(code);
  assert.ok(readFileSync(notebookOutput(o)).equals(readFileSync(o.output)), "the notebook's model is byte-identical to the run's");
});

test("INT8 dynamic per-tensor with an excluded node: same bytes as the CLI run", async () => {
  const { input } = workspace();
  const o: QuantizeOptions = { ...defaultOptions(input, "int8-dynamic"), perChannel: false, exclude: ["/head/head.1/Gemm"] };
  await cliRun(o);
  const code = reproduceCells(o)[1]!.source;
  assert.match(code, /quantizeDynamic\(fp32, out, \{ perChannel: false, exclude: \["\/head\/head\.1\/Gemm"\] \}\);/);
  await runCell(code);
  assert.ok(readFileSync(notebookOutput(o)).equals(readFileSync(o.output)), "the notebook's model is byte-identical to the run's");
});

test("cell sources: low-bit schemes through quantizeLowBit, exclusions as exact names (never a RegExp), a folder run names its folder", () => {
  const int4 = reproduceCells({ ...defaultOptions("/ws/llm.onnx", "int4-weights"), blockSize: 64, exclude: ["lm_head"] })[1]!.source;
  assert.match(int4, /quantizeLowBit\(fp32, out, \{ mode: "int4", blockSize: 64, exclude: \["lm_head"\] \}\)/);
  assert.match(int4, /const out = "\/ws\/llm\.int4\.notebook\.onnx"/);
  const fp4 = reproduceCells(defaultOptions("/ws/llm.onnx", "fp4-weights"))[1]!.source;
  assert.match(fp4, /quantizeLowBit\(fp32, out, \{ mode: "fp4" \}\)/);
  const folder = reproduceCells({ ...defaultOptions("/ws/cnn.onnx"), calibrationDir: "/ws/calib", calibrationMethod: "entropy", exclude: ["/conv.*/", "a,b", 'q"\\'] })[1]!.source;
  assert.match(folder, /openData\("\/ws\/calib", model, \{ batchSize: 32 \}\)/);
  assert.ok(folder.includes(`calibration: { method: "entropy" }, exclude: ["/conv.*/", "a,b", "q\\"\\\\"]`), folder);
  assert.doesNotMatch(folder, /RegExp/);
  const dynamic = reproduceCells({ ...defaultOptions("/ws/cnn.onnx", "int8-dynamic"), exclude: ["/x/"] })[1]!.source;
  assert.match(dynamic, /exclude: \["\/x\/"\] \}\);/);
  assert.throws(() => reproduceCells({ ...defaultOptions("/ws/cnn.onnx"), randomData: true }), /needs the calibration data/);
});

/** A wizard run on a folder of samples, then its notebook cell: the call it makes, and the run's bytes. */
async function folderRun(scheme: "int8-dynamic" | "fp4-weights" | "int4-weights", call: RegExp, extra: Partial<QuantizeOptions> = {}): Promise<void> {
  const { input } = workspace();
  const samples = path.join(__dirname, "..", "..", "fixtures", "data", "calib", "npy");
  const o: QuantizeOptions = { ...defaultOptions(input, scheme), calibrationDir: samples, ...extra };
  await cliRun(o, samples);
  const code = reproduceCells(o)[1]!.source;
  assert.match(code, /openData\(".*calib\/npy", model, \{ batchSize: 32 \}\)/);
  assert.match(code, call);
  await runCell(code);
  assert.ok(readFileSync(notebookOutput(o)).equals(readFileSync(o.output)), "the notebook's model is byte-identical to the run's");
}

test("INT8 dynamic with a folder of samples: the run measures protection on them, and the notebook writes the run's bytes", () =>
  folderRun("int8-dynamic", /quantizeDynamic\(fp32, out, \{\}, \{ data \}\)/));

test("FP4 weights with a folder of samples: the run measures and protects its outputs, and the notebook writes the run's bytes", () =>
  folderRun("fp4-weights", /quantizeLowBit\(fp32, out, \{ mode: "fp4" \}, data\)/));

test("FP4 with samples and the wizard's Nearest rounding (not FP4's default): the notebook passes it and writes the run's bytes", () =>
  folderRun("fp4-weights", /quantizeLowBit\(fp32, out, \{ mode: "fp4", rounding: "nearest" \}, data\)/, { rounding: "nearest" }));

test("int4 with samples and rounding auto: the notebook passes it and writes the run's bytes", () =>
  folderRun("int4-weights", /quantizeLowBit\(fp32, out, \{ mode: "int4", blockSize: 32, rounding: "auto" \}, data\)/, { rounding: "auto" }));

test("the random samples file: the temp run's bytes, reused when identical, a different file never overwritten", () => {
  const { dir, input } = workspace();
  const proto = fromBinary(ModelProtoSchema, readFileSync(input));
  const temp = removeAtExit(writeRandomCalibration(proto, input));
  const wanted = path.join(dir, "cnn.int8.random-calib.npy");
  assert.equal(writeRandomCalibrationFile(proto, input, wanted), wanted);
  assert.ok(readFileSync(wanted).equals(readFileSync(path.join(temp, "random.npy"))));
  assert.equal(writeRandomCalibrationFile(proto, input, wanted), wanted, "an identical file is reused");
  writeFileSync(wanted, "someone else's file");
  const other = writeRandomCalibrationFile(proto, input, wanted);
  assert.equal(other, path.join(dir, "cnn.int8.random-calib-2.npy"));
  assert.equal(readFileSync(wanted, "utf8"), "someone else's file");
  assert.ok(readFileSync(other).equals(Buffer.from(randomCalibrationNpy(proto, input))));
  assert.ok(!existsSync(`${other}.${process.pid}.tmp`));
});

test("INT8 static on a folder of images normalized as in training: the config, the report's flags and the notebook's openData carry it; the notebook writes the run's bytes", async () => {
  const { input } = workspace();
  const images = path.join(__dirname, "..", "data", "files", "images", "gray");
  const preset = IMAGE_PRESETS.find((p) => p.label === "Pixels in [−1, 1]")!;
  const o: QuantizeOptions = { ...defaultOptions(input, "int8-static"), calibrationDir: images, images: preset.images };
  assert.deepEqual(quantizeJob(o).images, { mean: [0.5], std: [0.5] });
  assert.deepEqual(reportArgs(o, { heldout: "/held" }).slice(-6), ["--data", "/held", "--image-mean", "0.5", "--image-std", "0.5"]);
  assert.deepEqual(imageFlags({ scale: 1, size: [48, 320], layout: "NHWC" }), ["--image-scale", "1", "--image-layout", "NHWC", "--image-size", "48x320"]);
  await cliRun(o, images);
  const code = reproduceCells(o)[1]!.source;
  assert.match(code, /openData\(".*images\/gray", model, \{ batchSize: 32, images: \{ mean: \[0\.5\], std: \[0\.5\] \} \}\)/);
  await runCell(code);
  assert.ok(readFileSync(notebookOutput(o)).equals(readFileSync(o.output)), "the notebook's model is byte-identical to the run's");
  // The default preset sets nothing: pixels / 255, the readers' own default.
  assert.equal(IMAGE_PRESETS[0]!.images, undefined);
  assert.equal(quantizeJob({ ...o, images: undefined }).images, undefined);
});
