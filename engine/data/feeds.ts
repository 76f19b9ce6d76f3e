// Feeds (one batch of model inputs) and the checks every reader and the calibrator share: names, element types and
// shapes against the model's inputs, with errors that name the input, where the data came from, and what was
// expected. Also splitting a stacked array along its first axis into batches.

import type { GraphProto, ModelProto } from "onnx-buf";
import { DataType, dtypeName, isIntegerType, type NumericArrayType } from "../onnx/dtype";
import { comparedConstants } from "../onnx/graph";
import { negativeDimsUnknown, valueInfoTensor, type Dim } from "../onnx/proto";
// Type names only: engine/runtime/tensors imports onnxruntime-node for types, erased at build time.
import { dtypeFromOrt, feedArray, ortType, type Feeds, type Tensor, type TensorArray } from "../runtime/tensors";

export type { Feeds, Tensor, TensorArray };

/** Any (async) iterable of feeds; readers return these lazily, so only one batch is in memory at a time. */
export type CalibrationData = Iterable<Feeds> | AsyncIterable<Feeds>;

/**
 * Whether reading `data` again starts over from its first batch: an array, or an iterable whose iterator is a new
 * object each time (openData's readers); a generator object reads once (its iterator is itself). Asks for an
 * iterator, which a generator function only creates: nothing is read.
 */
export function rereadable(data: CalibrationData): boolean {
  const iterator = Symbol.asyncIterator in data ? (data as AsyncIterable<Feeds>)[Symbol.asyncIterator]() : (data as Iterable<Feeds>)[Symbol.iterator]();
  return (iterator as unknown) !== data;
}

/** An iterable that reads `open()` afresh each time it is iterated (rereadable); opened once now, so that what
 *  `open` checks up front is said now. */
export function readAgain(open: () => Iterable<Feeds>): Iterable<Feeds> {
  let first: Iterable<Feeds> | undefined = open();
  return {
    [Symbol.iterator]: () => {
      const source = first ?? open();
      first = undefined;
      return source[Symbol.iterator]();
    },
  };
}

/** A graph input that is not an initializer: what the user must feed. */
export interface InputSpec {
  name: string;
  elemType: DataType;
  /** undefined: rank unknown. */
  shape: Dim[] | undefined;
  /** For an integer input, the values the graph tests it against (onnx/graph comparedConstants): generated data takes them in turn. */
  choices?: readonly number[];
}

export class DataError extends Error {
  override readonly name = "DataError";
}

/** The inputs a model needs fed (graph inputs minus initializers, as in IR ≥ 4 models with defaults). */
export function modelInputs(model: ModelProto | GraphProto): InputSpec[] {
  const graph = model.$typeName === "onnx.ModelProto" ? model.graph : model;
  if (!graph) throw new DataError("the model has no graph");
  const inits = new Set(graph.initializer.map((t) => t.name));
  const out: InputSpec[] = [];
  for (const v of graph.input) {
    if (inits.has(v.name)) continue;
    const t = valueInfoTensor(v);
    if (!t) throw new DataError(`input "${v.name}" is not a tensor; calibration feeds tensors only`);
    const choices = isIntegerType(t.elemType) ? comparedConstants(graph, v.name) : [];
    out.push({ name: v.name, elemType: t.elemType, shape: t.shape, ...(choices.length ? { choices } : {}) });
  }
  return out;
}

/** What a session reports about an input (engine/runtime's IOInfo fits): its onnxruntime type name and dims. */
export interface ReportedInput {
  readonly name: string;
  /** onnxruntime's type name; undefined for a non-tensor input. */
  readonly type?: string;
  /** Numbers fixed (-1: dynamic), strings symbolic; [] for a scalar; undefined for an unknown rank. */
  readonly shape?: readonly (number | string)[];
  /** As InputSpec's. */
  readonly choices?: readonly number[];
}

/**
 * The inputs a session reports, as the data readers, checks and generators take them. onnxruntime gives no dims
 * both for a scalar and for an input of unknown rank; engine/runtime's sessions tell them apart from the file, so an
 * input without a shape here is of unknown rank: data is not refused for its shape, and generated data needs its
 * shape (engine/analysis generates a scalar).
 */
export function inputSpecsOf(inputs: readonly ReportedInput[]): InputSpec[] {
  return inputs.map((i) => {
    const elemType = i.type === undefined ? undefined : dtypeFromOrt(i.type);
    if (elemType === undefined) {
      throw new DataError(
        `input "${i.name}" is ${i.type ?? "not a tensor"}, which cannot be fed from JavaScript: data files and generated data give float, integer or bool tensors`,
      );
    }
    const shape = i.shape ? negativeDimsUnknown(i.shape) : undefined;
    return { name: i.name, elemType, shape, ...(i.choices?.length ? { choices: i.choices } : {}) };
  });
}

