// "Random data" calibration: seeded normal samples for a single float input, written as one .npy (samples stacked
// on the first axis) that `ptq quantize --calib` reads, and held-out samples from another seed that the report
// measures on. Pure except the write* functions. Accuracy will suffer: the wizard says so and the report repeats it.
// The samples' bytes are checked against the feedBytes limit before anything is allocated: a model may declare a
// huge input, and this runs in the extension host.
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ModelProto } from "onnx-buf";
import { checkFeedBytes, type Limits } from "../../engine/onnx/limits";
import { encodeNpy } from "../../engine/data/npy";
import { seededRandom } from "../../engine/data/random";

/** Seeds of the calibration samples and of the held-out samples the report measures on: never the same samples. */
export const CALIBRATION_SEED = 1;
export const HELDOUT_SEED = 2;
/** How many samples each gets. */
export const CALIBRATION_SAMPLES = 32;
export const HELDOUT_SAMPLES = 64;

/** Seeded standard-normal values (engine/data's generator + Box-Muller), so two runs calibrate the same way. */
export function normalSamples(n: number, seed = 1): Float32Array {
  const rand = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return out;
}

/**
 * Shape of `samples` inputs for the model's only graph input: `given` (the wizard asked the user) where the model
 * leaves dims symbolic, else named dims other than the first become 1.
 */
export function randomCalibrationShape(model: ModelProto, samples: number, what: string, given?: Record<string, number[]>): number[] {
  const inits = new Set(model.graph?.initializer.map((t) => t.name));
  const inputs = (model.graph?.input ?? []).filter((v) => !inits.has(v.name));
  if (inputs.length !== 1) throw new Error(`${what}: random calibration data supports models with one input; this one has ${inputs.length}. Choose a folder of samples instead.`);
  const t = inputs[0]!.type?.value;
  if (t?.case !== "tensorType" || t.value.elemType !== 1 || !t.value.shape) throw new Error(`${what}: random calibration data needs a float input with a known rank ("${inputs[0]!.name}" is not). Choose a folder of samples instead.`);
  const asked = given?.[inputs[0]!.name];
  const dims = t.value.shape.dim.map((d, i) => (d.value.case === "dimValue" && d.value.value > 0n ? Number(d.value.value) : i === 0 ? samples : asked?.[i] ?? 1));
  // A fixed batch of 1 still gets `samples` rows: the reader splits stacked samples by the model's batch.
  dims[0] = samples * (dims[0] === samples ? 1 : dims[0] ?? 1);
  return dims;
}

/**
 * The seeded samples as one .npy: the same bytes on every call for the same model and seed. Refused (LimitError,
 * naming the input and PTQ_LIMIT_FEED_BYTES) before allocation when they would pass the feedBytes limit.
 */
export function randomCalibrationNpy(model: ModelProto, what: string, samples = CALIBRATION_SAMPLES, seed = CALIBRATION_SEED, limits?: Limits, shapes?: Record<string, number[]>): Uint8Array {
  const shape = randomCalibrationShape(model, samples, what, shapes);
  const input = model.graph?.input.find((v) => !model.graph?.initializer.some((t) => t.name === v.name));
  checkFeedBytes([{ name: input?.name ?? "?", dims: shape, bytesPerElement: 4 }], `${what}: random samples`, limits);
  return encodeNpy(normalSamples(shape.reduce((a, b) => a * b, 1), seed), shape);
}

/** Writes the samples to a fresh temp folder and returns it. */
export function writeRandomCalibration(model: ModelProto, what: string, samples = CALIBRATION_SAMPLES, seed = CALIBRATION_SEED, shapes?: Record<string, number[]>): string {
  const npy = randomCalibrationNpy(model, what, samples, seed, undefined, shapes);
  const dir = mkdtempSync(path.join(os.tmpdir(), seed === CALIBRATION_SEED ? "ptq-random-calib-" : "ptq-random-heldout-"));
  try {
    writeFileSync(path.join(dir, "random.npy"), npy);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

/**
 * Writes the samples to `wanted` (atomically) for a notebook to calibrate on; an identical file there is reused, a
 * different one is never overwritten (a free name beside it is used). Returns the file written or reused.
 */
export function writeRandomCalibrationFile(model: ModelProto, what: string, wanted: string, shapes?: Record<string, number[]>): string {
  const npy = randomCalibrationNpy(model, what, undefined, undefined, undefined, shapes);
  const same = (p: string) => existsSync(p) && Buffer.from(npy).equals(readFileSync(p));
  let file = wanted;
  for (let i = 2; existsSync(file) && !same(file); i++) file = wanted.replace(/\.npy$/i, `-${i}.npy`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, npy);
    renameSync(tmp, file);
  }
  return file;
}
