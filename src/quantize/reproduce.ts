// "Open in notebook" from the quantization report: a notebook whose cells redo the run through the kernel's API with
// the options the wizard passed to `ptq quantize` (same calibration data, batch size, method, granularity, excluded
// nodes; the low-bit schemes through quantizeLowBit), writing a new file beside the run's, then one benchmark of
// FP32, the run's model and the notebook's (the two quantized ones should time alike: they are the same bytes).
// Pure: the caller writes the random calibration samples where `randomCalibrationFile` says.
import path from "node:path";
import type { TemplateCell } from "../editor/notebookTemplate";
import type { QuantizeOptions } from "./options";

/** `ptq quantize`'s default --batch-size, which the wizard's run used. */
const CLI_BATCH_SIZE = 32;

const q = (s: string) => JSON.stringify(s);
/** The cell's result: one line (the whole summary is one expression away: `summary`). */
const SUMMARY = "`wrote ${out}: ${summary.quantized.length} nodes quantized, ${summary.float.length} left in float`";

/** Where the notebook's copy of a random-data run's samples goes: beside the quantized model. */
export function randomCalibrationFile(o: QuantizeOptions): string {
  return o.output.replace(/\.onnx$/i, "") + ".random-calib.npy";
}

/** The notebook's output: beside the run's, so neither the input nor the run's model is overwritten. */
export function notebookOutput(o: QuantizeOptions): string {
  return o.output.replace(/\.onnx$/i, "") + ".notebook.onnx";
}

function int8Config(o: QuantizeOptions): string {
  const parts: string[] = [];
  if (!o.perChannel) parts.push("perChannel: false");
  if (o.scheme === "int8-static") parts.push(`calibration: { method: ${q(o.calibrationMethod)} }`);
  // Exact names, as the run passed them (--exclude-node): string literals, never a RegExp.
  if (o.exclude.length) parts.push(`exclude: [${o.exclude.map(q).join(", ")}]`);
  return parts.length ? `{ ${parts.join(", ")} }` : "{}";
}

function runCell(o: QuantizeOptions, calibration: string | undefined): string {
  const fp32 = `const fp32 = ${q(o.input)};`;
  const out = `const out = ${q(notebookOutput(o))}; // a new file: quantize* never overwrites`;
  switch (o.scheme) {
    case "int8-static": {
      if (!calibration) throw new Error("reproduceCells: INT8 static needs the calibration data the run used");
      const note = o.randomData
        ? "// The run calibrated on seeded random samples (the same ones are in this .npy): accuracy suffers. Point openData at real samples instead."
        : "// The calibration data the run used.";
      return [
        `import { loadModel, openData, quantizeStatic } from "ptq";`, fp32, out,
        `const model = await loadModel(fp32);`, note,
        `const data = openData(${q(calibration)}, model, { batchSize: ${CLI_BATCH_SIZE} });`,
        `const summary = await quantizeStatic(fp32, out, data, ${int8Config(o)});`, SUMMARY,
      ].join("\n");
    }
    case "int8-dynamic":
      return [`import { quantizeDynamic } from "ptq";`, fp32, out, `const summary = await quantizeDynamic(fp32, out, ${int8Config(o)});`, SUMMARY].join("\n");
    case "int4-weights":
    case "fp4-weights": {
      const opts = o.scheme === "int4-weights" ? [`mode: "int4"`, `blockSize: ${o.blockSize}`] : [`mode: "fp4"`];
      if (o.exclude.length) opts.push(`exclude: [${o.exclude.map(q).join(", ")}]`);
      return [
        `import { quantizeLowBit } from "ptq";`, fp32, out,
        `const report = await quantizeLowBit(fp32, out, { ${opts.join(", ")} });`,
        "`wrote ${out}: ${report.layers.length} weights in low bits, ${report.skipped.length} skipped`",
      ].join("\n");
    }
  }
}

/**
 * The cells: what the run was, the quantization itself, then the benchmark. For a
 * random-data run `randomCalib` is the .npy holding the run's samples.
 */
export function reproduceCells(o: QuantizeOptions, randomCalib?: string): TemplateCell[] {
  const calibration = o.scheme === "int8-static" ? (o.randomData ? randomCalib : o.calibrationDir) : undefined;
  const what = [
    `# Quantize ${path.basename(o.input)}`,
    `Reproduces the "Quantize model…" run that wrote \`${path.basename(o.output)}\` (${o.scheme}${o.scheme === "int8-static" ? `, ${o.calibrationMethod} calibration on ${o.randomData ? "random data" : `\`${o.calibrationDir}\``}` : ""}).`,
    `It writes \`${path.basename(notebookOutput(o))}\`, so nothing is overwritten, then benchmarks the models.`,
  ].join("\n");
  const bench = [
    `// @benchmark`,
    `import { benchmark } from "ptq";`,
    `await benchmark({ fp32: ${q(o.input)}, run: ${q(o.output)}, notebook: ${q(notebookOutput(o))} }, { batchSizes: [1], seconds: 5 })`,
  ].join("\n");
  return [{ kind: "markdown", source: what }, { kind: "code", source: runCell(o, calibration) }, { kind: "code", source: bench }];
}
