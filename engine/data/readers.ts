// Calibration/eval data readers. Each returns a lazy iterable of feeds (one file read per step, so memory does not
// grow with the number of files) and checks every batch against the model's inputs, naming the file on error.

import { fromBinary } from "@bufbuild/protobuf";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { TensorProtoSchema } from "onnx-buf";
import { DataType, dtypeName } from "../onnx/dtype";
import { readTensor, tensorRawBytes } from "../onnx/tensor";
import { batchesOf, DataError, inputSpecs, readAgain, type TensorArray, type Feeds, type LoadedArray, type ModelInputsSource } from "./feeds";
import { readImageFolder, type ImageNormalization } from "./images";
import { dataKind } from "./kind";
import type { Limits } from "../onnx/limits";
import { parseNpy } from "./npy";
import { ZipFile } from "./zip";

// What a reader needs to know about the model: its proto (or a Model holding one) or its input list.
export { inputSpecs, type ModelInputsSource } from "./feeds";

export interface ReaderOptions {
  /** Split arrays stacked along the first axis into batches of this many samples (dynamic-batch models). */
  batchSize?: number;
  /** Overrides of the resource limits (engine/onnx/limits.ts; docs/limits.md), e.g. { npzBytes: 4 * 2 ** 30 }. */
  limits?: Limits;
  /** Names that are not inputs, skipped: .npy files in a folder (`y.npy`) and arrays in an .npz (`y`): labels kept
   * beside the inputs, read by the caller. */
  exclude?: readonly string[];
  /** Image folders: how pixels become the input (default: RGB or gray as the model's channels, × 1/255, the model's
   *  layout and size, bilinear). */
  images?: ImageNormalization;
}

/** Numeric file order: a2 before a10. */
const natural = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });

/** The files of a folder ending in `ext`, in the order the readers read them (a2 before a10). */
export function listFiles(dir: string, ext: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`${dir}: not a folder`);
  const files = readdirSync(dir).filter((f) => f.toLowerCase().endsWith(ext)).sort(natural);
  if (files.length === 0) throw new DataError(`${dir}: no ${ext} files in this folder`);
  return files.map((f) => path.join(dir, f));
}

/**
 * A folder of .npy files for a single-input model: each file is one sample (model rank - 1), one batch, or
 * several samples stacked along the first axis (split by the model's fixed batch or `batchSize`).
 */
export function* readNpyFolder(dir: string, model: ModelInputsSource, options: ReaderOptions = {}): Generator<Feeds> {
  const specs = inputSpecs(model);
  const files = listFiles(dir, ".npy").filter((f) => !options.exclude?.includes(path.basename(f)));
  // Several inputs: one `<input name>.npy` per input, each with the samples stacked along the first axis.
  const named = specs.map((s) => files.find((f) => path.basename(f) === `${s.name}.npy`));
  if (specs.length > 1 && named.every((f) => f !== undefined)) {
    yield* batchesOf(new Map(specs.map((s, i) => [s.name, parseNpy(readFileSync(named[i]!), named[i]!)])), specs, dir, options.batchSize);
    return;
  }
  if (specs.length !== 1) {
    throw new DataError(
      `${dir}: a folder of .npy files feeds single-input models only; this model has inputs ${specs.map((s) => `"${s.name}"`).join(", ")}. ` +
        `Use .npz files with one array per input name, or one <input name>.npy per input` +
        (named.some((f) => f === undefined) ? ` (missing: ${specs.filter((_, i) => !named[i]).map((s) => `${s.name}.npy`).join(", ")})` : "") + ".",
    );
  }
  if (files.length === 0) throw new DataError(`${dir}: no .npy input files in this folder (only ${options.exclude?.join(", ")})`);
  for (const file of files) {
    const a = parseNpy(readFileSync(file), file);
    yield* batchesOf(new Map([[specs[0]!.name, a]]), specs, file, options.batchSize);
  }
}

/** One .npz file (keys = input names, each array stacked along the first axis), or a folder of them. */
export function* readNpz(fileOrDir: string, model: ModelInputsSource, options: ReaderOptions = {}): Generator<Feeds> {
  const specs = inputSpecs(model);
  const files = statSync(fileOrDir).isDirectory() ? listFiles(fileOrDir, ".npz") : [fileOrDir];
  for (const file of files) {
    const zip = new ZipFile(file, options.limits);
    const arrays = new Map<string, LoadedArray>();
    try {
      if (zip.entries.length === 0) throw new DataError(`${file}: the .npz file holds no arrays`);
      for (const e of zip.entries) {
        const key = e.name.replace(/\.npy$/, "");
        if (options.exclude?.includes(key)) continue;
        arrays.set(key, parseNpy(zip.read(e), `${file}[${key}]`));
      }
    } finally {
      zip.close();
    }
    yield* batchesOf(arrays, specs, file, options.batchSize);
  }
}

