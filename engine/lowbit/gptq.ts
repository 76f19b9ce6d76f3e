// GPTQ (Frantar et al., 2022) for a [K, N] MatMul weight: quantize the rows of K one at a time and push each row's
// rounding error onto the rows not yet quantized, weighted by the inverse Hessian H⁻¹ of the layer's activations
// (H = Σ xᵀx). That minimizes the layer's output error ‖XW − XŴ‖ rather than the weight error. Pure float64 math;
// the activations are gathered elsewhere (hessian.ts).
import { roundHalfEven } from "./fp4";
import { rtnParams, type BlockParams, type BlockQuantized } from "./intblock";

export interface GptqOptions {
  bits: number;
  blockSize: number;
  symmetric: boolean;
  /** Added to H's diagonal as a share of its mean diagonal (default 0.01, the paper's 1 %); raised ×10 up to three
   *  times when H is still not positive definite. */
  damping?: number;
  /** Quantize rows in order of decreasing H diagonal (the paper's act-order). Block scales are then fixed from the
   *  float weights up front ("static groups"), so the stored layout stays contiguous blocks along K. Default off. */
  actOrder?: boolean;
}

export interface GptqResult {
  quantized: BlockQuantized;
  /** The damping share actually used. */
  damping: number;
}

/**
 * Sums xᵀx over rows x of length k, in float64. Only the upper triangle is accumulated until `matrix()`. While the
 * rows are few beside k (LOW_RANK_SHARE) they are kept too, and `matrix()` hands them on (hessianRows).
 */
export class HessianAccumulator {
  /** The sums; undefined once `matrix()` has handed them over. */
  private h: Float64Array | undefined;
  /** Rows added so far. */
  rows = 0;
  private kept: Float64Array[] | undefined = [];
  /** Rows not yet summed: PANEL of them at a time, so that each row of H is read once per panel, not per row. */
  private readonly pending: Float64Array[] = [];
  private waiting = 0;

  constructor(readonly k: number) {
    this.h = new Float64Array(k * k);
  }

  /** Adds every row of `x` ([rows, k] row-major, e.g. a [B, S, K] activation flattened). */
  add(x: ArrayLike<number>, name = "activation"): void {
    const k = this.k;
    if (x.length % k !== 0) throw new Error(`${name}: ${x.length} values are not rows of K = ${k}`);
    const row = new Float64Array(k);
    for (let r = 0; r < x.length; r += k) {
      for (let i = 0; i < k; i++) row[i] = x[r + i]!;
      this.addRow(row, name);
    }
  }

  /** Adds one row of length k. */
  addRow(row: Float64Array, name = "activation"): void {
    const k = this.k;
    if (!this.h) throw new Error("HessianAccumulator: rows added after matrix() handed the sums over");
    for (let i = 0; i < k; i++) {
      if (!Number.isFinite(row[i]!)) throw new Error(`${name}: a non-finite value (${row[i]}) in the calibration activations; check the data`);
    }
    (this.pending[this.waiting] ??= new Float64Array(k)).set(row.subarray(0, k));
    if (++this.waiting === PANEL) this.flush();
    if (this.kept && this.kept.length < k * LOW_RANK_SHARE) this.kept.push(Float64Array.from(row));
    else this.kept = undefined;
    this.rows++;
  }

  /**
   * Sums the waiting rows into H's upper triangle. Each entry adds the rows' products in the order they came, as one
   * row at a time would (a zero input adds ±0: the same bits), with each row of H read once for PANEL rows: the sums
   * were 8 s of a 25 s FP4 fit on ppocr-v3-rec-en (2048 patches of K up to 2048 per layer).
   */
  private flush(): void {
    const [k, h, m] = [this.k, this.h!, this.waiting];
    if (m === PANEL) {
      const [r0, r1, r2, r3, r4, r5, r6, r7] = this.pending as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
      for (let i = 0; i < k; i++) {
        const [a0, a1, a2, a3, a4, a5, a6, a7] = [r0[i]!, r1[i]!, r2[i]!, r3[i]!, r4[i]!, r5[i]!, r6[i]!, r7[i]!];
        if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0 && a4 === 0 && a5 === 0 && a6 === 0 && a7 === 0) continue;
        const base = i * k;
        for (let j = i; j < k; j++) {
          let v = h[base + j]!;
          v += a0 * r0[j]!;
          v += a1 * r1[j]!;
          v += a2 * r2[j]!;
          v += a3 * r3[j]!;
          v += a4 * r4[j]!;
          v += a5 * r5[j]!;
          v += a6 * r6[j]!;
          v += a7 * r7[j]!;
          h[base + j] = v;
        }
      }
    } else {
      for (const row of this.pending.slice(0, m)) {
        for (let i = 0; i < k; i++) {
          const xi = row[i]!;
          if (xi === 0) continue;
          const base = i * k;
          for (let j = i; j < k; j++) h[base + j] += xi * row[j]!;
        }
      }
    }
    this.waiting = 0;
  }

  /**
   * The full symmetric K×K matrix. The sums are handed over, not copied (a copy held every layer's matrix twice at
   * the end of a collection: 231 MB more at ppocr-v3-rec-en's int4 Conv Hessians), so the accumulator takes no more
   * rows after it.
   */
  matrix(): Float64Array {
    if (!this.h) throw new Error("HessianAccumulator: matrix() was already taken");
    this.flush();
    const k = this.k;
    const out = this.h;
    this.h = undefined;
    this.pending.length = 0;
    for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) out[j * k + i] = out[i * k + j]!;
    if (this.kept?.length) hessianRows.set(out, this.kept);
    this.kept = undefined;
    return out;
  }
}

