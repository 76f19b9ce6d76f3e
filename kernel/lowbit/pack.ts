// Byte layouts of low-bit weights. Nibbles are packed low-first everywhere: ONNX int4/uint4/float4e2m1 tensors put
// element 2i in the low nibble of byte i, and com.microsoft.MatMulNBits does the same inside each block.
import type { BlockQuantized } from "./intblock";

/** Packs 4-bit codes (0..15) two per byte, low nibble first; an odd count leaves the last high nibble 0. */
export function packNibbles(codes: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(codes.length / 2));
  for (let i = 0; i < codes.length; i++) out[i >> 1] |= (codes[i] & 15) << ((i & 1) * 4);
  return out;
}

export function unpackNibbles(bytes: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = (bytes[i >> 1] >> ((i & 1) * 4)) & 15;
  return out;
}

/** The three initializers of a 4-bit com.microsoft.MatMulNBits node, laid out column (N) major. */
export interface MatMulNBitsWeights {
  /** uint8 [N, kBlocks, blockSize / 2]: each column's blocks, codes packed low nibble first. */
  b: Uint8Array;
  bDims: [number, number, number];
  /** float [N · kBlocks]. */
  scales: Float32Array;
  /** uint8 [N, ceil(kBlocks / 2)] packed zero points; absent when every zero point is the default 8. */
  zeroPoints?: Uint8Array;
}

export function packMatMulNBits(q: BlockQuantized): MatMulNBitsWeights {
  if (q.bits !== 4) throw new Error(`MatMulNBits packing is implemented for 4 bits, not ${q.bits}`);
  if (q.blockSize < 16 || (q.blockSize & (q.blockSize - 1)) !== 0) {
    throw new Error(`MatMulNBits needs a power-of-two block size of at least 16, not ${q.blockSize}`);
  }
  const { k, n, blockSize } = q;
  const kBlocks = Math.ceil(k / blockSize);
  const blob = blockSize / 2;
  const b = new Uint8Array(n * kBlocks * blob);
  const scales = new Float32Array(n * kBlocks);
  const zpBytes = Math.ceil(kBlocks / 2);
  const zeroPoints = new Uint8Array(n * zpBytes);
  let allDefault = true;
  for (let c = 0; c < n; c++) {
    for (let blk = 0; blk < kBlocks; blk++) {
      const base = (c * kBlocks + blk) * blob;
      for (let i = 0; i < blockSize; i++) {
        const r = blk * blockSize + i;
        const code = r < k ? q.codes[r * n + c] : q.zeroPoints[blk * n + c]; // padding decodes to exactly 0
        b[base + (i >> 1)] |= code << ((i & 1) * 4);
      }
      scales[c * kBlocks + blk] = q.scales[blk * n + c];
      const zp = q.zeroPoints[blk * n + c];
      if (zp !== 8) allDefault = false;
      zeroPoints[c * zpBytes + (blk >> 1)] |= zp << ((blk & 1) * 4);
    }
  }
  return { b, bDims: [n, kBlocks, blob], scales, zeroPoints: allDefault ? undefined : zeroPoints };
}