/**
 * The first input's first dim where it is a named symbol: the batch, wherever another input names it too (a state
 * [layers, batch, hidden] beside [batch, …]). undefined where that dim is a number, unnamed or absent.
 */
export function batchSymbol(inputs: readonly { readonly shape?: readonly (number | string | null)[] | undefined }[]): string | undefined {
  const d = inputs[0]?.shape?.[0];
  return typeof d === "string" && d !== "" ? d : undefined;
}

/** Whatever names a model's inputs: the model, its graph, a Model, or the specs themselves. */
export type ModelInputsSource = ModelProto | GraphProto | { readonly proto: ModelProto } | readonly InputSpec[];

export function inputSpecs(m: ModelInputsSource): InputSpec[] {
  if (Array.isArray(m)) return [...m];
  if ("proto" in m) return modelInputs(m.proto);
  return modelInputs(m as ModelProto | GraphProto);
}

/**
 * The batch size a model fixes: the first axis of the first fed input, where it is a positive number (tf2onnx's
 * M-LSD and BlazeFace fix 1; ONNX Runtime's converters sometimes 8). undefined where that axis is symbolic, unknown
 * or not positive (-1 and 0 mean "any" in many exporters), and for a model without inputs. Weights an older model
 * lists among its graph inputs are not inputs here (modelInputs). A batch the model runs has exactly that many rows,
 * so rows cannot be cut from it.
 */
export function fixedBatchSize(m: ModelInputsSource): number | undefined {
  const d = inputSpecs(m)[0]?.shape?.[0];
  return typeof d === "number" && Number.isInteger(d) && d > 0 ? d : undefined;
}

export function ortTypeName(t: DataType): string {
  const n = ortType(t);
  if (!n) throw new DataError(`element type ${dtypeName(t)} cannot be fed from JavaScript`);
  return n;
}

/**
 * The JS array each element type is fed as from data files: engine/runtime's, but float16 as its raw bits in a
 * Uint16Array (how .npy files hold it).
 */
const arrayFor = (t: DataType): NumericArrayType | undefined => (t === DataType.FLOAT16 ? Uint16Array : feedArray(t));

export function arrayTypeFor(t: DataType): NumericArrayType {
  const a = arrayFor(t);
  if (!a) throw new DataError(`element type ${dtypeName(t)} cannot be fed from JavaScript`);
  return a;
}

export const formatShape = (s: readonly (Dim | undefined)[] | undefined): string =>
  s === undefined ? "(unknown rank)" : `[${s.map((d) => (d === null || d === undefined ? "?" : d)).join(", ")}]`;

/** Does this feed's array/type fit the input's element type? */
function typeFits(spec: InputSpec, t: Tensor): boolean {
  if (t.type !== undefined) return t.type === ortType(spec.elemType);
  const want = arrayFor(spec.elemType);
  return want !== undefined && t.data.constructor === want;
}

const actualType = (t: Tensor): string => t.type ?? t.data.constructor.name;

/**
 * Checks one batch against the model's inputs. `source` says where it came from ("calib/a.npy", "batch 3") and
 * is part of every message. Unknown names, missing inputs, wrong element types, wrong ranks, fixed dims that
 * differ and data lengths that do not match the dims are errors.
 */
export function checkFeeds(feeds: Feeds, specs: readonly InputSpec[], source: string): void {
  const names = new Set(specs.map((s) => s.name));
  const expected = specs.map((s) => `"${s.name}"`).join(", ");
  for (const k of Object.keys(feeds)) {
    if (!names.has(k)) throw new DataError(`${source}: "${k}" is not an input of the model (inputs: ${expected})`);
  }
  for (const spec of specs) {
    const t = feeds[spec.name];
    if (!t) throw new DataError(`${source}: no data for input "${spec.name}" (inputs: ${expected})`);
    const what = `${source}: input "${spec.name}"`;
    if (!typeFits(spec, t)) {
      throw new DataError(
        `${what} must be ${dtypeName(spec.elemType)} (${arrayFor(spec.elemType)?.name ?? "not feedable"}), got ${actualType(t)}`,
      );
    }
    const count = t.dims.reduce((a, d) => a * d, 1);
    if (t.dims.some((d) => !Number.isInteger(d) || d < 0) || count !== t.data.length) {
      throw new DataError(`${what}: dims ${formatShape(t.dims)} do not match its ${t.data.length} values`);
    }
    if (count === 0) throw new DataError(`${what} is empty (shape ${formatShape(t.dims)})`);
    if (spec.shape === undefined) continue;
    const bad =
      spec.shape.length !== t.dims.length ||
      spec.shape.some((d, i) => typeof d === "number" && d > 0 && d !== t.dims[i]);
    if (bad) {
      throw new DataError(`${what}: expected shape ${formatShape(spec.shape)}, got ${formatShape(t.dims)}`);
    }
  }
}

