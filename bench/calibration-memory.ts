// Peak RSS of calibration at 64, 256 and 1024 samples, for minmax, mse (the default) and entropy, observing every
// float activation of a model. Each configuration runs in a child process of its own (peak RSS only ever grows
// within a process).
// "keep-all" is the contrast: what ONNX Runtime's calibrators do (keep every batch's outputs until the end).
//
//   node --import tsx bench/calibration-memory.ts [--model test/fixtures/models/cnn.onnx | --synthetic | --corpus ID]
//        [--batch 16] [--samples 64,256,1024] [--methods minmax,mse,entropy,keep-all] [--path activations|quantize]
//        [--json]
//
// --corpus ID takes a corpus model (bench/corpus/models.json, fetched into ~/.cache/ptq-studio-corpus) and its
// generated calibration inputs (bench/corpus/inputs.ts: 8 seeded samples, cycled to the sample count, so the data
// held is the same at every count). --path quantize measures what `ptq quantize` does instead of observing every
// activation: prepare() (preprocessing, opset upgrade), calibrate() on the tensors quantization observes, batches
// of --batch samples (the CLI reads a folder of single-sample files with batch 32).
//
// --synthetic builds a plain conv net in code (input [N,3,64,64], 8 x Conv3x3(32)+Relu, random weights, written to
// a temp file): larger activations (~2 MiB per sample per layer pair) than the fixture CNN.
//
// Data: real calibration images from test/fixtures/data/calib/calib.npz when the model takes them (repeated to
// reach the sample count), else seeded random data.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Calibrator, type CalibrationMethod, type Feeds } from "../engine/calibrate/index";
import { augmentModel } from "../engine/calibrate/augment";
import { readNpz } from "../engine/data/readers";
import { randomData } from "../engine/data/random";
import { fixedBatchSize } from "../engine/data/feeds";
import { DataType } from "../engine/onnx/dtype";
import { Model } from "../engine/onnx/model";
import { attr, makeGraph, makeModel, makeNode, makeValueInfo } from "../engine/onnx/proto";
import { makeTensor } from "../engine/onnx/tensor";
import { createSession } from "../engine/runtime/session";
import { calibrate, prepare, release } from "../engine/quant/index";
import { byId, loadCatalog, modelPath as corpusModelPath } from "./corpus/catalog";
import { FrontEnd, makeSamples } from "./corpus/inputs";

type Mode = CalibrationMethod | "keep-all";
type Path = "activations" | "quantize";

interface ChildResult {
  model: string;
  mode: Mode;
  path: Path;
  samples: number;
  batch: number;
  tensors: number;
  baselineRssMiB: number;
  peakRssMiB: number;
  seconds: number;
}

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
};

/** Outputs of every node that computes float activations (shape/index ops left out). */
function activationTensors(model: Model): string[] {
  const skip = new Set(["Constant", "Shape", "Size", "NonZero", "ConstantOfShape", "ArgMax", "ArgMin", "TopK"]);
  return model.graph.node.filter((n) => !skip.has(n.opType)).flatMap((n) => n.output.filter((o) => o));
}

/**
 * A corpus model's first 8 generated calibration samples (seed 1), stacked into batches of `batch` and cycled. The
 * child runs with --expose-gc and collects before making each batch, so the peak measures what calibration holds,
 * not how late V8 collects the batches already done (39 MiB each for a detector at batch 32).
 */
async function corpusData(id: string, samples: number, batch: number): Promise<Generator<Feeds>> {
  const catalog = loadCatalog();
  const fe = new FrontEnd(catalog);
  const base = await makeSamples(byId(catalog, id), 8, 1, fe).finally(() => fe.dispose());
  const collect = (globalThis as { gc?: () => void }).gc;
  return (function* () {
    for (let produced = 0, k = 0; produced < samples; ) {
      const n = Math.min(batch, samples - produced);
      collect?.();
      const feeds: Record<string, Feeds[string]> = {};
      for (const name of Object.keys(base[0]!)) {
        const parts = Array.from({ length: n }, (_, i) => base[(k + i) % base.length]![name]!);
        const per = parts[0]!.data.length;
        const data = new (parts[0]!.data.constructor as new (len: number) => Float32Array)(per * n);
        parts.forEach((p, i) => data.set(p.data as Float32Array, i * per));
        feeds[name] = { data, dims: [n, ...parts[0]!.dims.slice(1)] };
      }
      k += n;
      produced += n;
      yield feeds;
    }
  })();
}

/** `samples` samples in batches of `batch`, read lazily: real calibration images cycled, or random data. */
function* data(model: Model, samples: number, batch: number): Generator<Feeds> {
  const npz = path.join("test", "fixtures", "data", "calib", "calib.npz");
  let produced = 0;
  if (existsSync(npz)) {
    try {
      while (produced < samples) {
        for (const f of readNpz(npz, model, { batchSize: batch })) {
          if (produced >= samples) return;
          yield f;
          produced += Object.values(f)[0]!.dims[0]!;
        }
      }
      return;
    } catch {
      // The fixture data does not fit this model: fall through to random data.
    }
  }
  yield* randomData(model, Math.ceil((samples - produced) / batch), { batchSize: batch, warn: () => {} });
}

