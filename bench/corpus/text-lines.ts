// Real text lines for the corpus' text recognisers: a seeded generator of short labelled strings (words, numbers,
// prices, dates, codes; mixed case and punctuation) and a renderer (@napi-rs/canvas, DejaVu fonts) that draws one
// as a detector's crop would show it — a face and size, ink and paper colours, small offsets and tilt, mild blur and
// noise, 8-bit pixels — then preprocesses it as PaddleOCR's recogniser does: height 48 keeping the aspect ratio,
// width at most the input's (wider lines squeezed), (x/255 − mean)/std per channel, zeros to the right.
// Same seed, same label and pixels. Only the faces of Debian's fonts-dejavu-core are used (CI installs that package;
// without it, the same faces from the npm package dejavu-fonts-ttf: dejavuDir); a condensed face is the regular one
// drawn narrower, as fonts-dejavu-core has no condensed file.
import { existsSync } from "node:fs";
import path from "node:path";
import { createCanvas, GlobalFonts, type SKRSContext2D } from "@napi-rs/canvas";

type Rand = () => number;

/** Where Debian's fonts-dejavu-core puts its fonts. */
export const DEBIAN_DEJAVU = "/usr/share/fonts/truetype/dejavu";

/**
 * The folder of DejaVu fonts lines are drawn in: PTQ_DEJAVU_DIR, else Debian's fonts-dejavu-core (what CI installs,
 * so the corpus' figures stay those of its font files), else the TrueType files of the npm package dejavu-fonts-ttf
 * (a dev dependency: a fresh machine after `npm ci`, without the Debian package, still draws lines; the same faces,
 * built apart, so pixels may differ from Debian's by a little).
 */
export function dejavuDir(env: NodeJS.ProcessEnv = process.env, debian = DEBIAN_DEJAVU): string {
  if (env.PTQ_DEJAVU_DIR) return env.PTQ_DEJAVU_DIR;
  const holdsFaces = (dir: string) => FACES.every((f) => existsSync(path.join(dir, `${f}.ttf`)));
  if (holdsFaces(debian)) return debian;
  return holdsFaces(NPM_DEJAVU) ? NPM_DEJAVU : debian;
}

/** The TrueType folder of the npm package dejavu-fonts-ttf in the repository's node_modules. */
export const NPM_DEJAVU = path.resolve(__dirname, "..", "..", "node_modules", "dejavu-fonts-ttf", "ttf");

/** The faces lines are drawn in: every font file of fonts-dejavu-core. */
export const FACES = ["DejaVuSans", "DejaVuSans-Bold", "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSansMono", "DejaVuSansMono-Bold"] as const;

/** Printable ASCII: the characters the generator draws from (PaddleOCR's English dictionary holds them all). */
export const PRINTABLE_ASCII = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("");

/** Font files registered with the canvas, by face. */
const registered = new Map<string, string>();

/** Registers the DejaVu faces with the canvas once, under their file names; a missing file is a clear error. */
function registerFonts(): void {
  const dir = dejavuDir();
  for (const face of FACES) {
    const file = path.join(dir, `${face}.ttf`);
    if (registered.get(face) === file) continue;
    if (!existsSync(file)) {
      throw new Error(`text lines are rendered in DejaVu fonts and ${file} is missing: install Debian's fonts-dejavu-core (apt-get install fonts-dejavu-core) or the dev dependencies (npm ci: dejavu-fonts-ttf), or set PTQ_DEJAVU_DIR to a folder holding ${FACES.map((f) => `${f}.ttf`).join(", ")}`);
    }
    if (!GlobalFonts.registerFromPath(file, `ptq-${face}`)) throw new Error(`@napi-rs/canvas could not load the font ${file}: is it a TrueType file? Reinstall fonts-dejavu-core`);
    registered.set(face, file);
  }
}

// ---------- text ----------

const WORDS = (
  "the of and to in is for on with as by at from or an be this that are was not all new more one can has will " +
  "about your our you they we it its his her which their time year day week month page total price order item " +
  "name date number address phone email city state street road north south east west main first last next open " +
  "close exit entry enter left right up down stop slow parking store shop sale off free only per each per cent " +
  "water coffee tea bread milk cheese apple orange sugar salt paper book table chair door window room floor hall " +
  "office bank hotel station airport train bus ticket gate platform hours monday friday sunday january march july " +
  "october december service customer account balance amount invoice receipt payment card cash change tax net " +
  "weight size color black white red green blue small large medium high low quality model serial version system " +
  "data report summary status ready warning error press push pull keep clear private public welcome thank please " +
  "open daily night morning evening menu lunch dinner special fresh hot cold"
).split(" ");

const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const digits = (r: Rand, n: number) => Array.from({ length: n }, () => String(int(r, 0, 9))).join("");
const letters = (r: Rand, n: number) => Array.from({ length: n }, () => String.fromCharCode(65 + int(r, 0, 25))).join("");