/** A plain array with its shape and ONNX element type, as decoded from .npy/.npz/.pb files. */
export interface LoadedArray {
  dtype: DataType;
  dims: number[];
  data: TensorArray;
}

/** An array read from a file as a tensor (its element type as onnxruntime names it). */
export function tensorOf(a: LoadedArray): Tensor {
  return { data: a.data, dims: a.dims, type: a.dtype === DataType.STRING ? undefined : ortType(a.dtype) };
}

/**
 * Turns arrays read from a file into batches for the model: an array with the model's rank is one batch (or, when
 * the model's first dim is fixed to b and the array's first dim is a multiple of it, several batches of b); an
 * array one rank short is a single sample and gets a batch axis of 1. `batchSize` splits a stacked array into
 * batches of that many samples when the model's batch dim is dynamic. All arrays must agree on the batch count.
 */
export function* batchesOf(
  arrays: ReadonlyMap<string, LoadedArray>,
  specs: readonly InputSpec[],
  source: string,
  batchSize?: number,
): Generator<Feeds> {
  let samples: number | undefined;
  let step: number | undefined;
  // Inputs that disagree on their first axis (a recurrent state [layers, batch, hidden] beside [batch, …]) can only be
  // one run, fed as they are: an error only where the set would have to be split into batches.
  let disagree: string | undefined;
  let split = false;
  const shaped = new Map<string, LoadedArray>();
  // A scalar input (silero-vad's sample rate) has no batch axis: every batch gets it whole (so does a scalar array for
  // an input of unknown rank: it has no batch axis either).
  const whole = new Map<string, LoadedArray>();
  for (const spec of specs) {
    const a = arrays.get(spec.name);
    if (!a) continue; // checkFeeds reports it with the full list
    const rank = spec.shape?.length;
    if ((rank === 0 || rank === undefined) && a.dims.length === 0) {
      whole.set(spec.name, a);
      continue;
    }
    const dims = rank !== undefined && a.dims.length === rank - 1 ? [1, ...a.dims] : a.dims;
    if (dims.length === 0) throw new DataError(`${source}: input "${spec.name}" is a scalar; expected ${formatShape(spec.shape)}`);
    // A fixed batch is a positive dim; -1 or 0 (paddle2onnx and old exporters write these for "any") is dynamic.
    const first = spec.shape?.[0];
    const fixed = typeof first === "number" && first > 0 ? first : undefined;
    const b = fixed ?? batchSize ?? dims[0]!;
    if (fixed !== undefined && dims[0]! % fixed !== 0) {
      throw new DataError(
        `${source}: input "${spec.name}" has ${dims[0]} samples along the first axis, not a multiple of the model's batch ${fixed}`,
      );
    }
    if (samples !== undefined && samples !== dims[0]) disagree ??= `${source}: inputs disagree on the number of samples (${samples} vs ${dims[0]} for "${spec.name}")`;
    samples ??= dims[0]!;
    split ||= dims[0]! > b;
    step = Math.min(step ?? Infinity, b);
    shaped.set(spec.name, { ...a, dims });
  }
  for (const [k, a] of arrays) if (!shaped.has(k) && !whole.has(k)) shaped.set(k, a);
  if (disagree && split) throw new DataError(`${disagree}: split into batches, each input needs its samples along the first axis`);
  if (disagree || samples === undefined || step === undefined || step >= samples) {
    const feeds: Record<string, Tensor> = {};
    for (const [k, a] of [...shaped, ...whole]) feeds[k] = tensorOf(a);
    checkFeeds(feeds, specs, source);
    yield feeds;
    return;
  }
  for (let s = 0; s < samples; s += step) {
    const n = Math.min(step, samples - s);
    const feeds: Record<string, Tensor> = {};
    for (const [k, a] of shaped) {
      const per = a.data.length / a.dims[0]!;
      feeds[k] = tensorOf({ dtype: a.dtype, data: a.data.subarray(s * per, (s + n) * per), dims: [n, ...a.dims.slice(1)] });
    }
    for (const [k, a] of whole) feeds[k] = tensorOf(a);
    checkFeeds(feeds, specs, `${source} (samples ${s}..${s + n - 1})`);
    yield feeds;
  }
}
