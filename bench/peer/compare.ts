// Peer comparison: our quantizer (`ptq quantize`, default settings) against ONNX Runtime's own Python quantizer
// (onnxruntime.quantization 1.21, run in the chroot from setup-chroot.sh) in its default settings and in the best of
// a grid of its documented settings. Everything is then scored and timed by the SAME runtime (our onnxruntime-node
// 1.30, engine/analysis), so accuracy and latency differences come from the quantized graphs, not the runtimes.
// A manual benchmark (needs root for the chroot), not part of `npm test`.
//
//   npm run build && bench/peer/setup-chroot.sh
//   node --import tsx bench/peer/compare.ts [--models cnn,mobilenet,vit] [--configs all|default,pre-pc-s8s8-minmax,...]
//        [--batches 1,32] [--seconds 5] [--threads 1] [--keep DIR] [--json FILE] [--from DIR]
// --from DIR reuses ONNX Runtime's models from an earlier --keep DIR (no chroot needed, e.g. on another machine);
// ours is always quantized afresh, since its default weight type depends on the CPU.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { benchmark } from "../../engine/analysis/benchmark";
import { loadDataDir } from "../../engine/analysis/dataset";
import { evaluate, type ModelScore } from "../../engine/analysis/evaluate";
import type { Interval } from "../../engine/analysis/stats";
import { Model } from "../../engine/onnx/model";
import { runOrtQuantizer, type OrtRecord } from "./ort";

// PTQ_PEER_REPO: where the repo is when this file runs bundled from elsewhere (a staged copy on another machine).
const REPO = process.env.PTQ_PEER_REPO ? path.resolve(process.env.PTQ_PEER_REPO) : path.join(__dirname, "..", "..");
const FIX = path.join(REPO, "test", "fixtures");
const CALIB = path.join(FIX, "data", "calib", "calib.npz");

interface Options {
  models: string[];
  configs: string;
  batches: number[];
  seconds: number;
  threads: number;
  keep?: string;
  json?: string;
  from?: string;
}

/** One quantized (or FP32) file and how it was made. */
interface Variant {
  label: string;
  file: string;
  /** Whole quantization process: start, imports, calibration, write. Absent for FP32. */
  wallSeconds?: number;
  peakRssBytes?: number;
  notes: string[];
}

function parseOptions(argv: string[]): Options {
  const get = (name: string, fallback?: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : fallback;
  };
  const num = (name: string, fallback: string) => {
    const v = Number(get(name, fallback));
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} takes a positive number`);
    return v;
  };
  return {
    models: get("models", "cnn,mobilenet,vit")!.split(",").filter(Boolean),
    configs: get("configs", "all")!,
    batches: get("batches", "1,32")!.split(",").map((b) => {
      const n = Number(b);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--batches takes comma-separated positive integers (got "${b}")`);
      return n;
    }),
    seconds: num("seconds", "5"),
    // One thread by default: the figures are per-graph costs, and a shared 2-core machine is noisy at 2.
    threads: num("threads", "1"),
    keep: get("keep"),
    json: get("json"),
    from: get("from"),
  };
}

