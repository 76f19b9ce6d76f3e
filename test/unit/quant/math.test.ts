import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fromBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema, type TensorProto } from "onnx-buf";
import * as ort from "onnxruntime-node";
import {
  computeScaleZp,
  dequantize,
  paramsForWeight,
  qRange,
  quantize,
  quantizeBias,
  quantizeKernels,
  roundHalfEven,
  sqnr,
  type QType,
  type QuantParams,
} from "../../../engine/quant/math";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { makeModel, randomFloats, runModel, valueInfo } from "./build";

const f32 = Math.fround;

test("qRange follows ORT's full, symmetric and reduced ranges", () => {
  assert.deepEqual(qRange("uint8"), [0, 255]);
  assert.deepEqual(qRange("int8"), [-128, 127]);
  assert.deepEqual(qRange("int8", false, true), [-127, 127]);
  assert.deepEqual(qRange("uint8", false, true), [0, 255]); // no symmetric uint8 range in ORT
  assert.deepEqual(qRange("int8", true, true), [-64, 64]); // reduce_range wins over symmetric
  assert.deepEqual(qRange("uint8", true), [0, 127]);
  assert.deepEqual(qRange("int16", false, true), [-32767, 32767]);
  assert.deepEqual(qRange("uint16"), [0, 65535]);
  assert.deepEqual(qRange("int16", true), [-16384, 16384]);
});

test("roundHalfEven rounds ties to even like numpy.round", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6].map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, -3]);
});

test("computeScaleZp matches hand-computed values for every dtype and scheme", () => {
  // uint8 asymmetric [-1, 2]: scale 3/255, zp round(1 / (3/255)) = 85
  assert.deepEqual(computeScaleZp(-1, 2, 0, 255), { scale: f32(3 / 255), zeroPoint: 85 });
  // range widened to include 0: [0.5, 2] -> [0, 2]
  assert.deepEqual(computeScaleZp(0.5, 2, 0, 255), { scale: f32(2 / 255), zeroPoint: 0 });
  // int8 symmetric [-127, 127]: absmax 2, scale 4/254, zp 0
  assert.deepEqual(computeScaleZp(-1, 2, -127, 127, true), { scale: f32(4 / 254), zeroPoint: 0 });
  // int8 asymmetric [-1, 3]: zp = round(-128 + 63.75) = -64
  assert.deepEqual(computeScaleZp(-1, 3, -128, 127), { scale: f32(4 / 255), zeroPoint: -64 });
  // zero point ties: 0 - (-1)/2 = 0.5 -> 0 ; 0 - (-3)/2 = 1.5 -> 2
  assert.deepEqual(computeScaleZp(-1, 509, 0, 255), { scale: 2, zeroPoint: 0 });
  assert.deepEqual(computeScaleZp(-3, 507, 0, 255), { scale: 2, zeroPoint: 2 });
  // uint16 [-1, 1]: zp = round(32767.5) = 32768
  assert.deepEqual(computeScaleZp(-1, 1, 0, 65535), { scale: f32(2 / 65535), zeroPoint: 32768 });
  // int16 symmetric [-3, 1]
  assert.deepEqual(computeScaleZp(-3, 1, -32767, 32767, true), { scale: f32(6 / 65534), zeroPoint: 0 });
  // reduce range int8 symmetric [-1, 1] -> [-64, 64]: scale 1/64
  assert.deepEqual(computeScaleZp(-1, 1, -64, 64, true), { scale: 1 / 64, zeroPoint: 0 });
  // uint8 symmetric: zp = round(127.5) = 128
  assert.deepEqual(computeScaleZp(-1, 1, 0, 255, true), { scale: f32(2 / 255), zeroPoint: 128 });
  // tiny range guard: scale 1, zp 0
  assert.deepEqual(computeScaleZp(0, 0, -128, 127), { scale: 1, zeroPoint: 0 });
  assert.deepEqual(computeScaleZp(0, 1e-40, 0, 255), { scale: 1, zeroPoint: 0 });
  // Symmetric: the midpoint, so a dead channel shares the other channels' zero point (ConvInteger needs one).
  assert.deepEqual(computeScaleZp(0, 0, 0, 255, true), { scale: 1, zeroPoint: 128 });
  assert.deepEqual(computeScaleZp(0, 0, -128, 127, true), { scale: 1, zeroPoint: 0 });
  // min real range widens a narrow range
  assert.deepEqual(computeScaleZp(0, 1e-6, 0, 255, false, 1e-4), { scale: f32(f32(1e-4) / 255), zeroPoint: 0 });
});