/** Columns (rows of the inverse, rows of H's sums) processed together; the unrolled sums in cholesky, invertLower and
 *  HessianAccumulator are written for 8. */
const PANEL = 8;

/**
 * Lower Cholesky factor L (A = L·Lᵀ) of a symmetric n×n matrix, or undefined when A is not positive definite.
 * Left-looking in panels of PANEL columns: each row's products with the panel's rows over the columns before it are
 * taken in one pass over that row (memory traffic / PANEL, PANEL independent sums), then the panel is finished column
 * by column. Every entry subtracts the same products in the same order as the one-column form: the same bits, 2.3×
 * faster at n = 2048 (GPTQ's Hessian windows).
 */
export function cholesky(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let j0 = 0; j0 < n; j0 += PANEL) {
    const j1 = Math.min(n, j0 + PANEL);
    for (let i = j0; i < n; i++) {
      const ri = i * n;
      const m = Math.min(j1, i + 1) - j0;
      if (m === PANEL) {
        const [r0, r1, r2, r3, r4, r5, r6, r7] = [0, 1, 2, 3, 4, 5, 6, 7].map((q) => (j0 + q) * n) as [number, number, number, number, number, number, number, number];
        let [s0, s1, s2, s3] = [a[ri + j0]!, a[ri + j0 + 1]!, a[ri + j0 + 2]!, a[ri + j0 + 3]!];
        let [s4, s5, s6, s7] = [a[ri + j0 + 4]!, a[ri + j0 + 5]!, a[ri + j0 + 6]!, a[ri + j0 + 7]!];
        for (let p = 0; p < j0; p++) {
          const x = l[ri + p]!;
          if (x === 0) continue; // zeros of a sparse L (as subtracting them would: the same bits)
          s0 -= x * l[r0 + p]!;
          s1 -= x * l[r1 + p]!;
          s2 -= x * l[r2 + p]!;
          s3 -= x * l[r3 + p]!;
          s4 -= x * l[r4 + p]!;
          s5 -= x * l[r5 + p]!;
          s6 -= x * l[r6 + p]!;
          s7 -= x * l[r7 + p]!;
        }
        [l[ri + j0], l[ri + j0 + 1], l[ri + j0 + 2], l[ri + j0 + 3]] = [s0, s1, s2, s3];
        [l[ri + j0 + 4], l[ri + j0 + 5], l[ri + j0 + 6], l[ri + j0 + 7]] = [s4, s5, s6, s7];
      } else {
        for (let q = 0; q < m; q++) {
          const rq = (j0 + q) * n;
          let s = a[ri + j0 + q]!;
          for (let p = 0; p < j0; p++) s -= l[ri + p]! * l[rq + p]!;
          l[ri + j0 + q] = s;
        }
      }
    }
    // The panel's columns in order: the products over its own earlier columns, then the scale.
    for (let j = j0; j < j1; j++) {
      const rj = j * n;
      let d = l[rj + j]!;
      for (let p = j0; p < j; p++) d -= l[rj + p]! * l[rj + p]!;
      if (!(d > 0)) return undefined;
      const ljj = Math.sqrt(d);
      l[rj + j] = ljj;
      for (let i = j + 1; i < n; i++) {
        const ri = i * n;
        let s = l[ri + j]!;
        for (let p = j0; p < j; p++) s -= l[ri + p]! * l[rj + p]!;
        l[ri + j] = s / ljj;
      }
    }
  }
  return l;
}

/**
 * L⁻¹ of a lower-triangular matrix, row by row (each row a sum of earlier rows: contiguous memory access), in panels of
 * PANEL rows: each earlier row is read once per panel for the products before the panel (the same order per entry:
 * the same bits; 1.4× at n = 2048).
 */
