// Bit-level codecs for the small float formats ONNX stores as integers: float16, bfloat16, the four float8 kinds,
// float8e8m0 and float4e2m1. Encoding rounds to nearest, ties to even, and saturates finite overflow to the largest
// finite value, as ONNX's Cast/QuantizeLinear do with saturate=1 (their default).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

export function bitsToFloat32(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/** IEEE half precision → number. */
export function float16ToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** number → IEEE half precision bits, round half to even (overflow becomes infinity, as IEEE casts do). */
export function floatToFloat16(x: number): number {
  const bits = float32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let man = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    man |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = man & ((1 << shift) - 1);
    let h = man >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  const rest = man & 0x1fff;
  let h = (e << 10) | (man >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h; // a carry into the exponent (even to infinity) is the correctly rounded result
}

export function bfloat16ToFloat(b: number): number {
  return bitsToFloat32((b & 0xffff) << 16);
}

export function floatToBfloat16(x: number): number {
  const bits = float32Bits(x);
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** Description of an 8-bit (or 4-bit) minifloat: enough to build its decode table. */
interface MiniFloat {
  expBits: number;
  manBits: number;
  bias: number;
  /** "fn": no infinities, all-ones exponent+mantissa is NaN; "fnuz": no -0, 0x80 is the only NaN; "ieee": IEEE-like. */
  special: "fn" | "fnuz" | "ieee" | "none";
}

function buildTable(f: MiniFloat): Float32Array {
  const total = 1 + f.expBits + f.manBits;
  const n = 1 << total;
  const table = new Float32Array(n);
  const signBit = 1 << (total - 1);
  const expMax = (1 << f.expBits) - 1;
  for (let code = 0; code < n; code++) {
    const sign = code & signBit ? -1 : 1;
    const exp = (code >> f.manBits) & expMax;
    const man = code & ((1 << f.manBits) - 1);
    let v: number;
    if (exp === 0) v = sign * man * 2 ** (1 - f.bias - f.manBits);
    else v = sign * (1 + man / (1 << f.manBits)) * 2 ** (exp - f.bias);
    if (f.special === "fn" && (code & (signBit - 1)) === signBit - 1) v = NaN;
    if (f.special === "fnuz" && code === signBit) v = NaN;
    if (f.special === "ieee" && exp === expMax) v = man ? NaN : sign * Infinity;
    table[code] = v;
  }
  return table;
}

/** Decode tables and encoders for one minifloat format. */
export class MiniFloatCodec {
  readonly table: Float32Array;
  /** Non-negative finite codes sorted by value, for nearest-value search when encoding. */
  private readonly positive: { v: number; code: number }[];
  readonly max: number;
  private readonly signBit: number;
  private readonly nanCode: number;
  private readonly infCode: number | undefined;

  constructor(private readonly f: MiniFloat) {
    this.table = buildTable(f);
    const total = 1 + f.expBits + f.manBits;
    this.signBit = 1 << (total - 1);
    this.positive = [];
    for (let c = 0; c < this.signBit; c++) {
      const v = this.table[c]!;
      if (Number.isFinite(v)) this.positive.push({ v, code: c });
    }
    this.positive.sort((a, b) => a.v - b.v);
    this.max = this.positive[this.positive.length - 1]!.v;
    this.nanCode = f.special === "fnuz" ? this.signBit : this.signBit - 1;
    this.infCode = f.special === "ieee" ? ((1 << f.expBits) - 1) << f.manBits : undefined;
  }

  decode(code: number): number {
    return this.table[code & ((this.signBit << 1) - 1)]!;
  }

  encode(x: number): number {
    if (Number.isNaN(x)) return this.nanCode;
    const neg = x < 0 || Object.is(x, -0);
    const a = Math.abs(x);
    let code: number;
    if (a === Infinity) {
      // Keep infinities where the format has them; otherwise saturate ("fn") or NaN ("fnuz"), as ONNX's Cast does.
      if (this.infCode !== undefined) code = this.infCode;
      else if (this.f.special === "fnuz") return this.nanCode;
      else code = this.positive[this.positive.length - 1]!.code;
    } else if (a >= this.max) {
      code = this.positive[this.positive.length - 1]!.code;
    } else {
      const p = this.positive;
      let lo = 0;
      let hi = p.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (p[mid]!.v <= a) lo = mid;
        else hi = mid;
      }
      const dl = a - p[lo]!.v;
      const dh = p[hi]!.v - a;
      code = dl < dh ? p[lo]!.code : dh < dl ? p[hi]!.code : p[lo]!.code & 1 ? p[hi]!.code : p[lo]!.code;
    }
    if (neg && (code !== 0 || this.f.special !== "fnuz")) code |= this.signBit;
    return code;
  }
}

export const float8e4m3fn = new MiniFloatCodec({ expBits: 4, manBits: 3, bias: 7, special: "fn" });
export const float8e4m3fnuz = new MiniFloatCodec({ expBits: 4, manBits: 3, bias: 8, special: "fnuz" });
export const float8e5m2 = new MiniFloatCodec({ expBits: 5, manBits: 2, bias: 15, special: "ieee" });
export const float8e5m2fnuz = new MiniFloatCodec({ expBits: 5, manBits: 2, bias: 16, special: "fnuz" });
export const float4e2m1 = new MiniFloatCodec({ expBits: 2, manBits: 1, bias: 1, special: "none" });

/** float8e8m0: an unsigned power of two 2^(code-127); 0xFF is NaN. Encoding rounds the exponent to nearest. */
export function float8e8m0ToFloat(code: number): number {
  return code === 0xff ? NaN : 2 ** ((code & 0xff) - 127);
}

export function floatToFloat8e8m0(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return 0xff;
  const e = Math.round(Math.log2(x));
  return Math.max(0, Math.min(254, e + 127));
}
