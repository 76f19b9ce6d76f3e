import { test } from "node:test";
import assert from "node:assert/strict";
import {
  E2M1_TABLE,
  decodeE4M3,
  dequantizeFp4,
  encodeE2M1,
  encodeE4M3,
  quantizeFp4,
  roundHalfEven,
} from "../../../engine/lowbit/fp4";

test("E2M1 table holds ±{0, 0.5, 1, 1.5, 2, 3, 4, 6} with the sign in bit 3", () => {
  assert.deepEqual([...E2M1_TABLE], [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6]);
});

test("E2M1 rounding: nearest value, ties to the even code, saturation at 6", () => {
  const cases: [number, number][] = [
    [0, 0], [0.1, 0], [0.25, 0], [0.26, 1], [0.5, 1], [0.75, 2], [1.25, 2], [1.3, 3], [1.75, 4],
    [2.5, 4], [2.6, 5], [3.5, 6], [5, 6], [5.1, 7], [6, 7], [7, 7], [1e9, 7],
    [-0.75, 10], [-5, 14], [-100, 15],
  ];
  for (const [x, code] of cases) assert.equal(encodeE2M1(x), code, `encodeE2M1(${x})`);
  assert.equal(encodeE2M1(-0), 8);
});

test("roundHalfEven rounds exact halves to the even neighbour", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, 3]);
});

test("FP8 E4M3FN encoding: normals, ties to even, subnormals, saturation", () => {
  const cases: [number, number][] = [
    [1, 0x38], [0.5, 0x30], [1.125, 0x39], [1.0625, 0x38], [1.1875, 0x3a], [448, 0x7e], [500, 0x7e],
    [2 ** -6, 0x08], [2 ** -9, 0x01], [3 * 2 ** -9, 0x03], [2 ** -10, 0x00], [-1, 0xb8], [1.96875, 0x40],
  ];
  for (const [x, byte] of cases) assert.equal(encodeE4M3(x), byte, `encodeE4M3(${x})`);
  for (let b = 0; b < 256; b++) {
    const v = decodeE4M3(b);
    if (Number.isNaN(v)) continue;
    assert.equal(encodeE4M3(v), v === 0 && b === 0x80 ? 0x80 : b, `round trip of byte 0x${b.toString(16)}`);
  }
});

test("MXFP4: power-of-two block scale from the block maximum, codes by E2M1 rounding", () => {
  // One column, one block of 32: amax 3 → scale 2^(floor(log2 3) - 2) = 0.5.
  const w = new Float32Array(32);
  w[0] = 3;
  w[1] = 1;
  w[2] = -0.3;
  w[3] = 2.9; // 5.8 → 6
  const q = quantizeFp4(w, 32, 1, "mxfp4");
  assert.equal(q.blockSize, 32);
  assert.deepEqual([...q.scales], [0.5]);
  assert.deepEqual([...q.scaleBytes], [126]);
  assert.deepEqual([...q.codes.slice(0, 5)], [7, 4, 9, 7, 0]);
  assert.deepEqual([...dequantizeFp4(q).slice(0, 4)], [3, 1, -0.25, 3]);
});

test("NVFP4: E4M3 block scales under a per-tensor FP32 scale, blocks of 16", () => {
  const k = 32;
  const w = new Float32Array(k);
  for (let i = 0; i < k; i++) w[i] = (i < 16 ? 0.01 : 1) * (i % 2 ? -1 : 1) * ((i % 16) + 1);
  const q = quantizeFp4(w, k, 1, "nvfp4");
  assert.equal(q.blockSize, 16);
  assert.equal(q.scales.length, 2);
  assert.ok(Math.abs(q.globalScale! - 16 / (6 * 448)) < 1e-12);
  // The block with the tensor maximum gets block scale 448 exactly, so its largest element decodes to ±6·s = ±16.
  assert.equal(q.scaleBytes[1], 0x7e);
  assert.equal(dequantizeFp4(q)[31], -16);
  // Every element is within half an E2M1 step (relative ≤ 1/6 of the block max near the top) of the original.
  const d = dequantizeFp4(q);
  for (let i = 0; i < k; i++) {
    const blockMax = i < 16 ? 0.16 : 16;
    assert.ok(Math.abs(d[i] - w[i]) <= blockMax / 6 + 1e-6, `element ${i}: ${w[i]} → ${d[i]}`);
  }
});

test("FP4 rejects non-finite weights naming the tensor", () => {
  const w = new Float32Array(32);
  w[5] = NaN;
  assert.throws(() => quantizeFp4(w, 32, 1, "mxfp4", "fc1.weight"), /fc1\.weight: element \[5, 0\] is NaN/);
});