function invertLower(l: Float64Array, n: number): Float64Array {
  const x = new Float64Array(n * n);
  for (let i0 = 0; i0 < n; i0 += PANEL) {
    const i1 = Math.min(n, i0 + PANEL);
    if (i1 - i0 === PANEL) {
      const [a0, a1, a2, a3, a4, a5, a6, a7] = [0, 1, 2, 3, 4, 5, 6, 7].map((q) => (i0 + q) * n) as [number, number, number, number, number, number, number, number];
      for (let p = 0; p < i0; p++) {
        const [f0, f1, f2, f3, f4, f5, f6, f7] = [l[a0 + p]!, l[a1 + p]!, l[a2 + p]!, l[a3 + p]!, l[a4 + p]!, l[a5 + p]!, l[a6 + p]!, l[a7 + p]!];
        // A Hessian with dead or unrelated inputs has rows of zeros in L: skip them as the one-row form does.
        if (f0 === 0 && f1 === 0 && f2 === 0 && f3 === 0 && f4 === 0 && f5 === 0 && f6 === 0 && f7 === 0) continue;
        const xp = p * n;
        for (let j = 0; j <= p; j++) {
          const v = x[xp + j]!;
          x[a0 + j] -= f0 * v;
          x[a1 + j] -= f1 * v;
          x[a2 + j] -= f2 * v;
          x[a3 + j] -= f3 * v;
          x[a4 + j] -= f4 * v;
          x[a5 + j] -= f5 * v;
          x[a6 + j] -= f6 * v;
          x[a7 + j] -= f7 * v;
        }
      }
    }
    for (let i = i0; i < i1; i++) {
      const xi = i * n;
      // A short last panel takes every earlier row here; a full one only its own.
      for (let p = i1 - i0 === PANEL ? i0 : 0; p < i; p++) {
        const f = l[xi + p]!;
        if (f === 0) continue;
        const xp = p * n;
        for (let j = 0; j <= p; j++) x[xi + j] -= f * x[xp + j]!;
      }
      x[xi + i] = 1;
      const d = l[xi + i]!;
      for (let j = 0; j <= i; j++) x[xi + j] /= d;
    }
  }
  return x;
}

/** A⁻¹ of a symmetric positive definite matrix through its Cholesky factor: A⁻¹ = L⁻ᵀ·L⁻¹. */
export function invertSpd(a: Float64Array, n: number): Float64Array | undefined {
  const l = cholesky(a, n);
  if (!l) return undefined;
  const m = invertLower(l, n);
  const inv = new Float64Array(n * n);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i <= p; i++) {
      const mpi = m[p * n + i]!;
      if (mpi === 0) continue;
      for (let j = 0; j <= i; j++) inv[i * n + j] += mpi * m[p * n + j]!;
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) inv[j * n + i] = inv[i * n + j]!;
  return inv;
}

/**
 * Upper factor U with H⁻¹ = Uᵀ·U (GPTQ's "Cholesky of the inverse", upper), or undefined if H is not SPD. With P the
 * order-reversing permutation and L the lower Cholesky factor of P·H·P, U = P·L⁻¹·P: one factorization and one
 * triangular inverse instead of inverting H and factorizing again (a third of the work, which is what GPTQ costs
 * for large K).
 */
export function upperCholeskyOfInverse(h: Float64Array, n: number): Float64Array | undefined {
  return factorOfReversed(Float64Array.from(h).reverse(), n);
}

/**
 * upperCholeskyOfInverse of P·H·P given as `reversed` (H's entries in reverse order: P·H·P for the order-reversing
 * P). U's upper triangle is L⁻¹'s lower one reversed, so besides H two K×K buffers are held at
 * a time (GPTQ's windows are 2048², 32 MiB each), not five.
 */
function factorOfReversed(reversed: Float64Array, n: number): Float64Array | undefined {
  const l = cholesky(reversed, n);
  if (!l) return undefined;
  // L⁻¹ is lower triangular (zeros above): reversed, it is U with zeros below.
  return invertLower(l, n).reverse();
}

/** P·(D + H)·P for the order-reversing P (factorOfReversed's input), D = `add`·I and each zero on H's diagonal (an
 *  input that never fired) read as 1 (liveDiagonal). */
function reversedDamped(h: Float64Array, n: number, add: number): Float64Array {
  const m = n * n;
  const out = new Float64Array(m);
  for (let p = 0; p < m; p++) out[p] = h[m - 1 - p]!;
  for (let i = 0; i < n; i++) out[i * n + i] = liveDiagonal(out, n, i) + add;
  return out;
}

/**
 * The rows a Hessian was summed from (H = Σ xᵀx), kept by HessianAccumulator where they are few beside K (at most
 * LOW_RANK_SHARE of it): H is then low rank plus its damping, and the factor GPTQ needs comes from r rank-one
 * downdates in O(r·K²) (lowRankFactor) instead of a dense factorization in O(K³). oww-timer's Gemm (K 3264, 32 rows)
 * spent 12 of its fit's 15 s factorizing.
 */
export const hessianRows = new WeakMap<Float64Array, readonly Float64Array[]>();

/** Rows kept per Hessian at most, as a share of its size: beyond it the dense factorization is as cheap. */
export const LOW_RANK_SHARE = 1 / 8;

