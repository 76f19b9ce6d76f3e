// Peak RSS and time of int4 GPTQ with its Hessians collected in passes that each round their layers before the next
// (lowBitModelCalibrated's `passBytes`, 256 MiB by default), against one pass holding every layer's Hessians until
// the rewrite (cap "inf": what GPTQ did before passes). Each cap runs in a child process of its own (peak RSS only
// grows within a process); the written files' SHA-256 must agree (the passes change memory, not codes).
//
//   node --import tsx bench/gptq-memory.ts [--layers 8] [--k 2048] [--caps inf,256] [--batches 8] [--rows 16]
//                                          [--model FILE --calib DIR] [--protect] [--json]
//
// Default model: a chain of --layers MatMul(K×K)+Relu built in code (seeded weights, float64 Hessian K²·8 bytes a
// layer: 32 MiB at K 2048), calibrated on --batches seeded batches of --rows rows. --model/--calib take any model and
// a calibration folder instead (e.g. one bench/corpus/samples.ts wrote). Protection is off unless --protect (with
// it, Hessians are collected only for the layers it leaves int4). Caps are in MiB.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { seededRandom } from "../engine/data/random";
import { openData } from "../engine/data/readers";
import type { Feeds } from "../engine/data/feeds";
import { lowBitModelCalibrated } from "../engine/lowbit";
import { DataType, Model, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../engine/onnx";

const { values: args } = parseArgs({
  options: {
    layers: { type: "string", default: "8" },
    k: { type: "string", default: "2048" },
    caps: { type: "string", default: "inf,256" },
    batches: { type: "string", default: "8" },
    rows: { type: "string", default: "16" },
    model: { type: "string" },
    calib: { type: "string" },
    protect: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    child: { type: "string" },
  },
});

interface Result {
  cap: string;
  passes: number;
  layers: number;
  seconds: number;
  peakRssMiB: number;
  sha256: string;
}

function chain(layers: number, k: number): Model {
  const next = seededRandom(1);
  const nodes = [];
  const weights = [];
  let x = "x";
  for (let i = 0; i < layers; i++) {
    nodes.push(makeNode("MatMul", [x, `W${i}`], [`m${i}`], { name: `mm${i}` }), makeNode("Relu", [`m${i}`], [`r${i}`], { name: `relu${i}` }));
    weights.push(makeTensor(`W${i}`, DataType.FLOAT, [k, k], Float32Array.from({ length: k * k }, () => (next() - 0.5) * 0.05)));
    x = `r${i}`;
  }
  const g = makeGraph("chain", nodes, [makeValueInfo("x", DataType.FLOAT, ["N", k])], [makeValueInfo(x, DataType.FLOAT, ["N", k])], { initializers: weights });
  return Model.fromProto(makeModel(g, { opsets: { "": 17 } }));
}

async function child(cap: string): Promise<void> {
  const [layers, k, batches, rows] = [args.layers, args.k, args.batches, args.rows].map(Number) as [number, number, number, number];
  const model = args.model ? await Model.load(args.model) : chain(layers, k);
  const next = seededRandom(2);
  const data = args.model
    ? await openData(args.calib!, model)
    : Array.from({ length: batches }, (): Feeds => ({ x: { data: Float32Array.from({ length: rows * k }, () => next() - 0.5), dims: [rows, k] } }));
  const start = performance.now();
  const { model: q, report } = await lowBitModelCalibrated(model, { mode: "int4", algorithm: "gptq", ...(args.protect ? {} : { protect: false as const }) }, data, {
    passBytes: cap === "inf" ? Infinity : Number(cap) * 2 ** 20,
  });
  const seconds = (performance.now() - start) / 1000;
  const passes = Number(/in (\d+) passes over the data/.exec(report.notes.join("\n"))?.[1] ?? 1);
  const result: Result = {
    cap,
    passes,
    layers: report.layers.filter((l) => l.outputSqnrDb !== undefined).length,
    seconds,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    sha256: createHash("sha256").update(q.toBytes()).digest("hex"),
  };
  console.log(JSON.stringify(result));
}

function main(): void {
  if (args.model && !args.calib) throw new Error("--model needs --calib DIR (its calibration folder)");
  const results: Result[] = [];
  for (const cap of args.caps!.split(",")) {
    const passed = process.argv.slice(2).filter((a, i, all) => a !== "--caps" && all[i - 1] !== "--caps" && a !== "--json");
    const r = spawnSync(process.execPath, ["--import", "tsx", __filename, ...passed, "--child", cap], { encoding: "utf8", maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`cap ${cap}: child exited ${r.status}\n${r.stderr}`);
    results.push(JSON.parse(r.stdout.trim().split("\n").pop()!) as Result);
  }
  const base = results[0]!;
  if (args.json) {
    console.log(JSON.stringify({ model: args.model ?? `chain of ${args.layers} MatMul ${args.k}×${args.k}`, results }, null, 2));
    return;
  }
  console.log(`int4 GPTQ on ${args.model ?? `a chain of ${args.layers} MatMul(${args.k}×${args.k})+Relu`}, protection ${args.protect ? "on" : "off"}`);
  console.log("cap (MiB) | passes | GPTQ layers | seconds | peak RSS MiB | RSS vs first | same file as first");
  for (const r of results) {
    console.log(
      `${r.cap.padStart(9)} | ${String(r.passes).padStart(6)} | ${String(r.layers).padStart(11)} | ${r.seconds.toFixed(1).padStart(7)} | ${r.peakRssMiB.toFixed(0).padStart(12)} | ` +
        `${(r.peakRssMiB / base.peakRssMiB).toFixed(2).padStart(12)} | ${r.sha256 === base.sha256 ? "yes" : "NO"}`,
    );
  }
  if (results.some((r) => r.sha256 !== base.sha256)) process.exitCode = 1;
}

if (args.child) void child(args.child).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
else main();
