// Weight-only integer quantization in blocks along K (the first axis of a [K, N] MatMul weight), for 2–8 bits.
// Codes are stored unsigned (0 .. 2^bits - 1) with a zero point per block: value = (code - zp) * scale, the form
// both com.microsoft.MatMulNBits and an opset-21 uint4 DequantizeLinear consume.
import { roundHalfEven } from "./fp4";

/** gptq needs calibration data (see gptq.ts); rtn and hqq look at the weights only. */
export type BlockAlgorithm = "rtn" | "hqq" | "gptq";

export interface BlockQuantOptions {
  bits: number;
  blockSize: number;
  /** Symmetric: zero point fixed at 2^(bits-1) and the block's largest-magnitude value mapped to the most negative
   *  code, so all 2^bits levels are used (the MLAS convention). Asymmetric: min/max mapped to 0 .. 2^bits - 1. */
  symmetric: boolean;
  /** rtn: round to nearest. hqq: half-quadratic refinement of each block's zero point and scale (no data needed). */
  algorithm: BlockAlgorithm;
}

export interface BlockQuantized {
  k: number;
  n: number;
  bits: number;
  blockSize: number;
  /** [K, N] row-major, one unsigned code per element. */
  codes: Uint8Array;
  /** [ceil(K / blockSize), N]. */
  scales: Float32Array;
  /** [ceil(K / blockSize), N]. */
  zeroPoints: Uint8Array;
}

export function quantizeBlockwise(w: Float32Array, k: number, n: number, opts: BlockQuantOptions, name = "weight"): BlockQuantized {
  const { bits, blockSize } = opts;
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new Error(`${name}: bits must be an integer in 2..8, got ${bits}`);
  if (!Number.isInteger(blockSize) || blockSize < 2) throw new Error(`${name}: block size must be an integer ≥ 2, got ${blockSize}`);
  if (w.length !== k * n) throw new Error(`${name}: expected ${k}×${n} = ${k * n} values, got ${w.length}`);
  if (opts.algorithm === "gptq") throw new Error(`${name}: GPTQ needs the activations' Hessian: use gptqQuantize (lowbit/gptq)`);
  const kBlocks = Math.ceil(k / blockSize);
  const codes = new Uint8Array(k * n);
  const scales = new Float32Array(kBlocks * n);
  const zeroPoints = new Uint8Array(kBlocks * n);
  const block = new Float64Array(blockSize);
  const blockCodes = new Uint8Array(blockSize);
  for (let b = 0; b < kBlocks; b++) {
    const k0 = b * blockSize;
    const len = Math.min(k, k0 + blockSize) - k0;
    for (let c = 0; c < n; c++) {
      for (let i = 0; i < len; i++) {
        const v = w[(k0 + i) * n + c];
        if (!Number.isFinite(v)) throw new Error(`${name}: element [${k0 + i}, ${c}] is ${v}; weights must be finite`);
        block[i] = v;
      }
      const values = block.subarray(0, len);
      let p = rtnParams(values, bits, opts.symmetric, 1);
      if (opts.algorithm === "hqq") p = refineParams(values, bits, p, opts.symmetric);
      quantizeBlock(values, bits, p, blockCodes);
      for (let i = 0; i < len; i++) codes[(k0 + i) * n + c] = blockCodes[i];
      scales[b * n + c] = p.scale;
      zeroPoints[b * n + c] = p.zp;
    }
  }
  return { k, n, bits, blockSize, codes, scales, zeroPoints };
}

export function dequantizeBlockwise(q: BlockQuantized): Float32Array {
  const out = new Float32Array(q.k * q.n);
  for (let r = 0; r < q.k; r++) {
    const b = Math.floor(r / q.blockSize);
    for (let c = 0; c < q.n; c++) {
      const s = b * q.n + c;
      out[r * q.n + c] = (q.codes[r * q.n + c] - q.zeroPoints[s]) * q.scales[s];
    }
  }
  return out;
}

export interface BlockParams {
  scale: number;
  zp: number;
}

/** Round-to-nearest parameters for the block's range shrunk by `ratio` (1 = the full min/max range). */
export function rtnParams(v: Float64Array, bits: number, symmetric: boolean, ratio: number): BlockParams {
  const qmax = 2 ** bits - 1;
  if (symmetric) {
    // The value of largest magnitude, with its sign, maps to code 0 (i.e. -2^(bits-1) after the zero point).
    let far = 0;
    for (const x of v) if (Math.abs(x) > Math.abs(far)) far = x;
    const zp = 2 ** (bits - 1);
    return { scale: far === 0 ? 1 : Math.fround((far * ratio) / -zp), zp };
  }
  let lo = 0;
  let hi = 0; // the range always includes 0 so that exact zeros stay exact
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  if (hi === lo) return { scale: 1, zp: 0 };
  lo *= ratio;
  hi *= ratio;
  const scale = Math.fround((hi - lo) / qmax);
  const zp = Math.min(qmax, Math.max(0, roundHalfEven(-lo / scale)));
  return { scale, zp };
}