/**
 * U with H⁻¹ = Uᵀ·U (upperCholeskyOfInverse) for H = D + Σ xᵀx over `rows`, D diagonal and positive. With S = D^-½
 * and Y the rows scaled by S, H⁻¹ = S·(I − Yᵀ(I + YYᵀ)⁻¹Y)·S (Woodbury) = S·(I − ZᵀZ)·S, Z = L⁻¹Y for L the Cholesky
 * factor of the r×r I + YYᵀ. The upper R with RᵀR = I − ZᵀZ is the identity downdated by each row of Z; U = R·S.
 * Undefined where a downdate loses positive definiteness to rounding (the caller factorizes densely).
 */
export function lowRankFactor(rows: readonly Float64Array[], d: Float64Array): Float64Array | undefined {
  const k = d.length;
  const r = rows.length;
  const s = d.map((x) => 1 / Math.sqrt(x));
  const y = rows.map((x) => x.map((v, i) => v * s[i]!));
  const c = new Float64Array(r * r);
  for (let a = 0; a < r; a++) {
    for (let b = 0; b <= a; b++) {
      let dot = 0;
      for (let i = 0; i < k; i++) dot += y[a]![i]! * y[b]![i]!;
      c[a * r + b] = c[b * r + a] = dot + (a === b ? 1 : 0);
    }
  }
  const l = cholesky(c, r);
  if (!l) return undefined;
  // Z = L⁻¹·Y by forward substitution, row by row (in place of Y).
  for (let a = 0; a < r; a++) {
    const z = y[a]!;
    for (let b = 0; b < a; b++) {
      const f = l[a * r + b]!;
      const zb = y[b]!;
      for (let i = 0; i < k; i++) z[i] -= f * zb[i]!;
    }
    const diag = l[a * r + a]!;
    for (let i = 0; i < k; i++) z[i] /= diag;
  }
  const u = new Float64Array(k * k);
  for (let i = 0; i < k; i++) u[i * k + i] = 1;
  for (const x of y) {
    // Rank-one downdate RᵀR − xxᵀ of the upper factor, row by row (hyperbolic rotations).
    for (let i = 0; i < k; i++) {
      const xi = x[i]!;
      if (xi === 0) continue;
      const row = i * k;
      const rii = u[row + i]!;
      const left = rii * rii - xi * xi;
      if (!(left > 0)) return undefined;
      const rNew = Math.sqrt(left);
      const [cos, sin] = [rNew / rii, xi / rii];
      u[row + i] = rNew;
      for (let j = i + 1; j < k; j++) {
        const rij = (u[row + j]! - sin * x[j]!) / cos;
        u[row + j] = rij;
        x[j] = cos * x[j]! - sin * rij;
      }
    }
  }
  for (let i = 0; i < k; i++) for (let j = i; j < k; j++) u[i * k + j] *= s[j]!;
  return u;
}

/**
 * U of the damped H (see upperCholeskyOfInverse), damping raised ×10 up to three times until H is positive definite.
 * A zero on H's diagonal (an input that never fired) is read as 1, as in `diagMean`; `h` is not changed. Where the
 * rows H was summed from are known (hessianRows), at the first damping through lowRankFactor: H's diagonal less Σx²
 * of the rows is the 1 read on a dead input's diagonal.
 */
function dampedFactor(h: Float64Array, k: number, diagMean: number, start: number, name: string, rows?: readonly Float64Array[]): { u: Float64Array; damping: number } {
  if (rows?.length) {
    const d = new Float64Array(k);
    for (const x of rows) for (let i = 0; i < k; i++) d[i] += x[i]! * x[i]!;
    for (let i = 0; i < k; i++) d[i] = (d[i] === 0 ? liveDiagonal(h, k, i) : 0) + start * diagMean;
    const u = lowRankFactor(rows, d);
    if (u) return { u, damping: start };
  }
  let damping = start;
  for (let attempt = 0; attempt < 4; attempt++, damping *= 10) {
    const u = factorOfReversed(reversedDamped(h, k, damping * diagMean), k);
    if (u) return { u, damping };
  }
  throw new Error(`${name}: the activations' Hessian stays singular even with damping ${damping / 10}; give more calibration data`);
}

/** H's diagonal entry i, a zero (an input that never fired) read as 1. */
const liveDiagonal = (h: Float64Array, k: number, i: number) => (h[i * k + i] === 0 ? 1 : h[i * k + i]!);

/** The mean of H's diagonal, zeros read as 1 (liveDiagonal), summed in order as GPTQ has always summed it. */
function liveDiagonalMean(h: Float64Array, k: number): number {
  let mean = 0;
  for (let i = 0; i < k; i++) mean += liveDiagonal(h, k, i) / k;
  return mean;
}

/** H with rows and columns in `order`. */
function permuted(h: Float64Array, k: number, order: readonly number[]): Float64Array {
  const out = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) out[i * k + j] = h[order[i]! * k + order[j]!]!;
  return out;
}

/** Rounds one weight to its grid: row r (along K) and column c (output channel) select the scale. Returns the
 *  representable value (not a code): each format recovers its codes from it exactly. */
export type GridRound = (x: number, r: number, c: number) => number;

