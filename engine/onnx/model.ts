// The Model class: a ModelProto plus where it came from (so external data can be found and the source file is
// never written over). Loading checks the bytes really are an ONNX model and says what they are when not;
// saving is atomic (temp file + rename) and moves tensors to an external data file when the model would not fit
// protobuf's 2 GB limit.
import { clone as cloneMessage, create, fromBinary } from "@bufbuild/protobuf";
import { closeSync, existsSync } from "node:fs";
import path from "node:path";
import { ModelProtoSchema, OperatorSetIdProtoSchema, type GraphProto, type ModelProto, type TensorProto, type ValueInfoProto } from "onnx-buf";
import { DataType, elementCount, storageBytes } from "./dtype";
import { encodeModel } from "./encode";
import { OnnxError, outputExists } from "./errors";
import { isExternal, openRegularFile, readAt, readAtAsync } from "./external";
import { allTensors, forEachGraph } from "./graph";
import { makeValueInfo } from "./proto";
import { inferModelShapes } from "./shape-infer";
import { describeNonOnnx, locateWireError, validateModel } from "./validate";
import { readTensor, type TensorValue } from "./tensor";
import { writeModelFiles, type SaveOptions } from "./writer";

export type { SaveOptions };

export interface FromBytesOptions {
  /** The file the bytes came from: used in messages, for external data, and to refuse saving over it. */
  path?: string;
  /** Folder external data is read from; defaults to the folder of `path`. */
  dir?: string;
  /** Skip the structural checks (for tools that must open broken models). Default false. */
  skipValidation?: boolean;
}

export class Model {
  private constructor(
    public proto: ModelProto,
    /** Absolute path of the file this model was loaded from, if any. */
    readonly path: string | undefined,
    /** Folder external data is resolved against. */
    readonly dir: string | undefined,
  ) {}

  static async load(file: string, options: Omit<FromBytesOptions, "path"> = {}): Promise<Model> {
    const { fd, size } = openModelFile(file);
    const bytes = new Uint8Array(size);
    try {
      await readAtAsync(fd, bytes, 0, `${file}: cannot read the model file`);
    } catch (e) {
      throw readError(e, file);
    } finally {
      closeSync(fd);
    }
    return Model.fromBytes(bytes, { ...options, path: file });
  }

  static loadSync(file: string, options: Omit<FromBytesOptions, "path"> = {}): Model {
    const { fd, size } = openModelFile(file);
    const bytes = new Uint8Array(size);
    try {
      readAt(fd, bytes, 0, `${file}: cannot read the model file`);
    } catch (e) {
      throw readError(e, file);
    } finally {
      closeSync(fd);
    }
    return Model.fromBytes(bytes, { ...options, path: file });
  }

  /** Decodes ONNX bytes. The tensors' raw_data are views of `bytes` (no copy): do not reuse the buffer. */
  static fromBytes(bytes: Uint8Array, options: FromBytesOptions = {}): Model {
    const file = options.path ? path.resolve(options.path) : undefined;
    const label = options.path ?? "<bytes>";
    const what = describeNonOnnx(bytes);
    if (what) throw new OnnxError(what, label);
    let proto: ModelProto;
    try {
      proto = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
    } catch (e) {
      const where = locateWireError(bytes);
      throw new OnnxError(
        `not a valid ONNX file: ${where ?? `protobuf decoding failed (${(e as Error).message})`}; the file is truncated or corrupted`,
        label,
      );
    }
    const dir = options.dir ?? (file ? path.dirname(file) : undefined);
    if (!options.skipValidation) validateModel(proto, label, bytes.byteLength, dir);
    return new Model(proto, file, dir);
  }

  /** Wraps a ModelProto built in code. `dir` is only needed if it references external data. */
  static fromProto(proto: ModelProto, dir?: string): Model {
    return new Model(proto, undefined, dir);
  }

  get graph(): GraphProto {
    if (!this.proto.graph) throw new OnnxError("the model has no graph", this.path);
    return this.proto.graph;
  }

  /** Encoded bytes. External tensors stay external (use save() to produce a self-contained file). */
  toBytes(): Uint8Array {
    return encodeModel(this.proto);
  }

  /** Bytes the model takes saved: its encoded protobuf and the data of tensors stored in external files. */
  fileBytes(): number {
    let external = 0;
    for (const t of allTensors(this.proto)) if (isExternal(t)) external += storageBytes(t.dataType, elementCount(t.dims, `tensor "${t.name}"`));
    return this.toBytes().length + external;
  }

  /** Saves atomically. Refuses to write over the file this model was loaded from, or any file unless overwrite. */
  async save(file: string, options: SaveOptions = {}): Promise<void> {
    this.saveSync(file, options);
  }

  saveSync(file: string, options: SaveOptions = {}): void {
    const target = path.resolve(file);
    if (this.path && target === this.path) {
      throw new OnnxError("refusing to write over the file this model was loaded from: save to a new path", file);
    }
    if (existsSync(target) && !options.overwrite) throw outputExists(file);
    writeModelFiles(this.proto, target, this.dir, options);
  }

  /** A deep copy that shares nothing mutable with this one (same source path and folder). */
  clone(): Model {
    return new Model(cloneMessage(ModelProtoSchema, this.proto), this.path, this.dir);
  }