/** Our CLI is what a user runs; a stale build would measure old code, so say so loudly. */
function checkBuild(): void {
  const cli = path.join(REPO, "out", "cli.js");
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first`);
  const built = statSync(cli).mtimeMs;
  const stale = ["engine/quant", "engine/calibrate", "engine/onnx", "engine/data"].flatMap((d) =>
    readdirSync(path.join(REPO, d)).filter((f) => statSync(path.join(REPO, d, f)).mtimeMs > built).map((f) => `${d}/${f}`),
  );
  if (stale.length) process.stderr.write(`warning: out/cli.js is older than ${stale.join(", ")}; run "npm run build" to measure the current code\n`);
}

function quantizeOurs(model: string, out: string): Variant {
  // /usr/bin/time reads the same wait4 rusage the Python side reads: peak RSS of the whole process.
  const r = spawnSync("/usr/bin/time", ["-f", "PEAK %e %M", process.execPath, path.join(REPO, "bin", "ptq.js"), "quantize", model, "-o", out, "--calib", CALIB, "--json", "--overwrite"], { encoding: "utf8" });
  const m = /PEAK ([\d.]+) (\d+)\s*$/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`ptq quantize ${model} failed (exit ${r.status}):\n${r.stderr.trim()}`);
  const summary = JSON.parse(r.stdout) as { warnings: string[]; float: { name: string; opType: string; reason: string }[] };
  return { label: "ours (default)", file: out, wallSeconds: Number(m[1]), peakRssBytes: Number(m[2]) * 1024, notes: summary.warnings };
}

const RECORDS = "ort-records.json";

function quantizeTheirs(model: string, work: string, configs: string): OrtRecord[] {
  const records = runOrtQuantizer({ model, calib: CALIB, work, configs });
  writeFileSync(path.join(work, RECORDS), JSON.stringify(records.map((o) => ({ ...o, file: path.basename(o.file), log: path.basename(o.log) })), null, 2));
  return records;
}

/** ONNX Runtime's models from an earlier run's --keep folder: their quantizer's choices do not depend on the CPU
 * (beyond float rounding while calibrating), unlike our default weight type. */
function reuseTheirs(dir: string): OrtRecord[] {
  const file = path.join(dir, RECORDS);
  if (!existsSync(file)) throw new Error(`--from: ${file} is missing; give the --keep DIR of an earlier run`);
  return (JSON.parse(readFileSync(file, "utf8")) as OrtRecord[]).map((o) => ({ ...o, file: path.join(dir, o.file), log: path.join(dir, o.log) }));
}

/** Op histogram, Q/DQ first: explains most accuracy and speed differences (what stayed float, what got quantized). */
function opSummary(file: string): string {
  const counts = new Map<string, number>();
  for (const n of Model.loadSync(file).graph.node) counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
  const q = counts.get("QuantizeLinear") ?? 0;
  const dq = counts.get("DequantizeLinear") ?? 0;
  counts.delete("QuantizeLinear");
  counts.delete("DequantizeLinear");
  const rest = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, v]) => `${k} ${v}`);
  return [`Q ${q}`, `DQ ${dq}`, ...rest].join(", ");
}

const pct = (x: number) => `${(x * 100).toFixed(2)}`;
const ci = (i: Interval) => `${pct(i.estimate)} [${pct(i.lo)}, ${pct(i.hi)}]`;
const pp = (i: Interval) => `${i.estimate >= 0 ? "+" : ""}${pct(i.estimate)} [${pct(i.lo)}, ${pct(i.hi)}]`;

interface ModelReport {
  model: string;
  sha256: string;
  rows: {
    label: string;
    file: string;
    ops: string;
    bytes: number;
    top1: Interval;
    vsFp32?: ModelScore["vsFirst"];
    /** this − ours, paired; only on ORT rows. */
    vsOurs?: ModelScore["vsFirst"];
    latency: { batch: number; p50Ms: number; ratio?: Interval; trustworthy?: boolean; reason?: string }[];
    wallSeconds?: number;
    peakRssBytes?: number;
    notes: string[];
  }[];
  grid: { config: string; ok: boolean; top1?: number; wallSeconds: number; peakRssBytes: number; error?: string }[];
  best: string;
}

async function compareModel(name: string, original: string, output: string, opt: Options, work: string): Promise<ModelReport> {
  // Everyone works from one snapshot: fixture files can be regenerated while a run is in progress.
  const file = path.join(work, path.basename(original));
  copyFileSync(original, file);
  const sha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
  if (opt.from) {
    const theirsModel = path.join(path.resolve(opt.from), name, path.basename(original));
    if (existsSync(theirsModel) && createHash("sha256").update(readFileSync(theirsModel)).digest("hex") !== sha256) {
      throw new Error(`--from: ${theirsModel} differs from ${original}: ONNX Runtime quantized another version of the model; rerun without --from`);
    }
  }
  const ours = quantizeOurs(file, path.join(work, `${name}.ours.onnx`));
  process.stderr.write(`${name}: ours quantized in ${ours.wallSeconds}s; ${opt.from ? "reusing" : "running"} ONNX Runtime's quantizer (${opt.configs})\n`);
  const theirs = opt.from ? reuseTheirs(path.join(path.resolve(opt.from), name)) : quantizeTheirs(file, work, opt.configs);
  const okTheirs = theirs.filter((t) => t.ok);
  if (!okTheirs.length) throw new Error(`${name}: every ONNX Runtime config failed: ${theirs.map((t) => `${t.config}: ${t.error}`).join("; ")}`);

  const model = Model.loadSync(file);
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  const inputs = model.graph.input.filter((i) => !inits.has(i.name)).map((i) => ({ name: i.name, type: "float32" as const, shape: [] }));
  const data = loadDataDir(path.join(FIX, "data", "eval"), inputs);
  const files: Record<string, string> = { fp32: file, ours: ours.file, ...Object.fromEntries(okTheirs.map((t) => [`ort:${t.config}`, t.file])) };
  process.stderr.write(`${name}: scoring ${Object.keys(files).length} models on data/eval\n`);
  const scores = new Map((await evaluate(files, data, "top1", { threads: opt.threads, output })).models.map((m) => [m.name, m]));

  // Best = highest top-1 on the eval set itself: optimistic for ONNX Runtime (chosen on the data it is scored on).
  const byScore = [...okTheirs].sort((a, b) => scores.get(`ort:${b.config}`)!.score.estimate - scores.get(`ort:${a.config}`)!.score.estimate);
  const best = byScore[0]!;
  const dflt = okTheirs.find((t) => t.config === "default");
  const variants: Variant[] = [
    { label: "FP32", file, notes: [] },
    ours,
    ...(dflt ? [{ label: "ORT default", file: dflt.file, wallSeconds: dflt.wallSeconds, peakRssBytes: dflt.peakRssBytes, notes: dflt.notes ?? [] }] : []),
    ...(best !== dflt ? [{ label: `ORT best (${best.config})`, file: best.file, wallSeconds: best.wallSeconds, peakRssBytes: best.peakRssBytes, notes: best.notes ?? [] }] : []),
  ];
  const key = (v: Variant) => (v.label === "FP32" ? "fp32" : v.label.startsWith("ours") ? "ours" : `ort:${v.label === "ORT default" ? "default" : best.config}`);
  // The question is "is ours ever worse than ORT?": pair every ORT row with ours, sample by sample.
  const vsOurs = new Map((await evaluate(Object.fromEntries(variants.slice(1).map((v) => [key(v), v.file])), data, "top1", { threads: opt.threads, output })).models.map((m) => [m.name, m.vsFirst]));
  process.stderr.write(`${name}: timing ${variants.map((v) => v.label).join(", ")} interleaved, ${opt.seconds}s per batch size\n`);
  const bench = await benchmark(Object.fromEntries(variants.map((v) => [v.label, v.file])), { batchSizes: opt.batches, threads: opt.threads, seconds: opt.seconds });

  return {
    model: name,
    sha256,
    best: best.config,
    grid: theirs.map((t) => ({ config: t.config, ok: t.ok, top1: scores.get(`ort:${t.config}`)?.score.estimate, wallSeconds: t.wallSeconds, peakRssBytes: t.peakRssBytes, error: t.error })),
    rows: variants.map((v, i) => {
      const s = scores.get(key(v))!;
      const figs = bench.models[i]!;
      return {
        label: v.label,
        file: v.file,
        ops: opSummary(v.file),
        bytes: figs.fileBytes,
        top1: s.score,
        vsFp32: s.vsFirst,
        vsOurs: vsOurs.get(key(v)),
        latency: figs.batches.map((b) => ({ batch: b.batch, p50Ms: b.latencyMs.p50, ratio: b.vsFirst?.latencyRatio, trustworthy: b.vsFirst?.verdict.trustworthy, reason: b.vsFirst?.verdict.reason })),
        wallSeconds: v.wallSeconds,
        peakRssBytes: v.peakRssBytes,
        notes: v.notes,
      };
    }),
  };
}