test("computeScaleZp rejects NaN/Inf ranges and bad q ranges with a clear message", () => {
  assert.throws(() => computeScaleZp(NaN, 1, 0, 255), /not finite/);
  assert.throws(() => computeScaleZp(-Infinity, 1, 0, 255), /not finite/);
  assert.throws(() => computeScaleZp(0, 1, 1, 255), /qmin/);
});

test("quantize/dequantize per tensor and per channel match hand-computed values", () => {
  const p: QuantParams = { type: "int8", scale: Float32Array.of(1), zeroPoint: Int32Array.of(0) };
  assert.deepEqual([...quantize(Float32Array.of(0, 0.5, -0.5, 1.5, 2.5, 1000, -1000), [7], p)], [0, 0, 0, 2, 2, 127, -128]);
  const pc: QuantParams = { type: "uint8", scale: Float32Array.of(1, 0.5), zeroPoint: Int32Array.of(0, 10), axis: 0 };
  const q = quantize(Float32Array.of(1, 2, 3, 1, 2, -6), [2, 3], pc);
  assert.deepEqual([...q], [1, 2, 3, 12, 14, 0]);
  assert.deepEqual([...dequantize(q, [2, 3], pc)], [1, 2, 3, 1, 2, -5]);
  const w = paramsForWeight(Float32Array.of(-1, 0.5, 2, -4), [2, 2], { type: "int8", symmetric: true, axis: 0 });
  assert.deepEqual([...w.scale], [f32(2 / 254), f32(8 / 254)]);
  assert.deepEqual([...w.zeroPoint], [0, 0]);
});

test("symmetric uint8 weights: int8's grid + 128 where each channel reads one input channel, ORT's uint8 grid elsewhere", () => {
  // Two output channels of 3×3 each, peaks 1 and −2: a depthwise layout [2, 1, 3, 3].
  const dw = Float32Array.from({ length: 18 }, (_, i) => (i === 4 ? 1 : i === 13 ? -2 : ((i % 5) - 2) / 10));
  const p = paramsForWeight(dw, [2, 1, 3, 3], { type: "uint8", symmetric: true, axis: 0 });
  assert.deepEqual([...p.scale], [f32(2 / 254), f32(4 / 254)]);
  assert.deepEqual([...p.zeroPoint], [128, 128]);
  const q = quantize(dw, [2, 1, 3, 3], p);
  assert.deepEqual([q[4], q[13]], [255, 1], "each channel's peak on its own code: nothing saturates");
  const s8 = paramsForWeight(dw, [2, 1, 3, 3], { type: "int8", symmetric: true, axis: 0 });
  assert.deepEqual([...p.scale], [...s8.scale], "the int8 file's scales");
  assert.deepEqual([...q].map((v) => v - 128), [...quantize(dw, [2, 1, 3, 3], s8)], "and its codes, + 128");
  // Wider channels ([2, 2, 3, 3]: 18 weights each) keep ORT's symmetric uint8 grid, scale max/127.5.
  const wide = paramsForWeight(Float32Array.from({ length: 36 }, (_, i) => (i === 4 ? 1 : 0.1)), [2, 2, 3, 3], { type: "uint8", symmetric: true, axis: 0 });
  assert.deepEqual([...wide.scale], [f32(2 / 255), f32(0.2 / 255)]);
  // As do 7-bit weights, per-tensor ones and a MatMul's [in, out] per output column.
  assert.deepEqual([...paramsForWeight(dw, [2, 1, 3, 3], { type: "uint8", symmetric: true }).scale], [f32(4 / 255)]);
  assert.deepEqual([...paramsForWeight(dw, [18, 1], { type: "uint8", symmetric: true, axis: 1 }).scale], [f32(4 / 255)]);
  // computeScaleZp takes a symmetric range that does not hold 0 (its midpoint is the zero point).
  assert.deepEqual(computeScaleZp(-1, 2, 1, 255, true), { scale: f32(4 / 254), zeroPoint: 128 });
  assert.throws(() => computeScaleZp(-1, 2, 1, 255, false), /qmin \(1\) must be <= 0/);
});

