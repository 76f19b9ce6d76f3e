// Accuracy-driven mixed precision on a fixture where default INT8 really loses accuracy: FP32, default INT8 and the
// searched model (the fewest, most sensitive nodes kept in float until the top-1 drop target is met), with the
// nodes kept in float, the share of weights still int8, and the wall time of each phase. The search ranks nodes on
// the calibration sample (output SQNR) and checks its candidates on data/eval, the same set the figures are scored
// on; --holdout N also scores the three models on N further t10k images the search never saw. `--model orient`
// (the orientation estimator) scores rotation-angle bins on rotated images.
//
//   node --import tsx bench/mixed-precision.ts [--model densenet] [--target 0.3] [--min-int8 0.9] [--holdout 0] [--remedy auto|int16|float] [--json]
//
// `--corpus ID` runs the search on a corpus model instead (bench/corpus/models.json, seeded generated inputs:
// --calib N calibration samples, --samples N search samples) against `--target-sqnr DB`, twice in one process:
// as it was (restore-one ranking, SQNR on the graph outputs, no int8 weight floor) and as it is by default, and
// judges both chosen models the same way: SQNR of the logits a final Softmax reads, and argmax agreement with
// float per frame and per whole sample (a text line), with wall time and measurements per phase.
//
//   node --import tsx bench/mixed-precision.ts --corpus ppocr-v3-rec-en [--calib 16] [--samples 4] [--target-sqnr 20] [--remedy float]
//
// `--speed-ab two` runs the defaults against ranking on every sample with whole models (before rankSamples and
// runDownstream), back to back, with wall and process CPU time (`--rounds 2`: A B B A); `--speed-ab levers` runs each
// lever alone; `--speed-ab all` the four combinations.
//
// `--target-agreement PCT` searches for argmax agreement (per sample) instead of SQNR; `--only now` skips the run
// "as it was". `--convert-ab N` instead times N conversions of random configurations (nodes kept float, some at 16
// bits) without and with a ConvertCache, interleaved, and checks that both give the same bytes.
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { convertMixed, correctness, percentCorrect, searchMixedPrecision, modelOutputs } from "../engine/analysis/sensitivity";
import { classLabels } from "../engine/analysis/metrics";
import { pairedProportionDiff, type PairedProportionDiff } from "../engine/analysis/stats";
import { readNpyTensor } from "../engine/analysis/dataset";
import type { Tensor } from "../engine/data/feeds";
import { splitRows } from "../engine/calibrate/rows";
import type { Feeds } from "../engine/data/feeds";
import { openData } from "../engine/data/readers";
import { Model } from "../engine/onnx/model";
import { calibrate, convert, ConvertCache, prepare, release, type PreparedModel } from "../engine/quant/index";
import { takeBatches } from "../engine/analysis/analyze";
import { allSamples, rotatedSet } from "../test/slow/rotation";
import { byId, loadCatalog, modelPath } from "./corpus/catalog";
import { FrontEnd, makeSamples } from "./corpus/inputs";
import { argmaxAgreement, comparedTensors, outputSqnr, type AccuracyTarget, type Progress, type SearchOptions } from "../engine/analysis/sensitivity";

const FIX = path.join(__dirname, "..", "test", "fixtures");
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};

interface Holdout {
  samples: number;
  fp32: number;
  defaultInt8: number;
  defaultDrop: PairedProportionDiff;
  searched: number;
  searchedDrop: PairedProportionDiff;
}

const batches = (x: Tensor, input: string, size = 250): Feeds[] => [...splitRows({ [input]: x }, size)];

/**
 * t10k images [2000, 2000 + n) and labels straight from Debian's Fashion-MNIST, normalized as the fixture scripts
 * do (float32 (x/255 - 0.2860) / 0.3530): images the search never saw, to check its choice is not fitted to data/eval.
 */
