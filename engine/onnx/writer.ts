// Writing a model to disk: atomically (temp files + rename, so a crash never leaves half a model) and with
// external data when asked or when the tensors would push the file past protobuf's 2 GB limit. The data file is
// part of the output: it is not replaced without overwrite, and a reader never pairs a model with another save's
// data: when the data file's name is taken, the new data goes under a fresh name that the new model references,
// the model is renamed into place last, and only then is the old model's data file removed. A failed save
// removes everything it wrote.
import { closeSync, fsyncSync, lstatSync, openSync, realpathSync, renameSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import {
  ModelProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  type ModelProto,
  type TensorProto,
} from "onnx-buf";
import { create, fromBinary } from "@bufbuild/protobuf";
import { encodeModelPieces } from "./encode";
import { trackTemp, untrackTemp } from "./tempdir";
import { OnnxError, outputExists } from "./errors";
import { IO_CHUNK, externalRef, isExternal, isInside, normalLocation, openRegularFile, readAt, readExternalBytes } from "./external";
import { allTensors } from "./graph";
import { tensorRawBytes, tensorStorage } from "./tensor";

export interface ExternalDataOptions {
  /**
   * Data file name, relative to the model's folder. Default: "<model file name>.data". When that file exists
   * (and overwrite is set) the data goes to a fresh name ("m.onnx.1.data") that the model references.
   */
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
/** An existing output bigger than this is not read to find its data file (ours keep their weights outside). */
const OLD_MODEL_SCAN_BYTES = 256 * 2 ** 20;

function tempName(target: string): string {
  return `${target}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
}

function exists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/** Writes all of `bytes` at `position`, in IO_CHUNK pieces (one writeSync call takes under 2 GiB). */
function writeAt(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.byteLength; ) {
    done += writeSync(fd, bytes, done, Math.min(IO_CHUNK, bytes.byteLength - done), position + done);
  }
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

/** Real paths of the regular files inside `dir` that `tensors` keep their data in (unreadable ones left out). */
function dataFiles(tensors: TensorProto[], dir: string | undefined): Map<string, string> {
  const out = new Map<string, string>(); // real path → location
  if (dir === undefined) return out;
  for (const t of tensors) {
    if (!isExternal(t)) continue;
    try {
      const location = externalRef(t).location;
      const real = realpathSync(path.join(dir, location));
      if (isInside(realpathSync(dir), real)) out.set(real, location);
    } catch {
      // a broken reference names no file to keep or remove
    }
  }
  return out;
}

/** The data files an existing model file refers to; none when it is not a readable, modest regular file. */
function dataFilesOfFile(file: string): Map<string, string> {
  try {
    if (!lstatSync(file).isFile()) return new Map();
    const { fd, size } = openRegularFile(file, () => new Error("not a file"));
    const bytes = new Uint8Array(Math.min(size, OLD_MODEL_SCAN_BYTES + 1));
    try {
      if (size > OLD_MODEL_SCAN_BYTES) return new Map();
      readAt(fd, bytes, 0, file);
    } finally {
      closeSync(fd);
    }
    return dataFiles(allTensors(fromBinary(ModelProtoSchema, bytes)), path.dirname(file));
  } catch {
    return new Map();
  }
}

/** "a/m.onnx.data" → "a/m.onnx.<n>.data". */
function freshLocation(location: string, n: number): string {
  const p = path.posix.parse(location);
  return path.posix.join(p.dir, `${p.name}.${n}${p.ext}`);
}

/** True for `location` itself and its fresh variants: the names this writer gives the data of one output. */
function isOwnDataName(candidate: string, location: string): boolean {
  if (candidate === location) return true;
  const p = path.posix.parse(location);
  const c = path.posix.parse(candidate);
  return c.dir === p.dir && c.ext === p.ext && c.name.startsWith(`${p.name}.`) && /^\d+$/.test(c.name.slice(p.name.length + 1));
}

/**
 * The requested data location (checked: relative, inside the output's folder, symbolic links resolved) and the
 * name to write the data under: the location itself when free, else (with overwrite) a fresh one.
 */
function dataLocation(target: string, given: string, overwrite: boolean, reads: Map<string, string>): [string, string] {
  const location = normalLocation(given);
  if (location === undefined) {
    throw new OnnxError(
      `externalData.location "${given}" must be a relative path inside the output's folder, like "${path.basename(target)}.data"`,
      target,
    );
  }
  const dir = path.dirname(target);
  const file = path.join(dir, location);
  let realDir: string;
  let realDataDir: string;
  try {
    realDir = realpathSync(dir);
    realDataDir = realpathSync(path.dirname(file));
  } catch {
    throw new OnnxError(`the folder of externalData.location "${given}" does not exist: create it first`, target);
  }
  if (!isInside(realDir, realDataDir)) {
    throw new OnnxError(
      `externalData.location "${given}" leads outside the output's folder (through a symbolic link, to ${realDataDir}): choose a location inside it`,
      target,
    );
  }
  if (!exists(file)) return [location, location];
  const real = (() => {
    try {
      return realpathSync(file);
    } catch {
      return undefined;
    }
  })();
  if (real !== undefined && reads.has(real)) {
    throw new OnnxError(
      `saving would overwrite "${location}", the external data file this model reads from; choose another externalData.location`,
      target,
    );
  }
  if (!overwrite) throw outputExists(file, "the external data file of this output");
  for (let n = 1; ; n++) {
    const fresh = freshLocation(location, n);
    if (!exists(path.join(dir, fresh))) return [location, fresh];
  }
}

