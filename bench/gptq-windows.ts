// GPTQ on Hessian windows against whole Hessians, on one generated MatMul with a long reduction axis (the shape of a
// transformer's MLP down-projection): time and peak memory of int4 GPTQ (calibration, factorization, error feedback,
// protection off), the layer's output SQNR on the calibration rows, and the model's output SQNR on held-out rows.
// Each variant runs in its own child process, so each peak RSS is its own.
//
//   node --import tsx bench/gptq-windows.ts [--k 8192] [--n 256] [--rows 1024] [--windows 0,2048]
//
// --windows lists the Hessian windows to compare; 0 means K whole (the baseline). Ratios are against the first.
import { execFileSync } from "node:child_process";
import os from "node:os";
import { parseArgs } from "node:util";
import type { Feeds } from "../engine/data/feeds";
import { seededRandom } from "../engine/data/random";
import { lowBitModelCalibrated } from "../engine/lowbit";
import { DataType, Model, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../engine/onnx";
import { sqnr } from "../engine/quant/math";
import { createSession } from "../engine/runtime/session";

const { values: args } = parseArgs({
  options: {
    k: { type: "string", default: "8192" },
    n: { type: "string", default: "256" },
    rows: { type: "string", default: "1024" },
    windows: { type: "string", default: "0,2048" },
    child: { type: "string" },
  },
});
const [K, N, ROWS] = [Number(args.k), Number(args.n), Number(args.rows)];
const BATCH = 256;

/** Rows of K values that share a low-rank component (as a layer's activations do), seeded. */
function rows(count: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  const basisNext = seededRandom(7);
  const rank = 16;
  const basis = Float32Array.from({ length: rank * K }, () => basisNext() - 0.5);
  const x = new Float32Array(count * K);
  for (let r = 0; r < count; r++) {
    const z = Array.from({ length: rank }, () => next() - 0.5);
    for (let j = 0; j < K; j++) {
      let s = 0.1 * (next() - 0.5);
      for (let p = 0; p < rank; p++) s += z[p]! * basis[p * K + j]!;
      x[r * K + j] = s;
    }
  }
  return x;
}

function model(): Model {
  const next = seededRandom(3);
  const w = Float32Array.from({ length: K * N }, () => (next() - 0.5) * 0.1);
  const g = makeGraph(
    "gptq_windows",
    [makeNode("MatMul", ["x", "W"], ["y"], { name: "down_proj" })],
    [makeValueInfo("x", DataType.FLOAT, ["rows", K])],
    [makeValueInfo("y", DataType.FLOAT, ["rows", N])],
    { initializers: [makeTensor("W", DataType.FLOAT, [K, N], w)] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 21 } }));
}

async function run(m: Model, x: Float32Array): Promise<Float32Array> {
  const s = await createSession(m.toBytes(), { optimization: "basic", threads: 1 });
  try {
    return (await s.run({ x: { data: x, dims: [x.length / K, K] } })).y.data as Float32Array;
  } finally {
    await s.dispose();
  }
}

async function child(window: number): Promise<void> {
  const m = model();
  const calib: Feeds[] = [];
  for (let b = 0; b * BATCH < ROWS; b++) calib.push({ x: { data: rows(Math.min(BATCH, ROWS - b * BATCH), 100 + b), dims: [Math.min(BATCH, ROWS - b * BATCH), K] } });
  const start = performance.now();
  const { model: q, report } = await lowBitModelCalibrated(m, { mode: "int4", algorithm: "gptq", protect: false, gptq: { window: window > 0 ? window : K } }, calib);
  const seconds = (performance.now() - start) / 1000;
  const rss = process.resourceUsage().maxRSS * 1024;
  const held = rows(256, 999);
  const heldDb = sqnr(await run(m, held), await run(q, held));
  const layer = report.layers[0]!;
  process.stdout.write(JSON.stringify({ window, seconds, rss, layerDb: layer.outputSqnrDb, rtnLayerDb: layer.rtnOutputSqnrDb, heldDb }) + "\n");
}

async function main(): Promise<void> {
  if (args.child !== undefined) return child(Number(args.child));
  const windows = args.windows!.split(",").map(Number);
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  console.log(`GPTQ int4 (blocks of 32) on one MatMul, K = ${K}, N = ${N}, ${ROWS} calibration rows; ${cpu}, ${os.availableParallelism()} cores`);
  const results: { window: number; seconds: number; rss: number; layerDb: number; rtnLayerDb: number; heldDb: number }[] = [];
  for (const w of windows) {
    const out = execFileSync(process.execPath, ["--import", "tsx", __filename, "--child", String(w), "--k", String(K), "--n", String(N), "--rows", String(ROWS)], { encoding: "utf8", maxBuffer: 1 << 24 });
    results.push(JSON.parse(out.trim().split("\n").pop()!));
  }
  const base = results[0]!;
  console.log("| Hessian window | time | peak RSS | layer output SQNR (RTN) | held-out output SQNR |");
  console.log("|---|---|---|---|---|");
  for (const r of results) {
    const ratio = r === base ? "" : ` (${(r.seconds / base.seconds).toFixed(2)}×)`;
    const mem = r === base ? "" : ` (${(r.rss / base.rss).toFixed(2)}×)`;
    console.log(`| ${r.window > 0 ? r.window : `K whole (${K})`} | ${r.seconds.toFixed(1)} s${ratio} | ${(r.rss / 2 ** 20).toFixed(0)} MiB${mem} | ${r.layerDb.toFixed(2)} dB (${r.rtnLayerDb.toFixed(2)}) | ${r.heldDb.toFixed(2)} dB |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