function quantizeBlock(v: Float64Array, bits: number, p: BlockParams, out: Uint8Array): void {
  const qmax = 2 ** bits - 1;
  for (let i = 0; i < v.length; i++) out[i] = Math.min(qmax, Math.max(0, roundHalfEven(v[i] / p.scale) + p.zp));
}

function blockError(v: Float64Array, bits: number, p: BlockParams): number {
  const qmax = 2 ** bits - 1;
  let err = 0;
  for (const x of v) {
    const q = Math.min(qmax, Math.max(0, roundHalfEven(x / p.scale) + p.zp));
    const d = x - (q - p.zp) * p.scale;
    err += d * d;
  }
  return err;
}

/**
 * The error-minimizing path: for a few clipping ratios of the block's range (outliers often cost more in rounding
 * error for every other weight than clipping them costs), start from round-to-nearest and refine with HQQ; keep
 * whichever candidate, the plain RTN one included, has the smallest squared error. Never worse than RTN.
 */
function refineParams(v: Float64Array, bits: number, rtn: BlockParams, symmetric: boolean): BlockParams {
  let best = rtn;
  let bestErr = blockError(v, bits, rtn);
  for (const ratio of CLIP_RATIOS) {
    const start = ratio === 1 ? rtn : rtnParams(v, bits, symmetric, ratio);
    for (const p of [start, hqqParams(v, bits, start, symmetric)]) {
      const err = blockError(v, bits, p);
      if (err < bestErr) {
        bestErr = err;
        best = p;
      }
    }
  }
  return best;
}

const HQQ_ITERATIONS = 10;
const CLIP_RATIOS = [1, 0.95, 0.9, 0.85, 0.8, 0.75];

/**
 * Half-quadratic quantization (Badri & Shaji, 2023): alternates between a sparsity-promoting ℓp (p = 0.7) shrinkage
 * of the quantization error and a closed-form update of the zero point, which makes the fit robust to the few
 * outliers that dominate a block's min/max. Our zero points must be integers (MatMulNBits and uint4 DQ store them as
 * codes), so the float zero is rounded at the end and the scale refitted by least squares for those codes.
 */
function hqqParams(v: Float64Array, bits: number, start: BlockParams, symmetric: boolean): BlockParams {
  const qmax = 2 ** bits - 1;
  const lpNorm = 0.7;
  const kappa = 1.01;
  let beta = 10;
  const invScale = 1 / start.scale;
  let zero = start.zp;
  let best = { ...start };
  let bestErr = blockError(v, bits, start);
  const q = new Float64Array(v.length);
  for (let iter = 0; iter < HQQ_ITERATIONS; iter++) {
    // Codes and the shrunk error for the current zero point.
    let sum = 0;
    for (let i = 0; i < v.length; i++) {
      q[i] = Math.min(qmax, Math.max(0, Math.round(v[i] * invScale + zero)));
      const e = v[i] - (q[i] - zero) / invScale;
      const shrunk = Math.sign(e) * Math.max(0, Math.abs(e) - Math.pow(Math.abs(e) + 1e-12, lpNorm - 1) / beta);
      sum += q[i] - (v[i] - shrunk) * invScale;
    }
    if (!symmetric) zero = sum / v.length;
    beta *= kappa;
    const candidate = refitScale(v, bits, symmetric ? start.zp : Math.min(qmax, Math.max(0, Math.round(zero))), invScale);
    const err = blockError(v, bits, candidate);
    if (err < bestErr) {
      bestErr = err;
      best = candidate;
    }
  }
  return best;
}

/** Least-squares scale for fixed codes: argmin_s Σ (x − (q − zp)·s)². */
function refitScale(v: Float64Array, bits: number, zp: number, invScale: number): BlockParams {
  const qmax = 2 ** bits - 1;
  let num = 0;
  let den = 0;
  for (const x of v) {
    const d = Math.min(qmax, Math.max(0, Math.round(x * invScale + zp))) - zp;
    num += x * d;
    den += d * d;
  }
  return { scale: den > 0 && num !== 0 ? Math.fround(num / den) : 1 / invScale, zp };
}