test("quantizeKernels keeps each kernel's sum within half a step, moving the fewest taps, each within a step", () => {
  const dims = [8, 3, 3, 3];
  const w = randomFloats(8 * 27, 21);
  for (const opts of [
    { type: "uint8", symmetric: true, axis: 0 },
    { type: "int8", symmetric: true, axis: 0 },
    { type: "int8", symmetric: true, reduceRange: true, axis: 0 },
    { type: "uint8", symmetric: true },
  ] as const) {
    const p = paramsForWeight(w, dims, opts);
    const near = quantize(w, dims, p);
    const kept = quantizeKernels(w, dims, p);
    let moved = 0;
    for (let k = 0; k < 8 * 3; k++) {
      const c = p.scale.length === 1 ? 0 : Math.floor(k / 3);
      const s = p.scale[c]!;
      const z = p.zeroPoint[c]!;
      let floatSum = 0;
      let codeSum = 0;
      let nearSum = 0;
      for (let t = k * 9; t < k * 9 + 9; t++) {
        const u = Math.fround(w[t]! / s);
        floatSum += u;
        codeSum += kept[t]! - z;
        nearSum += near[t]! - z;
        assert.ok(Math.abs(u - (kept[t]! - z)) < 1, "a moved tap goes to its value's other neighbour");
        if (kept[t] !== near[t]) moved++;
      }
      assert.ok(Math.abs(codeSum - floatSum) <= 0.5 + 1e-9, `kernel ${k}: codes sum ${codeSum}, values ${floatSum}`);
      assert.ok(Math.abs(codeSum - nearSum) === Math.abs(roundHalfEven(floatSum - nearSum)), "the fewest moves");
    }
    assert.ok(moved > 0, `${JSON.stringify(opts)}: nearest rounding leaves some kernel's sum off`);
    assert.ok(Math.min(...kept) >= Math.min(...near) && Math.max(...kept) <= Math.max(...near), "no code outside those nearest rounding used");
    if ("reduceRange" in opts) assert.ok(Math.min(...kept) >= -64 && Math.max(...kept) <= 64, "7-bit weights stay 7-bit");
  }
  // One tap per kernel (a 1×1 Conv) and 2-D weights: nearest rounding.
  const p1 = paramsForWeight(w.subarray(0, 64), [8, 8, 1, 1], { type: "uint8", symmetric: true, axis: 0 });
  assert.deepEqual([...quantizeKernels(w.subarray(0, 64), [8, 8, 1, 1], p1)], [...quantize(w.subarray(0, 64), [8, 8, 1, 1], p1)]);
  const p2 = paramsForWeight(w.subarray(0, 64), [8, 8], { type: "uint8", symmetric: true, axis: 1 });
  assert.deepEqual([...quantizeKernels(w.subarray(0, 64), [8, 8], p2)], [...quantize(w.subarray(0, 64), [8, 8], p2)]);
});

test("quantizeBias: int32 at input×weight scale; overflow widens the weight scale", () => {
  const r = quantizeBias(Float32Array.of(1, -2), 0.5, Float32Array.of(0.1, 0.2));
  assert.deepEqual([...r.scale], [f32(0.05), f32(0.1)].map(f32));
  assert.deepEqual([...r.data], [20, -20]);
  assert.deepEqual(r.overflowed, []);
  const big = quantizeBias(Float32Array.of(1e6), 1e-3, Float32Array.of(1e-7));
  assert.deepEqual(big.overflowed, [0]);
  assert.ok(Math.abs(big.data[0]!) <= 2147483647);
  assert.ok(Math.abs(big.data[0]! * big.scale[0]! - 1e6) / 1e6 < 1e-6);
});

