// The ONNX editor's view of a model at a glance: engine/onnx/summary.ts's counts (op histogram, parameters by
// element type — Constant-node weights included — opsets, subgraphs) plus what the page shows besides: graph
// name, doc string, metadata, and types spelled as ONNX text. Pure, so the extension host loads no native code.
import type { ModelProto } from "onnx-buf";
import { summarizeProto } from "../onnx/summary";
import { typeText } from "./types";

export interface ValueSummary {
  name: string;
  type: string;
}

export interface ModelSummary {
  irVersion: number;
  producer: string;
  graphName: string;
  docString: string;
  opsets: Array<{ domain: string; version: number }>;
  metadata: Array<{ key: string; value: string }>;
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  nodeCount: number;
  /** Op type (domain-qualified outside the default domain) → count, most frequent first. */
  opCounts: Array<{ op: string; count: number }>;
  /** Initializer and Constant-node elements and bytes by element type, largest first. */
  sizeByType: Array<{ type: string; tensors: number; params: number; bytes: number }>;
  totalParams: number;
  totalBytes: number;
  subgraphCount: number;
}

export function summarizeModel(m: ModelProto): ModelSummary {
  const s = summarizeProto(m);
  const g = m.graph;
  const inits = new Set(g?.initializer.map((t) => t.name) ?? []);
  const sizeByType = Object.entries(s.parameters.byDtype)
    .map(([type, p]) => ({ type, tensors: p.tensors, params: p.elements, bytes: p.bytes }))
    .sort((a, b) => b.bytes - a.bytes);
  return {
    irVersion: s.irVersion,
    producer: s.producer,
    graphName: g?.name ?? "",
    docString: m.docString || g?.docString || "",
    opsets: s.opsets,
    metadata: m.metadataProps.map((p) => ({ key: p.key, value: p.value })),
    inputs: (g?.input ?? []).filter((v) => !inits.has(v.name)).map((v) => ({ name: v.name, type: typeText(v.type) })),
    outputs: (g?.output ?? []).map((v) => ({ name: v.name, type: typeText(v.type) })),
    nodeCount: s.nodes,
    opCounts: Object.entries(s.ops).map(([op, count]) => ({ op, count })),
    sizeByType,
    totalParams: s.parameters.elements,
    totalBytes: s.parameters.bytes,
    subgraphCount: s.subgraphs,
  };
}
