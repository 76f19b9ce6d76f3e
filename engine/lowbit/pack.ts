// Byte layout of com.microsoft.MatMulNBits weights: per column, per block along K, codes packed little-endian within
// each byte, lowest bits first (for 4 bits: low nibble first, the same order as ONNX int4/uint4 tensors, see
// packBits in engine/onnx/tensor.ts). Zero points are packed the same way, per column.
import type { BlockQuantized } from "./intblock";

/** Widths whose codes tile bytes exactly (3, 5, 6, 7 bits would straddle byte boundaries). */
export const MATMULNBITS_BITS = [2, 4, 8] as const;

/** The initializers of a com.microsoft.MatMulNBits node, laid out column (N) major. */
export interface MatMulNBitsWeights {
  /** uint8 [N, kBlocks, blockSize · bits / 8]: each column's blocks, codes packed lowest bits first. */
  b: Uint8Array;
  bDims: [number, number, number];
  /** float [N · kBlocks]. */
  scales: Float32Array;
  /** uint8 [N, ceil(kBlocks · bits / 8)] packed zero points; absent when every zero point is the default 2^(bits−1). */
  zeroPoints?: Uint8Array;
}

export function packMatMulNBits(q: BlockQuantized): MatMulNBitsWeights {
  const bits = q.bits;
  if (!(MATMULNBITS_BITS as readonly number[]).includes(bits)) throw new Error(`MatMulNBits packing is implemented for 2, 4 and 8 bits, not ${bits}`);
  if (q.blockSize < 16 || (q.blockSize & (q.blockSize - 1)) !== 0) {
    throw new Error(`MatMulNBits needs a power-of-two block size of at least 16, not ${q.blockSize}`);
  }
  const { k, n, blockSize } = q;
  const perByte = 8 / bits;
  const kBlocks = Math.ceil(k / blockSize);
  const blob = blockSize / perByte;
  const b = new Uint8Array(n * kBlocks * blob);
  const scales = new Float32Array(n * kBlocks);
  const zpBytes = Math.ceil(kBlocks / perByte);
  const zeroPoints = new Uint8Array(n * zpBytes);
  const defaultZp = 2 ** (bits - 1);
  let allDefault = true;
  for (let c = 0; c < n; c++) {
    for (let blk = 0; blk < kBlocks; blk++) {
      const base = (c * kBlocks + blk) * blob;
      for (let i = 0; i < blockSize; i++) {
        const r = blk * blockSize + i;
        const code = r < k ? q.codes[r * n + c]! : q.zeroPoints[blk * n + c]!; // padding decodes to exactly 0
        b[base + Math.floor(i / perByte)] |= code << ((i % perByte) * bits);
      }
      scales[c * kBlocks + blk] = q.scales[blk * n + c]!;
      const zp = q.zeroPoints[blk * n + c]!;
      if (zp !== defaultZp) allDefault = false;
      zeroPoints[c * zpBytes + Math.floor(blk / perByte)] |= zp << ((blk % perByte) * bits);
    }
  }
  return { b, bDims: [n, kBlocks, blob], scales, zeroPoints: allDefault ? undefined : zeroPoints };
}
