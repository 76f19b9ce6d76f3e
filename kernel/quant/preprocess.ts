// Before annotation: a float copy of the model in the shape the quantizer expects. Constant nodes and
// Cast(fp16 initializer → float) become float initializers (so those weights can be quantized), and optionally
// onnxruntime's 'basic' optimizer folds BatchNormalization into Conv and shape arithmetic into constants (what ORT's
// quant_pre_process does; the saved result is portable, see notes/onnxruntime-node-facts.md).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DataType } from "../onnx/dtype";
import { constantsToInitializers, forEachGraph } from "../onnx/graph";
import { Model } from "../onnx/model";
import { attrInt, getAttribute } from "../onnx/proto";
import { makeTensor, tensorToFloat32 } from "../onnx/tensor";
import { createSession } from "../runtime/session";

const QDQ_OPS = new Set(["QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"]);

// Ops whose meaning changed between opset 9 and 10; without them, a 9 → 10 upgrade is a relabelling.
const CHANGED_AT_10 = new Set(["Slice", "TopK", "Upsample", "Dropout", "AveragePool", "MaxPool"]);

/**
 * Q/DQ need opset >= 10 (and fused QLinearConv is only registered from 10). An opset-9 model whose ops did not
 * change at 10 is relabelled; otherwise we refuse with what to do (onnx's version converter rewrites ops properly).
 * MaxPool/AveragePool only gained optional attributes at 10 (ceil_mode), so they are safe when those are absent.
 */
function upgradeTo10(m: Model, label: string, notes: string[]): void {
  const opset = m.opset() ?? 0;
  if (opset >= 10) return;
  const blocking = new Set<string>();
  forEachGraph(m.graph, (g) => {
    for (const n of g.node) {
      if (n.domain !== "" && n.domain !== "ai.onnx") continue;
      if ((n.opType === "MaxPool" || n.opType === "AveragePool") && !getAttribute(n, "ceil_mode")) continue;
      if (CHANGED_AT_10.has(n.opType)) blocking.add(n.opType);
    }
  });
  if (blocking.size) {
    throw new Error(
      `${label} is opset ${opset}; quantization needs opset >= 10, and its ${[...blocking].join(", ")} ops changed meaning at 10. ` +
        `Re-export the model at opset 13 or newer (or convert it with onnx.version_converter) and quantize that.`,
    );
  }
  m.setOpset(10);
  notes.push(`opset upgraded ${opset} → 10 for QuantizeLinear/DequantizeLinear (no op in this model changed meaning)`);
}

/**
 * Old exporters list every initializer as a graph input too (required before IR 4). onnxruntime then treats the
 * weights as overridable and folds nothing (no BatchNorm into Conv), and a weight that is an input cannot be stored
 * quantized. They are taken out of the inputs (IR raised to 4 where lower): nobody feeds weights at run time.
 */
function initializersOutOfInputs(m: Model, notes: string[]): void {
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
  const already = model.graph.node.find((n) => QDQ_OPS.has(n.opType));
  if (already) throw new Error(`${label} is already quantized (it has ${already.opType} node "${already.name}"): quantize the float model`);
  let m = model.clone();
  upgradeTo10(m, label, notes);
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

/** onnxruntime at level 'basic', saved and reloaded (portable: no hardware-specific ops at this level). */
async function optimizeBasic(m: Model): Promise<Model> {
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-pre-"));
  try {
    const file = path.join(dir, "basic.onnx");
    const s = await createSession(m, { optimization: "basic", optimizedModelPath: file, threads: 1 });
    await s.dispose();
    const bytes = Model.loadSync(file).toBytes();
    return Model.fromBytes(bytes, m.dir === undefined ? {} : { dir: m.dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
