/**
 * Fixture digests: quantizes every fixture model under the main configurations through the CLI and prints one
 * sha256 per output file. Refactors promise "same models byte for byte"; run this before and after (on the same
 * machine: calibration ranges come from onnxruntime's float kernels, whose last bits may differ between CPUs) and
 * diff the two lists.
 *
 *   node --import tsx bench/fixture-digests.ts > before.txt   # … change …   then again > after.txt; diff
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const models = path.join(root, "test/fixtures/models");
const calib = path.join(root, "test/fixtures/data/calib/npy");
const lmCalib = path.join(root, "test/fixtures/data/lm/heldout.npy");

/** Configurations, each a list of extra CLI flags; `calib` ones get the model's calibration data. */
const configs: Array<{ name: string; args: string[]; calib: boolean }> = [
  { name: "static", args: [], calib: true },
  { name: "static-minmax-int8", args: ["--method", "minmax", "--target-cpu", "vnni"], calib: true },
  { name: "static-entropy-qop", args: ["--method", "entropy", "--format", "qoperator"], calib: true },
  { name: "static-percentile-a16", args: ["--method", "percentile", "--activation-type", "uint16", "--per-tensor"], calib: true },
  { name: "dynamic", args: ["--mode", "dynamic"], calib: false },
  { name: "int4", args: ["--mode", "int4"], calib: false },
  { name: "int4-hqq-asym", args: ["--mode", "int4", "--algorithm", "hqq", "--asymmetric"], calib: false },
  { name: "fp4", args: ["--mode", "fp4"], calib: false },
];

const cli = path.join(root, "cli/main.ts");
const out = mkdtempSync(path.join(tmpdir(), "ptq-digests-"));
try {
  for (const file of readdirSync(models).filter((f) => f.endsWith(".onnx")).sort()) {
    for (const config of configs) {
      const target = path.join(out, `${file}.${config.name}.onnx`);
      const data = file.startsWith("lm.") ? lmCalib : calib;
      const args = [cli, "quantize", path.join(models, file), "-o", target, ...config.args];
      if (config.calib) args.push("--calib", data);
      const run = spawnSync(process.execPath, ["--import", "tsx", ...args], { cwd: root, encoding: "utf8" });
      const digest = run.status === 0 ? createHash("sha256").update(readFileSync(target)).digest("hex") : `exit ${run.status}: ${lastLine(run.stderr)}`;
      console.log(`${file} ${config.name} ${digest}`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}

function lastLine(text: string): string {
  return text.trim().split("\n").pop() ?? "";
}
