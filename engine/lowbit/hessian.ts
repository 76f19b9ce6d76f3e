// The calibration side of GPTQ: run the model on the user's batches with every quantized MatMul's activation input
// exposed (one augmented session, one run per batch, optimizations off) and fold each batch into a K×K float64
// Σ xᵀx per activation. Memory stays flat in the number of batches: one batch's activations plus the matrices.
import type { NodeProto } from "onnx-buf";
import { augmentModel, locateTensors } from "../calibrate/augment";
import { checkFeeds, modelInputs, type CalibrationData } from "../data/feeds";
import { OnnxError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import { attrInt, attrInts, attrString } from "../onnx/proto";
import { createSession } from "../runtime/session";
import { bodyTensors, exposeBodyTensors } from "../quant/subgraph-observe";
import { HessianAccumulator, kWindows, type LayerHessian } from "./gptq";

/** An activation feeding one or more quantized weights, with its reduction length K (its last axis). */
export interface HessianTarget {
  tensor: string;
  k: number;
  /** Block-diagonal: one matrix per window of this many consecutive rows along K (kWindows). Absent, or not below
   *  k: one K×K matrix. */
  window?: number;
}

export interface HessianCollectOptions {
  /** intra-op threads of the calibration session (default: onnxruntime's choice). */
  threads?: number;
  onProgress?(batches: number): void;
  signal?: AbortSignal;
}

export interface Hessians {
  /** Σ xᵀx per activation tensor, K×K row-major, or one such matrix per window of K. */
  matrices: Map<string, LayerHessian>;
  /** Rows (tokens, samples) seen per tensor. */
  rows: Map<string, number>;
  batches: number;
}

export async function collectHessians(
  model: Model,
  targets: readonly HessianTarget[],
  data: CalibrationData,
  options: HessianCollectOptions = {},
): Promise<Hessians> {
  const label = model.path ?? "<model>";
  const byTensor = new Map<string, { k: number; window?: number; accs: HessianAccumulator[]; rows: number }>();
  for (const t of targets) {
    const seen = byTensor.get(t.tensor);
    if (seen && seen.k !== t.k) throw new OnnxError(`tensor "${t.tensor}" feeds weights with different K (${seen.k}, ${t.k})`, label);
    if (seen && seen.window !== t.window) throw new OnnxError(`tensor "${t.tensor}" is asked for Hessian windows of ${seen.window ?? "K"} and ${t.window ?? "K"} rows`, label);
    const sizes = kWindows(t.k, t.window);
    if (!seen) byTensor.set(t.tensor, { k: t.k, window: t.window, accs: sizes.map((m) => new HessianAccumulator(m)), rows: 0 });
  }
  const result: Hessians = { matrices: new Map(), rows: new Map(), batches: 0 };
  if (byTensor.size === 0) return result;
  const { model: augmented, raw } = observing(model, [...byTensor.keys()]);
  const session = await createSession(augmented, { optimization: "disabled", ...(options.threads ? { threads: options.threads } : {}) });
  const specs = modelInputs(model.proto);
  try {
    for await (const feeds of data) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error("calibration cancelled");
      checkFeeds(feeds, specs, `calibration batch ${result.batches + 1}`);
      const out = await session.run(feeds, [...raw.values()]);
      for (const [tensor, name] of raw) {
        const layer = byTensor.get(tensor)!;
        const t = out[name]!;
        if (t.data.length === 0) continue; // a body this batch did not run (an If branch not taken)
        const last = t.dims[t.dims.length - 1];
        if (last !== layer.k) {
          throw new OnnxError(`activation "${tensor}" has shape [${t.dims.join(", ")}]; its last axis should be K = ${layer.k}`, label);
        }
        addRows(layer, t.data as Float32Array, `activation "${tensor}" (batch ${result.batches + 1})`);
      }
      result.batches++;
      options.onProgress?.(result.batches);
    }
  } finally {
    await session.dispose();
  }
  if (result.batches === 0) throw new OnnxError("the calibration data is empty: give at least one batch", label);
  for (const [t, layer] of byTensor) {
    // A body no batch ran has no Hessian: its weights are rounded to nearest (engine/lowbit/rewrite).
    if (layer.rows === 0) continue;
    result.matrices.set(t, layer.accs.length === 1 ? layer.accs[0]!.matrix() : layer.accs.map((a) => a.matrix()));
    result.rows.set(t, layer.rows);
  }
  return result;
}