function tensorArray(file: string, bytes: Uint8Array): { name: string; array: LoadedArray } {
  const t = fromBinary(TensorProtoSchema, bytes);
  const dims = t.dims.map(Number);
  // float16 is fed as its bits; readTensor would widen it to float32.
  if (t.dataType === DataType.FLOAT16) {
    const raw = tensorRawBytes(t);
    const data = new Uint16Array(raw.length / 2);
    new Uint8Array(data.buffer).set(raw);
    return { name: t.name, array: { dtype: t.dataType, dims, data } };
  }
  const v = readTensor(t);
  if (Array.isArray(v.data)) throw new DataError(`${file}: tensor "${t.name}" holds strings; only numeric inputs can be fed`);
  const data = (t.dataType === DataType.BOOL ? Uint8Array.from(v.data as Uint8Array) : v.data) as TensorArray;
  if (v.dtype !== t.dataType && t.dataType !== DataType.BOOL) {
    throw new DataError(`${file}: element type ${dtypeName(t.dataType)} cannot be fed from JavaScript`);
  }
  return { name: t.name, array: { dtype: t.dataType, dims, data } };
}

/**
 * ONNX test data: a folder holding `test_data_set_*` folders, or one such folder, each with `input_<i>.pb`
 * TensorProto files. A tensor's name picks the input; unnamed tensors go to the inputs in order.
 */
export function* readTestDataSets(dir: string, model: ModelInputsSource, options: ReaderOptions = {}): Generator<Feeds> {
  const specs = inputSpecs(model);
  const sets = existsSync(dir) && statSync(dir).isDirectory()
    ? readdirSync(dir).filter((f) => f.startsWith("test_data_set_")).sort(natural).map((f) => path.join(dir, f))
    : [];
  for (const set of sets.length > 0 ? sets : [dir]) {
    const files = listFiles(set, ".pb").filter((f) => /^input_\d+\.pb$/.test(path.basename(f)));
    if (files.length === 0) throw new DataError(`${set}: no input_<i>.pb files`);
    const arrays = new Map<string, LoadedArray>();
    files.forEach((file, i) => {
      const { name, array } = tensorArray(file, readFileSync(file));
      const key = name || specs[i]?.name;
      if (!key) throw new DataError(`${file}: unnamed tensor number ${i}, but the model has only ${specs.length} inputs`);
      arrays.set(key, array);
    });
    yield* batchesOf(arrays, specs, set, options.batchSize);
  }
}

/** Picks the reader from what is at `p`: .npz file or folder, test_data_set folders, a folder of .npy or of images.
 *  Reading it again starts over (rereadable): the low-bit pass reads it twice where that saves work. */
export function openData(p: string, model: ModelInputsSource, options: ReaderOptions = {}): Iterable<Feeds> {
  return readAgain(() => openOnce(p, model, options));
}

function openOnce(p: string, model: ModelInputsSource, options: ReaderOptions): Iterable<Feeds> {
  if (!existsSync(p)) throw new DataError(`${p}: no such file or folder`);
  const kind = dataKind(p);
  if (!statSync(p).isDirectory()) {
    if (kind === "npz") return readNpz(p, model, options);
    if (kind === "npy") return batchesOf(new Map([[inputSpecs(model)[0]?.name ?? "", parseNpy(readFileSync(p), p)]]), inputSpecs(model), p, options.batchSize);
    throw new DataError(`${p}: unknown data file type; give a folder of .npy, a .npz, or ONNX test_data_set_* folders`);
  }
  switch (kind) {
    case "test-data":
      return readTestDataSets(p, model, options);
    case "npz":
      return readNpz(p, model, options);
    case "npy":
      return readNpyFolder(p, model, options);
    case "images":
      return readImageFolder(p, model, { ...options.images, batchSize: options.batchSize, limits: options.limits });
    default:
      throw new DataError(`${p}: no .npy, .npz, image or test_data_set_* data in this folder`);
  }
}
