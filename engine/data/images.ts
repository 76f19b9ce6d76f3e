// Image folders (PNG via pngjs, JPEG via jpeg-js, both pure JS) turned into float feeds for a single-input image
// model: decode, convert to the model's channel count, resize, scale/normalize, lay out as NCHW or NHWC, batch.

import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { kMaxLength } from "node:buffer";
import { inflateSync } from "node:zlib";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { DataType } from "../onnx/dtype";
import { checkFeeds, DataError, formatShape, type Feeds } from "./feeds";
import { checkFeedBytes, limitOf, overLimit, type Limits } from "../onnx/limits";
import { inputSpecs, type ModelInputsSource } from "./feeds";

export interface ImageOptions {
  /** Target [height, width]; default: the model input's fixed H and W. */
  size?: readonly [number, number];
  /** Default: NCHW when the model's dim 1 is 1 or 3, NHWC when its last dim is. */
  layout?: "NCHW" | "NHWC";
  /** 1 (luma, as PIL's "L") or 3 (RGB); default: the model's channel dim. */
  channels?: 1 | 3;
  /** Resampling (default bilinear with half-pixel centers, as torch's align_corners=False without antialias). */
  resize?: "bilinear" | "nearest";
  /** Pixel values are multiplied by this first (default 1/255). */
  scale?: number;
  /** Then (x - mean[c]) / std[c] per channel (one value applies to all channels). */
  mean?: readonly number[];
  std?: readonly number[];
  /** Images per batch when the model's batch dim is dynamic (default 16). */
  batchSize?: number;
  /** Where warnings go (images left over when the batch is fixed); default process.emitWarning. */
  warn?: (message: string) => void;
  /** Overrides of imagePixels and feedBytes (engine/onnx/limits.ts; docs/limits.md). */
  limits?: Limits;
}

interface Decoded {
  width: number;
  height: number;
  rgba: Uint8Array;
}

export interface ImageHeader {
  width: number;
  height: number;
  /** PNG Adam7 interlacing: pngjs inflates such images without an output bound, so we bound it first. */
  interlaced: boolean;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Every chunk of a PNG (type, data), as far as the bytes go. */
function* pngChunks(b: Uint8Array): Generator<[string, Uint8Array]> {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 8; p + 8 <= b.length; ) {
    const len = v.getUint32(p);
    const type = String.fromCharCode(...b.subarray(p + 4, p + 8));
    yield [type, b.subarray(p + 8, Math.min(b.length, p + 8 + len))];
    if (type === "IEND") return;
    p += 12 + len;
  }
}

/**
 * The size a PNG (its IHDR; the largest, should there be several) or a JPEG (its SOFn frame headers) declares,
 * read without decoding; undefined when there is none (the decoder then reports what is wrong).
 */
export function imageHeader(b: Uint8Array): ImageHeader | undefined {
  const found: ImageHeader[] = [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (PNG_SIGNATURE.every((x, i) => b[i] === x)) {
    for (const [type, d] of pngChunks(b)) {
      if (type !== "IHDR" || d.length < 13) continue;
      const at = d.byteOffset - b.byteOffset;
      found.push({ width: v.getUint32(at), height: v.getUint32(at + 4), interlaced: d[12] === 1 });
    }
  } else if (b[0] === 0xff && b[1] === 0xd8) {
    for (let p = 2; p + 4 <= b.length && b[p] === 0xff; ) {
      const m = b[p + 1]!;
      if (m === 0xd9 || m === 0xda) break; // end of image, start of scan: frame headers come before
      if (m === 0xff || m === 0x01 || m === 0xd8 || (m >= 0xd0 && m <= 0xd7)) {
        p += m === 0xff ? 1 : 2; // a fill byte, or a marker without a length
        continue;
      }
      // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): length, precision, height, width.
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc && p + 9 <= b.length) {
        found.push({ width: v.getUint16(p + 7), height: v.getUint16(p + 5), interlaced: false });
      }
      p += 2 + v.getUint16(p + 2);
    }
  }
  if (found.length === 0) return undefined;
  const largest = found.reduce((x, y) => (y.width * y.height > x.width * x.height ? y : x));
  return { ...largest, interlaced: found.some((h) => h.interlaced) };
}

/** Refuses an image whose declared size passes the pixel limit, or whose PNG data inflates past what that holds. */
function checkImage(bytes: Uint8Array, file: string, maxPixels: number): void {
  const h = imageHeader(bytes);
  if (!h) return;
  const pixels = h.width * h.height;
  if (pixels > maxPixels) throw overLimit("imagePixels", `${file}: declares ${h.width}×${h.height} =`, pixels, maxPixels);
  if (!h.interlaced) return; // pngjs bounds the inflated size of non-interlaced images itself
  // 16-bit RGBA is 8 bytes a pixel; Adam7's seven passes add at most two bytes a row (filter type, rounding).
  const most = Math.min(8 * pixels + 4 * h.height + 64, kMaxLength);
  const idat = Buffer.concat([...pngChunks(bytes)].filter(([t]) => t === "IDAT").map(([, d]) => d));
  try {
    inflateSync(idat, { maxOutputLength: most });
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new DataError(`${file}: its image data inflates past the ${most} bytes a ${h.width}×${h.height} image can hold; the file is corrupt or hostile`);
    }
    // Other zlib errors: pngjs reports them when decoding.
  }
}

