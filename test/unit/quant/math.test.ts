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