export interface GridRoundOptions {
  /** Damping share of H's mean diagonal (default 0.01), raised as in gptqQuantize. */
  damping?: number;
  /** Trailing rows left unrounded (float): a bias row, whose input is the constant 1. Error feedback reaches them
   *  last, so they absorb what the rounded rows could not (bias correction for this layer's own rounding). */
  floatRows?: number;
}

/**
 * GPTQ's error feedback on a fixed grid: the scales are already chosen (per channel for INT8, per block for FP4), so
 * only the rounding of each weight is decided. Rows of `w` ([K, N] row-major, K the reduction axis, any trailing
 * `floatRows` kept float) are rounded in order and each row's error is pushed onto the rows not yet rounded through
 * H⁻¹ (`hessian`: K×K, Σ xᵀx of the layer's inputs, with a constant-1 input for a bias row). Minimizes the layer's
 * output error ‖XW − XŴ‖² greedily, as GPTQ does, rather than each weight's own error.
 */
export function gptqRound(w: ArrayLike<number>, k: number, n: number, hessian: Float64Array, round: GridRound, opts: GridRoundOptions = {}, name = "weight"): { values: Float64Array; damping: number } {
  if (w.length !== k * n) throw new Error(`${name}: expected ${k}×${n} = ${k * n} values, got ${w.length}`);
  if (hessian.length !== k * k) throw new Error(`${name}: the Hessian is not ${k}×${k}`);
  const floatRows = opts.floatRows ?? 0;
  const { u, damping } = dampedFactor(hessian, k, liveDiagonalMean(hessian, k), opts.damping ?? 0.01, name, hessianRows.get(hessian));
  const work = Float64Array.from(w);
  const err = new Float64Array(n);
  for (let t = 0; t < k - floatRows; t++) {
    const d = u[t * k + t]!;
    const row = t * n;
    for (let c = 0; c < n; c++) {
      const x = work[row + c]!;
      const q = round(x, t, c);
      work[row + c] = q;
      err[c] = (x - q) / d;
    }
    for (let j = t + 1; j < k; j++) {
      const f = u[t * k + j]!;
      if (f === 0) continue;
      const base = j * n;
      for (let c = 0; c < n; c++) work[base + c] -= f * err[c]!;
    }
  }
  return { values: work, damping };
}

/**
 * gptqRound against a layer Hessian that may be block-diagonal (windows of consecutive rows, GPTQ_WINDOW): each
 * window's rows rounded with its own matrix, error feedback staying inside it. A windowed layer's float (bias) rows
 * ride in every window; each window leaves them at the least-squares correction for its own rows' rounding given
 * that window's inputs, and those corrections add up (the bias's best value is linear in the weights' errors).
 */
export function gptqRoundWindows(w: ArrayLike<number>, k: number, n: number, hessian: LayerHessian, round: GridRound, opts: GridRoundOptions = {}, name = "weight"): { values: Float64Array; damping: number } {
  if (hessian instanceof Float64Array) return gptqRound(w, k, n, hessian, round, opts, name);
  const f = opts.floatRows ?? 0;
  const spans = windowSpans(hessian, k, f, name);
  if (spans.length === 1) return gptqRound(w, k, n, spans[0]!.h, round, opts, name);
  const values = Float64Array.from({ length: k * n }, (_, i) => w[i]!);
  let damping = 0;
  for (const { start, rows, h } of spans) {
    const sub = new Float64Array((rows + f) * n);
    for (let i = 0; i < rows * n; i++) sub[i] = w[start * n + i]!;
    for (let i = 0; i < f * n; i++) sub[rows * n + i] = w[(k - f) * n + i]!;
    const r = gptqRound(sub, rows + f, n, h, (x, row, c) => round(x, start + row, c), opts, `${name} (rows ${start}–${start + rows - 1})`);
    values.set(r.values.subarray(0, rows * n), start * n);
    for (let i = 0; i < f * n; i++) values[(k - f) * n + i] += r.values[rows * n + i]! - w[(k - f) * n + i]!;
    damping = Math.max(damping, r.damping);
  }
  return { values, damping };
}

/**
 * Quantizes `w` ([K, N] row-major) with GPTQ against `hessian` (K×K, Σ xᵀx over the calibration activations),
 * in blocks of `blockSize` rows along K with a scale and zero point per block and column, computed when the block
 * starts from the weights as error feedback has left them (the paper's grouping). Inputs that never fired
 * (zero diagonal) keep their round-to-nearest value and pass no error on.
 */