function cased(r: Rand, w: string): string {
  const t = r();
  if (t < 0.5) return w;
  if (t < 0.8) return w[0]!.toUpperCase() + w.slice(1);
  return w.toUpperCase();
}

function number(r: Rand): string {
  switch (int(r, 0, 9)) {
    case 0:
      return `$${int(r, 0, 999)}.${digits(r, 2)}`;
    case 1:
      return `${int(r, 1, 99)}%`;
    case 2:
      return `${int(r, 1, 28)}/${int(r, 1, 12)}/${int(r, 1990, 2030)}`;
    case 3:
      return `${int(r, 1990, 2030)}-${String(int(r, 1, 12)).padStart(2, "0")}-${String(int(r, 1, 28)).padStart(2, "0")}`;
    case 4:
      return `${int(r, 0, 23)}:${String(int(r, 0, 59)).padStart(2, "0")}`;
    case 5:
      return `${int(r, 1, 9)},${digits(r, 3)}`;
    case 6:
      return `${int(r, 0, 99)}.${digits(r, int(r, 1, 3))}`;
    case 7:
      return `(${digits(r, 3)}) ${digits(r, 3)}-${digits(r, 4)}`;
    default:
      return String(int(r, 0, 10 ** int(r, 1, 5)));
  }
}

function code(r: Rand): string {
  switch (int(r, 0, 6)) {
    case 0:
      return `${letters(r, int(r, 1, 3))}-${digits(r, int(r, 2, 5))}`;
    case 1:
      return `#${digits(r, int(r, 2, 6))}`;
    case 2:
      return `v${int(r, 0, 9)}.${int(r, 0, 20)}.${int(r, 0, 9)}`;
    case 3:
      return `${pick(r, WORDS)}@${pick(r, WORDS)}.${pick(r, ["com", "org", "net", "io"])}`;
    case 4:
      return `www.${pick(r, WORDS)}${pick(r, WORDS)}.com`;
    case 5:
      return `${letters(r, 2)}${digits(r, 4)}${letters(r, 1)}`;
    default:
      return `[${pick(r, WORDS).toUpperCase()}]`;
  }
}

function phrase(r: Rand): string {
  const n = int(r, 1, 4);
  const words = Array.from({ length: n }, () => cased(r, pick(r, WORDS)));
  if (r() < 0.3) words[int(r, 0, n - 1)] = number(r);
  let s = words.join(" ");
  const t = r();
  if (t < 0.25) s += pick(r, [".", ",", ":", ";", "!", "?", "..."]);
  else if (t < 0.32) s = `"${s}"`;
  else if (t < 0.38) s = `(${s})`;
  else if (t < 0.45) s = `${s} - ${number(r)}`;
  else if (t < 0.5) s = `${s}: ${code(r)}`;
  return s;
}

/** A seeded text line of 3–25 printable ASCII characters: a phrase (most), a number or a code. */
export function textOf(r: Rand): string {
  for (;;) {
    const t = r();
    const s = t < 0.65 ? phrase(r) : t < 0.85 ? number(r) : code(r);
    if (s.length >= 3 && s.length <= 25) return s;
  }
}

// ---------- pixels ----------

export interface TextLineOptions {
  /** Input height and width (PaddleOCR's recognisers: 48 × 320). */
  height?: number;
  width?: number;
  /** Per-channel normalisation of x/255: (x/255 − mean) / std (PaddleOCR: 0.5, 0.5). */
  mean?: readonly number[];
  std?: readonly number[];
}

export interface TextLine {
  /** What the line says. */
  label: string;
  /** [1, 3, height, width], channels R, G, B. */
  data: Float32Array;
  dims: [1, 3, number, number];
  /** Columns holding the resized crop; the rest is padding (zeros). */
  contentWidth: number;
  face: string;
}

const uniform = (r: Rand, lo: number, hi: number) => lo + (hi - lo) * r();
const rgb = (c: readonly number[]) => `rgb(${c.map((v) => Math.round(255 * Math.min(1, Math.max(0, v)))).join(",")})`;
const luma = (c: readonly number[]) => 0.299 * c[0]! + 0.587 * c[1]! + 0.114 * c[2]!;

/** Paper and ink: light paper with dark ink most often, sometimes light ink on dark; luminance apart by ≥ 0.35. */
function colours(r: Rand): { paper: number[]; ink: number[] } {
  const tint = () => [uniform(r, -0.08, 0.08), uniform(r, -0.08, 0.08), uniform(r, -0.08, 0.08)];
  for (;;) {
    const [a, b] = [tint(), tint()];
    const light = uniform(r, 0.6, 1);
    const dark = uniform(r, 0, 0.4);
    const inverted = r() < 0.15;
    const paper = a.map((t) => (inverted ? dark : light) + t);
    const ink = r() < 0.2 ? [r(), r(), r()].map((v) => (inverted ? 0.6 + 0.4 * v : 0.45 * v)) : b.map((t) => (inverted ? light : dark) + t);
    if (Math.abs(luma(paper) - luma(ink)) >= 0.35) return { paper, ink };
  }
}

