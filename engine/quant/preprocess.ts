// Before annotation: a float copy of the model in the shape the quantizer expects. Constant nodes and
// Cast(fp16 initializer → float) become float initializers (so those weights can be quantized), and optionally
// onnxruntime's 'basic' optimizer folds BatchNormalization into Conv and shape arithmetic into constants (what ORT's
// quant_pre_process does; the saved result is portable, see notes/onnxruntime-node-facts.md). Scalar Mul/Div/Add
// next to a Conv are folded into it, so no float-only op (Div) sits between int8 ops.
import path from "node:path";
import type { NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { constantsToInitializers, consumers, dropUnreadInitializers, forEachGraph, unreadInitializers, uniqueName, usedNames } from "../onnx/graph";
import { Model } from "../onnx/model";
import { makeTempDir, removeTempDir } from "../onnx/tempdir";
import { attrInt, attrInts } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { upgradeOpset } from "../onnx/upgrade";
import { createSession } from "../runtime/session";
import { foldIntoConvTranspose } from "./fold-conv-transpose";
import { QUANT_OPSET, QUANTIZED_OPS } from "./scope";

/**
 * Standard per-axis QuantizeLinear/DequantizeLinear need opset 13 (Q/DQ themselves 10, DynamicQuantizeLinear 11).
 * Older models are upgraded by our own upgrader (onnx/upgrade.ts), which rewrites the ops whose meaning changed
 * (Slice, Upsample, Softmax, …) faithfully. Where it cannot, a model at opset 10–12 is quantized as it is
 * (onnxruntime's com.microsoft Q/DQ where per-axis is needed); below 10 there is no Q/DQ at all, so that is an error
 * naming the op.
 */
function upgradeForQuantization(model: Model, label: string, notes: string[]): Model {
  const opset = model.opset() ?? 0;
  if (opset >= QUANT_OPSET) return model;
  const m = model.clone();
  try {
    upgradeOpset(m, QUANT_OPSET);
  } catch (e) {
    const why = (e as Error).message;
    if (opset < 10) throw new Error(`${label} is opset ${opset}; quantization needs opset 10 or later and the upgrade to ${QUANT_OPSET} failed: ${why}`);
    notes.push(`kept opset ${opset} (the upgrade to ${QUANT_OPSET} failed: ${why})`);
    return model;
  }
  notes.push(`upgraded the model from opset ${opset} to ${QUANT_OPSET} for standard per-channel QuantizeLinear/DequantizeLinear (the input file is unchanged)`);
  return m;
}

/**
 * Old exporters list every initializer as a graph input too (required before IR 4). onnxruntime then treats the
 * weights as overridable and folds nothing (no BatchNorm into Conv), and a weight that is an input cannot be stored
 * quantized. They are taken out of the inputs (IR raised to 4 where lower): nobody feeds weights at run time.
 */
export function initializersOutOfInputs(m: Model, notes: string[]): void {
  const g = m.graph;
  const inits = new Set(g.initializer.map((t) => t.name));
  const before = g.input.length;
  g.input = g.input.filter((v) => !inits.has(v.name));
  if (g.input.length === before) return;
  if (m.proto.irVersion < 4n) m.proto.irVersion = 4n;
  notes.push(`${before - g.input.length} initializers were also listed as graph inputs; they are weights only in the output`);
}

/**
 * Initializers no node reads (exporters' leftovers, such as tf2onnx's const_fold_opt__ tensors in BlazeFace and M-LSD),
 * in the graph and its bodies, are left out: onnxruntime warns about each one whenever it loads the file. Graph
 * inputs are left alone (run after initializersOutOfInputs).
 */
export function dropUnreadWeights(m: Model, notes: string[]): void {
  const unread = unreadInitializers(m.graph);
  if (!unread.size) return;
  let dropped = 0;
  forEachGraph(m.graph, (g) => {
    const kept = g.initializer.filter((t) => !unread.has(t.name));
    dropped += g.initializer.length - kept.length;
    g.initializer = kept;
  });
  notes.push(`${dropped} initializer(s) that no node reads are left out of the output`);
}

/** The smallest normal float32: below it (and above 0) a value is denormal. */
const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;

/**
 * Denormal float32 weights (initializers and Constant nodes, subgraphs too) set to 0. Below 1.2e-38 they change no
 * output a float32 model can show, yet x86 float kernels take a slow path on each of them: PP-OCRv4's recogniser has
 * 24 819 (3 530 in one 480×480 1×1 Conv that onnxruntime then runs in 42 ms of the model's ~50 ms per line), and
 * flushed the FP32 model runs 1.66× faster. Weights that stay float in the quantized model (protected layers, the
 * search's choices) would keep that cost; quantized ones round them to the zero code either way.
 */
export function flushDenormalWeights(m: Model, notes: string[]): void {
  const { values, tensors } = denormalWeights(m, true);
  if (values > 0) notes.push(`${values} denormal float32 weight value(s) in ${tensors} tensor(s) set to 0: below 1.2e-38 they change no output, but float kernels run slowly on them on many x86 CPUs`);
}

/**
 * How many float32 weight values of `m` are denormal, in how many tensors; with `flush`, they are set to 0 (without
 * it, `m` is left as it is).
 */
export function denormalWeights(m: Model, flush = false): { values: number; tensors: number } {
  let [values, tensors] = [0, 0];
  const visit = (t: TensorProto): TensorProto => {
    if (t.dataType !== DataType.FLOAT) return t;
    const v = tensorToFloat32(t, m.dir);
    let found = 0;
    for (const x of v) if (x !== 0 && Math.abs(x) < FLOAT32_MIN_NORMAL) found++;
    if (found === 0) return t;
    [values, tensors] = [values + found, tensors + 1];
    return flush ? makeTensor(t.name, DataType.FLOAT, t.dims.map(Number), Float32Array.from(v, (x) => (Math.abs(x) < FLOAT32_MIN_NORMAL ? 0 : x))) : t;
  };
  forEachGraph(m.graph, (g) => {
    g.initializer.forEach((t, i) => (g.initializer[i] = visit(t)));
    for (const n of g.node) if (n.opType === "Constant") for (const a of n.attribute) if (a.t) a.t = visit(a.t);
  });
  return { values, tensors };
}

export async function preprocess(model: Model, optimize: boolean, notes: string[] = []): Promise<Model> {
  const label = model.path ?? "the model";
  const already = model.graph.node.find((n) => QUANTIZED_OPS.has(n.opType));
  if (already) throw new Error(`${label} is already quantized (it has ${already.opType} node "${already.name}"): quantize the float model`);
  let m = upgradeForQuantization(model, label, notes);
  if (m === model) m = model.clone();
  initializersOutOfInputs(m, notes);
  dropUnreadWeights(m, notes);
  if (optimize) m = await optimizeBasic(m);
  constantsToInitializers(m.graph);
  foldCastsOfInitializers(m);
  scalarAffinesIntoConvs(m);
  scalarAffinesIntoNextConvs(m);
  dropUnread(m, foldIntoConvTranspose(m));
  // Last: the folds above scale weights, and a small weight times a small factor can become denormal.
  flushDenormalWeights(m, notes);
  const g = m.graph;
  const hasFloat = g.initializer.some((t) => t.dataType === DataType.FLOAT) || g.input.some((v) => v.type?.value.case === "tensorType" && v.type.value.value.elemType === DataType.FLOAT);
  if (!hasFloat) throw new Error(`${label} has no float32 tensors: there is nothing to quantize`);
  return m;
}

/** The value of a float initializer holding one element (shape [] or [1], [1, 1], ...), else undefined. */
export function scalarOf(inits: ReadonlyMap<string, TensorProto>, name: string, dir: string | undefined): number | undefined {
  const t = inits.get(name);
  if (!t || t.dataType !== DataType.FLOAT || t.dims.reduce((a, d) => a * Number(d), 1) !== 1) return undefined;
  const v = tensorToFloat32(t, dir)[0]!;
  return Number.isFinite(v) ? v : undefined;
}

/**
 * For a Mul or Add with one float scalar constant input: [the other input, the constant's value]; for a Div by a
 * nonzero scalar constant: [the dividend, the reciprocal] (a factor, as for Mul).
 */
export function scalarOperand(n: NodeProto, inits: ReadonlyMap<string, TensorProto>, dir: string | undefined): [string, number] | undefined {
  if (n.input.length !== 2 || (n.domain !== "" && n.domain !== "ai.onnx")) return undefined;
  if (n.opType === "Div") {
    const v = scalarOf(inits, n.input[1]!, dir);
    return v !== undefined && v !== 0 && !inits.has(n.input[0]!) ? [n.input[0]!, 1 / v] : undefined;
  }
  for (const k of [1, 0]) {
    const v = scalarOf(inits, n.input[k]!, dir);
    if (v !== undefined && !inits.has(n.input[1 - k]!)) return [n.input[1 - k]!, v];
  }
  return undefined;
}

/**
 * Conv → Mul(scalar) → Add(scalar), each read only by the next: folded into the Conv's weight and bias (onnxruntime's
 * ConvMulFusion/ConvAddFusion do this only with the constant second). PP-OCRv4's "learnable affine blocks" put one
 * after most Convs; folded, they cost neither time nor a rounding of their own.
 */
function scalarAffinesIntoConvs(m: Model): void {
  const g = m.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const readers = consumers(g);
  const outputs = new Set(g.output.map((o) => o.name));
  const drop = new Set<NodeProto>();
  const replaced: string[] = [];
  const taken = usedNames(g);
  for (const conv of g.node) {
    const [, w = "", b = ""] = conv.input;
    const weight = inits.get(w);
    const bias = b ? inits.get(b) : undefined;
    if (conv.opType !== "Conv" || (conv.domain !== "" && conv.domain !== "ai.onnx") || weight?.dataType !== DataType.FLOAT || (b && bias?.dataType !== DataType.FLOAT)) continue;
    const cout = Number(weight.dims[0]);
    let scale = 1;
    let shift = 0;
    let out = conv.output[0]!;
    const absorbed: NodeProto[] = [];
    for (const op of ["Mul", "Add"]) {
      const next = readers.get(out);
      if (outputs.has(out) || next?.length !== 1 || next[0]!.opType !== op) break;
      const operand = scalarOperand(next[0]!, inits, m.dir);
      if (!operand || operand[0] !== out) break;
      if (op === "Mul") scale = operand[1];
      else shift = operand[1];
      absorbed.push(next[0]!);
      out = next[0]!.output[0]!;
    }
    if (!absorbed.length) continue;
    const wv = tensorToFloat32(weight, m.dir).map((x) => x * scale);
    const bv = bias ? tensorToFloat32(bias, m.dir) : new Float32Array(cout);
    const nb = bv.map((x) => x * scale + shift);
    const wName = uniqueName(g, `${w}_scaled`, taken);
    const bName = uniqueName(g, `${b || conv.name || w}_shifted`, taken);
    g.initializer.push(makeTensor(wName, DataType.FLOAT, weight.dims.map(Number), wv), makeTensor(bName, DataType.FLOAT, [cout], nb));
    replaced.push(w, b);
    conv.input = [conv.input[0]!, wName, bName];
    conv.output = [out];
    for (const n of absorbed) drop.add(n);
  }
  if (!drop.size) return;
  g.node = g.node.filter((n) => !drop.has(n));
  dropUnread(m, [...replaced, ...[...drop].flatMap((n) => n.input)].filter((n) => inits.has(n)));
}

/** A Conv that reads no padding: every output reads only real input values, so an affine of its input folds exactly. */
function padFree(conv: NodeProto): boolean {
  const auto = conv.attribute.find((a) => a.name === "auto_pad");
  const autoPad = auto ? new TextDecoder().decode(auto.s) : "NOTSET";
  if (autoPad !== "NOTSET" && autoPad !== "VALID") return false;
  return (attrInts(conv, "pads") ?? []).every((p) => p === 0);
}

/**
 * Scalar factors and a scalar shift on a Conv's input — Mul(x, a) / Div(x, d), any number, then optionally Add(·, b),
 * each read only by the next, the last only by the Conv — folded into it: W·Πa, B + b·ΣW per output channel. Exact
 * where the Conv reads no padding; a padded Conv takes the factors only (zeros scale to zeros), never a shift.
 * onnxruntime has no int8 Div, so a Div stays float between DQ and Q and the ops around it stay float with it (fed
 * only by, or read only by, float ops): PP-OCRv4's recogniser writes each HardSwish as x·Clip(x+3, 0, 6)/6 followed
 * by a learnable scale and bias, which kept 112 elementwise ops in float (docs/int8-speed.md "Corpus models").
 */
function scalarAffinesIntoNextConvs(m: Model): void {
  const g = m.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const readers = consumers(g);
  const outputs = new Set(g.output.map((o) => o.name));
  const taken = usedNames(g);
  const drop = new Set<NodeProto>();
  const replaced: string[] = [];
  const onlyReader = (t: string) => {
    const r = readers.get(t);
    return !outputs.has(t) && r?.length === 1 ? r[0]! : undefined;
  };
  for (const first of g.node) {
    if (!["Mul", "Div", "Add"].includes(first.opType) || drop.has(first)) continue;
    const head = scalarOperand(first, inits, m.dir);
    if (!head) continue;
    const chain: NodeProto[] = [];
    let [scale, shift] = [1, 0];
    let node: NodeProto | undefined = first;
    let input = head[0];
    while (node && node.opType !== "Conv") {
      const op = scalarOperand(node, inits, m.dir);
      if (!op || op[0] !== input || !["Mul", "Div", "Add"].includes(node.opType) || (shift !== 0 && node.opType !== "Add")) break;
      if (node.opType === "Add") shift += op[1];
      else scale *= op[1];
      chain.push(node);
      input = node.output[0]!;
      node = onlyReader(input);
      if (chain.at(-1)!.opType === "Add") break;
    }
    const conv = node;
    if (!conv || conv.opType !== "Conv" || conv.input[0] !== input || !chain.length || (shift !== 0 && !padFree(conv))) continue;
    const [, w = "", bias = ""] = conv.input;
    const weight = inits.get(w);
    if (weight?.dataType !== DataType.FLOAT || (bias && inits.get(bias)?.dataType !== DataType.FLOAT) || !Number.isFinite(scale)) continue;
    const cout = Number(weight.dims[0]);
    const wv = tensorToFloat32(weight, m.dir);
    const per = wv.length / cout;
    const bv = bias ? Float32Array.from(tensorToFloat32(inits.get(bias)!, m.dir)) : new Float32Array(cout);
    for (let o = 0; o < cout; o++) {
      let sum = 0;
      for (let k = o * per; k < (o + 1) * per; k++) sum += wv[k]!;
      bv[o] = bv[o]! + shift * sum;
    }
    const wName = uniqueName(g, `${w}_scaled`, taken);
    const bName = uniqueName(g, `${bias || conv.name || w}_shifted`, taken);
    g.initializer.push(makeTensor(wName, DataType.FLOAT, weight.dims.map(Number), wv.map((x) => x * scale)), makeTensor(bName, DataType.FLOAT, [cout], bv));
    replaced.push(w, bias);
    conv.input = [head[0], wName, bName];
    for (const n of chain) drop.add(n);
  }
  if (!drop.size) return;
  g.node = g.node.filter((n) => !drop.has(n));
  dropUnread(m, [...replaced, ...[...drop].flatMap((n) => n.input)].filter((n) => inits.has(n)));
}

/** Drops those of `names` no node reads any more (a body's outer-scope reads count, as do graph outputs). */
function dropUnread(m: Model, names: readonly string[]): void {
  if (names.length) dropUnreadInitializers(m.graph, new Set(names));
}

/** Cast(to=FLOAT) of a float16/double initializer read by nothing else → a float initializer under the Cast's output name. */
function foldCastsOfInitializers(m: Model): void {
  const g = m.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const readers = new Map<string, number>();
  for (const n of g.node) for (const i of n.input) readers.set(i, (readers.get(i) ?? 0) + 1);
  const drop = new Set<typeof g.node[number]>();
  for (const n of g.node) {
    const src = inits.get(n.input[0] ?? "");
    if (n.opType !== "Cast" || !src || attrInt(n, "to", 0) !== DataType.FLOAT) continue;
    if (src.dataType !== DataType.FLOAT16 && src.dataType !== DataType.DOUBLE) continue;
    g.initializer.push(makeTensor(n.output[0]!, DataType.FLOAT, src.dims.map(Number), tensorToFloat32(src, m.dir)));
    drop.add(n);
    if (readers.get(src.name) === 1) g.initializer = g.initializer.filter((t) => t !== src);
  }
  g.node = g.node.filter((n) => !drop.has(n));
}

/**
 * onnxruntime at level 'basic', saved and reloaded (portable: no hardware-specific ops at this level). The folder is
 * registered (onnx/tempdir) so that an interrupted run removes it too: it holds a copy as large as the model.
 */
async function optimizeBasic(m: Model): Promise<Model> {
  const dir = makeTempDir("ptq-pre-");
  try {
    const file = path.join(dir, "basic.onnx");
    const s = await createSession(m, { optimization: "basic", optimizedModelPath: file, threads: 1 });
    await s.dispose();
    const bytes = Model.loadSync(file).toBytes();
    return Model.fromBytes(bytes, m.dir === undefined ? {} : { dir: m.dir });
  } finally {
    removeTempDir(dir);
  }
}