function decode(file: string, maxPixels: number): Decoded {
  const bytes = readFileSync(file);
  checkImage(bytes, file, maxPixels);
  try {
    if (/\.png$/i.test(file)) {
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, rgba: png.data };
    }
    // jpeg-js checks its own frame size too, should our scan of the markers have missed one.
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024, maxResolutionInMP: maxPixels / 1e6 });
    return { width: img.width, height: img.height, rgba: img.data };
  } catch (e) {
    throw new DataError(`${file}: cannot decode the image (${(e as Error).message})`);
  }
}

/** Planar float channels [c][y][x] of the source image, 0..255. */
function planes(img: Decoded, channels: 1 | 3): Float32Array[] {
  const n = img.width * img.height;
  const out = Array.from({ length: channels }, () => new Float32Array(n));
  const p = img.rgba;
  for (let i = 0; i < n; i++) {
    const r = p[4 * i]!;
    const g = p[4 * i + 1]!;
    const b = p[4 * i + 2]!;
    if (channels === 1) out[0]![i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; // PIL's L conversion
    else [out[0]![i], out[1]![i], out[2]![i]] = [r, g, b];
  }
  return out;
}

/** Resamples one plane from (sh, sw) to (dh, dw). */
function resizePlane(src: Float32Array, sh: number, sw: number, dh: number, dw: number, mode: "bilinear" | "nearest"): Float32Array {
  if (sh === dh && sw === dw) return src;
  const out = new Float32Array(dh * dw);
  const ry = sh / dh;
  const rx = sw / dw;
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      if (mode === "nearest") {
        out[y * dw + x] = src[Math.min(sh - 1, Math.floor(y * ry)) * sw + Math.min(sw - 1, Math.floor(x * rx))]!;
        continue;
      }
      const fy = Math.max(0, (y + 0.5) * ry - 0.5);
      const fx = Math.max(0, (x + 0.5) * rx - 0.5);
      const y0 = Math.min(sh - 1, Math.floor(fy));
      const x0 = Math.min(sw - 1, Math.floor(fx));
      const y1 = Math.min(sh - 1, y0 + 1);
      const x1 = Math.min(sw - 1, x0 + 1);
      const wy = fy - y0;
      const wx = fx - x0;
      const top = src[y0 * sw + x0]! * (1 - wx) + src[y0 * sw + x1]! * wx;
      const bottom = src[y1 * sw + x0]! * (1 - wx) + src[y1 * sw + x1]! * wx;
      out[y * dw + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

/** How pixels become an image model's input: what a training pipeline's transforms set (CLI: --image-*). */
export type ImageNormalization = Pick<ImageOptions, "scale" | "mean" | "std" | "layout" | "resize" | "size">;

/** What readImageFolder makes of a model's input and the options: one reading, told to the user as it is done. */
export interface ImagePlan {
  input: string;
  layout: "NCHW" | "NHWC";
  height: number;
  width: number;
  channels: 1 | 3;
  scale: number;
  mean: readonly number[];
  std: readonly number[];
  resize: "bilinear" | "nearest";
}

const isChannelDim = (d: unknown) => d === 1 || d === 3;
const fixedDim = (d: unknown) => (typeof d === "number" && d > 0 ? d : undefined);

/** The reading of images for `model`'s single rank-4 float input; `where` names the data in errors. */
export function imagePlan(where: string, model: ModelInputsSource, options: ImageOptions = {}): ImagePlan {
  const specs = inputSpecs(model);
  const spec = specs[0];
  if (specs.length !== 1 || !spec) throw new DataError(`${where}: image folders feed single-input models only`);
  const shape = spec.shape;
  if (spec.elemType !== DataType.FLOAT || !shape || shape.length !== 4) {
    throw new DataError(`${where}: input "${spec.name}" must be a float tensor of rank 4 for images, got shape ${formatShape(shape)}`);
  }
  const layout = options.layout ?? (isChannelDim(shape[1]) ? "NCHW" : isChannelDim(shape[3]) ? "NHWC" : undefined);
  if (!layout) throw new DataError(`input "${spec.name}" ${formatShape(shape)}: cannot tell NCHW from NHWC; pass options.layout (ptq: --image-layout)`);
  const [hDim, wDim, cDim] = layout === "NCHW" ? [shape[2], shape[3], shape[1]] : [shape[1], shape[2], shape[3]];
  const height = options.size?.[0] ?? fixedDim(hDim);
  const width = options.size?.[1] ?? fixedDim(wDim);
  if (!height || !width) throw new DataError(`input "${spec.name}" ${formatShape(shape)} has no fixed height/width; pass options.size (ptq: --image-size HxW)`);
  const channels = options.channels ?? (isChannelDim(cDim) ? (cDim as 1 | 3) : 3);
  const mean = options.mean ?? [0];
  const std = options.std ?? [1];
  for (const [name, v] of [["mean", mean], ["std", std]] as const) {
    if ((v.length !== 1 && v.length !== channels) || !v.every(Number.isFinite)) {
      throw new DataError(`${where}: image ${name} [${v.join(", ")}] for input "${spec.name}" with ${channels} channel(s): give one number, or one per channel`);
    }
  }
  if (std.some((x) => x === 0)) throw new DataError(`${where}: image std [${std.join(", ")}] holds a 0; each pixel is divided by it`);
  const scale = options.scale ?? 1 / 255;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new DataError(`${where}: image scale ${scale}: give a positive number (1/255 maps 0–255 to 0–1)`);
  return { input: spec.name, layout, height, width, channels, scale, mean, std, resize: options.resize ?? "bilinear" };
}

const short = (x: number) => (Number.isInteger(x) ? String(x) : Math.abs(x - 1 / 255) < 1e-12 ? "1/255" : String(Number(x.toPrecision(6))));

/** One line for the user: how a pixel becomes the input's value ("(pixel × 1/255 − 0.5) / 1, RGB, NCHW 1024×1024 bilinear"). */
export function describeImagePlan(p: ImagePlan): string {
  const per = (v: readonly number[]) => (v.length === 1 ? short(v[0]!) : `[${v.map(short).join(", ")}]`);
  return `input "${p.input}" = (pixel × ${short(p.scale)} − ${per(p.mean)}) / ${per(p.std)}, ${p.channels === 1 ? "gray" : "RGB"}, ` +
    `${p.layout} ${p.height}×${p.width} (${p.resize} resize)`;
}

/**
 * A folder of .png/.jpg/.jpeg images (natural file order) as batches for a single-input float model of rank 4.
 * With a fixed model batch b, images left over after the last full batch are dropped with a warning.
 */
export function* readImageFolder(dir: string, model: ModelInputsSource, options: ImageOptions = {}): Generator<Feeds> {
  const specs = inputSpecs(model);
  const { input, layout, height: h, width: w, channels, scale, mean, std, resize } = imagePlan(dir, model, options);
  const fixedBatch = fixedDim(specs[0]!.shape![0]);
  const batch = fixedBatch ?? options.batchSize ?? 16;

  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new DataError(`${dir}: not a folder`);
  const files = readdirSync(dir)
    .filter((f) => /\.(png|jpe?g)$/i.test(f))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
    .map((f) => path.join(dir, f));
  if (files.length === 0) throw new DataError(`${dir}: no .png/.jpg/.jpeg images in this folder`);
  const per = h * w * channels;
  const maxPixels = limitOf("imagePixels", options.limits);
  const largest = Math.min(batch, files.length);
  const largestDims = layout === "NCHW" ? [largest, channels, h, w] : [largest, h, w, channels];
  checkFeedBytes([{ name: input, dims: largestDims, bytesPerElement: 4 }], `${dir}: a batch of ${largest} image(s)`, options.limits);
  for (let s = 0; s < files.length; s += batch) {
    const group = files.slice(s, s + batch);
    if (fixedBatch && group.length < fixedBatch) {
      (options.warn ?? ((m: string) => process.emitWarning(m)))(
        `${dir}: the model's batch is fixed at ${fixedBatch}; the last ${group.length} image(s) were not used`,
      );
      break;
    }
    const data = new Float32Array(group.length * per);
    group.forEach((file, k) => {
      const img = decode(file, maxPixels);
      const ps = planes(img, channels).map((pl) => resizePlane(pl, img.height, img.width, h, w, resize));
      for (let c = 0; c < channels; c++) {
        const m = mean[c] ?? mean[0]!;
        const sd = std[c] ?? std[0]!;
        const plane = ps[c]!;
        for (let i = 0; i < h * w; i++) {
          const v = (plane[i]! * scale - m) / sd;
          data[k * per + (layout === "NCHW" ? c * h * w + i : i * channels + c)] = v;
        }
      }
    });
    const dims = layout === "NCHW" ? [group.length, channels, h, w] : [group.length, h, w, channels];
    const feeds: Feeds = { [input]: { data, dims, type: "float32" } };
    checkFeeds(feeds, specs, `${group[0]}${group.length > 1 ? ` .. ${path.basename(group.at(-1)!)}` : ""}`);
    yield feeds;
  }
}