/**
 * A copy of `model` whose outputs are `tensors` as float32 (augmentModel), a body's threaded out to the main graph
 * first (exposeBodyTensors: a branch not taken gives an empty tensor, a Loop/Scan body's comes stacked over its
 * iterations); `raw` names each tensor's output.
 */
function observing(model: Model, tensors: readonly string[]): { model: Model; raw: Map<string, string> } {
  const inBodies = bodyTensors(model.graph, locateTensors(model.graph, tensors));
  let exposed = { model, outputs: new Map<string, string>() };
  let observed = tensors;
  try {
    if (inBodies.length) exposed = exposeBodyTensors(model, inBodies);
  } catch {
    // A body held by a node other than If/Loop/Scan: its tensors are not observed (their weights keep nearest codes).
    observed = tensors.filter((t) => !inBodies.includes(t));
  }
  const named = (t: string) => exposed.outputs.get(t) ?? t;
  const { model: augmented, outputs } = augmentModel(exposed.model, observed.map(named), false);
  const raw = new Map(outputs.map((o) => [o.tensor, o.raw!]));
  return { model: augmented, raw: new Map(observed.map((t) => [t, raw.get(named(t))!])) };
}

/** Every row of `x` ([rows, K] row-major) into the layer's accumulators, each window its own slice of the row. */
function addRows(layer: { k: number; accs: HessianAccumulator[]; rows: number }, x: Float32Array, name: string): void {
  const row = new Float64Array(layer.k);
  for (let r = 0; r < x.length; r += layer.k) {
    for (let i = 0; i < layer.k; i++) row[i] = x[r + i]!;
    let from = 0;
    for (const acc of layer.accs) {
      acc.addRow(row.subarray(from, from + acc.k), name);
      from += acc.k;
    }
    layer.rows++;
  }
}

/** How a Conv reads its input: what im2col needs to cut the patches its weight multiplies (group 1, 1-D or 2-D). */
export interface ConvGeometry {
  /** Input channels one output channel reads (the weight's dim 1), from `channelOffset` of the `inChannels`. */
  channels: number;
  channelOffset: number;
  inChannels: number;
  /** Spatial axes of the input (1-D or 2-D Conv); a 1-D Conv's kernel, strides and dilations are [1, k]. */
  spatial: 1 | 2;
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right]; auto_pad SAME_* resolved per input size at collection. */
  pads: [number, number, number, number];
  autoPad: "NOTSET" | "VALID" | "SAME_UPPER" | "SAME_LOWER";
}

/**
 * A Conv's geometry from its attributes and weight dims [O, C/group, kh(, kw)], one per group (a group's output
 * channels read only its own input channels, so each group has a Hessian of its own: a depthwise Conv has one per
 * channel), or why learned rounding cannot read it.
 */