export function gptqQuantize(w: Float32Array, k: number, n: number, hessian: Float64Array, opts: GptqOptions, name = "weight"): GptqResult {
  const { bits, blockSize, symmetric } = opts;
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new Error(`${name}: bits must be an integer in 2..8, got ${bits}`);
  if (!Number.isInteger(blockSize) || blockSize < 2) throw new Error(`${name}: block size must be an integer ≥ 2, got ${blockSize}`);
  if (w.length !== k * n) throw new Error(`${name}: expected ${k}×${n} = ${k * n} values, got ${w.length}`);
  if (hessian.length !== k * k) throw new Error(`${name}: the Hessian is not ${k}×${k}`);
  const order = Array.from({ length: k }, (_, i) => i);
  if (opts.actOrder) order.sort((a, b) => hessian[b * k + b]! - hessian[a * k + a]! || a - b);
  // H in processing order (a copy only with act-order); dead inputs are read as 1 on its diagonal (dampedFactor).
  const h = opts.actOrder ? permuted(hessian, k, order) : hessian;
  const rows = hessianRows.get(hessian)?.map((x) => (opts.actOrder ? Float64Array.from(order, (o) => x[o]!) : x));
  const { u, damping } = dampedFactor(h, k, liveDiagonalMean(h, k), opts.damping ?? 0.01, name, rows);

  const kBlocks = Math.ceil(k / blockSize);
  const work = new Float64Array(k * n); // rows in processing order, updated by error feedback
  for (let t = 0; t < k; t++) for (let c = 0; c < n; c++) work[t * n + c] = w[order[t]! * n + c]!;
  const codes = new Uint8Array(k * n);
  const scales = new Float32Array(kBlocks * n);
  const zeroPoints = new Uint8Array(kBlocks * n);
  const setParams = (b: number, rows: (i: number, c: number) => number, len: number) => {
    const values = new Float64Array(len);
    for (let c = 0; c < n; c++) {
      for (let i = 0; i < len; i++) values[i] = rows(i, c);
      const p = rtnParams(values, bits, symmetric, 1);
      scales[b * n + c] = p.scale;
      zeroPoints[b * n + c] = p.zp;
    }
  };
  const blockLen = (b: number) => Math.min(k, (b + 1) * blockSize) - b * blockSize;
  if (opts.actOrder) for (let b = 0; b < kBlocks; b++) setParams(b, (i, c) => w[(b * blockSize + i) * n + c]!, blockLen(b));

  const qmax = 2 ** bits - 1;
  const err = new Float64Array(n);
  for (let t = 0; t < k; t++) {
    const r = order[t]!;
    const b = Math.floor(r / blockSize);
    // Without act-order t === r: the block's rows t..t+len are all still ahead, as error feedback left them.
    if (!opts.actOrder && r % blockSize === 0) setParams(b, (i, c) => work[(t + i) * n + c]!, blockLen(b));
    const d = u[t * k + t]!;
    for (let c = 0; c < n; c++) {
      const p: BlockParams = { scale: scales[b * n + c]!, zp: zeroPoints[b * n + c]! };
      const x = work[t * n + c]!;
      const q = Math.min(qmax, Math.max(0, roundHalfEven(x / p.scale) + p.zp));
      codes[r * n + c] = q;
      err[c] = (x - (q - p.zp) * p.scale) / d;
    }
    for (let j = t + 1; j < k; j++) {
      const f = u[t * k + j]!;
      if (f === 0) continue;
      const base = j * n;
      for (let c = 0; c < n; c++) work[base + c] -= f * err[c]!;
    }
  }
  return { quantized: { k, n, bits, blockSize, codes, scales, zeroPoints }, damping };
}

/**
 * The layer's output SQNR in dB over the calibration activations: 10·log10(tr(WᵀHW) / tr(ΔᵀHΔ)), Δ = W − Ŵ,
 * which is ‖XW‖² / ‖X(W − Ŵ)‖² without keeping X.
 */
export function outputSqnrDb(w: ArrayLike<number>, wq: ArrayLike<number>, hessian: Float64Array, k: number, n: number): number {
  return outputSqnrDbGroups(w, wq, [hessian], k, n);
}

/**
 * K rows per Hessian window: a layer with a longer K gets a block-diagonal Hessian, one matrix per window of
 * consecutive rows, and GPTQ runs on each window on its own (error feedback stays inside it). Memory and time go
 * from K² and K³ to K·W and K·W²: PP-OCRv3's recogniser has a 3×3 Conv over 1024 channels (K = 9216), whose full
 * Hessian is 648 MiB and whose GPTQ took most of 5 minutes and 3.8 GB.
 */
export const GPTQ_WINDOW = 2048;

/** The window lengths along K: `window` each, the last one what is left (no window: K whole). */
export function kWindows(k: number, window = k): number[] {
  if (!(Number.isInteger(window) && window >= 1)) throw new Error(`a Hessian window must be a whole number of rows ≥ 1, got ${window}`);
  const out: number[] = [];
  for (let s = 0; s < k; s += window) out.push(Math.min(window, k - s));
  return out;
}

/** A layer's Hessian over K whole, or block-diagonal: one matrix per window of consecutive rows (kWindows). */
export type LayerHessian = Float64Array | readonly Float64Array[];

const windowsOf = (h: LayerHessian): readonly Float64Array[] => (h instanceof Float64Array ? [h] : h);

/**
 * The rows each window of a layer Hessian covers: [start, start + rows) of the rounded ones, plus the `floatRows`
 * trailing (bias) rows, which every window of a windowed layer carries (their Hessian entries: Σx of the window's
 * inputs and the row count). One window covers all rows, float ones included.
 */
