// What every `ptq` command that writes checks about its output before the work starts (so a run of minutes does not
// end in "no such folder"), and how any command turns a failure into one line that names the file.
import { accessSync, constants, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { UsageError } from "./args";

export interface OutputCheck {
  /** The flag that named OUT, as the user typed it ("-o", "--html"): messages say what to change. */
  flag: string;
  /** Whether the user allowed replacing an existing OUT. */
  overwrite: boolean;
  /** The command's flag that allows it (default "--overwrite"). */
  overwriteFlag?: string;
  /** Files and folders the command reads: OUT may be none of them (nor a link to one). */
  inputs?: readonly (string | undefined)[];
  /** Files written beside OUT under OUT's name plus these suffixes (".data": a model's external data). */
  sideFiles?: readonly string[];
}

/** The path's stat, or undefined when there is nothing there to use (missing, or under a file: ENOTDIR). */
function stat(p: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

/** The same file: one path, or two names (a link, a hard link) for one inode. */
function sameFile(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true;
  const [sa, sb] = [stat(a), stat(b)];
  return sa !== undefined && sb !== undefined && sa.dev === sb.dev && sa.ino === sb.ino;
}

/**
 * OUT can be written: its folder exists and is writable, OUT is not a folder, not one of the inputs, and neither
 * OUT nor its side files exist unless the user allowed replacing them. A UsageError (exit 2) says what to change.
 */
export function checkOutput(out: string, c: OutputCheck): void {
  const allow = c.overwriteFlag ?? "--overwrite";
  const st = stat(out);
  if (st?.isDirectory()) throw new UsageError(`${c.flag} ${out} is a folder: give a file name in it (e.g. ${path.join(out, "out" + path.extname(out || ".onnx"))})`);
  const dir = path.dirname(path.resolve(out));
  const ds = stat(dir);
  if (!ds) throw new UsageError(`${c.flag} ${out}: the folder ${dir} does not exist; create it or choose another ${c.flag}`);
  if (!ds.isDirectory()) throw new UsageError(`${c.flag} ${out}: ${dir} is not a folder; choose another ${c.flag}`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`${c.flag} ${out}: cannot write in ${dir} (permission denied); choose another ${c.flag}`);
  }
  for (const input of c.inputs ?? []) {
    if (input !== undefined && sameFile(out, input)) throw new UsageError(`${c.flag} ${out} is the input ${input}: inputs are never written over; choose another ${c.flag}`);
  }
  if (c.overwrite) return;
  if (st) throw new UsageError(`${c.flag} ${out} exists; pass ${allow} to replace it`);
  for (const suffix of c.sideFiles ?? []) {
    if (stat(out + suffix)) throw new UsageError(`${out}${suffix} exists (it would be replaced along with ${out}); pass ${allow} to replace it, or choose another ${c.flag}`);
  }
}

/** A folder a command writes several files into (created if missing): not a file, and writable once it exists. */
export function checkOutputFolder(dir: string, flag: string): void {
  const st = stat(dir);
  if (st && !st.isDirectory()) throw new UsageError(`${flag} ${dir} is a file: give a folder`);
  let existing = path.resolve(dir);
  while (!stat(existing)) existing = path.dirname(existing);
  if (!stat(existing)!.isDirectory()) throw new UsageError(`${flag} ${dir}: ${existing} is not a folder; choose another ${flag}`);
  try {
    accessSync(existing, constants.W_OK);
  } catch {
    throw new UsageError(`${flag} ${dir}: cannot write in ${existing} (permission denied); choose another ${flag}`);
  }
}

interface SystemError extends Error {
  code?: string;
  syscall?: string;
  path?: string;
  dest?: string;
}

/**
 * One line for a failure: Node's system errors (ENOENT, ENOSPC, …) name the file and say what to do; `output` is
 * the file being written, for errors that come from a write on an open descriptor and so carry no path.
 */
export function errorMessage(e: unknown, output?: { path: string; flag: string }): string {
  if (!(e instanceof Error)) return String(e);
  const s = e as SystemError;
  if (typeof s.code !== "string" || !/^E[A-Z]+$/.test(s.code)) return e.message;
  const file = s.path ?? output?.path;
  const where = file ? ` ${file}` : "";
  const other = output ? `choose another ${output.flag}` : "choose another location";
  const reading = s.syscall === "open" || s.syscall === "stat" || s.syscall === "scandir" || s.syscall === "lstat";
  switch (s.code) {
    case "ENOSPC":
      return `no space left on the device writing${where}: free space or ${other}`;
    case "EDQUOT":
      return `disk quota exceeded writing${where}: free space or ${other}`;
    case "ENOENT":
      return `no such file or folder:${where}${s.dest ? ` (moving it to ${s.dest})` : ""}; check the path`;
    case "EACCES":
    case "EPERM":
      return `permission denied ${reading ? "opening" : "writing"}${where}; check its permissions or ${other}`;
    case "EROFS":
      return `read-only file system:${where}; ${other}`;
    case "EISDIR":
      return `${file ?? "the path"} is a folder where a file was expected`;
    case "ENOTDIR":
      return `a part of ${file ?? "the path"} is not a folder; check the path`;
    case "EMFILE":
    case "ENFILE":
      return `too many open files${where ? ` (opening${where})` : ""}: close other programs or raise the limit (ulimit -n)`;
    default:
      return file && !e.message.includes(file) ? `${e.message} (${file})` : e.message;
  }
}

/** Writes through a temp file in the same folder and renames, so a reader never sees half a file. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}