function render(r: ModelReport, opt: Options): string {
  const batches = r.rows[0]!.latency.map((l) => l.batch);
  const head = ["variant", "top-1 % [95% CI]", "Δ vs FP32 pp [paired 95% CI]", "McNemar p", "Δ vs ours pp [paired 95% CI]", ...batches.map((b) => `latency ×FP32 @b${b} [95% CI]`), "size KiB", "quant wall s", "quant peak RSS MiB"];
  const lines = [`### ${r.model}`, "", `model sha256 ${r.sha256.slice(0, 12)}…`, "", `| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`];
  for (const row of r.rows) {
    const lat = row.latency.map((l) => (l.ratio ? `${l.ratio.estimate.toFixed(2)} [${l.ratio.lo.toFixed(2)}, ${l.ratio.hi.toFixed(2)}]${l.trustworthy ? "" : " (noisy)"}` : `${l.p50Ms.toFixed(3)} ms`));
    const cells = [
      row.label,
      ci(row.top1),
      row.vsFp32 ? pp(row.vsFp32.diff) : "—",
      row.vsFp32?.pValue !== undefined ? row.vsFp32.pValue.toPrecision(2) : "—",
      row.vsOurs ? `${pp(row.vsOurs.diff)}${row.vsOurs.pValue !== undefined ? ` p ${row.vsOurs.pValue.toPrecision(2)}` : ""}` : "—",
      ...lat,
      (row.bytes / 1024).toFixed(1),
      row.wallSeconds !== undefined ? row.wallSeconds.toFixed(2) : "—",
      row.peakRssBytes !== undefined ? (row.peakRssBytes / 2 ** 20).toFixed(0) : "—",
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  lines.push("", `FP32 row latency is its p50 in ms; other rows are ratios to FP32 (< 1 = faster), ${opt.threads} intra-op thread(s), interleaved.`);
  if (opt.from) lines.push(`ORT's quant wall/RSS are from the machine that made ${opt.from}, not this one.`);
  lines.push("", "Graphs:");
  for (const row of r.rows) lines.push(`- ${row.label}: ${row.ops}${row.notes.length ? ` — notes: ${row.notes.join("; ")}` : ""}`);
  lines.push("", `ONNX Runtime grid (top-1 % on data/eval; best = ${r.best}):`, "");
  lines.push(r.grid.map((g) => `${g.config} ${g.ok ? pct(g.top1!) : `FAILED (${g.error})`} (${g.wallSeconds.toFixed(1)} s, ${(g.peakRssBytes / 2 ** 20).toFixed(0)} MiB)`).join("; "));
  return lines.join("\n");
}

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(readFileSync(__filename, "utf8").split("\nimport")[0]!.replace(/^\/\/ ?/gm, "") + "\n");
    return;
  }
  const opt = parseOptions(process.argv.slice(2));
  checkBuild();
  const manifest = JSON.parse(readFileSync(path.join(FIX, "models", "manifest.json"), "utf8")) as Record<string, { file: string; output: string }>;
  const work = opt.keep ? path.resolve(opt.keep) : mkdtempSync(path.join(os.tmpdir(), "ptq-peer-"));
  mkdirSync(work, { recursive: true });
  const reports: ModelReport[] = [];
  try {
    for (const name of opt.models) {
      const entry = manifest[name];
      const file = entry && path.join(FIX, "models", entry.file);
      if (!entry || !file || !existsSync(file)) {
        process.stderr.write(`skip ${name}: not in test/fixtures/models/manifest.json\n`);
        continue;
      }
      const dir = path.join(work, name);
      mkdirSync(dir, { recursive: true });
      const report = await compareModel(name, file, entry.output, opt, dir);
      reports.push(report);
      process.stdout.write(render(report, opt) + "\n\n");
    }
  } finally {
    if (!opt.keep) rmSync(work, { recursive: true, force: true });
  }
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  process.stdout.write(`machine: ${cpu}, ${os.cpus().length} logical CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}; node ${process.version}\n`);
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ machine: { cpu, cpus: os.cpus().length }, options: opt, reports }, null, 2) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/peer/compare: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
