// External data: tensors whose bytes live in a side file (key/value pairs location, offset, length), as large
// models store them. Locations are relative to the model's folder and may not leave it (ONNX's checker rule, and
// it keeps a crafted model from reading arbitrary files).
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import path from "node:path";
import { TensorProto_DataLocation, type TensorProto } from "onnx-buf";
import { OnnxError } from "./errors";

export interface ExternalRef {
  location: string;
  offset: number;
  /** Undefined means "to the end of the file". */
  length: number | undefined;
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === TensorProto_DataLocation.EXTERNAL;
}

/** The location/offset/length of an external tensor, validated. */
export function externalRef(t: TensorProto): ExternalRef {
  let location: string | undefined;
  let offset = 0;
  let length: number | undefined;
  for (const { key, value } of t.externalData) {
    if (key === "location") location = value;
    else if (key === "offset" || key === "length") {
      const n = Number(value);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
        throw new OnnxError(`tensor "${t.name}": external data ${key} "${value}" is not a non-negative integer`);
      }
      if (key === "offset") offset = n;
      else length = n;
    }
  }
  if (!location) throw new OnnxError(`tensor "${t.name}" is marked as external data but has no "location" entry`);
  const norm = path.posix.normalize(location.replace(/\\/g, "/"));
  if (path.isAbsolute(location) || norm.startsWith("../") || norm === "..") {
    throw new OnnxError(
      `tensor "${t.name}": external data location "${location}" must be a relative path inside the model's folder`,
    );
  }
  return { location: norm, offset, length };
}

/** Reads an external tensor's bytes from `baseDir` (the folder of the model file). */
export function readExternalBytes(t: TensorProto, baseDir: string | undefined): Uint8Array {
  const ref = externalRef(t);
  if (baseDir === undefined) {
    throw new OnnxError(
      `tensor "${t.name}" keeps its data in external file "${ref.location}", but the model was not loaded from a ` +
        `file: load it with Model.load(path) or pass the model's folder`,
    );
  }
  const file = path.join(baseDir, ref.location);
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    throw new OnnxError(
      `external data file "${ref.location}" for tensor "${t.name}" is missing: it must sit next to the model in ${baseDir}`,
    );
  }
  try {
    const size = fstatSync(fd).size;
    const length = ref.length ?? size - ref.offset;
    if (ref.offset + length > size || length < 0) {
      throw new OnnxError(
        `external data for tensor "${t.name}" (offset ${ref.offset}, length ${length}) runs past the end of ` +
          `"${ref.location}" (${size} bytes): the data file is truncated or belongs to another model`,
      );
    }
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, length - done, ref.offset + done);
      if (n <= 0) throw new OnnxError(`short read from "${file}" for tensor "${t.name}"`);
      done += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}
