import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "onnx-buf";
import { DataType, OnnxError, allDTypes, makeTensor, readTensor, tensorToFloat32 } from "../../../engine/onnx";
import * as fb from "../../../engine/onnx/floatbits";

interface Case {
  dtype: DataType;
  values: (number | bigint | string)[];
  /** The raw_data bytes, computed by hand from the ONNX spec. */
  bytes?: number[];
  /** The typed field and what it must hold. */
  field: "floatData" | "doubleData" | "int32Data" | "int64Data" | "uint64Data" | "stringData";
  typed: (number | bigint)[] | string[];
  /** Decoded values when they differ from `values` (rounding). */
  decoded?: (number | bigint | string)[];
  dims?: number[];
}

const CASES: Case[] = [
  { dtype: DataType.FLOAT, values: [1, -2], bytes: [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0], field: "floatData", typed: [1, -2] },
  { dtype: DataType.DOUBLE, values: [1], bytes: [0, 0, 0, 0, 0, 0, 0xf0, 0x3f], field: "doubleData", typed: [1] },
  { dtype: DataType.FLOAT16, values: [1, -2, 0.5, 65504], bytes: [0, 0x3c, 0, 0xc0, 0, 0x38, 0xff, 0x7b], field: "int32Data", typed: [0x3c00, 0xc000, 0x3800, 0x7bff] },
  { dtype: DataType.BFLOAT16, values: [1, -2, 3], bytes: [0x80, 0x3f, 0, 0xc0, 0x40, 0x40], field: "int32Data", typed: [0x3f80, 0xc000, 0x4040] },
  { dtype: DataType.INT8, values: [-1, 127, -128], bytes: [0xff, 0x7f, 0x80], field: "int32Data", typed: [-1, 127, -128] },
  { dtype: DataType.UINT8, values: [0, 255], bytes: [0, 0xff], field: "int32Data", typed: [0, 255] },
  { dtype: DataType.INT16, values: [-2, 300], bytes: [0xfe, 0xff, 0x2c, 0x01], field: "int32Data", typed: [-2, 300] },
  { dtype: DataType.UINT16, values: [65535], bytes: [0xff, 0xff], field: "int32Data", typed: [65535] },
  { dtype: DataType.INT32, values: [-1, 16909060], bytes: [0xff, 0xff, 0xff, 0xff, 4, 3, 2, 1], field: "int32Data", typed: [-1, 16909060] },
  { dtype: DataType.UINT32, values: [4294967295], bytes: [0xff, 0xff, 0xff, 0xff], field: "uint64Data", typed: [4294967295n] },
  { dtype: DataType.INT64, values: [-1n, 2n ** 40n], bytes: [255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 1, 0, 0], field: "int64Data", typed: [-1n, 2n ** 40n] },
  { dtype: DataType.UINT64, values: [2n ** 64n - 1n], bytes: [255, 255, 255, 255, 255, 255, 255, 255], field: "uint64Data", typed: [2n ** 64n - 1n] },
  { dtype: DataType.BOOL, values: [1, 0, 1], bytes: [1, 0, 1], field: "int32Data", typed: [1, 0, 1] },
  { dtype: DataType.FLOAT8E4M3FN, values: [1, -2, 448, 0.5], bytes: [0x38, 0xc0, 0x7e, 0x30], field: "int32Data", typed: [0x38, 0xc0, 0x7e, 0x30] },
  { dtype: DataType.FLOAT8E4M3FNUZ, values: [1, -2, 240], bytes: [0x40, 0xc8, 0x7f], field: "int32Data", typed: [0x40, 0xc8, 0x7f] },
  { dtype: DataType.FLOAT8E5M2, values: [1, -2, 57344, Infinity], bytes: [0x3c, 0xc0, 0x7b, 0x7c], field: "int32Data", typed: [0x3c, 0xc0, 0x7b, 0x7c] },
  { dtype: DataType.FLOAT8E5M2FNUZ, values: [1, -2], bytes: [0x40, 0xc4], field: "int32Data", typed: [0x40, 0xc4] },
  { dtype: DataType.FLOAT8E8M0, values: [1, 2, 0.5], bytes: [0x7f, 0x80, 0x7e], field: "int32Data", typed: [0x7f, 0x80, 0x7e] },
  { dtype: DataType.INT4, values: [1, -1, 7, -8, 3], bytes: [0xf1, 0x87, 0x03], field: "int32Data", typed: [0xf1, 0x87, 0x03] },
  { dtype: DataType.UINT4, values: [1, 15, 2], bytes: [0xf1, 0x02], field: "int32Data", typed: [0xf1, 0x02] },
  { dtype: DataType.FLOAT4E2M1, values: [1, 6, -0.5], bytes: [0x72, 0x09], field: "int32Data", typed: [0x72, 0x09] },
  { dtype: DataType.INT2, values: [1, -1, -2, 0, 1], bytes: [0x2d, 0x01], field: "int32Data", typed: [0x2d, 0x01] },
  { dtype: DataType.UINT2, values: [3, 0, 1, 2], bytes: [0x93], field: "int32Data", typed: [0x93] },
  { dtype: DataType.COMPLEX64, values: [1, -2], dims: [1], bytes: [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0], field: "floatData", typed: [1, -2] },
  { dtype: DataType.COMPLEX128, values: [1, 0], dims: [1], bytes: [0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0], field: "doubleData", typed: [1, 0] },
  { dtype: DataType.STRING, values: ["ab", "é"], field: "stringData", typed: ["ab", "é"] },
];