function windowSpans(h: LayerHessian, k: number, floatRows: number, name: string): { start: number; rows: number; h: Float64Array }[] {
  const windows = windowsOf(h);
  const carried = windows.length > 1 ? floatRows : 0;
  let start = 0;
  const spans = windows.map((m) => {
    const size = Math.round(Math.sqrt(m.length));
    const span = { start, rows: size - carried, h: m };
    start += span.rows;
    return span;
  });
  if (start + carried !== k) throw new Error(`${name}: the Hessian windows cover ${start + carried} of K = ${k} rows`);
  return spans;
}

/**
 * Σ over columns c0 … c0+per of vᵀHv, for v = w and v = d (both [k, n] row-major), summed over a layer's windows; the
 * float rows' own block, which every window of a windowed layer repeats, counted once. Row by row of H, each
 * row's products accumulated across the columns at once (contiguous memory: K·W·per multiply-adds, no striding).
 */
function windowQuadratics(w: ArrayLike<number>, d: ArrayLike<number>, c0: number, per: number, n: number, k: number, spans: ReturnType<typeof windowSpans>, floatRows: number): [number, number] {
  const carried = spans.length > 1 ? floatRows : 0;
  const [hw, hd] = [new Float64Array(per), new Float64Array(per)];
  let [sig, noise] = [0, 0];
  // vᵀHv = Σᵢ Hᵢᵢ vᵢ·vᵢ + 2 Σᵢ<ⱼ Hᵢⱼ vᵢ·vⱼ (H symmetric: half the pairs), v's rows at their offsets in w and d.
  const quadratics = (h: Float64Array, m: number, at: (i: number) => number, from: number) => {
    const off = Int32Array.from({ length: m }, (_, i) => at(i) * n + c0);
    let [a, b] = [0, 0];
    for (let i = from; i < m; i++) {
      const ri = off[i]!;
      for (let j = i; j < m; j++) {
        const hij = h[i * m + j]!;
        if (hij === 0) continue;
        const rj = off[j]!;
        let [sw, sd] = [0, 0];
        for (let c = 0; c < per; c++) {
          sw += w[ri + c]! * w[rj + c]!;
          sd += d[ri + c]! * d[rj + c]!;
        }
        const f = j === i ? hij : 2 * hij;
        a += f * sw;
        b += f * sd;
      }
    }
    return [a, b];
  };
  // With the rows H was summed from (hessianRows), vᵀHv = Σ (x·v)² over them: r·m·per instead of m²·per.
  const fromRows = (xs: readonly Float64Array[], m: number, at: (i: number) => number) => {
    let [a, b] = [0, 0];
    for (const x of xs) {
      hw.fill(0);
      hd.fill(0);
      for (let i = 0; i < m; i++) {
        const xi = x[i]!;
        if (xi === 0) continue;
        const row = at(i) * n + c0;
        for (let c = 0; c < per; c++) {
          hw[c] += xi * w[row + c]!;
          hd[c] += xi * d[row + c]!;
        }
      }
      for (let c = 0; c < per; c++) {
        a += hw[c]! * hw[c]!;
        b += hd[c]! * hd[c]!;
      }
    }
    return [a, b];
  };
  for (const { start, rows, h } of spans) {
    const at = (i: number) => (i < rows ? start + i : k - carried + (i - rows));
    const xs = hessianRows.get(h);
    const [a, b] = xs ? fromRows(xs, rows + carried, at) : quadratics(h, rows + carried, at, 0);
    [sig, noise] = [sig + a, noise + b];
  }
  if (carried) {
    const { rows, h } = spans[spans.length - 1]!;
    const [a, b] = quadratics(h, rows + carried, (i) => k - carried + (i - rows), rows);
    [sig, noise] = [sig - (spans.length - 1) * a, noise - (spans.length - 1) * b];
  }
  return [sig, noise];
}

/**
 * outputSqnrDb for a layer whose output columns fall into equal groups in order, a Hessian each (a grouped Conv),
 * each whole or in windows; `floatRows` trailing rows (a bias) ride in every window of a windowed one.
 */
export function outputSqnrDbGroups(w: ArrayLike<number>, wq: ArrayLike<number>, hessians: readonly LayerHessian[], k: number, n: number, floatRows = 0): number {
  let sig = 0;
  let noise = 0;
  const d = Float64Array.from({ length: k * n }, (_, i) => w[i]! - wq[i]!);
  const per = n / hessians.length;
  hessians.forEach((h, g) => {
    const [a, b] = windowQuadratics(w, d, g * per, per, n, k, windowSpans(h, k, floatRows, "the layer"), floatRows);
    [sig, noise] = [sig + a, noise + b];
  });
  return noise <= 0 ? Infinity : 10 * Math.log10(sig / noise);
}

/**
 * gptqQuantize against a layer Hessian that may be block-diagonal: each window's rows quantized with its own matrix
 * (windows start on quantization blocks, so the blocks' scales are the same as one pass would store).
 */
