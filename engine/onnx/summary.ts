// A model at a glance, without running it: inputs/outputs, op histogram, parameters by element type, opsets,
// producer. Pure (no onnxruntime), so the editor can show it too; shapes of intermediate tensors come from
// engine/runtime/shapes.ts, which runs the model.
import { create } from "@bufbuild/protobuf";
import { GraphProtoSchema, type GraphProto, type ModelProto, type TensorProto } from "onnx-buf";
import { dtypeName, elementCount, storageBytes } from "./dtype";
import { constantNodeTensor, forEachGraph } from "./graph";
import type { Model } from "./model";
import { valueInfoTensor, type Dim } from "./proto";

export interface ValueSummary {
  name: string;
  /** Element type name ("float", "int64", ...), or the kind of a non-tensor value ("sequence", "map", ...). */
  dtype: string;
  /** undefined when the rank is unknown. */
  shape: Dim[] | undefined;
}

export interface DtypeParams {
  tensors: number;
  elements: number;
  bytes: number;
}

export interface ModelSummary {
  file: string | undefined;
  irVersion: number;
  producer: string;
  opsets: { domain: string; version: number }[];
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  /** Node count per op type ("domain.Op" outside ai.onnx), subgraphs included. */
  ops: Record<string, number>;
  nodes: number;
  subgraphs: number;
  /** Initializers and Constant-node tensors, subgraphs included; graph inputs with defaults count as parameters. */
  parameters: { elements: number; bytes: number; byDtype: Record<string, DtypeParams> };
  externalData: boolean;
}

function valueSummary(v: GraphProto["input"][number]): ValueSummary {
  const t = valueInfoTensor(v);
  if (t) return { name: v.name, dtype: dtypeName(t.elemType), shape: t.shape };
  return { name: v.name, dtype: v.type?.value.case?.replace(/Type$/, "") ?? "unknown", shape: undefined };
}

export function summarize(model: Model): ModelSummary {
  return summarizeProto(model.proto, model.path);
}

/** The same from the protobuf alone (the ONNX editor has no Model); a model without a graph summarizes as empty. */
export function summarizeProto(proto: ModelProto, file?: string): ModelSummary {
  const graph = proto.graph ?? create(GraphProtoSchema);
  const ops: Record<string, number> = {};
  const byDtype: Record<string, DtypeParams> = {};
  let nodes = 0;
  let subgraphs = -1;
  let external = false;
  const addParam = (t: TensorProto) => {
    const name = dtypeName(t.dataType);
    let n = 0;
    try {
      n = elementCount(t.dims, `tensor "${t.name}"`);
    } catch {
      return; // validated on load; a model built in code may still be odd: skip rather than fail a summary
    }
    const p = (byDtype[name] ??= { tensors: 0, elements: 0, bytes: 0 });
    p.tensors++;
    p.elements += n;
    p.bytes += t.dataType === 8 ? t.stringData.reduce((s, b) => s + b.byteLength, 0) : storageBytes(t.dataType, n);
    if (t.dataLocation === 1) external = true;
  };
  const inputs = graph.input.map(valueSummary);
  const initNames = new Set(graph.initializer.map((t) => t.name));
  forEachGraph(graph, (g) => {
    subgraphs++;
    for (const t of g.initializer) addParam(t);
    for (const n of g.node) {
      nodes++;
      const key = n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${n.opType}` : n.opType;
      ops[key] = (ops[key] ?? 0) + 1;
      const c = n.opType === "Constant" ? constantNodeTensor(n) : undefined;
      if (c) addParam(c);
    }
  });
  const totals = Object.values(byDtype);
  return {
    file,
    irVersion: Number(proto.irVersion),
    producer: [proto.producerName, proto.producerVersion].filter(Boolean).join(" "),
    opsets: proto.opsetImport.map((o) => ({ domain: o.domain || "ai.onnx", version: Number(o.version) })),
    inputs: inputs.filter((i) => !initNames.has(i.name)),
    outputs: graph.output.map(valueSummary),
    ops: Object.fromEntries(Object.entries(ops).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    nodes,
    subgraphs,
    parameters: {
      elements: totals.reduce((s, p) => s + p.elements, 0),
      bytes: totals.reduce((s, p) => s + p.bytes, 0),
      byDtype,
    },
    externalData: external,
  };
}

const fmtShape = (s: Dim[] | undefined) => (s ? `[${s.map((d) => (d === null ? "?" : d)).join(", ")}]` : "(rank unknown)");

function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** The summary as text for a terminal or a notebook cell. */
export function formatSummary(s: ModelSummary): string {
  const lines: string[] = [];
  if (s.file) lines.push(`Model: ${s.file}`);
  lines.push(`IR version ${s.irVersion}; opsets ${s.opsets.map((o) => `${o.domain} ${o.version}`).join(", ")}; producer ${s.producer || "(none)"}`);
  lines.push("Inputs:");
  for (const v of s.inputs) lines.push(`  ${v.name}: ${v.dtype} ${fmtShape(v.shape)}`);
  lines.push("Outputs:");
  for (const v of s.outputs) lines.push(`  ${v.name}: ${v.dtype} ${fmtShape(v.shape)}`);
  lines.push(`Nodes: ${s.nodes}${s.subgraphs ? ` (in ${s.subgraphs + 1} graphs)` : ""}`);
  for (const [op, n] of Object.entries(s.ops)) lines.push(`  ${op.padEnd(24)} ${n}`);
  lines.push(`Parameters: ${s.parameters.elements.toLocaleString("en-US")} (${fmtBytes(s.parameters.bytes)})${s.externalData ? ", external data" : ""}`);
  for (const [dt, p] of Object.entries(s.parameters.byDtype)) {
    lines.push(`  ${dt.padEnd(10)} ${String(p.tensors).padStart(5)} tensors ${p.elements.toLocaleString("en-US").padStart(14)} elements ${fmtBytes(p.bytes).padStart(11)}`);
  }
  return lines.join("\n");
}
