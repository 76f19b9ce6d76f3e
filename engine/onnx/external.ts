// External data: tensors whose bytes live in a side file (key/value pairs location, offset, length), as large
// models store them. Locations are relative to the model's folder and may not leave it (ONNX's checker rule, and
// it keeps a crafted model from reading arbitrary files): the real path (symbolic links resolved) must lie in the
// model's real folder and be a regular file, as onnxruntime requires. Validation and reading both go through
// openExternal, so what loads is what reads.
import { closeSync, constants, fstatSync, openSync, read, readSync, realpathSync, type Stats } from "node:fs";
import { promisify } from "node:util";
import path from "node:path";
import { TensorProto_DataLocation, type TensorProto } from "onnx-buf";
import { OnnxError } from "./errors";

export interface ExternalRef {
  location: string;
  offset: number;
  /** Undefined means "to the end of the file". */
  length: number | undefined;
}

/** Reads and writes go in pieces of at most this many bytes: one readSync/writeSync call takes under 2 GiB. */
export const IO_CHUNK = 2 ** 30;

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === TensorProto_DataLocation.EXTERNAL;
}

/**
 * A data file location, normalised to POSIX form, or undefined when it is absolute, empty, names the folder
 * itself or leaves it ("../x", "a/../../x").
 */
export function normalLocation(location: string): string | undefined {
  if (location.includes("\0") || path.isAbsolute(location) || path.win32.isAbsolute(location)) return undefined;
  const norm = path.posix.normalize(location.replace(/\\/g, "/"));
  if (norm === "." || norm === "./" || norm.endsWith("/") || norm === ".." || norm.startsWith("../")) return undefined;
  return norm;
}

/** True when `real` (a real path) is `realDir` or below it. */
export function isInside(realDir: string, real: string): boolean {
  const rel = path.relative(realDir, real);
  return rel === "" || (!path.isAbsolute(rel) && rel !== ".." && !rel.startsWith(`..${path.sep}`));
}

/** What a file that is not a regular file is, for messages. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a named pipe (FIFO)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * Opens a file for reading, refusing anything but a regular file. O_NONBLOCK keeps a FIFO from blocking the open
 * (it has no effect on regular files). `refuse` makes the error from what the file is. The caller closes the fd.
 */
export function openRegularFile(file: string, refuse: (kind: string) => Error): { fd: number; size: number } {
  const fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(fileKind(st));
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** One read that filling a buffer asks for: into `out` at `offset`, `length` bytes from file position `at`. */
type ReadStep = { offset: number; length: number; at: number };

/**
 * The reads that fill `out` from file position `position` in IO_CHUNK pieces, each told how many bytes came: the one
 * loop behind readAt and readAtAsync. `what` names the file and tensor for a short read.
 */
function* fillSteps(out: Uint8Array, position: number, what: string): Generator<ReadStep, void, number> {
  for (let done = 0; done < out.byteLength; ) {
    const n = yield { offset: done, length: Math.min(IO_CHUNK, out.byteLength - done), at: position + done };
    if (n <= 0) throw new OnnxError(`${what}: the file ended after ${done} of ${out.byteLength} bytes (it changed while being read?)`);
    done += n;
  }
}

/** Fills `out` from `fd` at `position`, in IO_CHUNK pieces. `what` names the file and tensor for a short read. */
export function readAt(fd: number, out: Uint8Array, position: number, what: string): void {
  const steps = fillSteps(out, position, what);
  for (let s = steps.next(); !s.done; ) s = steps.next(readSync(fd, out, s.value.offset, s.value.length, s.value.at));
}

/** readAt without blocking the event loop while the bytes come. */
export async function readAtAsync(fd: number, out: Uint8Array, position: number, what: string): Promise<void> {
  const steps = fillSteps(out, position, what);
  for (let s = steps.next(); !s.done; ) s = steps.next((await readAsync(fd, out, s.value.offset, s.value.length, s.value.at)).bytesRead);
}

const readAsync = promisify(read);

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
  const norm = normalLocation(location);
  if (norm === undefined) {
    throw new OnnxError(
      `tensor "${t.name}": external data location "${location}" must be a relative path inside the model's folder`,
    );
  }
  return { location: norm, offset, length };
}

