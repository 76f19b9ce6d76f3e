// A model at a glance: inputs, outputs, opsets, parameter bytes by element type and op counts (subgraphs
// included). Pure, so the ONNX editor in the extension host and the CLI share it without loading native code.
import type { GraphProto, ModelProto } from "onnx-buf";
import { elementCount, elemTypeName, tensorBytes, typeText } from "./types";

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
  /** Initializer elements and bytes by element type, largest first. */
  sizeByType: Array<{ type: string; tensors: number; params: number; bytes: number }>;
  totalParams: number;
  totalBytes: number;
  subgraphCount: number;
}

function walk(g: GraphProto, visit: (g: GraphProto) => void): void {
  visit(g);
  for (const n of g.node) {
    for (const a of n.attribute) {
      if (a.g) walk(a.g, visit);
      for (const sub of a.graphs) walk(sub, visit);
    }
  }
}

export function summarizeModel(m: ModelProto): ModelSummary {
  const g = m.graph;
  const ops = new Map<string, number>();
  const sizes = new Map<string, { tensors: number; params: number; bytes: number }>();
  let nodeCount = 0;
  let graphs = 0;
  if (g) {
    walk(g, (sg) => {
      graphs++;
      for (const n of sg.node) {
        nodeCount++;
        const op = n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${n.opType}` : n.opType;
        ops.set(op, (ops.get(op) ?? 0) + 1);
      }
      for (const t of sg.initializer) {
        const s = sizes.get(elemTypeName(t.dataType)) ?? { tensors: 0, params: 0, bytes: 0 };
        s.tensors++;
        s.params += elementCount(t);
        s.bytes += tensorBytes(t);
        sizes.set(elemTypeName(t.dataType), s);
      }
    });
  }
  const inits = new Set(g?.initializer.map((t) => t.name) ?? []);
  const sizeByType = [...sizes].map(([type, s]) => ({ type, ...s })).sort((a, b) => b.bytes - a.bytes);
  return {
    irVersion: Number(m.irVersion),
    producer: [m.producerName, m.producerVersion].filter(Boolean).join(" "),
    graphName: g?.name ?? "",
    docString: m.docString || g?.docString || "",
    opsets: m.opsetImport.map((o) => ({ domain: o.domain || "ai.onnx", version: Number(o.version) })),
    metadata: m.metadataProps.map((p) => ({ key: p.key, value: p.value })),
    inputs: (g?.input ?? []).filter((v) => !inits.has(v.name)).map((v) => ({ name: v.name, type: typeText(v.type) })),
    outputs: (g?.output ?? []).map((v) => ({ name: v.name, type: typeText(v.type) })),
    nodeCount,
    opCounts: [...ops].map(([op, count]) => ({ op, count })).sort((a, b) => b.count - a.count || a.op.localeCompare(b.op)),
    sizeByType,
    totalParams: sizeByType.reduce((n, s) => n + s.params, 0),
    totalBytes: sizeByType.reduce((n, s) => n + s.bytes, 0),
    subgraphCount: Math.max(0, graphs - 1),
  };
}
