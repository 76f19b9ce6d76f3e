// What the If/Loop/Scan tests share: a body built in code, op counts over every graph, the unique-names check and
// the worst output SQNR of a quantized model against its float original.
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { GraphProtoSchema, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from "onnx-buf";
import * as ort from "onnxruntime-node";
import type { Feeds } from "../../../engine/data/feeds";
import { DataType } from "../../../engine/onnx/dtype";
import { forEachGraph } from "../../../engine/onnx/graph";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { sqnr } from "../../../engine/quant/math";
import { makeModel, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;

export function body(name: string, nodes: NodeProto[], outputs: ValueInfoProto[], initializer: TensorProto[] = [], inputs: ValueInfoProto[] = []): GraphProto {
  return create(GraphProtoSchema, { name, node: nodes, initializer, input: inputs, output: outputs });
}

/** Op counts over the whole model, bodies included. */
export function allOps(m: ModelProto): Record<string, number> {
  const c: Record<string, number> = {};
  forEachGraph(m.graph!, (g) => {
    for (const n of g.node) c[n.opType] = (c[n.opType] ?? 0) + 1;
  });
  return c;
}

/** Op counts per graph name. */
export function opsByGraph(m: ModelProto): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  forEachGraph(m.graph!, (g) => {
    const c = (out[g.name] ??= {});
    for (const n of g.node) c[n.opType] = (c[n.opType] ?? 0) + 1;
  });
  return out;
}

/** Every value defined (input, initializer, node output) and every node name, over all graphs: none twice. */
export function assertNamesUnique(m: ModelProto): void {
  const seen = new Set<string>();
  const nodes = new Set<string>();
  forEachGraph(m.graph!, (g) => {
    for (const v of [...g.input.map((i) => i.name), ...g.initializer.map((t) => t.name), ...g.node.flatMap((n) => n.output)]) {
      if (!v) continue;
      assert.ok(!seen.has(v), `"${v}" is defined twice`);
      seen.add(v);
    }
    for (const n of g.node) {
      if (!n.name) continue;
      assert.ok(!nodes.has(n.name), `node name "${n.name}" is used twice`);
      nodes.add(n.name);
    }
  });
}

/** The worst output's SQNR (dB) of `quantized` (optimized as onnxruntime runs it) against `float`. */
export async function worstSqnr(float: ModelProto, quantized: ModelProto, feeds: Record<string, ort.Tensor>): Promise<number> {
  const ref = await runModel(float, feeds, "disabled");
  const got = await runModel(quantized, feeds, "all");
  let worst = Infinity;
  for (const k of Object.keys(ref)) worst = Math.min(worst, sqnr(ref[k]!.data as Float32Array, got[k]!.data as Float32Array));
  return worst;
}

export function matmul(a: Float32Array, b: Float32Array, n: number, k: number, m: number): Float32Array {
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) for (let p = 0; p < k; p++) out[i * m + j]! += a[i * k + p]! * b[p * m + j]!;
  return out;
}

/** x → MatMul(W_in) → h0 → Loop(M) { h ← Tanh(MatMul(h, W_loop) + b) } → y; W_loop is a main-graph initializer. */
export function loopModel(): ModelProto {
  const loopBody = body(
    "loop_body",
    [
      makeNode("MatMul", ["h_in", "W_loop"], ["h_mm"], { name: "loop_mm" }),
      makeNode("Add", ["h_mm", "b_loop"], ["h_add"], { name: "loop_add" }),
      makeNode("Tanh", ["h_add"], ["h_out"], { name: "loop_tanh" }),
      makeNode("Identity", ["cond_in"], ["cond_out"], { name: "loop_cond" }),
    ],
    [valueInfo("cond_out", DataType.BOOL, []), valueInfo("h_out", F, [4, 8])],
    [makeTensor("b_loop", F, [8], randomFloats(8, 13, -0.2, 0.2))],
    [valueInfo("iter", DataType.INT64, []), valueInfo("cond_in", DataType.BOOL, []), valueInfo("h_in", F, [4, 8])],
  );
  return makeModel(
    [
      makeNode("MatMul", ["x", "W_in"], ["h0"], { name: "in_mm" }),
      makeNode("Loop", ["M", "", "h0"], ["y"], { name: "loop", attributes: [attr.graph("body", loopBody)] }),
    ],
    [valueInfo("x", F, [4, 16]), valueInfo("M", DataType.INT64, [])],
    [valueInfo("y", F, [4, 8])],
    [makeTensor("W_in", F, [16, 8], randomFloats(128, 11)), makeTensor("W_loop", F, [8, 8], randomFloats(64, 12, -0.5, 0.5))],
  );
}

export const loopFeeds = (seed: number) => ({ x: new ort.Tensor("float32", randomFloats(64, seed), [4, 16]), M: new ort.Tensor("int64", [3n], []) });

/**
 * Loop(M) { h ← Tanh(Conv(h, Wc[8, 8, 3], pads 1)) } on h [2, 8, 24] (a 1-D Conv in a Loop body, Wc a main-graph
 * initializer): its input comes out of the body stacked over the iterations, [M, 2, 8, 24].
 */
export function loopConvModel(): ModelProto {
  const loopBody = body(
    "loop_body",
    [
      makeNode("Conv", ["h_in", "Wc"], ["h_c"], { name: "loop_conv", attributes: [attr.ints("pads", [1, 1])] }),
      makeNode("Tanh", ["h_c"], ["h_out"], { name: "loop_tanh" }),
      makeNode("Identity", ["cond_in"], ["cond_out"], { name: "loop_cond" }),
    ],
    [valueInfo("cond_out", DataType.BOOL, []), valueInfo("h_out", F, [2, 8, 24])],
    [],
    [valueInfo("iter", DataType.INT64, []), valueInfo("cond_in", DataType.BOOL, []), valueInfo("h_in", F, [2, 8, 24])],
  );
  return makeModel(
    [makeNode("Loop", ["M", "", "x"], ["y"], { name: "loop", attributes: [attr.graph("body", loopBody)] })],
    [valueInfo("x", F, [2, 8, 24]), valueInfo("M", DataType.INT64, [])],
    [valueInfo("y", F, [2, 8, 24])],
    [makeTensor("Wc", F, [8, 8, 3], randomFloats(8 * 8 * 3, 21, -0.4, 0.4))],
  );
}

/** Rows whose 8 channels share one smooth component (error feedback has something to exploit). */
export function loopConvFeeds(seed: number): Feeds {
  const next = randomFloats(2 * 8 * 24 + 2 * 24, seed);
  const data = new Float32Array(2 * 8 * 24);
  for (let n = 0; n < 2; n++) for (let c = 0; c < 8; c++) for (let t = 0; t < 24; t++) data[(n * 8 + c) * 24 + t] = Math.sin(t / 3 + 6 * next[2 * 8 * 24 + n * 24]!) * (1 + 0.3 * next[(n * 8 + c) * 24 + t]!);
  return { x: new ort.Tensor("float32", data, [2, 8, 24]), M: new ort.Tensor("int64", [3n], []) } as unknown as Feeds;
}
