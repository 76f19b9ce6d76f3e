// A corpus model's generated inputs written to a folder, for measuring `ptq quantize` on them by hand: the corpus's
// own calibration samples (seed 1), held-out ones (another seed), or the same generators at another input size
// (a model with symbolic height and width, as the PP-OCR detectors, at the size its users feed it), one .npy per
// sample or all of them stacked in one file.
//
//   node --import tsx bench/corpus/samples.ts --model ID --out DIR [--count 16] [--seed 1] [--shape 1,3,960,960]
//        [--stacked]
//
// --shape replaces the shape of the model's first input (the corpus's is in bench/corpus/models.json); --stacked
// writes DIR/samples.npy with the samples along the first axis (single-input models). docs/BENCHMARKS.md's
// thirty-first session: ppocr-v3-det-en, --count 16 --shape 1,3,960,960, with and without --stacked.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stackRows } from "../../engine/calibrate/rows";
import { encodeNpy } from "../../engine/data/npy";
import { byId, ensureFetched, loadCatalog, type CorpusModel } from "./catalog";
import { FrontEnd, makeSamples, writeSamples, type Sample } from "./inputs";

export interface SamplesOptions {
  count: number;
  seed: number;
  /** The first input's shape instead of the catalog's. */
  shape?: number[];
  stacked?: boolean;
}

/** `m` with its first input's shape replaced (the generators draw to the shape they are given). */
export function reshaped(m: CorpusModel, shape: readonly number[] | undefined): CorpusModel {
  if (!shape) return m;
  const first = m.inputs[0]!;
  if (shape.length !== first.shape.length) throw new Error(`--shape ${shape.join(",")}: ${m.id}'s input "${first.name}" has rank ${first.shape.length} (${first.shape.join(",")})`);
  return { ...m, inputs: [{ ...first, shape: [...shape] }, ...m.inputs.slice(1)] };
}

/** Every sample's single input stacked along the first axis, as one .npy's bytes. */
export function stackedNpy(samples: readonly Sample[]): Uint8Array {
  const names = Object.keys(samples[0] ?? {});
  if (names.length !== 1) throw new Error(`--stacked needs a model with one input; this one has ${names.length}`);
  if (!(samples[0]![names[0]!]!.data instanceof Float32Array)) throw new Error(`--stacked writes float32 inputs; "${names[0]}" is not`);
  const t = stackRows(samples)[names[0]!]!;
  return encodeNpy(t.data as Float32Array, t.dims);
}

/** Writes `m`'s samples into `dir` (created); returns the paths written. */
export async function writeCorpusSamples(m: CorpusModel, dir: string, o: SamplesOptions, fe: FrontEnd): Promise<string[]> {
  const samples = await makeSamples(reshaped(m, o.shape), o.count, o.seed, fe);
  if (!o.stacked) return writeSamples(dir, samples);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "samples.npy");
  writeFileSync(file, stackedNpy(samples));
  return [file];
}

async function main(argv: string[]): Promise<void> {
  let id: string | undefined;
  let out: string | undefined;
  const o: SamplesOptions = { count: 16, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const value = () => argv[++i] ?? "";
    if (f === "--model") id = value();
    else if (f === "--out") out = value();
    else if (f === "--count") o.count = Number(value());
    else if (f === "--seed") o.seed = Number(value());
    else if (f === "--shape") o.shape = value().split(",").map(Number);
    else if (f === "--stacked") o.stacked = true;
    else throw new Error(`unknown flag ${f}`);
  }
  if (!id || !out) throw new Error("usage: bench/corpus/samples.ts --model ID --out DIR [--count 16] [--seed 1] [--shape 1,3,960,960] [--stacked]");
  if (!Number.isInteger(o.count) || o.count < 1) throw new Error(`--count must be a positive integer`);
  if (o.shape?.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`--shape takes positive integers, e.g. 1,3,960,960`);
  const catalog = loadCatalog();
  const m = byId(catalog, id);
  // The audio front ends run other corpus models (melspectrogram, embedding).
  ensureFetched([m.id]);
  const fe = new FrontEnd(catalog);
  try {
    const written = await writeCorpusSamples(m, out, o, fe);
    console.log(`wrote ${written.length} file(s) to ${out}`);
  } finally {
    await fe.dispose();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}
