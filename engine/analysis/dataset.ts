// Labelled data for report, bench, evaluate and the target search: the inputs come through engine/data's openData()
// (the readers `--calib` uses: a folder of .npy batches or one <input>.npy per input, .npz files, ONNX
// test_data_set_* folders, images), stacked along the first axis; labels are optional: `y.npy` (or `labels.npy`)
// beside .npy inputs, a `y` (or `labels`) array in each .npz, or a file given explicitly.

import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { loadNpy, parseNpy } from "../data/npy";
import { DataError, inputSpecs, inputSpecsOf, ortTypeName, tensorOf, type ModelInputsSource, type ReportedInput, type Tensor, type TensorArray } from "../data/feeds";
import type { Limits } from "../onnx/limits";
import type { ImageNormalization } from "../data/images";
import { listFiles, openData } from "../data/readers";
import { ZipFile } from "../data/zip";
import { elementCount } from "../onnx/dtype";
import { sampleAxes, samplesIn } from "./feeds";
import { isStringData } from "../runtime/tensors";
import type { LabelledData } from "./evaluate";

/** The element types evaluation reads (its metrics need numbers; float16 bits and unsigned 32/64-bit are refused). */
const EVALUABLE: readonly string[] = ["float32", "float64", "int32", "int64", "uint8", "int8", "uint16", "int16", "bool"];

/** Names the labels go by, in the order they are looked for. */
const LABEL_NAMES = ["y", "labels"];

function evaluable(t: Tensor, source: string): Tensor {
  const type = t.type ?? "";
  if (!EVALUABLE.includes(type) || isStringData(t.data)) throw new DataError(`${source}: element type ${type || "string"} cannot be evaluated; give float, int or bool data`);
  return t;
}

/** A .npy file as evaluation reads it: engine/data's loadNpy, refusing element types the metrics cannot read. */
export function readNpyTensor(file: string): Tensor {
  return evaluable(tensorOf(loadNpy(file)), file);
}

/**
 * Tensors joined along their sample axis: one tensor, or a copy holding them all. The other dims must agree. Scalars
 * (a sample rate) have no samples to join: they must be equal, and the result is the first.
 */
function stack(parts: readonly Tensor[], what: string, axis = 0): Tensor {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  const others = (t: Tensor) => t.dims.filter((_, i) => i !== axis).join(",");
  const bad = parts.findIndex((p) => others(p) !== others(first) || p.dims.length !== first.dims.length || p.type !== first.type);
  if (bad >= 0) {
    const p = parts[bad]!;
    throw new DataError(
      `${what}: batch ${bad} is ${p.type} [${p.dims.join(",")}] but batch 0 is ${first.type} [${first.dims.join(",")}]; ` +
        `evaluation stacks all samples, so every sample needs the same shape (resize the inputs to one size)`,
    );
  }
  if (first.dims.length === 0) {
    const differs = parts.findIndex((p) => p.data[0] !== first.data[0]);
    if (differs >= 0) {
      throw new DataError(`${what}: a scalar with no samples to stack, but batch ${differs} gives ${String(parts[differs]!.data[0])} and batch 0 ${String(first.data[0])}; give every batch the same value, or evaluate them apart`);
    }
    return first;
  }
  const outer = elementCount(first.dims.slice(0, axis));
  const inner = elementCount(first.dims.slice(axis + 1));
  const total = parts.reduce((a, p) => a + p.dims[axis]!, 0);
  const Ctor = first.data.constructor as new (n: number) => TensorArray;
  const data = new Ctor(outer * total * inner);
  // Each outer index holds its run of samples from every part, in order.
  for (let o = 0, at = 0; o < outer; o++) {
    for (const p of parts) {
      const run = p.dims[axis]! * inner;
      (data as Float32Array).set((p.data as Float32Array).subarray(o * run, (o + 1) * run), at);
      at += run;
    }
  }
  return { type: first.type, dims: first.dims.map((d, i) => (i === axis ? total : d)), data };
}

