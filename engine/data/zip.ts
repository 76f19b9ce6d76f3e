// A minimal ZIP reader for .npz files (what numpy.savez / savez_compressed write): the central directory, stored
// and deflated entries (node's zlib), ZIP64 sizes and offsets. Entries are read one at a time from the file
// descriptor, so only the entry being read is in memory. Sizes in headers are checked against the file, and what
// entries inflate to against the header and the npzBytes limit while inflating: headers can lie.

import { kMaxLength } from "node:buffer";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { inflateRawSync } from "node:zlib";
import { DataError } from "./feeds";
import { formatAmount, limitOf, overLimit, type Limits } from "../onnx/limits";

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** Reads a zip's entry list and lets the caller read entries by name; close() when done. */
export class ZipFile {
  readonly entries: ZipEntry[] = [];
  private readonly fd: number;
  private readonly fileSize: number;
  /** Decompressed bytes this archive may still give (the npzBytes limit, less what read() has returned). */
  private budget: number;
  private readonly maxBytes: number;

  constructor(
    readonly file: string,
    limits?: Limits,
  ) {
    this.maxBytes = this.budget = limitOf("npzBytes", limits);
    this.fd = openSync(file, "r");
    try {
      this.fileSize = fstatSync(this.fd).size;
      this.readDirectory();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  private readDirectory(): void {
    const size = this.fileSize;
    const tailLen = Math.min(size, 22 + 65535 + 20);
    const tail = readAt(this.fd, size - tailLen, tailLen);
    let at = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD) {
        at = i;
        break;
      }
    }
    if (at < 0) throw new DataError(`${this.file}: not a zip/.npz file (no end of central directory)`);
    let count = tail.readUInt16LE(at + 10);
    let dirSize = tail.readUInt32LE(at + 12);
    let dirOffset = tail.readUInt32LE(at + 16);
    if ((dirOffset === 0xffffffff || count === 0xffff) && at >= 20 && tail.readUInt32LE(at - 20) === EOCD64_LOCATOR) {
      const eocd64 = readAt(this.fd, Number(tail.readBigUInt64LE(at - 20 + 8)), 56);
      count = Number(eocd64.readBigUInt64LE(32));
      dirSize = Number(eocd64.readBigUInt64LE(40));
      dirOffset = Number(eocd64.readBigUInt64LE(48));
    }
    if (dirOffset + dirSize > size) throw new DataError(`${this.file}: corrupt zip (its central directory lies past the end of the file)`);
    const dir = readAt(this.fd, dirOffset, dirSize);
    let p = 0;
    for (let k = 0; k < count; k++) {
      if (p + 46 > dir.length || dir.readUInt32LE(p) !== CENTRAL) {
        throw new DataError(`${this.file}: corrupt zip central directory (entry ${k})`);
      }
      const nameLen = dir.readUInt16LE(p + 28);
      const extraLen = dir.readUInt16LE(p + 30);
      const commentLen = dir.readUInt16LE(p + 32);
      const e: ZipEntry = {
        method: dir.readUInt16LE(p + 10),
        compressedSize: dir.readUInt32LE(p + 20),
        size: dir.readUInt32LE(p + 24),
        localHeaderOffset: dir.readUInt32LE(p + 42),
        name: dir.toString("utf8", p + 46, p + 46 + nameLen),
      };
      this.applyZip64(e, dir.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen));
      this.entries.push(e);
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  /** ZIP64 extra field: the 64-bit values appear in order for each 32-bit field that was saturated. */
  private applyZip64(e: ZipEntry, extra: Buffer): void {
    for (let q = 0; q + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(q);
      const len = extra.readUInt16LE(q + 2);
      if (id === 0x0001) {
        let r = q + 4;
        const next = () => {
          const v = Number(extra.readBigUInt64LE(r));
          r += 8;
          return v;
        };
        if (e.size === 0xffffffff) e.size = next();
        if (e.compressedSize === 0xffffffff) e.compressedSize = next();
        if (e.localHeaderOffset === 0xffffffff) e.localHeaderOffset = next();
      }
      q += 4 + len;
    }
  }

  /** The uncompressed bytes of one entry; refused past its declared size or the archive's npzBytes limit. */
  read(e: ZipEntry): Uint8Array {
    const local = readAt(this.fd, e.localHeaderOffset, 30);
    if (local.length < 30 || local.readUInt32LE(0) !== LOCAL) {
      throw new DataError(`${this.file}: corrupt zip entry "${e.name}"`);
    }
    const start = e.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (start + e.compressedSize > this.fileSize) {
      throw new DataError(`${this.file}: zip entry "${e.name}" is truncated (${e.compressedSize} bytes declared past the end of the file)`);
    }
    if (e.size > this.budget) {
      const used = this.maxBytes - this.budget;
      const what = used === 0 ? "declares that it inflates to" : `declares ${e.size} bytes, bringing the archive to`;
      throw overLimit("npzBytes", `${this.file}: entry "${e.name}" ${what}`, used + e.size, this.maxBytes);
    }
    const raw = readAt(this.fd, start, e.compressedSize);
    if (raw.length !== e.compressedSize) throw new DataError(`${this.file}: zip entry "${e.name}" is truncated`);
    let out: Uint8Array;
    if (e.method === 0) out = raw;
    else if (e.method === 8) out = this.inflate(e, raw);
    else throw new DataError(`${this.file}: zip entry "${e.name}" uses compression method ${e.method}; only stored and deflate are supported`);
    if (out.length !== e.size) throw new DataError(`${this.file}: zip entry "${e.name}" has ${out.length} bytes, expected ${e.size}`);
    this.budget -= out.length;
    return out;
  }

  /** Inflates at most the declared size (within the budget, checked above): zlib stops there rather than after. */
  private inflate(e: ZipEntry, raw: Uint8Array): Uint8Array {
    try {
      return inflateRawSync(raw, { maxOutputLength: Math.min(kMaxLength, Math.max(1, e.size)) });
    } catch (err) {
      if ((err as { code?: string }).code !== "ERR_BUFFER_TOO_LARGE") {
        throw new DataError(`${this.file}: zip entry "${e.name}" cannot be inflated (${(err as Error).message})`);
      }
      throw new DataError(
        `${this.file}: zip entry "${e.name}" inflates to more than the ${formatAmount("npzBytes", e.size)} its header declares; the file is corrupt or hostile`,
      );
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