async function child(): Promise<void> {
  const modelPath = arg("model", "");
  const mode = arg("mode", "minmax") as Mode;
  const samples = Number(arg("samples", "64"));
  const asked = Number(arg("batch", "16"));
  const corpus = arg("corpus", "");
  const where = arg("path", "activations") as Path;
  const model = await Model.load(modelPath);
  // A model exported with a fixed batch (tf2onnx: M-LSD, BlazeFace) takes batches of that size, as the CLI reads them.
  const batch = fixedBatchSize(model) ?? asked;
  let tensors = activationTensors(model);
  const t0 = performance.now();
  let baseline = 0;
  const batchesOf = async () => (corpus ? await corpusData(corpus, samples, batch) : data(model, samples, batch));
  if (where === "quantize") {
    if (mode === "keep-all") throw new Error("--path quantize measures the calibration methods, not keep-all");
    const prepared = await prepare(model, { calibration: { method: mode } });
    tensors = [...prepared.observe];
    // One calibrate() over every batch, as the CLI does: calibrate() ends with the measurements that choose what to
    // keep float (protected layers, weightType auto), and calling it twice would hold the first call's while the
    // second ran. The baseline is the RSS when the second batch is asked for (the session open, one batch seen).
    const batches = await batchesOf();
    let asked = 0;
    const once: Iterable<Feeds> = {
      [Symbol.iterator]: () => ({
        next: () => {
          if (++asked === 2) baseline = process.memoryUsage.rss();
          return batches.next();
        },
      }),
    };
    await calibrate(prepared, once);
    if (!baseline) baseline = process.memoryUsage.rss();
    await release(prepared);
  } else if (mode === "keep-all") {
    const { model: aug, outputs } = augmentModel(model, tensors, false);
    const session = await createSession(aug, { optimization: "disabled" });
    baseline = process.memoryUsage.rss();
    const kept: unknown[] = [];
    for (const feeds of await batchesOf()) {
      const r = await session.run(feeds, outputs.map((o) => o.raw!));
      kept.push(r); // what ORT's calibrators do: every output of every batch stays until ranges are computed
    }
    await session.dispose();
  } else {
    const cal = new Calibrator(model, tensors, { method: mode, onWarning: () => {} });
    const batches = await batchesOf();
    const first = batches.next();
    await cal.collect(first.done ? [] : [first.value]); // opens the session: the baseline includes it
    baseline = process.memoryUsage.rss();
    if (samples > batch) await cal.collect({ [Symbol.iterator]: () => batches });
    cal.ranges();
    await cal.dispose();
  }
  const result: ChildResult = {
    model: corpus || path.basename(modelPath),
    mode,
    path: where,
    samples,
    batch,
    tensors: tensors.length,
    baselineRssMiB: baseline / 2 ** 20,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    seconds: (performance.now() - t0) / 1000,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

/** 8 x (Conv 3x3, 32 channels, pad 1 + Relu) on [N,3,64,64], seeded random weights; saved to a temp folder. */
function syntheticModel(): string {
  let s = 1;
  const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.2;
  const nodes = [];
  const inits = [];
  let prev = "input";
  let cin = 3;
  for (let l = 0; l < 8; l++) {
    const w = makeTensor(`w${l}`, DataType.FLOAT, [32, cin, 3, 3], Array.from({ length: 32 * cin * 9 }, rand));
    inits.push(w);
    nodes.push(makeNode("Conv", [prev, `w${l}`], [`conv${l}`], { attributes: [attr.ints("pads", [1, 1, 1, 1])] }));
    nodes.push(makeNode("Relu", [`conv${l}`], [`relu${l}`]));
    prev = `relu${l}`;
    cin = 32;
  }
  const graph = makeGraph("synthetic", nodes, [makeValueInfo("input", DataType.FLOAT, ["N", 3, 64, 64])],
    [makeValueInfo(prev, DataType.FLOAT, ["N", 32, 64, 64])], { initializers: inits });
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), "ptq-calib-bench-")), "synthetic-conv8.onnx");
  Model.fromProto(makeModel(graph, { opsets: { "": 13 } })).saveSync(file);
  return file;
}

function parent(): void {
  const corpus = arg("corpus", "");
  const modelPath = process.argv.includes("--synthetic")
    ? syntheticModel()
    : corpus
      ? corpusModelPath(byId(loadCatalog(), corpus))
      : arg("model", path.join("test", "fixtures", "models", "cnn.onnx"));
  if (!existsSync(modelPath)) {
    console.error(`calibration-memory: ${modelPath} not found; pass --model PATH (or run the fixture scripts)`);
    process.exit(2);
  }
  const samples = arg("samples", "64,256,1024").split(",").map(Number);
  const modes = arg("methods", "minmax,mse,entropy,keep-all").split(",") as Mode[];
  const batch = arg("batch", "16");
  const rows: ChildResult[] = [];
  for (const mode of modes) {
    for (const n of samples) {
      const r = spawnSync(
        process.execPath,
        ["--expose-gc", "--import", "tsx", __filename, "--child", "--model", modelPath, "--mode", mode, "--samples", String(n), "--batch", batch,
          "--path", arg("path", "activations"), ...(corpus ? ["--corpus", corpus] : [])],
        { encoding: "utf8" },
      );
      if (r.status !== 0) {
        console.error(`${mode} @ ${n}: failed\n${r.stderr}`);
        process.exit(1);
      }
      rows.push(JSON.parse(r.stdout.trim().split("\n").pop()!) as ChildResult);
      if (!process.argv.includes("--json")) {
        const x = rows.at(-1)!;
        console.log(
          `${x.model} ${x.path} ${x.mode.padEnd(8)} samples=${String(x.samples).padStart(5)} batch=${x.batch} tensors=${x.tensors} ` +
            `rss after session=${x.baselineRssMiB.toFixed(0)} MiB peak=${x.peakRssMiB.toFixed(0)} MiB time=${x.seconds.toFixed(2)} s`,
        );
      }
    }
  }
  if (process.argv.includes("--json")) console.log(JSON.stringify(rows, null, 2));
  if (process.argv.includes("--synthetic")) rmSync(path.dirname(modelPath), { recursive: true, force: true });
}

if (process.argv.includes("--child")) {
  child().catch((e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  });
} else {
  parent();
}