/** Draws `label` as a detector's crop of it at the source resolution: returns the canvas. */
function drawCrop(r: Rand, label: string, face: string) {
  const size = uniform(r, 14, 44);
  const squeeze = r() < 0.25 ? uniform(r, 0.78, 0.9) : 1;
  const probe = createCanvas(8, 8).getContext("2d");
  probe.font = `${size.toFixed(2)}px ptq-${face}`;
  const m = probe.measureText(label);
  const ascent = m.fontBoundingBoxAscent;
  const descent = m.fontBoundingBoxDescent;
  const [top, bottom] = [uniform(r, 0.05, 0.35) * size, uniform(r, 0.05, 0.3) * size];
  const [left, right] = [uniform(r, 0.05, 0.4) * size, uniform(r, 0.05, 0.4) * size];
  const w = Math.ceil(left + m.width * squeeze + right);
  const h = Math.ceil(top + ascent + descent + bottom);
  const canvas = createCanvas(w, h);
  const ctx = canvas.getContext("2d");
  const { paper, ink } = colours(r);
  const g = ctx.createLinearGradient(0, 0, w * uniform(r, 0.5, 1.5), h * uniform(r, -1, 1));
  const shade = uniform(r, -0.12, 0.12);
  g.addColorStop(0, rgb(paper));
  g.addColorStop(1, rgb(paper.map((v) => v + shade)));
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, w, h);
  if (r() < 0.1) rule(ctx, r, w, h, ink);
  ctx.fillStyle = rgb(ink);
  ctx.font = probe.font;
  ctx.translate(left, top + ascent + uniform(r, -0.08, 0.08) * size);
  ctx.rotate((uniform(r, -1.5, 1.5) * Math.PI) / 180);
  ctx.scale(squeeze, 1);
  ctx.fillText(label, 0, 0);
  return canvas;
}

/** A table rule or box edge cut by the crop, at its top or bottom. */
function rule(ctx: SKRSContext2D, r: Rand, w: number, h: number, ink: readonly number[]): void {
  ctx.fillStyle = rgb(ink.map((v) => v + 0.2));
  const y = r() < 0.5 ? uniform(r, 0, 2) : h - uniform(r, 1, 3);
  ctx.fillRect(0, y, w, uniform(r, 0.8, 1.6));
}

/** One labelled text line, rendered and preprocessed; `r` decides everything (same seed, same pixels). */
export function renderTextLine(r: Rand, o: TextLineOptions = {}, label = textOf(r)): TextLine {
  registerFonts();
  const [height, width] = [o.height ?? 48, o.width ?? 320];
  const mean = o.mean ?? [0.5, 0.5, 0.5];
  const std = o.std ?? [0.5, 0.5, 0.5];
  const face = FACES[Math.floor(r() * FACES.length)]!;
  const crop = drawCrop(r, label, face);
  const contentWidth = Math.max(1, Math.min(width, Math.ceil((height * crop.width) / crop.height)));
  const small = createCanvas(contentWidth, height);
  const sctx = small.getContext("2d");
  sctx.imageSmoothingEnabled = true;
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(crop, 0, 0, contentWidth, height);
  const rgba = sctx.getImageData(0, 0, contentWidth, height).data;
  const pix = blurAndNoise(rgba, contentWidth, height, r);
  const data = new Float32Array(3 * height * width);
  for (let ch = 0; ch < 3; ch++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < contentWidth; x++) data[(ch * height + y) * width + x] = (pix[(y * contentWidth + x) * 3 + ch]! / 255 - mean[ch]!) / std[ch]!;
    }
  }
  return { label, data, dims: [1, 3, height, width], contentWidth, face };
}

/** Mild separable blur (centre weight 1, neighbours 0–0.35) and noise (σ 0–5 of 255), rounded to 8-bit RGB. */
function blurAndNoise(rgba: Uint8ClampedArray, w: number, h: number, r: Rand): Uint8Array {
  const k = r() < 0.5 ? 0 : uniform(r, 0.05, 0.35);
  const sd = uniform(r, 0, 5);
  const src = Float32Array.from({ length: w * h * 3 }, (_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)]!);
  const tmp = new Float32Array(src.length);
  const at = (a: Float32Array, x: number, y: number, c: number) => a[(Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))) * 3 + c]!;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) tmp[(y * w + x) * 3 + c] = (at(src, x, y, c) + k * (at(src, x - 1, y, c) + at(src, x + 1, y, c))) / (1 + 2 * k);
  const out = new Uint8Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const v = (at(tmp, x, y, c) + k * (at(tmp, x, y - 1, c) + at(tmp, x, y + 1, c))) / (1 + 2 * k);
        out[(y * w + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(v + sd * (r() + r() + r() - 1.5) * 2)));
      }
    }
  }
  return out;
}
