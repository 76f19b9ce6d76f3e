// Scale / zero-point math and (de)quantization: the one pure module every other quant file uses.
// Follows ONNX Runtime's python/tools/quantization/quant_utils.py (`compute_scale_zp`, `get_qmin_qmax_for_qType`,
// `quantize_nparray`) and its CPU QuantizeLinear/DequantizeLinear kernels exactly, so a model we quantize and the
// values we predict for it agree with what onnxruntime computes, bit for bit.

/** Integer types a tensor can be quantized to (int32 is only used for biases). */
export type QType = "int8" | "uint8" | "int16" | "uint16";

/** ONNX TensorProto.DataType codes (kept numeric here so this module imports nothing). */
export const ONNX_DTYPE: Record<QType | "int32", number> = { uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6 };

export function qtypeFromOnnx(code: number): QType | undefined {
  return (Object.keys(ONNX_DTYPE) as (QType | "int32")[]).find((k) => k !== "int32" && ONNX_DTYPE[k] === code) as
    | QType
    | undefined;
}

const FULL: Record<QType, [number, number]> = { uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767] };
// Symmetric signed ranges drop the most negative value so that +x and -x quantize to opposite codes.
const SYMMETRIC: Partial<Record<QType, [number, number]>> = { int8: [-127, 127], int16: [-32767, 32767] };
// reduce_range keeps one bit of headroom for CPUs whose int8 dot products (VPMADDUBSW) saturate.
const REDUCED: Record<QType, [number, number]> = { uint8: [0, 127], int8: [-64, 64], uint16: [0, 32767], int16: [-16384, 16384] };

/** Bits of a quantized type. */
export function qBits(type: QType): 8 | 16 {
  return type === "int16" || type === "uint16" ? 16 : 8;
}

/** ORT's get_qmin_qmax_for_qType: reduce_range wins over symmetric. */
export function qRange(type: QType, reduceRange = false, symmetric = false): [number, number] {
  if (reduceRange) return REDUCED[type];
  if (symmetric && SYMMETRIC[type]) return SYMMETRIC[type]!;
  return FULL[type];
}

export interface ScaleZp {
  scale: number; // a float32 value
  zeroPoint: number;
}

const FLOAT32_TINY = 1.1754943508222875e-38;

/**
 * ORT's compute_scale_zp. The range is widened to include 0 (so 0 is exact, which padding and ReLU need), then
 * optionally to `minRealRange`, then made symmetric. The division is in float64 and the result rounded to float32.
 * Edge cases: a range narrower than float32's smallest normal gives scale 1 and zero point 0 (ORT's), or the
 * type's midpoint when symmetric (where ORT gives 0), so a constant-zero tensor quantizes exactly; the zero point
 * rounds half to even like numpy.round.
 */
export function computeScaleZp(
  rmin: number,
  rmax: number,
  qmin: number,
  qmax: number,
  symmetric = false,
  minRealRange?: number,
): ScaleZp {
  // A symmetric range's zero point is its midpoint (uint8's [1, 255]: 128), so only an asymmetric one must hold 0.
  if (!symmetric && (qmin > 0 || qmax < 0)) throw new Error(`quant math: qmin (${qmin}) must be <= 0 and qmax (${qmax}) >= 0`);
  if (!Number.isFinite(rmin) || !Number.isFinite(rmax))
    throw new Error(`quant math: range [${rmin}, ${rmax}] is not finite; the tensor had NaN or Inf values`);
  if (rmin > rmax) throw new Error(`quant math: rmin ${rmin} > rmax ${rmax}`);
  // ORT does this in the range's dtype (float32), so round after each step to match.
  let lo = Math.fround(Math.min(rmin, 0));
  let hi = Math.fround(Math.max(rmax, 0));
  if (minRealRange !== undefined) hi = Math.max(hi, Math.fround(lo + minRealRange));
  if (symmetric) {
    const absmax = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -absmax;
    hi = absmax;
  }
  const dr = Math.fround(hi - lo); // float32 subtraction, then widened to float64 as numpy does
  const scale64 = dr / (qmax - qmin);
  const mid = roundHalfEven((qmin + qmax) / 2) + 0; // + 0: never -0
  // An all-zero range (a dead channel): ORT gives zero point 0; a symmetric range gets its midpoint instead (0 is
  // exact either way), so that every channel of a symmetric weight shares one zero point, as MatMulInteger and
  // ConvInteger need (uint8 weights of a real model with a dead channel failed dynamic quantization).
  if (scale64 < FLOAT32_TINY) return { scale: 1, zeroPoint: symmetric ? mid : 0 };
  const zeroPoint = symmetric ? mid : roundHalfEven(qmin - lo / scale64);
  return { scale: Math.fround(scale64), zeroPoint };
}

