// FP4 (E2M1) element codes and the two block-scaled formats built on them: OCP MXFP4 (32 elements share a
// power-of-two E8M0 scale) and NVIDIA NVFP4 (16 elements share an FP8-E4M3 scale, times one FP32 scale per tensor).
// Everything here is pure: weights in, codes and scales out, so it can be checked against hand-computed values.
import { float4e2m1, float8e4m3fn } from "../onnx/floatbits";

/** The eight E2M1 magnitudes, indexed by the low three bits of a code; bit 3 is the sign. */
export const E2M1_VALUES: readonly number[] = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
export const E2M1_MAX = 6;

/** All sixteen code values as a table (code → value); the decode subgraph gathers from it. */
export const E2M1_TABLE: Float32Array = Float32Array.from({ length: 16 }, (_, c) =>
  (c & 8 ? -1 : 1) * E2M1_VALUES[c & 7],
);

/**
 * Rounds `x` to the nearest E2M1 value and returns its 4-bit code: ties go to the even code (0.25 → 0, 0.75 → 1,
 * 2.5 → 2, 5 → 4), magnitudes beyond 6 saturate (the OCP MX conversion rule), -0 keeps its sign bit. NaN has no
 * E2M1 code: callers reject it first.
 */
export const encodeE2M1 = (x: number): number => float4e2m1.encode(x);
export const decodeE2M1 = (code: number): number => float4e2m1.decode(code);
/** FP8 E4M3FN (bias 7, no infinities, max 448), round half to even, saturating. */
export const encodeE4M3 = (x: number): number => float8e4m3fn.encode(x);
export const decodeE4M3 = (code: number): number => float8e4m3fn.decode(code);

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; step back to the even neighbour on an exact tie.
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export type Fp4Format = "mxfp4" | "nvfp4";

/** Codes and scales of a weight matrix quantized in blocks along its first axis (K of a [K, N] MatMul weight). */
export interface Fp4Blocks {
  format: Fp4Format;
  k: number;
  n: number;
  blockSize: number;
  /** One code per element, [K, N] row-major, values 0..15. */
  codes: Uint8Array;
  /** Effective per-block scale as a float, [ceil(K / blockSize), N]: value = E2M1(code) * scale. */
  scales: Float32Array;
  /** MXFP4: the E8M0 exponent bytes (value 2^(byte - 127)); NVFP4: the E4M3 bytes of the block scales. */
  scaleBytes: Uint8Array;
  /** NVFP4 only: the per-tensor FP32 scale that multiplies every decoded E4M3 block scale. */
  globalScale?: number;
}

export const FP4_BLOCK_SIZE: Record<Fp4Format, number> = { mxfp4: 32, nvfp4: 16 };

/**
 * Quantizes `w` ([K, N] row-major) to FP4 in blocks of `FP4_BLOCK_SIZE[format]` rows per column.
 * MXFP4: scale = 2^(floor(log2(amax)) - 2), the OCP rule that maps the block's largest magnitude into [4, 8) and
 * lets values above 6 saturate; an all-zero block gets 2^-127. NVFP4: global = amax(tensor) / (6 · 448); block scale
 * = E4M3(amax(block) / 6 / global), so the largest element of each block lands near ±6.
 * A trailing partial block (K not divisible by the block size) is handled as if padded with zeros.
 */
export function quantizeFp4(w: Float32Array, k: number, n: number, format: Fp4Format, name = "weight"): Fp4Blocks {
  if (w.length !== k * n) throw new Error(`${name}: expected ${k}×${n} = ${k * n} values, got ${w.length}`);
  const blockSize = FP4_BLOCK_SIZE[format];
  const kBlocks = Math.ceil(k / blockSize);
  const codes = new Uint8Array(k * n);
  const scales = new Float32Array(kBlocks * n);
  const scaleBytes = new Uint8Array(kBlocks * n);
  let globalScale: number | undefined;
  if (format === "nvfp4") {
    let amax = 0;
    for (let i = 0; i < w.length; i++) {
      if (!Number.isFinite(w[i])) throw new Error(`${name}: element ${i} is ${w[i]}; FP4 needs finite weights`);
      amax = Math.max(amax, Math.abs(w[i]));
    }
    globalScale = amax > 0 ? amax / (E2M1_MAX * 448) : 1;
  }
  for (let b = 0; b < kBlocks; b++) {
    const k0 = b * blockSize;
    const k1 = Math.min(k, k0 + blockSize);
    for (let c = 0; c < n; c++) {
      let amax = 0;
      for (let r = k0; r < k1; r++) {
        const v = w[r * n + c];
        if (!Number.isFinite(v)) throw new Error(`${name}: element [${r}, ${c}] is ${v}; FP4 needs finite weights`);
        amax = Math.max(amax, Math.abs(v));
      }
      let scale: number;
      if (format === "mxfp4") {
        const e = amax > 0 ? Math.max(-127, Math.min(127, Math.floor(Math.log2(amax)) - 2)) : -127;
        scaleBytes[b * n + c] = e + 127;
        scale = 2 ** e;
      } else {
        const byte = encodeE4M3(amax / E2M1_MAX / globalScale!);
        scaleBytes[b * n + c] = byte;
        scale = decodeE4M3(byte) * globalScale!;
      }
      scales[b * n + c] = scale;
      for (let r = k0; r < k1; r++) codes[r * n + c] = scale > 0 ? encodeE2M1(w[r * n + c] / scale) : 0;
    }
  }
  return { format, k, n, blockSize, codes, scales, scaleBytes, globalScale };
}

/** Decodes FP4 blocks back to float32 [K, N]: what the runnable decode subgraph computes. */
export function dequantizeFp4(q: Fp4Blocks): Float32Array {
  const out = new Float32Array(q.k * q.n);
  for (let r = 0; r < q.k; r++) {
    const b = Math.floor(r / q.blockSize);
    for (let c = 0; c < q.n; c++) out[r * q.n + c] = E2M1_TABLE[q.codes[r * q.n + c]] * q.scales[b * q.n + c];
  }
  return out;
}

/** The nearest FP4 value of `x` in row r (along K), column c, on `q`'s block scales: the grid learned rounding
 *  rounds onto (scales fixed, codes chosen). */
export function fp4Nearest(q: Fp4Blocks): (x: number, r: number, c: number) => number {
  return (x, r, c) => {
    const scale = q.scales[Math.floor(r / q.blockSize) * q.n + c]!;
    return scale > 0 ? E2M1_TABLE[encodeE2M1(x / scale)]! * scale : 0;
  };
}

/** `q` with the codes of `values` ([K, N] row-major, each already on q's grid, as fp4Nearest gives them). */
export function recodeFp4(q: Fp4Blocks, values: ArrayLike<number>): Fp4Blocks {
  const codes = new Uint8Array(q.k * q.n);
  for (let r = 0; r < q.k; r++) {
    const b = Math.floor(r / q.blockSize);
    for (let c = 0; c < q.n; c++) {
      const scale = q.scales[b * q.n + c]!;
      codes[r * q.n + c] = scale > 0 ? encodeE2M1(values[r * q.n + c]! / scale) : 0;
    }
  }
  return { ...q, codes };
}
