// ONNX Runtime's Python quantizer (bench/peer/ort_quantize.py inside the chroot from setup-chroot.sh) on one model:
// the one way bench/peer/compare.ts (fixtures) and bench/corpus/peer.ts (real models) run it.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, statSync } from "node:fs";
import path from "node:path";

/** One config's result, as ort_quantize.py prints it (paths made absolute here). */
export interface OrtRecord {
  config: string;
  file: string;
  log: string;
  ok: boolean;
  wallSeconds: number;
  quantSeconds?: number;
  peakRssBytes: number;
  error?: string;
  notes?: string[];
  /** Q/DQ, DynamicQuantizeLinear, *Integer and QLinear* nodes in the written file, subgraphs included. */
  quantizedOps?: number;
  /** int8/uint8 weight initializers ORT wrote (its `*_quantized`); 0 = every weight stayed float. */
  quantizedWeights?: number;
}

export interface OrtRun {
  /** The model to quantize; copied into `work` unless it is there already (the chroot sees only `work`). */
  model: string;
  /** An .npz (copied into `work`) or a `--calib` folder that must already lie inside `work`. */
  calib: string;
  /** Folder bind-mounted into the chroot; ORT's files and logs are written here. */
  work: string;
  /** Comma-separated config names (`ort_quantize.py --list`), or "all". */
  configs: string;
  /** Seconds per config; 0 = no limit. */
  timeoutS?: number;
}

const HERE = __dirname;

/** Runs ort_quantize.py in the chroot; throws only when the chroot or the script itself fails, not a config. */
export function runOrtQuantizer(o: OrtRun): OrtRecord[] {
  const work = path.resolve(o.work);
  const inWork = (f: string) => path.dirname(path.resolve(f)) === work;
  const folder = statSync(o.calib).isDirectory();
  // Checked before anything is copied: a refused run leaves `work` as it was.
  if (folder && !path.resolve(o.calib).startsWith(work + path.sep)) throw new Error(`${o.calib}: a calibration folder must lie inside the work folder ${work} (the chroot sees only that)`);
  const calib = folder ? path.relative(work, path.resolve(o.calib)) : path.basename(o.calib);
  if (!folder && !inWork(o.calib)) copyFileSync(o.calib, path.join(work, calib));
  if (!inWork(o.model)) copyFileSync(o.model, path.join(work, path.basename(o.model)));
  copyFileSync(path.join(HERE, "ort_quantize.py"), path.join(work, "ort_quantize.py"));
  const args = [work, "python3", "ort_quantize.py", "--model", path.basename(o.model), "--calib", calib, "--out-dir", ".", "--configs", o.configs];
  if (o.timeoutS) args.push("--timeout", String(o.timeoutS));
  const configs = o.configs === "all" ? 50 : o.configs.split(",").length;
  const r = spawnSync(path.join(HERE, "run-in-chroot.sh"), args, {
    encoding: "utf8",
    maxBuffer: 64 << 20,
    // Each config has its own limit inside; this one only catches a hung chroot.
    timeout: o.timeoutS ? (o.timeoutS + 30) * configs * 1000 : undefined,
  });
  if (r.status !== 0) throw new Error(`ONNX Runtime quantizer failed (exit ${r.status ?? r.signal}): ${(r.stderr || String(r.error ?? "")).trim()}`);
  return r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as OrtRecord)
    .map((rec) => ({ ...rec, file: path.join(work, rec.file), log: path.join(work, rec.log) }));
}

/** Whether the chroot is built; the reason to print when it is not. */
export function chrootProblem(): string | undefined {
  const root = process.env.PTQ_PEER_CHROOT || path.join(process.env.HOME ?? "/root", ".cache", "ptq-studio-peer", "trixie");
  if (existsSync(path.join(root, ".ptq-debootstrap-done")) && existsSync(path.join(root, "usr/lib/python3/dist-packages/onnxruntime/quantization"))) return undefined;
  return `no ONNX Runtime chroot at ${root}: run bench/peer/setup-chroot.sh first (needs root)`;
}
