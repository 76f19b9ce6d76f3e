// Byte layout of com.microsoft.MatMulNBits weights: per column, per block along K, codes packed two per byte, low
// nibble first (the same nibble order as ONNX int4/uint4 tensors, see packBits in kernel/onnx/tensor.ts).
import type { BlockQuantized } from "./intblock";

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