/** numpy.round / std::nearbyint in the default mode: ties go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds ties up; move them to the even neighbour.
  if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** Parameters of one quantized tensor: per-tensor (one entry, axis undefined) or per-channel along `axis`. */
export interface QuantParams {
  type: QType;
  scale: Float32Array;
  zeroPoint: Int32Array;
  axis?: number;
}

export interface ParamOptions {
  type: QType;
  symmetric?: boolean;
  reduceRange?: boolean;
  minRealRange?: number;
}

/** Per-tensor parameters from a calibrated range. */
export function paramsFromRange(rmin: number, rmax: number, opts: ParamOptions): QuantParams {
  const [qmin, qmax] = qRange(opts.type, opts.reduceRange, opts.symmetric);
  const { scale, zeroPoint } = computeScaleZp(rmin, rmax, qmin, qmax, opts.symmetric ?? false, opts.minRealRange);
  return { type: opts.type, scale: Float32Array.of(scale), zeroPoint: Int32Array.of(zeroPoint) };
}

/** Min and max of each slice along `axis` of a tensor with shape `dims` (axis undefined: the whole tensor). */
export function channelRanges(data: Float32Array, dims: readonly number[], axis?: number): { min: number[]; max: number[] } {
  if (axis === undefined) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return data.length ? { min: [lo], max: [hi] } : { min: [0], max: [0] };
  }
  const { channels, inner } = axisLayout(dims, axis);
  const min = new Array<number>(channels).fill(Infinity);
  const max = new Array<number>(channels).fill(-Infinity);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const v = data[i]!;
    if (v < min[c]!) min[c] = v;
    if (v > max[c]!) max[c] = v;
  }
  return { min, max };
}

function axisLayout(dims: readonly number[], axis: number): { channels: number; inner: number } {
  if (axis < 0 || axis >= dims.length) throw new Error(`quant math: axis ${axis} out of range for shape [${dims}]`);
  let inner = 1;
  for (let d = axis + 1; d < dims.length; d++) inner *= dims[d]!;
  return { channels: dims[axis]!, inner };
}

/**
 * Symmetric uint8 weights take ORT's uint8 range, [0, 255] about 128 (scale max/127.5), on which a channel's largest
 * positive weight lands on 127.5 steps and saturates at 127: cut by half a step. Where each output channel reads one
 * input channel (a depthwise Conv's 9–25 weights, a first Conv on one input channel) that one weight is a large
 * share of the channel: there the grid is int8's symmetric one moved by 128, [1, 255] (scale max/127), ORT's int8
 * per-channel grid, whose codes + 128 these are (blazeface-back, 32 held-out: 11.19 → 12.33 dB at the outputs, ORT
 * per-channel 12.11). Wider channels keep ORT's uint8 grid: their error is the same on either, and moving every
 * weight by a 255th of a step only redraws which way each rounds, which ppocr-v4-rec-en's lines follow (−0.63 pp of
 * 4096 with every Conv on the new grid, −5.3 pp with a per-channel choice by weight error). Measured in
 * docs/quantization.md "Depthwise weights on int8's grid, and each kernel's sum kept".
 */
const FEW_WEIGHTS_UINT8: [number, number] = [1, 255];

/** A Conv-layout weight ([out, in/group, k…], per output channel) whose every output channel reads one input channel. */
function fewWeightsPerChannel(dims: readonly number[], opts: ParamOptions & { axis?: number }): boolean {
  return opts.type === "uint8" && !!opts.symmetric && !opts.reduceRange && opts.axis === 0 && dims.length >= 3 && dims[1] === 1;
}

/**
 * Parameters for a constant tensor (a weight) from its own values, per-tensor or per-channel. A NaN or ±Inf value
 * is an error naming the weight: `what` describes it (the initializer and the node reading it), asked only then.
 */
