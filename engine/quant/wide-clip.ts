// Widened activations (calibration.wideActivations) as a Clip instead of a 16-bit QuantizeLinear → DequantizeLinear
// pair. onnxruntime has no 16-bit kernels on CPU: the nodes around such a pair run in float anyway, and the pair
// costs two passes over the tensor. A Clip to the pair's range does what its saturation does (a folded Relu's clamp
// included) without its rounding, which is below one 16-bit step, in one pass that onnxruntime fuses into a float
// Conv before it. And with no 16-bit Q/DQ left the file needs neither opset 21 nor com.microsoft's Q/DQ.
// The PP-OCR recognisers, batch 8, 1 thread: 0.98 → 1.17× (v4) and 0.99 → 1.13× (v3) of FP32, the same lines
// (docs/calibration.md "Widened activations as a Clip").
import type { NodeProto, TensorProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { consumers, forEachGraph, producers, readNames, topologicalSort, uniqueName, usedNames } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { makeNode } from "../onnx/proto";
import { makeTensor, readTensor, tensorToFloat32 } from "../onnx/tensor";
import { affinesOnCodes } from "./affine-codes";
import { integerHardSigmoids } from "./hardsigmoid";
import { qtypeFromOnnx } from "./math";
import { MS_DOMAIN } from "./qdq";
import type { QuantizationSummary } from "./types";

const SIXTEEN: Record<number, [number, number]> = { [DataType.UINT16]: [0, 65535], [DataType.INT16]: [-32768, 32767] };

/** Ops whose float input onnxruntime fuses with an int8 weight behind a DequantizeLinear into MatMulNBits, which
 *  rounds that input to 8 bits at run time (accuracy level 4): their 16-bit inputs keep the pair. */
const ROUNDED_BY_FUSION = new Set(["MatMul", "Gemm"]);

export interface ClippedPairs {
  /** The activations now behind a Clip (each the pair's DequantizeLinear output name). */
  clipped: string[];
  /** Those that keep their 16-bit pair: a MatMul or Gemm reads them. */
  kept: string[];
  /** Whether the file's Q/DQ moved back from com.microsoft to ai.onnx (no 16-bit Q/DQ left). */
  standard: boolean;
}

/**
 * Replaces, in the top-level graph of `model` (changed in place), every 16-bit QuantizeLinear → DequantizeLinear pair
 * whose two nodes share scale and zero point by a Clip to the pair's range, except where a MatMul or Gemm reads it.
 * Call it only on a file whose 16-bit activations all come from widening (not a 16-bit activationType or a user's
 * 16-bit override). Where the file's Q/DQ move back to ai.onnx, the passes on the codes run again (codeFolds),
 * and `summary` says what they fused.
 */
export function clipSixteenBitPairs(model: Model, summary: QuantizationSummary): ClippedPairs {
  const g = model.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = producers(g);
  const readers = consumers(g);
  const range = (n: NodeProto) => SIXTEEN[inits.get(n.input[2] ?? "")?.dataType ?? -1];
  const values = (name: string | undefined) => {
    const t = name ? inits.get(name) : undefined;
    return t ? JSON.stringify(Array.from(readTensor(t).data as ArrayLike<number | bigint>, Number)) : undefined;
  };
  const out: ClippedPairs = { clipped: [], kept: [], standard: false };
  const added: TensorProto[] = [];
  const replaced: NodeProto[] = [];
  const taken = usedNames(g);
  const fresh = (base: string) => uniqueName(g, base, taken);
  const graphOutputs = new Set(g.output.map((o) => o.name));
  g.node = g.node.flatMap((dq) => {
    const q = dq.opType === "DequantizeLinear" ? producer.get(dq.input[0]!) : undefined;
    const span = q?.opType === "QuantizeLinear" ? range(dq) : undefined;
    if (!q || !span || range(q) !== span || values(q.input[1]) !== values(dq.input[1]) || values(q.input[2]) !== values(dq.input[2])) return dq;
    const name = dq.output[0]!;
    // A pair nothing reads (its tensor went to a node kept float, which reads the float original): dropped.
    if (!readers.get(name)?.length && !graphOutputs.has(name)) {
      replaced.push(q, dq);
      return [];
    }
    if ((readers.get(name) ?? []).some((n) => ROUNDED_BY_FUSION.has(n.opType))) {
      out.kept.push(name);
      return dq;
    }
    const scale = tensorToFloat32(inits.get(dq.input[1]!)!);
    const zp = Number((readTensor(inits.get(dq.input[2]!)!).data as ArrayLike<number>)[0]);
    if (scale.length !== 1) return dq;
    const [lo, hi] = [fresh(`${name}_clip_min`), fresh(`${name}_clip_max`)];
    added.push(makeTensor(lo, DataType.FLOAT, [], Float32Array.of((span[0] - zp) * scale[0]!)), makeTensor(hi, DataType.FLOAT, [], Float32Array.of((span[1] - zp) * scale[0]!)));
    out.clipped.push(name);
    replaced.push(q, dq);
    return makeNode("Clip", [q.input[0]!, lo, hi], [name], { name: fresh(`${name}_Clip`) });
  });
  if (!out.clipped.length && !replaced.length) return out;
  // Drop the pairs' Qs nothing reads any more, then their scales and zero points nothing reads (bodies included:
  // a body may read a main-graph initializer).
  const live = readNames(g);
  const pairs = new Set(replaced);
  g.node = g.node.filter((n) => !pairs.has(n) || n.output.some((o) => live.has(o)));
  g.initializer.push(...added);
  const used = readNames(g);
  const params = new Set(replaced.flatMap((n) => n.input.slice(1)));
  g.initializer = g.initializer.filter((t) => !params.has(t.name) || used.has(t.name));
  // The rewrite chose com.microsoft's Q/DQ for the 16-bit pairs; with none left, ai.onnx's serve from opset 13.
  const qdq = (n: NodeProto) => n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear";
  let [sixteenLeft, microsoft] = [false, false];
  forEachGraph(g, (x) => {
    const own = new Map(x.initializer.map((t) => [t.name, t]));
    sixteenLeft ||= x.node.some((n) => qdq(n) && SIXTEEN[(own.get(n.input[2] ?? "") ?? inits.get(n.input[2] ?? ""))?.dataType ?? -1] !== undefined);
    microsoft ||= x.node.some((n) => n.domain === MS_DOMAIN && qdq(n));
  });
  if (!sixteenLeft && microsoft && (model.opset("") ?? 0) >= 13) {
    let others = false;
    forEachGraph(g, (x) => {
      for (const n of x.node) {
        if (n.domain !== MS_DOMAIN) continue;
        if (qdq(n)) n.domain = "";
        else others = true;
      }
    });
    if (!others) model.proto.opsetImport = model.proto.opsetImport.filter((o) => o.domain !== MS_DOMAIN);
    out.standard = true;
    codeFolds(model, summary);
  }
  return out;
}

/**
 * The rewrite's passes on the codes (integer HardSigmoid, scalar affines), which match ai.onnx Q/DQ only and so
 * passed over the com.microsoft file: run now that its Q/DQ are standard (ppocr-v4-rec-en, batch 8: 1.08× FP32 without them, 1.17× with, two runs), the
 * nodes they fuse moved from the summary's float list to its quantized one.
 */
function codeFolds(model: Model, summary: QuantizationSummary): void {
  const g = model.graph;
  const taken = usedNames(g);
  const name = (base: string) => uniqueName(g, base, taken);
  const type = (t: string) => {
    const dq = g.node.find((n) => n.opType === "DequantizeLinear" && n.output.includes(t));
    const zp = dq && g.initializer.find((x) => x.name === dq.input[2]);
    return zp ? qtypeFromOnnx(zp.dataType) : undefined;
  };
  for (const r of [...integerHardSigmoids(g, model.opset("") ?? 0, name), ...affinesOnCodes(g, name)]) {
    summary.float = summary.float.filter((f) => f.name !== r.node.name);
    if (summary.quantized.some((q) => q.name === r.node.name)) continue;
    const tensors = r.tensors.flatMap((t) => {
      const qt = type(t);
      return qt ? [{ name: t, type: qt, perChannel: false }] : [];
    });
    summary.quantized.push({ name: r.node.name, opType: r.node.opType, tensors });
  }
  topologicalSort(g);
}