export function gptqQuantizeWindows(w: Float32Array, k: number, n: number, hessian: LayerHessian, opts: GptqOptions, name = "weight"): GptqResult {
  const windows = windowsOf(hessian);
  if (windows.length === 1) return gptqQuantize(w, k, n, windows[0]!, opts, name);
  const kBlocks = Math.ceil(k / opts.blockSize);
  const quantized: BlockQuantized = { k, n, bits: opts.bits, blockSize: opts.blockSize, codes: new Uint8Array(k * n), scales: new Float32Array(kBlocks * n), zeroPoints: new Uint8Array(kBlocks * n) };
  const spans = windowSpans(windows, k, 0, name);
  const inside = spans.find((p) => p.start % opts.blockSize !== 0);
  if (inside) throw new Error(`${name}: a Hessian window starts at row ${inside.start}, inside a block of ${opts.blockSize}`);
  let damping = 0;
  spans.forEach(({ start: s, rows: m, h }) => {
    const r = gptqQuantize(w.subarray(s * n, (s + m) * n), m, n, h, opts, `${name} (rows ${s}–${s + m - 1})`);
    quantized.codes.set(r.quantized.codes, s * n);
    quantized.scales.set(r.quantized.scales, (s / opts.blockSize) * n);
    quantized.zeroPoints.set(r.quantized.zeroPoints, (s / opts.blockSize) * n);
    damping = Math.max(damping, r.damping);
  });
  return { quantized, damping };
}

/** Columns [g·per, (g+1)·per) of `src` ([rows, n] row-major) into `out` ([rows, per]). */
function groupColumns<T extends { [i: number]: number }>(src: ArrayLike<number>, rows: number, n: number, per: number, g: number, out: T): T {
  for (let r = 0; r < rows; r++) for (let c = 0; c < per; c++) out[r * per + c] = src[r * n + g * per + c]!;
  return out;
}

/** The reverse of groupColumns: `part` ([rows, per]) into columns [g·per, (g+1)·per) of `dst` ([rows, n]). */
function setGroupColumns(dst: { [i: number]: number }, part: ArrayLike<number>, rows: number, n: number, per: number, g: number): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < per; c++) dst[r * n + g * per + c] = part[r * per + c]!;
}

/** The output channels per group, or an error naming the layer when they do not split evenly. */
function perGroup(n: number, groups: number, name: string): number {
  if (n % groups !== 0) throw new Error(`${name}: ${n} output channels do not split into ${groups} groups`);
  return n / groups;
}

/** gptqRound for a layer whose N output columns fall into equal groups in order, each with the Hessian of its own
 *  inputs (a grouped Conv; a depthwise one has a group per channel). */
export function gptqRoundGroups(w: ArrayLike<number>, k: number, n: number, hessians: readonly LayerHessian[], round: GridRound, opts: GridRoundOptions = {}, name = "weight"): Float64Array {
  if (hessians.length === 1) return gptqRoundWindows(w, k, n, hessians[0]!, round, opts, name).values;
  const per = perGroup(n, hessians.length, name);
  const out = new Float64Array(k * n);
  const part = new Float64Array(k * per);
  hessians.forEach((h, g) => {
    const { values } = gptqRoundWindows(groupColumns(w, k, n, per, g, part), k, per, h, (x, r, c) => round(x, r, g * per + c), opts, `${name} (group ${g})`);
    setGroupColumns(out, values, k, n, per, g);
  });
  return out;
}

/** gptqQuantizeWindows for a layer whose N output columns fall into equal groups in order, a layer Hessian each (a
 *  grouped Conv), assembled into one BlockQuantized. */
export function gptqQuantizeGroups(w: Float32Array, k: number, n: number, hessians: readonly LayerHessian[], opts: GptqOptions, name = "weight"): GptqResult {
  if (hessians.length === 1) return gptqQuantizeWindows(w, k, n, hessians[0]!, opts, name);
  const per = perGroup(n, hessians.length, name);
  const kBlocks = Math.ceil(k / opts.blockSize);
  const quantized: BlockQuantized = { k, n, bits: opts.bits, blockSize: opts.blockSize, codes: new Uint8Array(k * n), scales: new Float32Array(kBlocks * n), zeroPoints: new Uint8Array(kBlocks * n) };
  const part = new Float32Array(k * per);
  let damping = 0;
  hessians.forEach((h, g) => {
    const r = gptqQuantizeWindows(groupColumns(w, k, n, per, g, part), k, per, h, opts, `${name} (group ${g})`);
    damping = Math.max(damping, r.damping);
    setGroupColumns(quantized.codes, r.quantized.codes, k, n, per, g);
    setGroupColumns(quantized.scales, r.quantized.scales, kBlocks, n, per, g);
    setGroupColumns(quantized.zeroPoints, r.quantized.zeroPoints, kBlocks, n, per, g);
  });
  return { quantized, damping };
}