const asPlain = (a: ArrayLike<unknown>) => Array.from(a);
const reencode = (t: ReturnType<typeof makeTensor>) => fromBinary(TensorProtoSchema, toBinary(TensorProtoSchema, t));

test("every ONNX element type has a codec case here", () => {
  const covered = new Set(CASES.map((c) => c.dtype));
  for (const d of allDTypes()) assert.ok(covered.has(d.id), `no test case for ${d.name}`);
});

for (const c of CASES) {
  const name = allDTypes().find((d) => d.id === c.dtype)!.name;
  const dims = c.dims ?? [c.values.length];
  const expected = c.decoded ?? c.values;

  test(`${name}: raw_data holds the hand-computed bytes and decodes back`, { skip: c.bytes === undefined }, () => {
    const t = reencode(makeTensor("t", c.dtype, dims, c.values as number[]));
    assert.deepEqual(asPlain(t.rawData), c.bytes);
    const v = readTensor(t);
    assert.equal(v.dtype, c.dtype);
    assert.deepEqual(v.dims, dims);
    assert.deepEqual(asPlain(v.data), expected);
  });

  test(`${name}: typed field (${c.field}) holds the hand-computed values and decodes back`, () => {
    const t = reencode(makeTensor("t", c.dtype, dims, c.values as number[], { raw: false }));
    assert.equal(t.rawData.byteLength, 0);
    const field = t[c.field] as ArrayLike<unknown>;
    const got = c.field === "stringData" ? asPlain(field).map((b) => new TextDecoder().decode(b as Uint8Array)) : asPlain(field);
    assert.deepEqual(got, c.typed);
    assert.deepEqual(asPlain(readTensor(t).data), expected);
  });
}

test("small floats round half to even and saturate", () => {
  assert.equal(fb.floatToFloat16(1 + 2 ** -11), 0x3c00); // halfway, even stays
  assert.equal(fb.floatToFloat16(1 + 3 * 2 ** -11), 0x3c02); // halfway, odd rounds up
  assert.equal(fb.floatToFloat16(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(fb.floatToFloat16(70000), 0x7c00); // IEEE cast overflows to infinity
  assert.equal(fb.floatToBfloat16(1 + 2 ** -8), 0x3f80);
  assert.equal(fb.floatToBfloat16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(fb.float8e4m3fn.encode(1000), 0x7e);
  assert.equal(fb.float8e4m3fn.encode(NaN), 0x7f);
  assert.equal(fb.float8e4m3fn.encode(1.0625), 0x38); // 1 + 1/16 is halfway between 1 and 1.125: even (1)
  assert.equal(fb.float8e4m3fn.encode(1.1875), 0x3a); // halfway between 1.125 and 1.25: even (1.25)
  assert.equal(fb.float8e4m3fnuz.encode(-0), 0x00); // fnuz has no negative zero
  assert.equal(fb.float8e4m3fnuz.encode(Infinity), 0x80); // no infinity: NaN
  assert.equal(fb.float4e2m1.encode(2.5), 0x2 << 1); // halfway between 2 and 3: even code (2.0)
  assert.equal(fb.float4e2m1.encode(100), 0x7);
  for (let h = 0; h < 0x7c00; h++) assert.equal(fb.floatToFloat16(fb.float16ToFloat(h)), h, `half 0x${h.toString(16)}`);
  for (let c = 0; c < 256; c++) {
    const v = fb.float8e5m2.decode(c);
    if (!Number.isNaN(v)) assert.equal(fb.float8e5m2.encode(v), c, `e5m2 0x${c.toString(16)}`);
  }
});

test("tensorToFloat32 converts any numeric type; strings are an error", () => {
  assert.deepEqual(asPlain(tensorToFloat32(makeTensor("a", DataType.INT64, [2], [3n, -4n]))), [3, -4]);
  assert.deepEqual(asPlain(tensorToFloat32(makeTensor("a", DataType.FLOAT16, [1], [0.5]))), [0.5]);
  assert.throws(() => tensorToFloat32(makeTensor("s", DataType.STRING, [1], ["x"])), /tensor "s" holds strings/);
});

test("data that does not match the shape is an error naming the tensor", () => {
  assert.throws(() => makeTensor("w", DataType.FLOAT, [2, 2], [1, 2, 3]), (e: unknown) => e instanceof OnnxError && /tensor "w".*needs 4 values, got 3/.test(e.message));
  const t = makeTensor("w", DataType.FLOAT, [2], [1, 2]);
  t.dims = [3n];
  assert.throws(() => readTensor(t), /tensor "w" \(float, shape \[3\]\) needs 12 bytes of data but has 8/);
  const typed = makeTensor("i4", DataType.INT4, [4], [1, 2, 3, 4], { raw: false });
  typed.int32Data.pop();
  assert.throws(() => readTensor(typed), /tensor "i4".*needs 2 packed int32_data entries, has 1/);
  const bad = create(TensorProtoSchema, { name: "q", dataType: 99, dims: [1n] });
  assert.throws(() => readTensor(bad), /unknown or unsupported ONNX element type 99 of tensor "q"/);
  const neg = makeTensor("n", DataType.FLOAT, [1], [1]);
  neg.dims = [-1n];
  assert.throws(() => readTensor(neg), /tensor "n" has an invalid dimension -1/);
});

test("scalars and empty tensors", () => {
  assert.deepEqual(readTensor(makeTensor("s", DataType.FLOAT, [], [2.5])), { dtype: DataType.FLOAT, dims: [], data: Float32Array.from([2.5]) });
  assert.deepEqual(asPlain(readTensor(makeTensor("e", DataType.INT4, [0, 3], [])).data), []);
});
