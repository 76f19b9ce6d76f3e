// Prints a ModelProto in ONNX's textual syntax, laid out as onnx.printer writes it (header in <...>, the graph's
// signature, initializers in <...>, then one node per line), so people who know `onnx.printer.to_text` read it
// unchanged. Large initializers are elided: a view of a 100 MB model must stay a few hundred KB of text.
// Pure (no Node, no VS Code): the extension host prints models without loading any native code.
import type { AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from "onnx-buf";
import { elementCount, elemTypeName, ident, quote, tensorBytes, tensorValues, typeText } from "./types";

export interface PrintOptions {
  /** Tensors with more elements than this print as `{...}` with a comment giving their count and bytes. */
  maxTensorValues: number;
  /** Indentation unit; onnx.printer uses three spaces. */
  indent: string;
}

export const DEFAULT_PRINT_OPTIONS: PrintOptions = { maxTensorValues: 16, indent: "   " };

const ATTR_TYPE_NAMES: Record<number, string> = {
  1: "float", 2: "int", 3: "string", 4: "tensor", 5: "graph", 6: "floats", 7: "ints", 8: "strings",
  9: "tensors", 10: "graphs", 11: "sparse_tensor", 12: "sparse_tensors", 13: "type_proto", 14: "type_protos",
};

class Printer {
  private readonly out: string[] = [];
  constructor(private readonly opts: PrintOptions) {}

  text(): string {
    return this.out.join("\n") + "\n";
  }

  line(depth: number, s: string): void {
    this.out.push(this.opts.indent.repeat(depth) + s);
  }

  model(m: ModelProto): void {
    const header: string[] = [`ir_version: ${m.irVersion}`, `opset_import: [${opsets(m.opsetImport)}]`];
    if (m.producerName) header.push(`producer_name: ${quote(m.producerName)}`);
    if (m.producerVersion) header.push(`producer_version: ${quote(m.producerVersion)}`);
    if (m.domain) header.push(`domain: ${quote(m.domain)}`);
    if (m.modelVersion) header.push(`model_version: ${m.modelVersion}`);
    if (m.docString) header.push(`doc_string: ${quote(m.docString)}`);
    if (m.metadataProps.length) {
      header.push(`metadata_props: [${m.metadataProps.map((p) => `${quote(p.key)}: ${quote(p.value)}`).join(", ")}]`);
    }
    this.line(0, "<");
    header.forEach((h, i) => this.line(1, h + (i < header.length - 1 ? "," : "")));
    this.line(0, ">");
    if (m.graph) this.graph(m.graph, 0, "");
    for (const f of m.functions) this.func(f);
  }

  /** A graph at `depth`; `prefix` starts its first line (an attribute's `body: graph = `). */
  graph(g: GraphProto, depth: number, prefix: string): void {
    const inits = new Set(g.initializer.map((t) => t.name));
    // Old models list initializers among the inputs too; onnx.printer shows them only as initializers.
    const inputs = g.input.filter((v) => !inits.has(v.name));
    this.line(depth, `${prefix}${ident(g.name || "graph")} (${valueInfos(inputs)}) => (${valueInfos(g.output)})`);
    if (g.initializer.length) {
      this.line(depth + 1, "<");
      g.initializer.forEach((t, i) => {
        const d = this.tensorData(t);
        const sep = i < g.initializer.length - 1 ? "," : "";
        this.line(depth + 2, `${elemTypeName(t.dataType)}[${t.dims.join(",")}] ${ident(t.name)} = ${d.body}${sep}${d.note ? `  # ${d.note}` : ""}`);
      });
      this.line(depth + 1, ">");
    }
    this.line(depth, "{");
    for (const n of g.node) this.node(n, depth + 1);
    this.line(depth, "}");
  }

  /** The `{values}` of a tensor, or `{...}` with a note saying what was left out and why. */
  tensorData(t: TensorProto): { body: string; note?: string } {
    if (t.externalData.length) {
      const loc = t.externalData.find((e) => e.key === "location")?.value ?? "?";
      return { body: "{...}", note: `external data in ${quote(loc)}, ${elementCount(t)} values` };
    }
    const n = elementCount(t);
    const values = n <= this.opts.maxTensorValues ? tensorValues(t) : undefined;
    if (values) return { body: `{${values.join(", ")}}` };
    return { body: "{...}", note: `${n} values, ${tensorBytes(t)} bytes elided` };
  }

  node(n: NodeProto, depth: number): void {
    const op = n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${n.opType}` : n.opType;
    const name = n.name ? `[${ident(n.name)}] ` : "";
    const outs = n.output.map((o) => (o ? ident(o) : quote(""))).join(", ");
    const ins = n.input.map((i) => (i ? ident(i) : quote(""))).join(", ");
    const graphAttrs = n.attribute.filter((a) => a.type === 5 || a.type === 10);
    const simple = n.attribute.filter((a) => a.type !== 5 && a.type !== 10);
    const attrs = simple.map((a) => this.attribute(a));
    if (graphAttrs.length === 0) {
      this.line(depth, `${name}${outs} = ${op}${attrs.length ? ` <${attrs.join(", ")}>` : ""} (${ins})`);
      return;
    }
    // Subgraph bodies (If, Loop, Scan) span lines: the attribute list opens, each graph nests, then it closes.
    this.line(depth, `${name}${outs} = ${op} <${attrs.map((a) => a + ", ").join("")}`);
    graphAttrs.forEach((a, i) => {
      const last = i === graphAttrs.length - 1;
      const graphs = a.type === 5 ? (a.g ? [a.g] : []) : a.graphs;
      graphs.forEach((g, j) => this.graph(g, depth + 1, j === 0 ? `${a.name}: ${ATTR_TYPE_NAMES[a.type]} = ` : ""));
      if (!last) this.out[this.out.length - 1] += ",";
    });
    this.line(depth, `> (${ins})`);
  }

  attribute(a: AttributeProto): string {
    const type = ATTR_TYPE_NAMES[a.type] ?? "undefined";
    const head = `${a.name}: ${type} = `;
    if (a.refAttrName) return `${head}@${a.refAttrName}`;
    const dec = new TextDecoder();
    switch (a.type) {
      case 1: return head + String(Number(a.f.toPrecision(7)));
      case 2: return head + a.i.toString();
      case 3: return head + quote(dec.decode(a.s));
      case 4: return head + (a.t ? this.inlineTensor(a.t) : "{}");
      case 6: return head + `[${a.floats.map((f) => String(Number(f.toPrecision(7)))).join(", ")}]`;
      case 7: return head + `[${a.ints.join(", ")}]`;
      case 8: return head + `[${a.strings.map((s) => quote(dec.decode(s))).join(", ")}]`;
      case 9: return head + `[${a.tensors.map((t) => this.inlineTensor(t)).join(", ")}]`;
      case 13: return head + typeText(a.tp);
      case 14: return head + `[${a.typeProtos.map(typeText).join(", ")}]`;
      default: return head + "?";
    }
  }

  /** A tensor inside an attribute list stays on one line, so an elision comment would swallow the rest. */
  inlineTensor(t: TensorProto): string {
    return `${elemTypeName(t.dataType)}[${t.dims.join(",")}] ${this.tensorData(t).body}`;
  }

  func(f: FunctionProto): void {
    this.line(0, "<");
    this.line(1, `domain: ${quote(f.domain)},`);
    this.line(1, `opset_import: [${opsets(f.opsetImport)}]`);
    this.line(0, ">");
    const attrs = f.attribute.length ? ` <${f.attribute.map(ident).join(", ")}>` : "";
    this.line(0, `${ident(f.name)}${attrs} (${f.input.map(ident).join(", ")}) => (${f.output.map(ident).join(", ")})`);
    this.line(0, "{");
    for (const n of f.node) this.node(n, 1);
    this.line(0, "}");
  }
}

function opsets(list: ModelProto["opsetImport"]): string {
  return list.map((o) => `${quote(o.domain)} : ${o.version}`).join(", ");
}

function valueInfos(vs: ValueInfoProto[]): string {
  return vs.map((v) => `${typeText(v.type)} ${ident(v.name)}`).join(", ");
}

/** The model as ONNX text. */
export function printModel(model: ModelProto, options: Partial<PrintOptions> = {}): string {
  const p = new Printer({ ...DEFAULT_PRINT_OPTIONS, ...options });
  p.model(model);
  return p.text();
}

/** One graph as ONNX text (a subgraph shown on its own). */
export function printGraph(graph: GraphProto, options: Partial<PrintOptions> = {}): string {
  const p = new Printer({ ...DEFAULT_PRINT_OPTIONS, ...options });
  p.graph(graph, 0, "");
  return p.text();
}
