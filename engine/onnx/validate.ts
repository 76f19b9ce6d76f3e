// Checks run on every loaded model, so that bad input ends in an error naming the file and what is wrong (byte
// offset, tensor or node) rather than a crash later: what the bytes are if not ONNX, where the protobuf wire data
// breaks, tensors whose data does not match their shape, missing or unsafe external data (see external.ts), names
// defined twice, dangling inputs, cycles.
import { closeSync } from "node:fs";
import type { GraphProto, ModelProto, NodeProto, TensorProto } from "onnx-buf";
import { dtypeInfo, elementCount, storageBytes } from "./dtype";
import { OnnxError } from "./errors";
import { openExternal } from "./external";
import { checkGraph, forEachGraph, nodeLabel, topologicalSort } from "./graph";
import { tensorStorage } from "./tensor";

const ascii = (b: Uint8Array, n: number) => String.fromCharCode(...b.subarray(0, n)).replace(/[^\x20-\x7e]/g, "?");

/** If the bytes are plainly something other than an ONNX protobuf, says what; otherwise undefined. */
export function describeNonOnnx(bytes: Uint8Array): string | undefined {
  if (bytes.byteLength === 0) return "the file is empty (0 bytes), not an ONNX model";
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) {
    return "this is a zip archive (a PyTorch checkpoint or an archive?), not an ONNX model: export it with torch.onnx.export or unzip it first";
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return "this is a gzip file, not an ONNX model: decompress it first";
  if (bytes[0] === 0x89 && bytes[1] === 0x48 && bytes[2] === 0x44 && bytes[3] === 0x46) {
    return "this is an HDF5 file (a Keras model?), not an ONNX model: convert it with tf2onnx first";
  }
  const head = bytes.subarray(0, Math.min(64, bytes.byteLength));
  if (head.every((c) => c === 9 || c === 10 || c === 13 || (c >= 0x20 && c < 0x7f))) {
    return `this is a text file (starts with "${ascii(head, 24)}"), not a binary ONNX model`;
  }
  return undefined;
}

/** ModelProto field numbers and wire types (2 = length-delimited, 0 = varint). */
const MODEL_FIELDS: Record<number, number> = { 1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2 };
const GRAPH_FIELDS: Record<number, number> = { 1: 2, 2: 2, 5: 2, 10: 2, 11: 2, 12: 2, 13: 2, 14: 2, 15: 2, 16: 2 };

/**
 * Walks the protobuf wire format of a ModelProto (and its graph) to find where it breaks: returns a message with
 * the byte offset, or undefined if the framing is sound. Used to explain a decoding failure.
 */
export function locateWireError(bytes: Uint8Array): string | undefined {
  const walk = (start: number, end: number, fields: Record<number, number>, what: string): string | undefined => {
    let p = start;
    const varint = (): number | undefined => {
      let v = 0;
      for (let shift = 0; shift < 64; shift += 7) {
        if (p >= end) return undefined;
        const b = bytes[p++]!;
        v += (b & 0x7f) * 2 ** shift;
        if (!(b & 0x80)) return v;
      }
      return undefined;
    };
    while (p < end) {
      const at = p;
      const tag = varint();
      if (tag === undefined) return `${what}: truncated field tag at byte offset ${at}`;
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      if (field === 0 || (fields[field] !== undefined && fields[field] !== wire)) {
        return `${what}: invalid field ${field} (wire type ${wire}) at byte offset ${at}`;
      }
      if (wire === 0) {
        if (varint() === undefined) return `${what}: truncated value of field ${field} at byte offset ${at}`;
      } else if (wire === 2) {
        const len = varint();
        if (len === undefined) return `${what}: truncated length of field ${field} at byte offset ${at}`;
        if (p + len > end) {
          return `${what}: field ${field} at byte offset ${at} claims ${len} bytes but only ${end - p} remain (file truncated or corrupted)`;
        }
        if (fields === MODEL_FIELDS && field === 7) {
          const inner = walk(p, p + len, GRAPH_FIELDS, "in the graph");
          if (inner) return inner;
        }
        p += len;
      } else if (wire === 1) p += 8;
      else if (wire === 5) p += 4;
      else return `${what}: unsupported wire type ${wire} at byte offset ${at}`;
      if (p > end) return `${what}: field ${field} at byte offset ${at} runs past the end`;
    }
    return undefined;
  };
  return walk(0, bytes.byteLength, MODEL_FIELDS, "model");
}