function holdout(n: number): { x: Tensor; y: Tensor } {
  const dir = process.env.PTQ_FIXTURES_FMNIST ?? "/usr/share/datasets/fashion-mnist";
  const images = gunzipSync(readFileSync(path.join(dir, "t10k-images-idx3-ubyte.gz")));
  const labels = gunzipSync(readFileSync(path.join(dir, "t10k-labels-idx1-ubyte.gz")));
  const start = 2000;
  n = Math.min(n, 10000 - start);
  const f = Math.fround;
  const x = new Float32Array(n * 784);
  for (let i = 0; i < x.length; i++) x[i] = f(f(f(images[16 + start * 784 + i]! / 255) - f(0.286)) / f(0.353));
  const y = BigInt64Array.from(labels.subarray(8 + start, 8 + start + n), (v) => BigInt(v));
  return { x: { type: "float32", dims: [n, 1, 28, 28], data: x }, y: { type: "int64", dims: [n], data: y } };
}

/** The search on a corpus model, as it was and as it is, judged alike (see the top of this file). */
async function corpus(id: string): Promise<void> {
  const catalog = loadCatalog();
  const m = byId(catalog, id);
  const nCalib = Number(arg("calib", "16"));
  const nData = Number(arg("samples", "4"));
  const minDb = Number(arg("target-sqnr", "20"));
  const agreement = arg("target-agreement", "");
  const target: AccuracyTarget = agreement ? { kind: "agreement", minPct: Number(agreement) } : { kind: "sqnr", minDb };
  const unit = agreement ? "%" : "dB";
  const remedy = arg("remedy", "float") as "auto" | "int16" | "float";
  const samples = await makeSamples(m, nCalib + nData, 7, new FrontEnd(catalog));
  const feeds = samples.map((s): Feeds => Object.fromEntries(Object.entries(s).map(([k, t]) => [k, { type: t.data instanceof BigInt64Array ? ("int64" as const) : ("float32" as const), ...t }])));
  const t0 = performance.now();
  const prepared = await prepare(await Model.load(modelPath(m)));
  await calibrate(prepared, feeds.slice(0, nCalib));
  await release(prepared);
  const data = feeds.slice(nCalib);
  const ab = Number(arg("convert-ab", "0"));
  if (ab > 0) return convertAb(prepared, ab);
  process.stdout.write(`${id}: ${prepared.model.graph.node.length} nodes, calibrated on ${nCalib} samples in ${((performance.now() - t0) / 1000).toFixed(1)} s; search on ${nData}, target ${agreement ? `${agreement} % agreement` : `${minDb} dB`}, remedy ${remedy}\n`);
  const logits = comparedTensors(prepared.model, "logits");
  const [refLogits, refOutputs] = [await modelOutputs(prepared.model, data, {}, logits), await modelOutputs(prepared.model, data)];
  const judge = async (model: Model) => {
    const outs = await modelOutputs(model, data);
    return {
      logitsSqnrDb: outputSqnr(refLogits, await modelOutputs(model, data, {}, logits)),
      framesAgree: percentCorrect(argmaxAgreement(refOutputs, outs, "row")),
      linesAgree: percentCorrect(argmaxAgreement(refOutputs, outs, "sample")),
    };
  };
  const runs: [string, SearchOptions][] = [
    ["as it was (restore-one, graph outputs, no floor)", { rankMethod: "restore-one", yardstick: "outputs", minInt8WeightShare: 0 }],
    ["as it is (defaults)", {}],
  ];
  // --speed-ab (see the top of this file): the search's speed levers, back to back in this process.
  const levers: [string, SearchOptions][] = [
    ["rank on all samples, whole models", { rankSamples: Infinity, runDownstream: false }],
    ["rank on all samples, downstream parts", { rankSamples: Infinity }],
    ["rank on 32 samples, whole models", { runDownstream: false }],
    ["defaults (32 samples, downstream parts)", {}],
  ];
  const speedAb = arg("speed-ab", "");
  const pickLevers = speedAb === "all" ? levers : speedAb === "levers" ? levers.slice(1, 3) : [levers[0]!, levers[3]!];
  const rounds = Number(arg("rounds", "1"));
  const chosenRuns = speedAb ? Array.from({ length: rounds }, (_, i) => (i % 2 ? [...pickLevers].reverse() : pickLevers)).flat() : arg("only", "") === "now" ? runs.slice(1) : runs;
  for (const [label, options] of chosenRuns) {
    const phases = new Map<string, number>();
    let last: Progress | undefined;
    let ranked: Progress | undefined;
    let halfway: Progress | undefined;
    const t = performance.now();
    const cpu = process.cpuUsage();
    const load = os.loadavg()[0]!;
    const r = await searchMixedPrecision(prepared, data, target, { ...options, remedy, onProgress: (_d, _t, p) => {
        if (p.phase === "rank") ranked = p;
        if (!halfway && p.done >= p.total / 2) halfway = p;
        last = p;
        phases.set(p.phase, (phases.get(p.phase) ?? 0) + 1);
      },
    });
    const seconds = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    const cpuSeconds = (used.user + used.system) / 1e6;
    const j = await judge(r.model);
    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : String(v));
    process.stdout.write(
      [
        `  ${label}: ${seconds.toFixed(0)} s wall, ${cpuSeconds.toFixed(0)} s process CPU, load ${load.toFixed(1)} → ${os.loadavg()[0]!.toFixed(1)}; ranked on ${r.rankedOn.samples} of ${r.rankedOn.of} samples, ${r.rankedOn.cachedTensors} float activations cached (${(r.rankedOn.cachedBytes / 2 ** 20).toFixed(0)} MiB; ${[...phases].map(([k, v]) => `${k} ${v}`).join(", ")} progress events, last ETA ${last?.etaSeconds.toFixed(0)} s)` +
          `; converting ${r.timing.convert.toFixed(0)} s, running ${r.timing.run.toFixed(0)} s, ${r.timing.measurements} measurements; ranking done at ${ranked?.elapsedSeconds.toFixed(0)} s` +
          `; ETA at ${halfway?.done}/${halfway?.total} measurements (${halfway?.elapsedSeconds.toFixed(0)} s): ${halfway?.etaSeconds.toFixed(0)} s, took ${(seconds - (halfway?.elapsedSeconds ?? 0)).toFixed(0)} s`,
        `    target ${r.chosen.met ? "met" : "NOT met"}: ${r.chosen.keptFloat.length} float + ${r.chosen.int16.length} 16-bit of ${r.ranking.layers.length} quantized nodes, ${(100 * r.chosen.int8WeightShare).toFixed(1)} % of weights int8, its own metric ${f(r.chosen.metric)} ${unit}`,
        `    judged alike: logits SQNR ${f(j.logitsSqnrDb)} dB, argmax agreement ${j.framesAgree.toFixed(1)} % of frames, ${j.linesAgree.toFixed(1)} % of lines`,
        `    steps (float nodes → metric): ${r.steps.map((s) => `${s.keptFloat.length + s.int16.length}→${f(s.metric)}`).join("  ")}`,
        `    chosen: ${[...r.chosen.keptFloat, ...r.chosen.int16].join(", ")}`,
        `    ranked first: ${r.ranking.layers.slice(0, 8).map((l) => `${l.node} (${l.gainDb >= 0 ? "+" : ""}${l.gainDb.toFixed(2)})`).join(", ")}`,
      ].join("\n") + "\n",
    );
  }
}

