// ONNX I/O benchmark: decode and encode of generated 100 MB / 500 MB models (MB/s, peak RSS) against
// onnxruntime-node's own session load time for the same file. Every measurement runs in a fresh child process so
// peak RSS belongs to that step alone; a "baseline" child (modules loaded, nothing read) is subtracted.
//
//   node --import tsx bench/onnx-io.ts [--sizes 100,500] [--reps 3]
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DataType, Model, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../engine/onnx";

type Mode = "baseline" | "memcpy" | "decode" | "encode" | "save" | "ort";

interface ChildResult {
  ms: number;
  maxRssMB: number;
}

const MB = 1e6;

/** A chain of MatMuls with 1024x1024 float weights (4 MiB each) until the model reaches `sizeMB`. */
function generate(sizeMB: number, file: string): void {
  const n = 1024;
  const count = Math.max(1, Math.round((sizeMB * MB) / (n * n * 4)));
  const inits = [];
  const nodes = [];
  let prev = "x";
  for (let i = 0; i < count; i++) {
    const data = new Float32Array(n * n);
    for (let j = 0; j < data.length; j++) data[j] = ((j * 2654435761 + i) % 2001) / 1e6 - 0.001;
    inits.push(makeTensor(`w${i}`, DataType.FLOAT, [n, n], data));
    nodes.push(makeNode("MatMul", [prev, `w${i}`], [`h${i}`], { name: `mm${i}` }));
    prev = `h${i}`;
  }
  nodes.push(makeNode("Identity", [prev], ["y"]));
  const g = makeGraph("bench", nodes, [makeValueInfo("x", DataType.FLOAT, [1, n])], [makeValueInfo("y", DataType.FLOAT, [1, n])], {
    initializers: inits,
  });
  Model.fromProto(makeModel(g)).saveSync(file, { overwrite: true });
}

async function child(mode: Mode, file: string): Promise<void> {
  let ms = 0;
  if (mode === "memcpy") {
    // The floor for any encoder that returns one buffer: copy the file's bytes into fresh memory.
    const bytes = readFileSync(file);
    const t = performance.now();
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    ms = performance.now() - t;
  } else if (mode === "decode") {
    const bytes = readFileSync(file);
    const t = performance.now();
    const m = Model.fromBytes(bytes, { path: file });
    ms = performance.now() - t;
    if (m.graph.initializer.length === 0) throw new Error("decoded nothing");
  } else if (mode === "encode") {
    const m = Model.fromBytes(readFileSync(file), { path: file });
    const t = performance.now();
    const out = m.toBytes();
    ms = performance.now() - t;
    if (out.byteLength !== statSync(file).size) throw new Error("encode changed the size");
  } else if (mode === "save") {
    const t = performance.now();
    const m = await Model.load(file);
    m.saveSync(file + ".copy.onnx", { overwrite: true });
    ms = performance.now() - t;
    rmSync(file + ".copy.onnx");
  } else if (mode === "ort") {
    const { createSession } = await import("../engine/runtime/session");
    const t = performance.now();
    const s = await createSession(file, { threads: 1 });
    ms = performance.now() - t;
    await s.dispose();
  }
  const result: ChildResult = { ms, maxRssMB: (process.resourceUsage().maxRSS * 1024) / MB };
  process.stdout.write(JSON.stringify(result) + "\n");
}

function runChild(mode: Mode, file: string): ChildResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", __filename, "--child", mode, file], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as ChildResult;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--child") return child(argv[1] as Mode, argv[2]!);
  const arg = (name: string, fallback: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1]! : fallback;
  };
  const sizes = arg("--sizes", "100,500").split(",").map(Number);
  const reps = Number(arg("--reps", "3"));
  const dir = path.join(os.tmpdir(), `ptq-bench-io-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.cpus().length}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  try {
    const base = median(Array.from({ length: reps }, () => runChild("baseline", "").maxRssMB));
    console.log(`baseline peak RSS (modules loaded): ${base.toFixed(0)} MB`);
    console.log("| model | step | median time | throughput | peak RSS above baseline | × model size |");
    console.log("|---|---|---|---|---|---|");
    for (const size of sizes) {
      const file = path.join(dir, `m${size}.onnx`);
      generate(size, file);
      const bytes = statSync(file).size;
      for (const mode of ["memcpy", "decode", "encode", "save", "ort"] as Mode[]) {
        const rs = Array.from({ length: reps }, () => runChild(mode, file));
        const ms = median(rs.map((r) => r.ms));
        const rss = median(rs.map((r) => r.maxRssMB)) - base;
        console.log(
          `| ${(bytes / MB).toFixed(0)} MB | ${mode === "ort" ? "onnxruntime session load" : mode === "save" ? "load+save (file→file)" : mode === "memcpy" ? "memcpy (reference)" : mode} | ${ms.toFixed(0)} ms | ${(bytes / MB / (ms / 1000)).toFixed(0)} MB/s | ${rss.toFixed(0)} MB | ${(rss / (bytes / MB)).toFixed(2)} |`,
        );
      }
      rmSync(file, { force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