export function paramsForWeight(
  data: Float32Array,
  dims: readonly number[],
  opts: ParamOptions & { axis?: number },
  what: () => string = () => "a weight",
): QuantParams {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      const n = data.reduce((c, v) => c + (Number.isFinite(v) ? 0 : 1), 0);
      throw new Error(
        `${what()} has ${n} non-finite value(s) (${data[i]} at flat index ${i} of shape [${dims.join(", ")}]): no quantized value ` +
          `can stand for it; fix the model's weights, or exclude the node so it stays float`,
      );
    }
  }
  const { min, max } = channelRanges(data, dims, opts.axis);
  const [qmin, qmax] = fewWeightsPerChannel(dims, opts) ? FEW_WEIGHTS_UINT8 : qRange(opts.type, opts.reduceRange, opts.symmetric);
  const scale = new Float32Array(min.length);
  const zeroPoint = new Int32Array(min.length);
  for (let c = 0; c < min.length; c++) {
    const p = computeScaleZp(min[c]!, max[c]!, qmin, qmax, opts.symmetric ?? false, opts.minRealRange);
    scale[c] = p.scale;
    zeroPoint[c] = p.zeroPoint;
  }
  return opts.axis === undefined ? { type: opts.type, scale, zeroPoint } : { type: opts.type, scale, zeroPoint, axis: opts.axis };
}

type IntArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array;

export function allocate(type: QType | "int32", n: number): IntArray {
  switch (type) {
    case "int8":
      return new Int8Array(n);
    case "uint8":
      return new Uint8Array(n);
    case "int16":
      return new Int16Array(n);
    case "uint16":
      return new Uint16Array(n);
    case "int32":
      return new Int32Array(n);
  }
}

/**
 * quantize() for a convolution's weight ([out, in/group, k…] or ConvTranspose's [in, out/group, k…], one scale per
 * entry of `p.axis` or per tensor) that keeps each kernel's sum: nearest rounding, then the fewest taps moved one
 * step to their other neighbour (those nearest half a step, in the direction the kernel's codes fall short) until
 * the kernel's codes sum to within half a step of its float values' sum. A kernel's sum is its gain on an input that
 * varies slowly (images, feature maps after a ReLU), and nearest rounding leaves it off by a random sum of the taps'
 * errors: on the fixture CNN's first Conv (3×3 on one input channel) the output read 51.2 dB with one grid and
 * 44.8 dB with another of lower weight error (the sums drawn differently); keeping the sums, 52.6 and 55.1 dB, and
 * +0.8 to +3.6 dB on its other two Convs (docs/quantization.md, the section above FEW_WEIGHTS_UINT8 names). A moved
 * tap stays within the codes its channel already uses, so no code leaves the grid the parameters were made for
 * (7-bit weights stay 7-bit).
 * Kernels of one tap (1×1 Convs) and tensors of fewer than 3 dims are quantize()'s.
 */
export function quantizeKernels(data: Float32Array, dims: readonly number[], p: QuantParams): IntArray {
  const out = quantize(data, dims, p);
  const taps = dims.slice(2).reduce((a, d) => a * d, 1);
  if (dims.length < 3 || taps < 2 || data.length === 0) return out;
  const { channels, inner } = p.axis === undefined ? { channels: 1, inner: data.length } : axisLayout(dims, p.axis);
  const channelOf = (i: number) => (channels === 1 ? 0 : Math.floor(i / inner) % channels);
  // The codes each channel's nearest rounding uses: moved taps stay inside them.
  const lo = new Array<number>(channels).fill(Infinity);
  const hi = new Array<number>(channels).fill(-Infinity);
  for (let i = 0; i < out.length; i++) {
    const c = channelOf(i);
    if (out[i]! < lo[c]!) lo[c] = out[i]!;
    if (out[i]! > hi[c]!) hi[c] = out[i]!;
  }
  const residual = new Float64Array(taps);
  const order = Array.from({ length: taps }, (_, k) => k);
  for (let start = 0; start < data.length; start += taps) {
    const c = channelOf(start);
    const scale = p.scale[c]!;
    const zp = p.zeroPoint[c]!;
    let sum = 0;
    for (let k = 0; k < taps; k++) {
      residual[k] = Math.fround(data[start + k]! / scale) - (out[start + k]! - zp);
      sum += residual[k]!;
    }
    let moves = roundHalfEven(sum);
    if (moves === 0) continue;
    const dir = Math.sign(moves);
    order.sort((a, b) => dir * (residual[b]! - residual[a]!) || a - b);
    for (const k of order) {
      if (moves === 0) break;
      const q = out[start + k]! + dir;
      if (q < lo[c]! || q > hi[c]! || dir * residual[k]! <= 0) continue;
      out[start + k] = q;
      moves -= dir;
    }
  }
  return out;
}

