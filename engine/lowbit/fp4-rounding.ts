// Learned rounding for FP4 weights: the block scales stay as quantizeFp4 sets them from the float weights, and the
// E2M1 code of each weight is chosen against the layer's outputs on the calibration data (GPTQ's error feedback on
// that fixed grid, gptq.ts) instead of each weight rounded to its nearest value. A Conv's inputs are its input
// patches (im2col, sampled); a bias of the node's own (float) absorbs what the codes could not. The inputs come from
// the float model: the codes of every layer are chosen in one pass, before any layer is rewritten.
import type { GraphProto, NodeProto } from "onnx-buf";
import type { CalibrationData } from "../data/feeds";
import { DataType } from "../onnx/dtype";
import type { Model } from "../onnx/model";
import { tensorToFloat32 } from "../onnx/tensor";
import { dequantizeFp4, fp4Nearest, quantizeFp4, recodeFp4 } from "./fp4";
import type { LearnedFp4 } from "./fp4-rewrite";
import { GPTQ_WINDOW, gptqRoundGroups, outputSqnrDbGroups } from "./gptq";
import { forEachLayerHessian, groupHessians, type ConvGeometry, type LayerHessianOptions, type LayerTarget } from "./hessian";
import { fp4Sites, patchesCut } from "./rewrite";
import { nodeName, type Fp4Options, type LowBitOptions, type WeightSite } from "./types";

export interface Fp4RoundingOptions extends LayerHessianOptions {
  /** A layer with more weight rows than this gets a block-diagonal Hessian, one matrix per window of this many rows,
   *  and error feedback within each (memory K·window instead of K², time K·window² instead of K³; default
   *  GPTQ_WINDOW). */
  window?: number;
  damping?: number;
}

export interface Fp4Rounding {
  learned: Map<string, LearnedFp4>;
  skipped: { node: string; reason: string }[];
  /** One line for the report: layers, mean layer output SQNR nearest → learned, rows, seconds. */
  note: string;
}

/** FP4 codes chosen per layer against the float model's layer inputs on `data` (read once per pass: an array). */
export async function learnFp4Rounding(model: Model, options: Fp4Options & LowBitOptions, data: CalibrationData, o: Fp4RoundingOptions = {}): Promise<Fp4Rounding> {
  const start = performance.now();
  const format = options.fp4Format ?? "nvfp4";
  const out: Fp4Rounding = { learned: new Map(), skipped: [], note: "" };
  const sites = new Map<string, { site: WeightSite; bias?: string }>();
  const targets: LayerTarget[] = [];
  for (const site of fp4Sites(model, options)) {
    const name = nodeName(site.node);
    let conv: ConvGeometry[] | undefined;
    if (site.node.opType === "Conv") {
      const g = patchesCut(site);
      if (typeof g === "string") {
        out.skipped.push({ node: name, reason: `${g}: nearest rounding kept` });
        continue;
      }
      conv = g;
    }
    // A body's layer is fitted without its bias (the bias may sit in another graph, read by other bodies too).
    const bias = site.graph === model.graph ? ownFloatBias(model.graph, site.node, site.n) : undefined;
    sites.set(name, { site, bias });
    targets.push({ key: name, tensor: site.node.input[0]!, k: site.k, conv, bias: bias !== undefined, window: o.window ?? GPTQ_WINDOW });
  }
  const dbs: [number, number][] = [];
  let rows = 0;
  await forEachLayerHessian(model, targets, data, o, (t, layer) => {
    if (layer.rows === 0) {
      out.skipped.push({ node: t.key, reason: "no calibration batch ran the body that holds it (an If branch the data never took, or a body that cannot be observed): nearest rounding kept" });
      return;
    }
    const [h, r] = [groupHessians(t, layer), layer.rows];
    const { site, bias } = sites.get(t.key)!;
    const { k, n } = site;
    const kk = k + (bias ? 1 : 0);
    const nearest = quantizeFp4(site.values, k, n, format, site.weight.name);
    const w = new Float64Array(kk * n);
    w.set(site.values);
    const b0 = bias ? tensorToFloat32(model.graph.initializer.find((x) => x.name === bias)!) : undefined;
    if (b0) w.set(b0, k * n);
    const grid = fp4Nearest(nearest);
    const values = gptqRoundGroups(w, kk, n, h, grid, { damping: o.damping, floatRows: bias ? 1 : 0 }, site.weight.name);
    const blocks = recodeFp4(nearest, values);
    const before = new Float64Array(kk * n);
    before.set(dequantizeFp4(nearest));
    const after = new Float64Array(kk * n);
    after.set(dequantizeFp4(blocks));
    if (b0) {
      before.set(b0, k * n);
      after.set(values.subarray(k * n), k * n);
    }
    const floatRows = bias ? 1 : 0;
    const beforeDb = outputSqnrDbGroups(w, before, h, kk, n, floatRows);
    const afterDb = outputSqnrDbGroups(w, after, h, kk, n, floatRows);
    out.learned.set(t.key, { blocks, ...(bias && { bias: { name: bias, values: Float32Array.from(values.subarray(k * n)) } }), beforeDb, afterDb });
    dbs.push([beforeDb, afterDb]);
    rows = Math.max(rows, r);
  });
  const mean = (i: 0 | 1) => dbs.reduce((a, d) => a + d[i], 0) / dbs.length;
  const seconds = (performance.now() - start) / 1000;
  out.note = dbs.length
    ? `learned rounding: ${dbs.length} FP4 layer(s), mean layer output SQNR ${mean(0).toFixed(1)} → ${mean(1).toFixed(1)} dB (up to ${rows} sampled input rows per layer, ${seconds.toFixed(1)} s)` +
      (out.skipped.length ? `; ${out.skipped.length} kept nearest rounding (${[...new Set(out.skipped.map((s) => s.reason.split(":")[0]))].join("; ")})` : "")
    : `learned rounding: no FP4 layer it could refine${out.skipped.length ? ` (${out.skipped[0]!.reason})` : ""}`;
  return out;
}

/** The node's own float bias (a Conv/Gemm input 2 that is an initializer of n values read by this node only). */
function ownFloatBias(graph: GraphProto, node: NodeProto, n: number): string | undefined {
  const b = node.opType === "MatMul" ? undefined : node.input[2];
  const t = b ? graph.initializer.find((x) => x.name === b) : undefined;
  if (!b || t?.dataType !== DataType.FLOAT || t.dims.reduce((a, d) => a * Number(d), 1) !== n) return undefined;
  return graph.node.filter((x) => x.input.includes(b)).length === 1 && !graph.output.some((x) => x.name === b) ? b : undefined;
}