test("sqnr is infinite for equal arrays and ~6 dB per halving of noise", () => {
  assert.equal(sqnr([1, 2], [1, 2]), Infinity);
  assert.ok(Math.abs(sqnr([1, 1], [1.1, 0.9]) - 20) < 1e-9);
});

const DTYPE: Record<QType, number> = { uint8: 2, int8: 3, uint16: 4, int16: 5 };

for (const type of ["int8", "uint8", "int16", "uint16"] as QType[]) {
  for (const perChannel of [false, true]) {
    test(`quantize/dequantize equal onnxruntime's QuantizeLinear/DequantizeLinear (${type}, ${perChannel ? "per-channel" : "per-tensor"})`, async () => {
      const dims = [3, 4, 5];
      const x = randomFloats(60, 7, -3, 3);
      const params = perChannel
        ? paramsForWeight(x, dims, { type, axis: 1 })
        : paramsForWeight(x, dims, { type });
      // Put exact ties (k + 0.5 steps) into the input to exercise round-half-even in both implementations.
      for (let i = 0; i < 10; i++) x[i] = (i - 5 + 0.5) * params.scale[0]!;
      const pdims = perChannel ? [4] : [];
      const attributes = perChannel ? [attr.int("axis", 1)] : [];
      const model = makeModel(
        [
          makeNode("QuantizeLinear", ["x", "s", "z"], ["q"], { attributes }),
          makeNode("DequantizeLinear", ["q", "s", "z"], ["y"], { attributes }),
        ],
        [valueInfo("x", 1, dims)],
        [valueInfo("q", DTYPE[type], dims), valueInfo("y", 1, dims)],
        [makeTensor("s", 1, pdims, params.scale), makeTensor("z", DTYPE[type], pdims, params.zeroPoint)],
        21,
      );
      const out = await runModel(model, { x: new ort.Tensor("float32", x, dims) }, "disabled");
      const ours = quantize(x, dims, params);
      assert.deepEqual(Array.from(out.q!.data as ArrayLike<number>), [...ours]);
      assert.deepEqual([...(out.y!.data as Float32Array)], [...dequantize(ours, dims, params)]);
    });
  }
}

const CONFORMANCE = "/usr/share/libonnx-testdata/data/node";

function readPb(path: string): TensorProto {
  return fromBinary(TensorProtoSchema, new Uint8Array(readFileSync(path)));
}
function values(t: TensorProto): number[] {
  const b = t.rawData.slice().buffer;
  switch (t.dataType) {
    case 1:
      return t.rawData.length ? [...new Float32Array(b)] : t.floatData;
    case 2:
      return t.rawData.length ? [...new Uint8Array(b)] : t.int32Data;
    case 3:
      return t.rawData.length ? [...new Int8Array(b)] : t.int32Data;
    default:
      throw new Error(`unexpected dtype ${t.dataType}`);
  }
}

for (const name of ["quantizelinear", "quantizelinear_axis", "dequantizelinear", "dequantizelinear_axis"]) {
  // Debian's libonnx-testdata (README's prerequisites, .ci/run installs it); without it these cases skip by name.
  const skip = existsSync(CONFORMANCE) ? false : `${CONFORMANCE} missing: apt-get install libonnx-testdata`;
  test(`libonnx-testdata conformance: test_${name}`, { skip }, () => {
    const dir = `${CONFORMANCE}/test_${name}/test_data_set_0`;
    const [x, s, z, y] = ["input_0", "input_1", "input_2", "output_0"].map((f) => readPb(`${dir}/${f}.pb`)) as TensorProto[];
    const dims = x!.dims.map(Number);
    const type: QType = (name.startsWith("q") ? y! : x!).dataType === 2 ? "uint8" : "int8";
    const p: QuantParams = { type, scale: Float32Array.from(values(s!)), zeroPoint: Int32Array.from(values(z!)) };
    if (name.endsWith("axis")) p.axis = 1;
    const got = name.startsWith("q") ? quantize(Float32Array.from(values(x!)), dims, p) : dequantize(values(x!), dims, p);
    assert.deepEqual([...got], values(y!));
  });
}
