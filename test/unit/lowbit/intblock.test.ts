import { test } from "node:test";
import assert from "node:assert/strict";
import { dequantizeBlockwise, quantizeBlockwise } from "../../../engine/lowbit/intblock";
import { sqnr as sqnrDb } from "../../../engine/quant/math";
import { packMatMulNBits } from "../../../engine/lowbit/pack";
import { packBits, unpackBits } from "../../../engine/onnx/tensor";

test("symmetric 4-bit: the largest-magnitude value maps to code 0, zero point 8", () => {
  const w = new Float32Array([-4, -2, 0, 1, 3.5, 0.25, 0, 0]);
  const q = quantizeBlockwise(w, 8, 1, { bits: 4, blockSize: 8, symmetric: true, algorithm: "rtn" });
  assert.deepEqual([...q.scales], [0.5]);
  assert.deepEqual([...q.zeroPoints], [8]);
  // round(x / 0.5) + 8, clamped to 0..15; 0.25/0.5 = 0.5 → ties to even 0.
  assert.deepEqual([...q.codes], [0, 4, 8, 10, 15, 8, 8, 8]);
  assert.deepEqual([...dequantizeBlockwise(q)], [-4, -2, 0, 1, 3.5, 0, 0, 0]);
});

test("asymmetric 4-bit: min/max (widened to include 0) map to 0 and 15", () => {
  const w = new Float32Array([1, 2, 4, 16]);
  const q = quantizeBlockwise(w, 4, 1, { bits: 4, blockSize: 4, symmetric: false, algorithm: "rtn" });
  // range [0, 16], scale 16/15, zero point 0.
  assert.ok(Math.abs(q.scales[0] - Math.fround(16 / 15)) < 1e-7);
  assert.deepEqual([...q.zeroPoints], [0]);
  assert.deepEqual([...q.codes], [1, 2, 4, 15]);
});

test("blocks run along K per column, and a partial last block is quantized on its own", () => {
  const k = 5;
  const n = 2;
  const w = new Float32Array([1, -8, 2, -4, 3, 2, 4, 1, 100, 0]); // [5, 2]
  const q = quantizeBlockwise(w, k, n, { bits: 4, blockSize: 4, symmetric: true, algorithm: "rtn" });
  assert.equal(q.scales.length, 4); // 2 blocks × 2 columns
  // column 0 block 0: rows 0..3 → [1, 2, 3, 4], far = 4 → scale -0.5; block 1: row 4 → [100] → scale -12.5.
  assert.deepEqual([...q.scales], [-0.5, 1, -12.5, 1]);
});

test("HQQ refinement never does worse than round-to-nearest and gains on heavy-tailed weights", () => {
  let seed = 7;
  const u = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const k = 256;
  const n = 32;
  const w = new Float32Array(k * n); // Laplace-distributed, like trained weights' tails
  for (let i = 0; i < w.length; i++) w[i] = Math.sign(u()) * Math.log(Math.abs(u()) + 1e-9);
  for (const symmetric of [true, false]) {
    const base = { bits: 4, blockSize: 128, symmetric } as const;
    const rtn = dequantizeBlockwise(quantizeBlockwise(w, k, n, { ...base, algorithm: "rtn" }));
    const hqq = dequantizeBlockwise(quantizeBlockwise(w, k, n, { ...base, algorithm: "hqq" }));
    // Per block the refined parameters are kept only when their squared error is lower, so no block gets worse.
    for (let b = 0; b < k / 128; b++) {
      for (let c = 0; c < n; c++) {
        let eR = 0;
        let eH = 0;
        for (let r = b * 128; r < (b + 1) * 128; r++) {
          eR += (w[r * n + c] - rtn[r * n + c]) ** 2;
          eH += (w[r * n + c] - hqq[r * n + c]) ** 2;
        }
        assert.ok(eH <= eR + 1e-9, `block ${b} column ${c}: ${eH} > ${eR}`);
      }
    }
    const gain = sqnrDb(w, hqq) - sqnrDb(w, rtn);
    assert.ok(gain > 0.3, `${symmetric ? "symmetric" : "asymmetric"}: HQQ gains only ${gain.toFixed(2)} dB`);
  }
});

test("nibble packing is low nibble first", () => {
  assert.deepEqual([...packBits([1, 2, 3, 15, 7], 4)], [0x21, 0xf3, 0x07]);
  assert.deepEqual([...unpackBits(new Uint8Array([0x21, 0xf3, 0x07]), 5, 4)], [1, 2, 3, 15, 7]);
});

test("MatMulNBits layout: [N, kBlocks, blockSize/2] column-major blocks, scales [N·kBlocks], packed zero points", () => {
  const k = 32;
  const n = 2;
  const w = new Float32Array(k * n);
  for (let r = 0; r < k; r++) {
    w[r * n] = r < 16 ? r - 8 : 2 * (r - 24); // column 0
    w[r * n + 1] = r; // column 1: all non-negative
  }
  const q = quantizeBlockwise(w, k, n, { bits: 4, blockSize: 16, symmetric: false, algorithm: "rtn" });
  const p = packMatMulNBits(q);
  assert.deepEqual(p.bDims, [2, 2, 8]);
  // column 0, block 0: values -8..7 → scale 1, zp 8, codes 0..15 → bytes 0x10, 0x32, …
  assert.deepEqual([...p.b.slice(0, 8)], [0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
  assert.equal(p.scales[0], 1);
  assert.equal(p.scales.length, 4);
  assert.equal(p.scales[2], q.scales[1]); // column 1, block 0 sits after both of column 0's blocks
  assert.ok(p.zeroPoints);
  assert.equal(p.zeroPoints!.length, 2);
  assert.equal(p.zeroPoints![0] & 15, 8);
  assert.equal(p.zeroPoints![1] & 15, 0); // column 1 block 0: range [0, 15] → zp 0
});
