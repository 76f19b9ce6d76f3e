// The wizard's run as a file: OUT.ptq.json, the `ptq quantize --config` job the run executes and a terminal can run
// again. It names data that outlives the run: the user's folder (this run calibrates on the part of it not held out
// for the report, given on the command line over the config), or, for random data, the same samples kept beside OUT.
import { existsSync, renameSync, writeFileSync } from "node:fs";
import type { ModelProto } from "onnx-buf";
import { configPath, configText, quantizeJob, type QuantizeOptions } from "./options";
import { writeRandomCalibrationFile } from "./randomCalib";
import type { ReportData } from "./reportData";
import { randomCalibrationFile } from "./reproduce";

export interface RunConfig {
  file: string;
  /** --calib for this run when it calibrates on other data than the config names (a split of the user's folder). */
  calib?: string;
  /** Files written for the run, to remove if it does not succeed. */
  created: string[];
}

export function writeRunConfig(o: QuantizeOptions, model: ModelProto, data: ReportData): RunConfig {
  const created: string[] = [];
  let calib = o.calibrationDir;
  if (o.scheme === "int8-static" && o.randomData) {
    const wanted = randomCalibrationFile(o);
    const existed = existsSync(wanted);
    calib = writeRandomCalibrationFile(model, o.input, wanted, o.shapes);
    if (calib !== wanted || !existed) created.push(calib);
  }
  const file = configPath(o);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, configText(quantizeJob(o, calib)));
  renameSync(tmp, file);
  created.push(file);
  return { file, calib: data.calib !== calib && !o.randomData ? data.calib : undefined, created };
}
