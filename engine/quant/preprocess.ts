// Before annotation: a float copy of the model in the shape the quantizer expects. Constant nodes and
// Cast(fp16 initializer → float) become float initializers (so those weights can be quantized), and optionally
// onnxruntime's 'basic' optimizer folds BatchNormalization into Conv and shape arithmetic into constants (what ORT's
// quant_pre_process does; the saved result is portable, see notes/onnxruntime-node-facts.md).
import path from "node:path";
import { DataType } from "../onnx/dtype";
import { constantsToInitializers } from "../onnx/graph";
import { Model } from "../onnx/model";
import { makeTempDir, removeTempDir } from "../onnx/tempdir";
import { attrInt } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { upgradeOpset } from "../onnx/upgrade";
import { createSession } from "../runtime/session";
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

export async function preprocess(model: Model, optimize: boolean, notes: string[] = []): Promise<Model> {
  const label = model.path ?? "the model";
  const already = model.graph.node.find((n) => QUANTIZED_OPS.has(n.opType));
  if (already) throw new Error(`${label} is already quantized (it has ${already.opType} node "${already.name}"): quantize the float model`);
  let m = upgradeForQuantization(model, label, notes);
  if (m === model) m = model.clone();
  initializersOutOfInputs(m, notes);
  if (optimize) m = await optimizeBasic(m);
  constantsToInitializers(m.graph);
  foldCastsOfInitializers(m);
  const g = m.graph;
  const hasFloat = g.initializer.some((t) => t.dataType === DataType.FLOAT) || g.input.some((v) => v.type?.value.case === "tensorType" && v.type.value.value.elemType === DataType.FLOAT);
  if (!hasFloat) throw new Error(`${label} has no float32 tensors: there is nothing to quantize`);
  return m;
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