/** Conversions of random configurations without and with a cache, interleaved (see the top of this file). */
async function convertAb(prepared: PreparedModel, n: number): Promise<void> {
  const nodes = (await convert(prepared)).summary.quantized.map((q) => q.name);
  let seed = 11;
  const pick = (share: number) => nodes.filter(() => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) < share);
  const cache = new ConvertCache();
  const ms = { fresh: 0, cached: 0 };
  for (let i = 0; i < n; i++) {
    const mix = { keepFloat: pick(0.2), int16: i % 2 ? pick(0.1) : [] };
    const time = async (c?: ConvertCache) => {
      const t = performance.now();
      const { model } = await convertMixed(prepared, mix, c);
      return { ms: performance.now() - t, bytes: Buffer.from(model.toBytes()) };
    };
    // Alternate which goes first, so neither always runs on a warmer heap.
    const [a, b] = i % 2 ? [await time(cache), await time()] : [await time(), await time(cache)].reverse();
    if (!a.bytes.equals(b.bytes)) throw new Error(`configuration ${i}: the cached conversion differs from a fresh one`);
    ms.cached += a.ms;
    ms.fresh += b.ms;
  }
  process.stdout.write(
    `${n} conversions (${nodes.length} quantized nodes; ~20 % float, every other one ~10 % at 16 bits), interleaved, same bytes: ` +
      `fresh ${(ms.fresh / n).toFixed(0)} ms, cached ${(ms.cached / n).toFixed(0)} ms each (${(ms.fresh / ms.cached).toFixed(2)}×; cache ${cache.hits} hits, ${cache.misses} misses)\n`,
  );
}