  /**
   * A clone whose graphs (bodies included) hold this model's initializer TensorProto objects themselves, in arrays of
   * their own: for a caller that adds, removes and replaces initializers but never changes one in place, and clones
   * the same model many times (the low-bit passes convert it once per step they measure: copying every weight's bytes
   * each time took 11 of ppocr-v3-rec-en's 84 s).
   */
  cloneSharingInitializers(): Model {
    const graphs: GraphProto[] = [];
    forEachGraph(this.graph, (g) => graphs.push(g));
    const held = graphs.map((g) => g.initializer);
    let copy: ModelProto;
    try {
      for (const g of graphs) g.initializer = [];
      copy = cloneMessage(ModelProtoSchema, this.proto);
    } finally {
      graphs.forEach((g, i) => (g.initializer = held[i]!));
    }
    let i = 0;
    forEachGraph(copy.graph!, (g) => (g.initializer = [...held[i++]!]));
    return new Model(copy, this.path, this.dir);
  }

  /**
   * A copy whose graph outputs are `outputs` (tensors of the main graph as outputInfos declares them), in that order,
   * sharing this model's initializers (cloneSharingInitializers): for running, e.g. to compare the logits a final
   * Softmax reads. This model when they are its outputs already.
   */
  withOutputs(outputs: readonly ValueInfoProto[]): Model {
    if (outputs.map((o) => o.name).join("\0") === this.graph.output.map((o) => o.name).join("\0")) return this;
    const copy = this.cloneSharingInitializers();
    copy.graph.output = [...outputs];
    return copy;
  }

  /**
   * `tensors` of the main graph as graph outputs would declare them: as the graph declares them, else with their
   * inferred element type (a float16 model's logits are float16), float32 where inference cannot tell. A converted
   * model keeps its tensors' names and types, so the float model's declarations serve its conversions (whose
   * contrib ops inference does not know).
   */
  outputInfos(tensors: readonly string[]): ValueInfoProto[] {
    const declared = new Map([...this.graph.input, ...this.graph.valueInfo, ...this.graph.output].map((o) => [o.name, o]));
    let inferred: ReturnType<typeof inferModelShapes> | undefined;
    const typeOf = (t: string) => (inferred ??= inferModelShapes(this.proto)).tensors.get(t)?.elemType ?? DataType.FLOAT;
    return tensors.map((t) => {
      const d = declared.get(t);
      return d?.type?.value.case === "tensorType" && d.type.value.value.elemType ? d : makeValueInfo(t, typeOf(t));
    });
  }

  /** The imported opset version for a domain ("" = ai.onnx), or undefined when not imported. */
  opset(domain = ""): number | undefined {
    const d = domain === "ai.onnx" ? "" : domain;
    const entry = this.proto.opsetImport.find((o) => (o.domain === "ai.onnx" ? "" : o.domain) === d);
    return entry ? Number(entry.version) : undefined;
  }

  setOpset(version: number, domain = ""): void {
    const d = domain === "ai.onnx" ? "" : domain;
    const entry = this.proto.opsetImport.find((o) => (o.domain === "ai.onnx" ? "" : o.domain) === d);
    if (entry) entry.version = BigInt(version);
    else this.proto.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: d, version: BigInt(version) }));
  }

  /** Decodes a tensor of this model, reading external data from the model's folder. */
  readTensor(t: TensorProto): TensorValue {
    return readTensor(t, this.dir);
  }

  hasExternalData(): boolean {
    return allTensors(this.proto).some(isExternal);
  }

  /** The distinct external data files the model refers to (relative locations). */
  externalLocations(): string[] {
    const locs = new Set<string>();
    for (const t of allTensors(this.proto)) {
      if (!isExternal(t)) continue;
      const loc = t.externalData.find((e) => e.key === "location")?.value;
      if (loc) locs.add(loc);
    }
    return [...locs];
  }
}

/** A failed read of a model file, as an OnnxError that names the file (a short read already is one). */
const readError = (e: unknown, file: string): Error =>
  e instanceof OnnxError ? e : new OnnxError(`cannot read the model file: ${(e as Error).message}`, file);

/** Protobuf cannot decode a message of 2 GiB or more: bigger models keep their weights in external data. */
const PROTOBUF_MAX_BYTES = 2 ** 31 - 1;

/**
 * Opens a model file for reading: a regular file (a FIFO would block, /dev/zero never ends, a folder is no model)
 * under protobuf's 2 GiB limit. The caller closes the fd.
 */
function openModelFile(file: string): { fd: number; size: number } {
  let opened: { fd: number; size: number };
  try {
    opened = openRegularFile(file, (kind) => new OnnxError(`this is ${kind}, not a model file: give the path of an .onnx file`, file));
  } catch (e) {
    if (e instanceof OnnxError) throw e;
    throw new OnnxError(`cannot read the model file: ${(e as Error).message}`, file);
  }
  if (opened.size > PROTOBUF_MAX_BYTES) {
    closeSync(opened.fd);
    throw new OnnxError(
      `the file is ${opened.size} bytes, over protobuf's 2 GiB limit for one ONNX file, so it cannot be a valid model: ` +
        `a model this large must keep its weights in an external data file (onnx.save_model(..., save_as_external_data=True))`,
      file,
    );
  }
  return opened;
}

export async function loadModel(file: string): Promise<Model> {
  return Model.load(file);
}