/**
 * Encodes `proto` into `target` (and its external data file). Tensors are switched to their on-disk form only for
 * the encoding and restored afterwards, so the in-memory model is unchanged.
 */
export function writeModelFiles(proto: ModelProto, target: string, sourceDir: string | undefined, options: SaveOptions): void {
  if (exists(target) && lstatSync(target).isDirectory()) {
    throw new OnnxError("this is a directory: give a file name for the model", target);
  }
  const tensors = allTensors(proto);
  const total = tensors.reduce((s, t) => s + byteSize(t), 0);
  const wantExternal = options.externalData !== undefined && options.externalData !== false;
  const ext: ExternalDataOptions = typeof options.externalData === "object" ? options.externalData : {};
  const external = wantExternal || total > PROTOBUF_LIMIT;
  const dir = path.dirname(target);
  const threshold = ext.threshold ?? 1024;
  const reads = dataFiles(tensors, sourceDir);
  const [location, dataName] = external
    ? dataLocation(target, ext.location ?? `${path.basename(target)}.data`, options.overwrite === true, reads)
    : [`${path.basename(target)}.data`, undefined];
  const old = options.overwrite ? dataFilesOfFile(target) : new Map<string, string>();

  const saved: Saved[] = [];
  const keep = (t: TensorProto) =>
    saved.push({ t, rawData: t.rawData, dataLocation: t.dataLocation, externalData: t.externalData });
  const written: string[] = []; // removed unless the save completes
  let done = false;
  try {
    let dataTmp: string | undefined;
    if (dataName !== undefined) {
      dataTmp = tempName(path.join(dir, dataName));
      const fd = openSync(dataTmp, "wx");
      written.push(dataTmp);
      trackTemp(dataTmp);
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
          writeAt(fd, bytes, offset);
          keep(t);
          t.rawData = new Uint8Array(0) as TensorProto["rawData"];
          t.dataLocation = TensorProto_DataLocation.EXTERNAL;
          t.externalData = [
            create(StringStringEntryProtoSchema, { key: "location", value: dataName }),
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
    const modelTmp = tempName(target);
    const fd = openSync(modelTmp, "wx");
    written.push(modelTmp);
    trackTemp(modelTmp);
    try {
      let at = 0;
      for (const p of encodeModelPieces(proto)) {
        writeAt(fd, p, at);
        at += p.byteLength;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // The data goes in first under a name no existing model references, then the model that references it.
    if (dataTmp !== undefined) {
      const dataFile = path.join(dir, dataName!);
      renameSync(dataTmp, dataFile);
      untrackTemp(dataTmp);
      written[0] = dataFile;
      trackTemp(dataFile); // until the model that references it is in place
    }
    renameSync(modelTmp, target);
    done = true;
  } finally {
    if (!done) for (const f of written) rmSync(f, { force: true });
    // An interrupted run (the CLI's signal handlers) removes what is still registered; a finished save keeps all.
    for (const f of written) untrackTemp(f);
    for (const s of saved) {
      s.t.rawData = s.rawData;
      s.t.dataLocation = s.dataLocation;
      s.t.externalData = s.externalData;
    }
  }
  removeOldData(old, location, dataName, reads, target);
}

/**
 * Removes the data files the replaced model used that nothing uses now: regular files in the output folder,
 * named as this output's data (the location asked for, "m.onnx.data", or a fresh variant of either), that neither the new model nor the model being
 * saved (its source) reads. Best effort: a file that cannot be removed stays.
 */
function removeOldData(old: Map<string, string>, location: string, dataName: string | undefined, reads: Map<string, string>, target: string): void {
  const dir = path.dirname(target);
  for (const [real, loc] of old) {
    const ours = isOwnDataName(loc, location) || isOwnDataName(loc, `${path.basename(target)}.data`);
    if (loc === dataName || reads.has(real) || !ours) continue;
    try {
      const file = path.join(dir, loc);
      if (lstatSync(file).isFile() && realpathSync(file) === real && real !== realpathSync(target)) rmSync(file);
    } catch {
      // already gone, or not ours to remove
    }
  }
}