async function main() {
  const id = arg("corpus", "");
  if (id) return corpus(id);
  const name = arg("model", "densenet");
  const minInt8 = Number(arg("min-int8", "0.9"));
  const maxPp = Number(arg("target", "0.3"));
  const json = process.argv.includes("--json");
  const t0 = performance.now();
  const source = await Model.load(path.join(FIX, "models", `${name}.onnx`));
  const input = source.graph.input[0]!.name;
  // The orientation fixture's task is the rotation angle: its data is the same images rotated at seeded angles
  // (as test/unit/analysis/orient-target.test.ts makes it), labelled with the angle bin.
  const rotate = name === "orient";
  const images = readNpyTensor(path.join(FIX, "data", "eval", "x.npy"));
  // 8 angles per image for the search: see the test for why so many.
  const { x, y } = rotate ? rotatedSet(images, 8, 21) : { x: images, y: readNpyTensor(path.join(FIX, "data", "eval", "y.npy")) };
  const data = batches(x, input);
  const labels = classLabels(y);

  const prepared = await prepare(source);
  const calibFile = path.join(FIX, "data", "calib", "calib.npz");
  const calib = rotate
    ? batches(rotatedSet(allSamples(calibFile, source.proto), 1, 11).x, input, 32)
    : await takeBatches(openData(calibFile, source.proto, { batchSize: 32 }), 64);
  await calibrate(prepared, calib);
  await release(prepared);
  const tCalib = performance.now();

  const fp32 = correctness(await modelOutputs(prepared.model, data), labels);
  const int8 = correctness(await modelOutputs((await convert(prepared)).model, data), labels);
  const tDefault = performance.now();

  const remedy = arg("remedy", "auto") as "auto" | "int16" | "float";
  const result = await searchMixedPrecision(prepared, data, { kind: "drop", maxPp, labels: y }, { rankData: calib.slice(0, 16), minInt8WeightShare: minInt8, remedy });
  const tSearch = performance.now();
  const searched = correctness(await modelOutputs(result.model, data), labels);
  const nHold = Number(arg("holdout", "0"));
  let held: Holdout | undefined;
  if (nHold > 0) {
    const h = rotate ? { ...rotatedSet(holdout(nHold).x, 1, 31) } : holdout(nHold);
    const hData = batches(h.x, input);
    const hLabels = classLabels(h.y);
    const score = async (m: Model) => correctness(await modelOutputs(m, hData), hLabels);
    const [f, q, s] = [await score(prepared.model), await score((await convert(prepared)).model), await score(result.model)];
    held = { samples: hLabels.length, fp32: percentCorrect(f), defaultInt8: percentCorrect(q), defaultDrop: pairedProportionDiff(f, q), searched: percentCorrect(s), searchedDrop: pairedProportionDiff(f, s) };
  }

  const drop = (q: Uint8Array) => pairedProportionDiff(fp32, q);
  const gain = new Map(result.ranking.layers.map((l, i) => [l.node, { rank: i + 1, gainDb: l.gainDb, int16GainDb: l.int16GainDb, op: l.opType }]));
  const report = {
    model: name,
    target: `drop<=${maxPp}`,
    samples: labels.length,
    quantizedNodes: result.ranking.layers.length,
    fp32Top1: percentCorrect(fp32),
    defaultInt8: { top1: percentCorrect(int8), drop: drop(int8), outputSqnrDb: result.ranking.baselineDb },
    searched: { top1: percentCorrect(searched), drop: drop(searched), met: result.chosen.met, int8WeightShare: result.chosen.int8WeightShare },
    overBudget: result.overBudget,
    remedy: result.chosen.remedy,
    keptFloat: result.chosen.keptFloat.map((n) => ({ node: n, ...gain.get(n)! })),
    int16: result.chosen.int16.map((n) => ({ node: n, ...gain.get(n)! })),
    steps: result.steps.map((s) => ({ float: s.keptFloat.length, int16: s.int16.length, top1: s.metric, met: s.met })),
    holdout: held,
    seconds: { calibrate: (tCalib - t0) / 1000, defaultInt8: (tDefault - tCalib) / 1000, search: (tSearch - tDefault) / 1000, total: (performance.now() - t0) / 1000 },
  };
  if (json) {
    process.stdout.write(JSON.stringify(report, null, 2) + "\n");
    return;
  }
  const signed = (db: number) => `${db >= 0 ? "+" : ""}${db.toFixed(2)}`;
  const d = (v: ReturnType<typeof drop>) => `${(-v.diff.estimate * 100).toFixed(2)} pp [${(-v.diff.hi * 100).toFixed(2)}, ${(-v.diff.lo * 100).toFixed(2)}], McNemar p ${v.pValue.toPrecision(2)}`;
  const lines = [
    `${name}: ${report.samples} eval images, ${report.quantizedNodes} quantized nodes, target top-1 drop <= ${maxPp} pp, >= ${100 * minInt8} % of weights int8`,
    `  FP32          top-1 ${report.fp32Top1.toFixed(2)} %`,
    `  default INT8  top-1 ${report.defaultInt8.top1.toFixed(2)} %  drop ${d(report.defaultInt8.drop)}  output SQNR ${report.defaultInt8.outputSqnrDb.toFixed(2)} dB`,
    `  searched INT8 top-1 ${report.searched.top1.toFixed(2)} %  drop ${d(report.searched.drop)}  ${(100 * report.searched.int8WeightShare).toFixed(1)} % of weights int8, target ${report.searched.met ? "met" : "NOT met"}`,
    `  kept in float (${report.keptFloat.length}):`,
    ...report.keptFloat.map((k) => `    ${k.node} (${k.op}, rank ${k.rank}, ${signed(k.gainDb)} dB output SQNR when it alone stays float)`),
    `  16-bit activations (${report.int16.length}):`,
    ...report.int16.map((k) => `    ${k.node} (${k.op}, ${signed(k.int16GainDb ?? NaN)} dB output SQNR when it alone gets 16 bits)`),
    `  search steps (float + 16-bit nodes → top-1): ${report.steps.map((s) => `${s.float}+${s.int16}→${s.top1.toFixed(2)}%${s.met ? "✓" : ""}`).join("  ")}`,
    ...(held
      ? [
          `  holdout (t10k images 2000..${1999 + held.samples}, not seen by the search): FP32 ${held.fp32.toFixed(2)} %`,
          `    default INT8 ${held.defaultInt8.toFixed(2)} % (drop ${d(held.defaultDrop)}), searched ${held.searched.toFixed(2)} % (drop ${d(held.searchedDrop)})`,
        ]
      : []),
    `  wall: calibrate ${report.seconds.calibrate.toFixed(1)} s, default INT8 eval ${report.seconds.defaultInt8.toFixed(1)} s, search ${report.seconds.search.toFixed(1)} s, total ${report.seconds.total.toFixed(1)} s`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
