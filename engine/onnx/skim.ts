// The main graph's inputs, small nodes and small constants of a model file, read without decoding (or reading) its
// weights: what a session opened on a path needs to know that onnxruntime's metadata does not say (whether an input
// without dims is a scalar or of unknown rank; which constants an integer input is compared with). The file is
// walked field by field with positional reads; a field over SMALL bytes is skipped unread, an initializer's name is
// still read from it.

import { create, fromBinary } from "@bufbuild/protobuf";
import { closeSync } from "node:fs";
import { GraphProtoSchema, NodeProtoSchema, TensorProtoSchema, ValueInfoProtoSchema, type GraphProto, type NodeProto } from "onnx-buf";
import { OnnxError } from "./errors";
import { openRegularFile, readAt } from "./external";
import { unreadInitializers } from "./graph";

/** Nodes and initializers encoded in more bytes than this are skipped (a scalar constant takes a few dozen). */
const SMALL = 4096;
const WINDOW = 1 << 16;

// Field numbers of onnx.proto3.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const TENSOR_NAME = 8;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_OP_TYPE = 4;
const NODE_DOMAIN = 7;

/** Reads a file forwards through a window, jumping over what it skips. */
class Cursor {
  private buf = new Uint8Array(WINDOW);
  private start = 0; // file position of buf[0]
  private filled = 0;
  pos = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly file: string,
  ) {}

  private byte(): number {
    if (this.pos >= this.size) throw new OnnxError("not a valid ONNX file: it ends inside a field", this.file);
    if (this.pos < this.start || this.pos >= this.start + this.filled) {
      this.start = this.pos;
      this.filled = Math.min(WINDOW, this.size - this.pos);
      readAt(this.fd, this.buf.subarray(0, this.filled), this.pos, `${this.file}: cannot read the model file`);
    }
    return this.buf[this.pos++ - this.start]!;
  }

  varint(): number {
    let v = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      const b = this.byte();
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    throw new OnnxError("not a valid ONNX file: a varint runs past 10 bytes", this.file);
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    if (this.pos + n > this.size) throw new OnnxError("not a valid ONNX file: a field runs past its end", this.file);
    readAt(this.fd, out, this.pos, `${this.file}: cannot read the model file`);
    this.pos += n;
    return out;
  }

  /** Skips the value of a field of wire type `wire`. */
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else if (wire === 2) {
      const length = this.varint(); // read before `pos` is: `pos += varint()` would add to the old position
      this.pos += length;
    }
    else throw new OnnxError(`not a valid ONNX file: wire type ${wire} at byte ${this.pos}`, this.file);
  }

  /** Calls `field` for each field in [pos, end); it reads or skips the field's value. */
  fields(end: number, field: (no: number, wire: number) => void): void {
    while (this.pos < end) {
      const key = this.varint();
      field(Math.floor(key / 8), key % 8);
    }
    if (this.pos !== end) throw new OnnxError("not a valid ONNX file: a message runs past its end", this.file);
  }
}

/**
 * The main graph of the model file at `file` with its inputs, the nodes encoded in under 4 KiB, and its
 * initializers: whole where small, else only their names (a weight stays unread). Subgraphs are not walked.
 */
export function skimGraph(file: string): GraphProto {
  return skim(file).graph;
}

/**
 * The main graph's initializers that no node reads and no graph input or output names, as skimGraph reads the file
 * (onnxruntime warns of each one whenever it loads the file: tf2onnx leaves some in BlazeFace and M-LSD). A node too
 * large to read whole is read without its attributes; undefined where such a node is an If, Loop or Scan, or of
 * another domain, whose bodies may read them.
 */
export function skimUnreadInitializers(file: string): string[] | undefined {
  const { graph, skippedNodes } = skim(file, true);
  return skippedNodes > 0 ? undefined : [...unreadInitializers(graph)];
}

/** skimGraph's walk; with `reads` (what unreadInitializers needs), also the graph's outputs and each large node
 *  without its attributes, counting those whose attributes may read the graph's names (bodies). */
function skim(file: string, reads = false): { graph: GraphProto; skippedNodes: number } {
  const { fd, size } = openRegularFile(file, (kind) => new OnnxError(`not a model file: it is ${kind}`, file));
  try {
    const graph = create(GraphProtoSchema);
    let skippedNodes = 0;
    const c = new Cursor(fd, size, file);
    c.fields(size, (no, wire) => {
      if (no !== MODEL_GRAPH || wire !== 2) return c.skip(wire);
      const end = c.varint() + c.pos;
      c.fields(end, (g, w) => {
        const wanted = g === GRAPH_NODE || g === GRAPH_INITIALIZER || g === GRAPH_INPUT || (reads && g === GRAPH_OUTPUT);
        if (w !== 2 || !wanted) return c.skip(w);
        const length = c.varint();
        if (g === GRAPH_INPUT) graph.input.push(fromBinary(ValueInfoProtoSchema, c.bytes(length)));
        else if (g === GRAPH_OUTPUT) graph.output.push(fromBinary(ValueInfoProtoSchema, c.bytes(length)));
        else if (length <= SMALL && g === GRAPH_NODE) graph.node.push(fromBinary(NodeProtoSchema, c.bytes(length)));
        else if (length <= SMALL) graph.initializer.push(fromBinary(TensorProtoSchema, c.bytes(length)));
        else if (g === GRAPH_NODE && reads) {
          // A large node (a Constant holding a weight, an If with its bodies): what it reads, its attributes unread.
          const n = nodeHead(c, c.pos + length);
          if (BODY_OPS.has(n.opType) || n.domain !== "") skippedNodes++;
          graph.node.push(n);
        } else if (g === GRAPH_NODE) {
          c.pos += length;
          skippedNodes++;
        }
        else graph.initializer.push(create(TensorProtoSchema, { name: tensorName(c, c.pos + length) }));
      });
    });
    return { graph, skippedNodes };
  } finally {
    closeSync(fd);
  }
}

/** Ops whose attributes hold bodies that may read the main graph's names (and a node of another domain may too). */
const BODY_OPS = new Set(["If", "Loop", "Scan"]);

/** The NodeProto in [pos, end) without its attributes (input, output, op_type and domain); the cursor ends at `end`. */
function nodeHead(c: Cursor, end: number): NodeProto {
  const n = create(NodeProtoSchema);
  const text = () => new TextDecoder().decode(c.bytes(c.varint()));
  c.fields(end, (no, wire) => {
    if (wire !== 2 || (no !== NODE_INPUT && no !== NODE_OUTPUT && no !== NODE_OP_TYPE && no !== NODE_DOMAIN)) return c.skip(wire);
    if (no === NODE_INPUT) n.input.push(text());
    else if (no === NODE_OUTPUT) n.output.push(text());
    else if (no === NODE_OP_TYPE) n.opType = text();
    else n.domain = text();
  });
  return n;
}

/** The name of the TensorProto in [pos, end), its other fields skipped; the cursor ends at `end`. */
function tensorName(c: Cursor, end: number): string {
  let name = "";
  c.fields(end, (no, wire) => {
    if (no === TENSOR_NAME && wire === 2) name = new TextDecoder().decode(c.bytes(c.varint()));
    else c.skip(wire);
  });
  return name;
}