/**
 * QuantizeLinear as ORT's CPU kernel computes it: saturate(nearbyint(x / scale) + zp), the division in float32.
 * Saturation uses the type's full range (as the op does), not the symmetric or reduced one.
 */
export function quantize(data: Float32Array, dims: readonly number[], p: QuantParams): IntArray {
  const out = allocate(p.type, data.length);
  const [lo, hi] = FULL[p.type];
  const { channels, inner } = p.axis === undefined ? { channels: 1, inner: data.length || 1 } : axisLayout(dims, p.axis);
  if (p.scale.length !== channels) throw new Error(`quant math: ${p.scale.length} scales for ${channels} channels`);
  for (let i = 0; i < data.length; i++) {
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    const q = roundHalfEven(Math.fround(data[i]! / p.scale[c]!)) + p.zeroPoint[c]!;
    out[i] = q < lo ? lo : q > hi ? hi : q;
  }
  return out;
}

/** DequantizeLinear: (q - zp) * scale, the product rounded to float32. */
export function dequantize(q: ArrayLike<number>, dims: readonly number[], p: QuantParams): Float32Array {
  const out = new Float32Array(q.length);
  const { channels, inner } = p.axis === undefined ? { channels: 1, inner: q.length || 1 } : axisLayout(dims, p.axis);
  for (let i = 0; i < q.length; i++) {
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    out[i] = Math.fround((q[i]! - p.zeroPoint[c]!) * p.scale[c]!);
  }
  return out;
}

const INT32_MAX = 2147483647;

/**
 * Bias for Conv/Gemm/MatMul: int32 at scale input_scale × weight_scale[c], zero point 0. onnxruntime's fused
 * QLinearConv/QGemm read the int32 bias as if it had exactly that scale, so overflow cannot be fixed by giving the
 * bias its own scale: where a channel's bias would not fit int32 (a tiny weight scale under a large bias) the
 * WEIGHT scale of that channel is widened instead (what newer ORT does). `weightScale` is returned, adjusted;
 * `overflowed` lists the channels whose weight scale changed, and the caller must requantize those weights.
 */
export function quantizeBias(
  bias: Float32Array,
  inputScale: number,
  weightScale: Float32Array,
): { data: Int32Array; scale: Float32Array; weightScale: Float32Array; overflowed: number[] } {
  const n = bias.length;
  const ws = Float32Array.from(weightScale);
  const overflowed: number[] = [];
  for (let c = 0; c < ws.length; c++) {
    const absmax = ws.length === 1 ? maxAbs(bias) : Math.abs(bias[c] ?? 0);
    const limit = absmax / (inputScale * INT32_MAX);
    if (limit > ws[c]!) {
      ws[c] = Math.fround(limit * 1.001);
      overflowed.push(c);
    }
  }
  const scale = ws.map((w) => Math.fround(inputScale * w));
  const data = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const s = scale[scale.length === 1 ? 0 : i]!;
    const q = s === 0 ? 0 : roundHalfEven(Math.fround(bias[i]! / s));
    data[i] = Math.max(-INT32_MAX - 1, Math.min(INT32_MAX, q));
  }
  return { data, scale, weightScale: ws, overflowed };
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Signal-to-quantization-noise ratio in dB: 10·log10(Σx² / Σ(x−y)²). Infinity when y equals x. */
export function sqnr(reference: ArrayLike<number>, test: ArrayLike<number>): number {
  if (reference.length !== test.length) throw new Error(`sqnr: lengths differ (${reference.length} vs ${test.length})`);
  let sig = 0;
  let noise = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i]!;
    const d = r - test[i]!;
    sig += r * r;
    noise += d * d;
  }
  return noise === 0 ? Infinity : 10 * Math.log10(sig / noise);
}

/** A row-major [rows, cols] matrix transposed to [cols, rows]. */
export function transpose2d(data: Float32Array, dims: readonly number[]): Float32Array {
  const [r, c] = dims as [number, number];
  const out = new Float32Array(data.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = data[i * c + j]!;
  return out;
}
