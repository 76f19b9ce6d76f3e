// "Open in notebook" from the quantization report: a notebook whose cells redo the run through the kernel's API with
// the run's config (the job the wizard wrote for `ptq quantize --config`: same calibration data, batch size,
// method, granularity, excluded nodes; the low-bit schemes through quantizeLowBit), its QConfig literal written by
// the option table's configSource, then one benchmark of FP32, the run's model and the notebook's (the two
// quantized ones should time alike: they are the same bytes).
// Pure: the caller writes the random calibration samples where `randomCalibrationFile` says.
import path from "node:path";
import { configSource, jobQConfig, jobReaderOptions } from "../../engine/quant/options";
import type { TemplateCell } from "../editor/notebookTemplate";
import { configPath, quantizeJob, reproduceCommand, type QuantizeOptions } from "./options";

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

/** The run's QConfig as a literal (exact node names stay string literals, never a RegExp). */
function int8Config(o: QuantizeOptions, calibration: string | undefined): string {
  return configSource(jobQConfig(quantizeJob(o, calibration)));
}

/** How the run read its data (batch size; for images, their normalization) as an openData options literal. */
function readerOptions(o: QuantizeOptions, calibration: string): string {
  return configSource(jobReaderOptions(quantizeJob(o, calibration)));
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
        `const data = openData(${q(calibration)}, model, ${readerOptions(o, calibration)});`,
        `const summary = await quantizeStatic(fp32, out, data, ${int8Config(o, calibration)});`, SUMMARY,
      ].join("\n");
    }
    case "int8-dynamic":
      if (!calibration) return [`import { quantizeDynamic } from "ptq";`, fp32, out, `const summary = await quantizeDynamic(fp32, out, ${int8Config(o, undefined)});`, SUMMARY].join("\n");
      return [
        `import { loadModel, openData, quantizeDynamic } from "ptq";`, fp32, out,
        `const model = await loadModel(fp32);`,
        "// The run's samples: the outputs are measured on them and the layers int8 would ruin stay float.",
        `const data = openData(${q(calibration)}, model, ${readerOptions(o, calibration)});`,
        `const summary = await quantizeDynamic(fp32, out, ${int8Config(o, undefined)}, { data });`, SUMMARY,
      ].join("\n");
    case "int4-weights":
    case "fp4-weights": {
      const job = quantizeJob(o);
      const options = configSource({ mode: job.mode, ...job.lowBit, exclude: job.exclude, rounding: job.rounding });
      const written = "`wrote ${out}: ${report.layers.length} weights in low bits, ${report.skipped.length} skipped`";
      if (!calibration) return [`import { quantizeLowBit } from "ptq";`, fp32, out, `const report = await quantizeLowBit(fp32, out, ${options});`, written].join("\n");
      return [
        `import { loadModel, openData, quantizeLowBit } from "ptq";`, fp32, out,
        `const model = await loadModel(fp32);`,
        "// The run's samples: the outputs are measured on them and the layers 4 bits would ruin are protected.",
        `const data = openData(${q(calibration)}, model, ${readerOptions(o, calibration)});`,
        `const report = await quantizeLowBit(fp32, out, ${options}, data);`,
        written + " + ` · ${report.output?.sqnrDb.toFixed(1)} dB at the outputs`",
      ].join("\n");
    }
  }
}

/**
 * The cells: what the run was, the quantization itself, then the benchmark. For a
 * random-data run `randomCalib` is the .npy holding the run's samples.
 */
export function reproduceCells(o: QuantizeOptions, randomCalib?: string): TemplateCell[] {
  const calibration = o.scheme === "int8-static" ? (o.randomData ? randomCalib : o.calibrationDir) : o.calibrationDir;
  const what = [
    `# Quantize ${path.basename(o.input)}`,
    `Reproduces the "Quantize model…" run that wrote \`${path.basename(o.output)}\` (${o.scheme}${o.scheme === "int8-static" ? `, ${o.calibrationMethod} calibration on ${o.randomData ? "random data" : `\`${o.calibrationDir}\``}` : ""}).`,
    `It writes \`${path.basename(notebookOutput(o))}\`, so nothing is overwritten, then benchmarks the models.`,
    `From a terminal, the run's config (\`${path.basename(configPath(o))}\`) does the same: \`${reproduceCommand(o)}\``,
  ].join("\n");
  const bench = [
    `// @benchmark`,
    `import { benchmark } from "ptq";`,
    `await benchmark({ fp32: ${q(o.input)}, run: ${q(o.output)}, notebook: ${q(notebookOutput(o))} }, { batchSizes: [1], seconds: 5 })`,
  ].join("\n");
  return [{ kind: "markdown", source: what }, { kind: "code", source: runCell(o, calibration) }, { kind: "code", source: bench }];
}
