// Fast encoding of models with large weights. @bufbuild/protobuf encodes a nested message into its own buffer and
// copies it into the parent's, so every byte of raw_data is copied once per nesting level (tensor, graph, model)
// and the whole model is briefly held twice over. Here the top-level initializers' raw_data are placed straight
// into one output buffer; everything else is still encoded by toBinary. Fields are written in field-number order,
// as toBinary does, so the bytes are identical to toBinary's (tested).
import { create, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { GraphProtoSchema, ModelProtoSchema, TensorProtoSchema, type GraphProto, type ModelProto, type TensorProto } from "onnx-buf";

const GRAPH_FIELD = 7; // ModelProto.graph
const INITIALIZER_FIELD = 5; // GraphProto.initializer
const RAW_DATA_FIELD = 9; // TensorProto.raw_data
/** Below this a tensor goes through toBinary as usual; the fast path only pays off for big payloads. */
const BIG = 64 * 1024;

/** Splits a message into the fields numbered below `no` and those above (unknown fields go last, as toBinary does). */
function split<D extends DescMessage>(schema: D, msg: MessageShape<D>, no: number): [MessageShape<D>, MessageShape<D>] {
  const before = create(schema) as Record<string, unknown>;
  const after = create(schema) as Record<string, unknown>;
  const src = msg as unknown as Record<string, unknown>;
  for (const f of schema.fields) {
    if (!Object.prototype.hasOwnProperty.call(src, f.localName)) continue;
    if (f.number < no) before[f.localName] = src[f.localName];
    else if (f.number > no) after[f.localName] = src[f.localName];
  }
  after.$unknown = src.$unknown;
  return [before as MessageShape<D>, after as MessageShape<D>];
}

/** Tag and length prefix of a length-delimited field. */
function lengthPrefix(no: number, length: number): Uint8Array {
  const out: number[] = [];
  for (let v = (no << 3) | 2; ; ) {
    if (v < 0x80) {
      out.push(v);
      break;
    }
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  for (let v = length; ; ) {
    if (v < 0x80) {
      out.push(v);
      break;
    }
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  return Uint8Array.from(out);
}

const total = (pieces: Uint8Array[]) => pieces.reduce((s, p) => s + p.byteLength, 0);

function tensorPieces(t: TensorProto): Uint8Array[] {
  if (t.rawData.byteLength < BIG || !Object.prototype.hasOwnProperty.call(t, "rawData")) return [toBinary(TensorProtoSchema, t)];
  const [a, c] = split(TensorProtoSchema, t, RAW_DATA_FIELD);
  return [toBinary(TensorProtoSchema, a), lengthPrefix(RAW_DATA_FIELD, t.rawData.byteLength), t.rawData, toBinary(TensorProtoSchema, c)];
}

function graphPieces(g: GraphProto): Uint8Array[] {
  const [a, c] = split(GraphProtoSchema, g, INITIALIZER_FIELD);
  const pieces: Uint8Array[] = [toBinary(GraphProtoSchema, a)];
  for (const t of g.initializer) {
    const tp = tensorPieces(t);
    pieces.push(lengthPrefix(INITIALIZER_FIELD, total(tp)), ...tp);
  }
  pieces.push(toBinary(GraphProtoSchema, c));
  return pieces;
}

/**
 * The encoding of a ModelProto as consecutive pieces (big raw_data are views of the tensors, not copies): write
 * them in order to a file to save without building the whole encoding in memory.
 */
export function encodeModelPieces(proto: ModelProto): Uint8Array[] {
  const g = proto.graph;
  if (!g || !g.initializer.some((t) => t.rawData.byteLength >= BIG)) return [toBinary(ModelProtoSchema, proto)];
  const [a, c] = split(ModelProtoSchema, proto, GRAPH_FIELD);
  const gp = graphPieces(g);
  return [toBinary(ModelProtoSchema, a), lengthPrefix(GRAPH_FIELD, total(gp)), ...gp, toBinary(ModelProtoSchema, c)];
}

/** Encodes a ModelProto; same bytes as toBinary(ModelProtoSchema, proto), with one copy of the weights. */
export function encodeModel(proto: ModelProto): Uint8Array {
  const pieces = encodeModelPieces(proto);
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(total(pieces));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