export function convGeometry(node: NodeProto, weightDims: readonly number[]): ConvGeometry[] | string {
  const group = attrInt(node, "group", 1);
  const spatial = weightDims.length - 2;
  if (spatial !== 1 && spatial !== 2) return `Conv with ${spatial} spatial axes (1-D and 2-D are read as patches)`;
  const two = (v: number[] | undefined, d: number): [number, number] => (spatial === 1 ? [1, v?.[0] ?? d] : [v?.[0] ?? d, v?.[1] ?? d]);
  const p = attrInts(node, "pads");
  const pads: [number, number, number, number] = spatial === 1 ? [0, p?.[0] ?? 0, 0, p?.[1] ?? 0] : [p?.[0] ?? 0, p?.[1] ?? 0, p?.[2] ?? 0, p?.[3] ?? 0];
  const autoPad = (attrString(node, "auto_pad") ?? "NOTSET") as ConvGeometry["autoPad"];
  if (!["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].includes(autoPad)) return `Conv auto_pad "${autoPad}"`;
  if (group < 1 || weightDims[0]! % group !== 0) return `Conv group ${group} does not divide its ${weightDims[0]} output channels`;
  const c = weightDims[1]!;
  const base: Omit<ConvGeometry, "channelOffset"> = { channels: c, inChannels: c * group, spatial, kernel: two(weightDims.slice(2), 1), strides: two(attrInts(node, "strides"), 1), dilations: two(attrInts(node, "dilations"), 1), pads: autoPad === "VALID" ? [0, 0, 0, 0] : pads, autoPad };
  return Array.from({ length: group }, (_, g) => ({ ...base, channelOffset: g * c }));
}

/** One layer's Hessian to build: the input tensor it reads, K, and how rows are cut from it. */
export interface LayerTarget {
  /** The key the matrix comes back under (a node or weight name). */
  key: string;
  tensor: string;
  /** Weight rows along the reduction axis (C·kh·kw for a Conv). */
  k: number;
  /** Conv: rows are input patches, one Hessian per group (convGeometry). Absent: rows are the tensor's last axis
   *  (MatMul, Gemm). */
  conv?: ConvGeometry[];
  /** Append a constant-1 input (the bias's): the matrix is (k + 1)². */
  bias: boolean;
  /** Block-diagonal: one matrix per window of this many consecutive rows along K (kWindows), each group's in order,
   *  the bias's constant input appended to every window. Absent, or not below k: one matrix per group. */
  window?: number;
}

/** The K rows each matrix of a target covers, in the order they come back (each group's windows); each matrix is
 *  that many rows plus the bias's one. */
function targetRows(t: LayerTarget): number[] {
  const windows = kWindows(t.k, t.window);
  return (t.conv ?? [undefined]).flatMap(() => windows);
}

export interface LayerHessianOptions {
  /** Rows (patches, tokens, samples) sampled per layer per batch (default 256) and in all (default 2048): the cost is
   *  rows·K² per layer, so the budget bounds the time. */
  rowsPerBatch?: number;
  maxRows?: number;
  threads?: number;
  signal?: AbortSignal;
}

/**
 * Σ xᵀx per layer over rows sampled evenly from each batch (a Conv's rows are its input patches as im2col cuts
 * them, zero padding included), with a constant 1 appended where the layer has a bias to correct. Batches past the
 * row budget are not run.
 */
export async function collectLayerHessians(model: Model, targets: readonly LayerTarget[], data: CalibrationData, options: LayerHessianOptions = {}): Promise<Map<string, LayerHessians>> {
  const label = model.path ?? "<model>";
  const perBatch = options.rowsPerBatch ?? 256;
  const maxRows = options.maxRows ?? 2048;
  const result = new Map<string, LayerHessians>();
  if (targets.length === 0) return result;
  // One accumulator per layer, group and window: rows [from, from + size) of the layer's K, and the bias's 1.
  const parts = targets.flatMap((t) => {
    const sizes = targetRows(t);
    const per = sizes.length / (t.conv?.length ?? 1);
    const bias = t.bias ? 1 : 0;
    return sizes.map((size, i) => ({ t, conv: t.conv?.[Math.floor(i / per)], from: sizes.slice(i - (i % per), i).reduce((a, b) => a + b, 0), size, acc: new HessianAccumulator(size + bias) }));
  });
  const tensors = [...new Set(targets.map((t) => t.tensor))];
  const { model: augmented, raw } = observing(model, tensors);
  const session = await createSession(augmented, { optimization: "disabled", ...(options.threads ? { threads: options.threads } : {}) });
  const specs = modelInputs(model.proto);
  let batch = 0;
  try {
    for await (const feeds of data) {
      if (parts.every((p) => p.acc.rows >= maxRows)) break;
      if (options.signal?.aborted) throw options.signal.reason ?? new Error("learned rounding cancelled");
      checkFeeds(feeds, specs, `calibration batch ${batch + 1}`);
      const out = await session.run(feeds, [...raw.values()]);
      for (const { t, conv, from, size, acc } of parts) {
        const want = Math.min(perBatch, maxRows - acc.rows);
        const name = raw.get(t.tensor);
        if (want <= 0 || name === undefined) continue;
        const x = out[name]!;
        if (x.data.length === 0) continue; // a body this batch did not run (an If branch not taken)
        const rows = conv ? patchRows(x.data as Float32Array, x.dims, conv, label, t.tensor) : tokenRows(x.data as Float32Array, x.dims, t.k, label, t.tensor);
        const step = Math.max(1, Math.floor(rows.count / want));
        const row = new Float64Array(t.k + (t.bias ? 1 : 0));
        if (t.bias) row[t.k] = 1;
        // The window's rows and the bias's 1 lie together in `row` for the last window (or the only one); the
        // others take a copy.
        const contiguous = !t.bias || from + size === t.k;
        const part = contiguous ? row.subarray(from, from + acc.k) : new Float64Array(acc.k);
        if (!contiguous) part[size] = 1;
        // Even steps through the rows, the start shifted per batch so that batches do not all take the same places
        // (the same rows for every window of a layer).
        for (let r = (batch * 7919) % step, taken = 0; r < rows.count && taken < want; r += step, taken++) {
          rows.fill(r, row);
          if (!contiguous) part.set(row.subarray(from, from + size));
          acc.addRow(part, `activation "${t.tensor}" (batch ${batch + 1})`);
        }
      }
      batch++;
    }
  } finally {
    await session.dispose();
  }
  if (batch === 0) throw new OnnxError("the calibration data is empty: give at least one batch", label);
  for (const { t, acc } of parts) {
    const r = result.get(t.key) ?? { matrices: [], rows: 0 };
    r.matrices.push(acc.matrix());
    r.rows = Math.max(r.rows, acc.rows);
    result.set(t.key, r);
  }
  return result;
}

/** A layer's Hessians (one per group, one for a MatMul/Gemm; with a window, each group's windows in order) and the
 *  rows each was summed over. */
export interface LayerHessians {
  matrices: Float64Array[];
  rows: number;
}

/** A layer's matrices per group (a grouped Conv's each group, else one): a group's windows together, or its one
 *  matrix; what gptqRoundGroups and outputSqnrDbGroups take. */
export function groupHessians(t: LayerTarget, layer: LayerHessians): LayerHessian[] {
  const groups = t.conv?.length ?? 1;
  const per = layer.matrices.length / groups;
  return Array.from({ length: groups }, (_, g) => (per === 1 ? layer.matrices[g]! : layer.matrices.slice(g * per, (g + 1) * per)));
}

/** Hessians of one pass over the data stay under this many bytes together; more layers take more passes (learned
 *  rounding's, and GPTQ's where the data reads again). */
export const PASS_BYTES = 256 * 2 ** 20;

/** The data batches a row budget reads at most (callers that read the data more than once keep these). */
export const batchesForRows = (o: LayerHessianOptions = {}) => Math.ceil((o.maxRows ?? 2048) / (o.rowsPerBatch ?? 256));

/** The bytes of a MatMul/Gemm target's float64 matrices (K², or its windows'). */
export const hessianTargetBytes = (t: HessianTarget) => kWindows(t.k, t.window).reduce((a, m) => a + m * m * 8, 0);

/** A layer target's bytes: each group's matrices, the bias's row and column included. */
export const layerTargetBytes = (t: LayerTarget) => targetRows(t).reduce((a, m) => a + (m + (t.bias ? 1 : 0)) ** 2 * 8, 0);

/** `targets` in order, cut into passes whose bytes stay under `cap` together (a target larger than it alone). */
export function inPasses<T>(targets: readonly T[], bytes: (t: T) => number, cap = PASS_BYTES): T[][] {
  const passes: T[][] = [];
  let held = 0;
  for (const t of targets) {
    const b = bytes(t);
    if (!passes.length || held + b > cap) {
      passes.push([]);
      held = 0;
    }
    passes[passes.length - 1]!.push(t);
    held += b;
  }
  return passes;
}

/**
 * collectLayerHessians in passes whose matrices fit PASS_BYTES, handing each layer's matrix to `use` before the
 * next pass (memory stays bounded however many layers; `data` is read once per pass, so give an array).
 */
export async function forEachLayerHessian(
  model: Model,
  targets: readonly LayerTarget[],
  data: CalibrationData,
  options: LayerHessianOptions,
  use: (target: LayerTarget, hessians: LayerHessians) => void | Promise<void>,
): Promise<void> {
  for (const pass of inPasses(targets, layerTargetBytes)) {
    const h = await collectLayerHessians(model, pass, data, options);
    for (const t of pass) {
      const layer = h.get(t.key)!;
      h.delete(t.key);
      await use(t, layer);
    }
  }
}

interface Rows {
  count: number;
  /** Writes row r into the first K values of `into`. */
  fill(r: number, into: Float64Array): void;
}

function tokenRows(x: Float32Array, dims: readonly number[], k: number, label: string, tensor: string): Rows {
  if (dims[dims.length - 1] !== k) throw new OnnxError(`activation "${tensor}" has shape [${dims.join(", ")}]; its last axis should be K = ${k}`, label);
  return { count: x.length / k, fill: (r, into) => { for (let i = 0; i < k; i++) into[i] = x[r * k + i]!; } };
}

/** The patches a Conv multiplies its weight with, one per output position of each sample, in the weight's order
 *  (channel, then kernel row, then kernel column). */
function patchRows(x: Float32Array, given: readonly number[], g: ConvGeometry, label: string, tensor: string): Rows {
  // A Conv inside a Loop/Scan body: its input comes out stacked over the iterations ([iterations, N, C, …], one more
  // axis per nested body), each iteration's batch images of their own: one batch of all of them.
  const extra = given.length - (g.spatial + 2);
  const dims = extra > 0 ? [given.slice(0, extra + 1).reduce((a, b) => a * b, 1), ...given.slice(extra + 1)] : given;
  const spatial = g.spatial;
  if (dims.length !== spatial + 2 || dims[1] !== g.inChannels) {
    throw new OnnxError(`Conv input "${tensor}" has shape [${given.join(", ")}]; expected [N, ${g.inChannels}, …] with ${spatial} spatial ax${spatial === 1 ? "is" : "es"}`, label);
  }
  const [b, cIn, c, c0] = [dims[0]!, dims[1]!, g.channels, g.channelOffset];
  const [h, w] = spatial === 1 ? [1, dims[2]!] : [dims[2]!, dims[3]!];
  const [kh, kw] = g.kernel;
  const [sh, sw] = g.strides;
  const [dh, dw] = g.dilations;
  let [pt, pl, pb, pr] = g.pads;
  if (g.autoPad === "SAME_UPPER" || g.autoPad === "SAME_LOWER") {
    const same = (size: number, s: number, d: number, k: number) => Math.max(0, (Math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size);
    const [ph, pw] = [same(h, sh, dh, kh), same(w, sw, dw, kw)];
    const lower = g.autoPad === "SAME_LOWER";
    [pt, pb] = lower ? [Math.ceil(ph / 2), Math.floor(ph / 2)] : [Math.floor(ph / 2), Math.ceil(ph / 2)];
    [pl, pr] = lower ? [Math.ceil(pw / 2), Math.floor(pw / 2)] : [Math.floor(pw / 2), Math.ceil(pw / 2)];
  }
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  if (oh < 1 || ow < 1) throw new OnnxError(`Conv input "${tensor}" [${dims.join(", ")}] is smaller than its kernel`, label);
  const plane = h * w;
  return {
    count: b * oh * ow,
    fill: (r, into) => {
      const n = Math.floor(r / (oh * ow));
      const oy = Math.floor(r / ow) % oh;
      const ox = r % ow;
      let i = 0;
      for (let ch = 0; ch < c; ch++) {
        const base = (n * cIn + c0 + ch) * plane;
        for (let ky = 0; ky < kh; ky++) {
          const y = oy * sh - pt + ky * dh;
          for (let kx = 0; kx < kw; kx++, i++) {
            const xx = ox * sw - pl + kx * dw;
            into[i] = y >= 0 && y < h && xx >= 0 && xx < w ? x[base + y * w + xx]! : 0;
          }
        }
      }
    },
  };
}