/** Throws if a tensor's stored data does not match its type and shape. `dir` enables external data checks. */
export function checkTensorData(t: TensorProto, dir: string | undefined): void {
  const d = dtypeInfo(t.dataType, `tensor "${t.name}"`);
  const count = elementCount(t.dims, `tensor "${t.name}"`) * d.lanes;
  const where = tensorStorage(t);
  const shape = `(${d.name}, shape [${t.dims.join(", ")}])`;
  if (where === "raw") {
    const need = storageBytes(d.id, count);
    if (t.rawData.byteLength !== need) {
      throw new OnnxError(`tensor "${t.name}" ${shape} needs ${need} bytes of data but has ${t.rawData.byteLength}`);
    }
  } else if (where === "typed") {
    const have = (t[d.field] as ArrayLike<unknown>).length;
    const need = d.bits < 8 ? storageBytes(d.id, count) : count;
    if (have !== need) throw new OnnxError(`tensor "${t.name}" ${shape} needs ${need} values in ${d.field}, has ${have}`);
  } else if (dir !== undefined) {
    const span = openExternal(t, dir);
    closeSync(span.fd);
    const need = storageBytes(d.id, count);
    if (span.length !== need) {
      throw new OnnxError(`tensor "${t.name}" ${shape} needs ${need} bytes but its external data has ${span.length}`);
    }
  }
}

/**
 * Refuses a value defined twice in one graph (each subgraph checked on its own): two initializers of one name
 * (the quantizer would read the first, onnxruntime the last), two graph inputs of one name, two nodes writing one
 * value, or a node writing an initializer or graph input. An initializer that is also a graph input is allowed
 * (a default value for the input).
 */
export function checkUniqueNames(graph: GraphProto): void {
  forEachGraph(graph, (g) => {
    const where = g === graph ? "" : ` in subgraph "${g.name || "(unnamed)"}"`;
    const twice = (kind: string, names: string[]) => {
      const seen = new Set<string>();
      for (const name of names) {
        if (seen.has(name)) {
          const readers = g.node.filter((n) => n.input.includes(name)).map(nodeLabel);
          const read = readers.length ? ` (read by ${readers.slice(0, 3).join(", ")}${readers.length > 3 ? ", ..." : ""})` : "";
          throw new OnnxError(`${kind} "${name}" is defined twice${where}${read}: names must be unique; rename or remove one of them`);
        }
        seen.add(name);
      }
    };
    twice("initializer", g.initializer.map((t) => t.name));
    twice("graph input", g.input.map((v) => v.name));
    const inputs = new Set(g.input.map((v) => v.name));
    const inits = new Set(g.initializer.map((t) => t.name));
    const writer = new Map<string, NodeProto>();
    for (const n of g.node) {
      for (const o of n.output) {
        if (!o) continue;
        const first = writer.get(o);
        if (first) {
          const who = first === n ? `${nodeLabel(n)} lists it twice` : `${nodeLabel(first)} and ${nodeLabel(n)} both write it`;
          throw new OnnxError(`value "${o}" is defined twice${where}: ${who}; rename one of the outputs`);
        }
        if (inits.has(o) || inputs.has(o)) {
          throw new OnnxError(
            `value "${o}"${where} is both ${inits.has(o) ? "an initializer" : "a graph input"} and an output of ` +
              `${nodeLabel(n)}: names must be unique; rename one of them`,
          );
        }
        writer.set(o, n);
      }
    }
  });
}

/** Structural checks on a decoded model. `label` names the file in messages. */
export function validateModel(proto: ModelProto, label: string, size: number, dir?: string): void {
  const fail = (msg: string): never => {
    throw new OnnxError(msg, label);
  };
  if (!proto.graph) {
    fail(`no graph found in ${size} bytes: not an ONNX model, or a corrupted one${wireHint(proto)}`);
  }
  if (proto.irVersion <= 0n) fail("ir_version is missing: not an ONNX model, or a corrupted one");
  if (proto.opsetImport.length === 0 && proto.irVersion >= 3n) fail("the model imports no opset (opset_import is empty)");
  for (const o of proto.opsetImport) {
    if (o.version <= 0n || o.version > 1000n) fail(`opset_import for domain "${o.domain}" has an invalid version ${o.version}`);
  }
  const graph = proto.graph as GraphProto;
  try {
    forEachGraph(graph, (g) => {
      for (const t of g.initializer) checkTensorData(t, dir);
      for (const n of g.node) for (const a of n.attribute) if (a.t) checkTensorData(a.t, dir);
    });
    checkUniqueNames(graph);
    checkGraph(graph);
    forEachGraph(graph, (g) => topologicalSort({ ...g, node: [...g.node] }));
  } catch (e) {
    if (e instanceof OnnxError) fail(e.message);
    throw e;
  }
}

function wireHint(proto: ModelProto): string {
  return proto.$unknown?.length ? ` (${proto.$unknown.length} unknown top-level fields)` : "";
}
