// Writing a model to disk: atomically (temp file + rename, so a crash never leaves half a model) and with
// external data when asked or when the tensors would push the file past protobuf's 2 GB limit.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import {
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  type ModelProto,
  type TensorProto,
} from "onnx-buf";
import { create } from "@bufbuild/protobuf";
import { encodeModelPieces } from "./encode";
import { OnnxError } from "./errors";
import { externalRef, isExternal, readExternalBytes } from "./external";
import { allTensors } from "./graph";
import { tensorRawBytes, tensorStorage } from "./tensor";

export interface ExternalDataOptions {
  /** Data file name, relative to the model's folder. Default: "<model file name>.data". */
  location?: string;
  /** Tensors smaller than this many bytes stay inside the model. Default 1024. */
  threshold?: number;
}

export interface SaveOptions {
  overwrite?: boolean;
  /** true or options: write large tensors to a side file. Default: only when the model would exceed 2 GB. */
  externalData?: boolean | ExternalDataOptions;
}

/** Protobuf messages cannot exceed 2 GiB; leave room for the graph itself. */
const PROTOBUF_LIMIT = 2 ** 31 - 64 * 2 ** 20;
const ALIGN = 4096;

function tempName(target: string): string {
  return `${target}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}

function writeFileAtomic(target: string, pieces: Uint8Array[]): void {
  const tmp = tempName(target);
  const fd = openSync(tmp, "wx");
  try {
    let at = 0;
    for (const p of pieces) {
      writeAll(fd, p, at);
      at += p.byteLength;
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, target);
}

interface Saved {
  t: TensorProto;
  rawData: TensorProto["rawData"];
  dataLocation: TensorProto["dataLocation"];
  externalData: TensorProto["externalData"];
}

function byteSize(t: TensorProto): number {
  const s = tensorStorage(t);
  if (s === "raw") return t.rawData.byteLength;
  if (s === "external") return externalRef(t).length ?? 0;
  return 0; // typed fields: small in practice, stay inline
}

/**
 * Encodes `proto` into `target` (and its external data file). Tensors are switched to their on-disk form only for
 * the encoding and restored afterwards, so the in-memory model is unchanged.
 */
export function writeModelFiles(proto: ModelProto, target: string, sourceDir: string | undefined, options: SaveOptions): void {
  const tensors = allTensors(proto);
  const total = tensors.reduce((s, t) => s + byteSize(t), 0);
  const wantExternal = options.externalData !== undefined && options.externalData !== false;
  const ext: ExternalDataOptions = typeof options.externalData === "object" ? options.externalData : {};
  const external = wantExternal || total > PROTOBUF_LIMIT;
  const dir = path.dirname(target);
  const location = ext.location ?? `${path.basename(target)}.data`;
  const threshold = ext.threshold ?? 1024;

  if (external && sourceDir && path.resolve(sourceDir) === dir) {
    for (const t of tensors) {
      if (isExternal(t) && externalRef(t).location === path.posix.normalize(location)) {
        throw new OnnxError(
          `saving would overwrite "${location}", the external data file this model reads from; choose another externalData.location`,
          target,
        );
      }
    }
  }

  const saved: Saved[] = [];
  const keep = (t: TensorProto) =>
    saved.push({ t, rawData: t.rawData, dataLocation: t.dataLocation, externalData: t.externalData });
  let dataTmp: string | undefined;
  try {
    if (external) {
      dataTmp = tempName(path.join(dir, location));
      const fd = openSync(dataTmp, "wx");
      try {
        let offset = 0;
        for (const t of tensors) {
          if (t.dataType === 8 /* STRING */ || byteSize(t) < threshold) {
            if (isExternal(t)) {
              keep(t);
              t.rawData = readExternalBytes(t, sourceDir) as TensorProto["rawData"];
              t.dataLocation = TensorProto_DataLocation.DEFAULT;
              t.externalData = [];
            }
            continue;
          }
          const bytes = tensorRawBytes(t, sourceDir);
          writeAll(fd, bytes, offset);
          keep(t);
          t.rawData = new Uint8Array(0) as TensorProto["rawData"];
          t.dataLocation = TensorProto_DataLocation.EXTERNAL;
          t.externalData = [
            create(StringStringEntryProtoSchema, { key: "location", value: location }),
            create(StringStringEntryProtoSchema, { key: "offset", value: String(offset) }),
            create(StringStringEntryProtoSchema, { key: "length", value: String(bytes.byteLength) }),
          ];
          offset = Math.ceil((offset + bytes.byteLength) / ALIGN) * ALIGN;
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } else {
      for (const t of tensors) {
        if (!isExternal(t)) continue;
        const bytes = readExternalBytes(t, sourceDir);
        keep(t);
        t.rawData = bytes as TensorProto["rawData"];
        t.dataLocation = TensorProto_DataLocation.DEFAULT;
        t.externalData = [];
      }
    }
    // Written piece by piece: the weights go from the tensors to the file without an in-memory copy.
    const pieces = encodeModelPieces(proto);
    if (dataTmp) renameSync(dataTmp, path.join(dir, location));
    dataTmp = undefined;
    writeFileAtomic(target, pieces);
  } finally {
    if (dataTmp) rmSync(dataTmp, { force: true });
    for (const s of saved) {
      s.t.rawData = s.rawData;
      s.t.dataLocation = s.dataLocation;
      s.t.externalData = s.externalData;
    }
  }
}