/**
 * Opens `location` in `baseDir` (the model's folder) for reading: refuses locations whose real path leaves the
 * folder's real path (a symbolic link to /etc/passwd, a linked folder) and anything not a regular file (a FIFO would
 * block, a device never ends). `which` names the file in messages. The caller closes `fd`.
 */
function openInside(location: string, baseDir: string, which: string): { fd: number; size: number } {
  let real: string;
  let realDir: string;
  try {
    realDir = realpathSync(baseDir);
    real = realpathSync(path.join(baseDir, location));
  } catch {
    throw new OnnxError(`${which} is missing: it must sit in the model's folder ${baseDir}`);
  }
  if (!isInside(realDir, real)) {
    throw new OnnxError(
      `${which} leads outside the model's folder ${baseDir} (through a symbolic link, to ${real}): ` +
        `external data must be a file inside the model's folder; copy it there`,
    );
  }
  const refuse = (kind: string) =>
    new OnnxError(`${which} is ${kind}, not a regular file: external data must be a file of tensor bytes`);
  try {
    return openRegularFile(real, refuse);
  } catch (e) {
    if (e instanceof OnnxError) throw e;
    throw new OnnxError(`${which} cannot be opened: ${(e as Error).message}`);
  }
}

/** A whole external data file of a model in `baseDir` (what onnxruntime takes for a model given as bytes). */
export function readExternalFile(location: string, baseDir: string): Uint8Array {
  const norm = normalLocation(location);
  const which = `external data file "${location}"`;
  if (norm === undefined) throw new OnnxError(`${which} must be a relative path inside the model's folder`);
  const { fd, size } = openInside(norm, baseDir, which);
  try {
    const out = new Uint8Array(size);
    readAt(fd, out, 0, `reading ${which}`);
    return out;
  } finally {
    closeSync(fd);
  }
}

/** An open external data span: the file is a regular file inside the model's folder and holds the whole span. */
export interface ExternalSpan {
  fd: number;
  location: string;
  offset: number;
  length: number;
}

/**
 * Opens the data of external tensor `t` from `baseDir` (the model's folder) and checks its span lies within the
 * file. Refuses locations whose real path leaves the folder's real path (a symbolic link to /etc/passwd, a linked
 * folder) and anything not a regular file (a FIFO would block, a device never ends). The caller closes `fd`.
 */
export function openExternal(t: TensorProto, baseDir: string | undefined): ExternalSpan {
  const ref = externalRef(t);
  const which = `external data file "${ref.location}" for tensor "${t.name}"`;
  if (baseDir === undefined) {
    throw new OnnxError(
      `tensor "${t.name}" keeps its data in external file "${ref.location}", but the model was not loaded from a ` +
        `file: load it with Model.load(path) or pass the model's folder`,
    );
  }
  const { fd, size } = openInside(ref.location, baseDir, which);
  const length = ref.length ?? size - ref.offset;
  if (length < 0 || ref.offset + length > size) {
    closeSync(fd);
    throw new OnnxError(
      `external data for tensor "${t.name}" runs past the end of "${ref.location}" (${size} bytes) at offset ` +
        `${ref.offset} + length ${length}: the data file is truncated or belongs to another model`,
    );
  }
  return { fd, location: ref.location, offset: ref.offset, length };
}

/** Reads an external tensor's bytes from `baseDir` (the folder of the model file). */
export function readExternalBytes(t: TensorProto, baseDir: string | undefined): Uint8Array {
  const span = openExternal(t, baseDir);
  try {
    const out = new Uint8Array(span.length);
    readAt(span.fd, out, span.offset, `reading tensor "${t.name}" from "${span.location}"`);
    return out;
  } finally {
    closeSync(span.fd);
  }
}