/** The labels stored with the inputs at `p`, and the names to skip when reading the inputs. */
function findLabels(p: string, inputNames: readonly string[], limits?: Limits): { labels?: Tensor; exclude: string[] } {
  const free = LABEL_NAMES.filter((n) => !inputNames.includes(n));
  const isDir = statSync(p).isDirectory();
  const entries = isDir ? readdirSync(p) : [];
  const npy = free.find((n) => entries.includes(`${n}.npy`));
  if (npy) return { labels: readNpyTensor(path.join(p, `${npy}.npy`)), exclude: [`${npy}.npy`] };
  const archives = !isDir ? (p.toLowerCase().endsWith(".npz") ? [p] : []) : entries.some((e) => e.toLowerCase().endsWith(".npz")) ? listFiles(p, ".npz") : [];
  if (archives.length === 0) return { exclude: [] };
  const found: Tensor[] = [];
  let key: string | undefined;
  for (const file of archives) {
    const zip = new ZipFile(file, limits);
    try {
      const entry = zip.entries.find((e) => free.includes(e.name.replace(/\.npy$/, "")));
      if (!entry) {
        if (found.length > 0) throw new DataError(`${file}: no labels array (${free.join(" or ")}), but ${archives[0]} has one; give every archive its labels, or none`);
        continue;
      }
      key = entry.name.replace(/\.npy$/, "");
      const a = parseNpy(zip.read(entry), `${file}[${key}]`);
      found.push(evaluable(tensorOf(a), `${file}[${key}]`));
    } finally {
      zip.close();
    }
  }
  if (found.length > 0 && found.length < archives.length) throw new DataError(`${archives[0]}: no labels array (${free.join(" or ")}), but a later archive has one; give every archive its labels, or none`);
  return key ? { labels: stack(found, `${p} labels`), exclude: [key] } : { exclude: [] };
}

export interface LoadDataOptions {
  /** Read only until this many samples are in (the rest of the data is not read). */
  limit?: number;
  limits?: Limits;
  /** A folder of images: how pixels become the input (engine/data/images). */
  images?: ImageNormalization;
}

/**
 * Loads inputs (and labels, when present) for the given model inputs from `p`, a file or folder in any format
 * openData() reads. Errors name the file and say what was expected.
 */
export function loadDataDir(p: string, inputs: readonly ReportedInput[], labelsFile?: string, options: LoadDataOptions = {}): LabelledData {
  if (!existsSync(p)) throw new DataError(`${p}: no such file or folder; give a folder of .npy files, an .npz, test_data_set_* folders or images`);
  const specs = inputSpecsOf(inputs);
  const found = findLabels(p, specs.map((s) => s.name), options.limits);
  const parts = new Map<string, Tensor[]>(specs.map((s) => [s.name, []]));
  const axes = sampleAxes(inputs);
  let samples = 0;
  for (const batch of openData(p, specs, { exclude: found.exclude, limits: options.limits, images: options.images })) {
    for (const s of specs) parts.get(s.name)!.push(evaluable(batch[s.name]!, `${p}: input "${s.name}"`));
    samples += samplesIn(batch, axes);
    if (options.limit !== undefined && samples >= options.limit) break;
  }
  const feeds: Record<string, Tensor> = {};
  for (const [name, list] of parts) feeds[name] = stack(list, `${p}: input "${name}"`, axes.get(name));
  const labels = labelsFile !== undefined ? readNpyTensor(labelsFile) : found.labels;
  if (labels && elementCount(labels.dims) === 0) throw new DataError(`${labelsFile ?? p}: the labels are empty`);
  return labels ? { inputs: feeds, labels } : { inputs: feeds };
}

/**
 * loadDataDir for a model (a notebook's Model, its proto or graph) instead of the inputs a session reports: every
 * sample at `p` stacked into one tensor per input, with labels where they are found (or from `options.labels`), as
 * evaluate() takes them. `limit` reads only until that many samples are in.
 */
export function loadData(p: string, model: ModelInputsSource, options: LoadDataOptions & { labels?: string } = {}): LabelledData {
  const inputs = inputSpecs(model).map((s) => ({ name: s.name, type: ortTypeName(s.elemType), shape: s.shape?.map((d) => d ?? -1) }));
  return loadDataDir(p, inputs, options.labels, options);
}
