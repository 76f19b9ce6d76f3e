// AdaRound (Nagel et al. 2020) for static INT8: each quantized Conv/Gemm/MatMul's weight codes are chosen again by
// gradient descent against the layer's outputs on the calibration data. Per weight a continuous V gives a soft
// rounding h(V) = clip(σ(V)·(ζ − γ) + γ, 0, 1) between the code below the float weight and the one above; Adam
// minimizes the layer's output error plus λ·Σ(1 − |2h − 1|^β), β annealed from 20 to 2 after a warm-up, which
// drives every h to 0 or 1. The scales and zero points stay as convert() chose them; the bias (int32 codes or
// float) takes the mean error in closed form. The sites, the sampled inputs (im2col patches for a Conv, tokens for
// a MatMul/Gemm) and the write-back are learned rounding's (rounding.ts): only the choice of codes differs.
//
// The output error over the sampled rows X is Σ_c d_cᵀ·H·d_c with d_c = ŵ_c − w_c and H = XᵀX, so each iteration
// costs K² per output channel whatever the number of rows; a code that did not move since the last iteration
// costs nothing (H·d is updated by the columns that changed), and most have settled once β falls.
import type { CalibrationData } from "../data/feeds";
import type { Model } from "../onnx/model";
import { fitRounding, type LayerGrid, type RoundingOptions, type RoundingReport, type Site } from "./rounding";

export interface AdaRoundOptions extends Omit<RoundingOptions, "damping"> {
  /** Adam steps per layer (per group of a grouped Conv; default 500): with the exact H the gradient has no sampling
   *  noise, so far fewer than the paper's 10 000 mini-batch steps settle. The time grows with K²·N per step. */
  iterations?: number;
  /** Weight of the rounding regularizer against the layer's output error, both normalized (the error by nearest
   *  rounding's, the regularizer by the number of weights; default 0.01). */
  lambda?: number;
  /** Adam's step size on V (default 0.01). */
  learningRate?: number;
  /** Share of the iterations before the regularizer starts (default 0.2). */
  warmup?: number;
  /** Correct the bias (int32 codes or float) for the codes chosen (default true); false keeps it as stored. */
  bias?: boolean;
}

const [ZETA, GAMMA] = [1.1, -0.1];
const [BETA_START, BETA_END] = [20, 2];
const [ADAM_B1, ADAM_B2, ADAM_EPS] = [0.9, 0.999, 1e-8];
/** Yield to the event loop (for an abort) after this much work in one go. */
const YIELD_MS = 100;

/**
 * A copy of `quantized` (convert()'s QDQ model from `float`, i.e. `prepared.model`) whose weight codes AdaRound
 * chose against each layer's outputs on `data` (iterated once per pass: an array, or a reader that can be read
 * again). A layer's output channels where the fit is not better than nearest rounding on the sampled rows keep
 * their stored codes and bias, so no layer's error on those rows grows.
 */
export async function adaRound(float: Model, quantized: Model, data: CalibrationData, options: AdaRoundOptions = {}): Promise<{ model: Model; report: RoundingReport }> {
  const o = settings(options);
  let last = performance.now();
  const stop = () => {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error("AdaRound cancelled");
  };
  const pause = async () => {
    stop();
    if (performance.now() - last < YIELD_MS) return;
    await new Promise((r) => setImmediate(r));
    last = performance.now();
    stop();
  };
  return fitRounding("adaRound", "adaround", float, quantized, data, options, async (site, hessians, grid) => {
    const values = Float64Array.from(grid.nearest);
    const per = site.n / hessians.length;
    let keptNearest = 0;
    for (let g = 0; g < hessians.length; g++) {
      const h = hessians[g]!;
      // adaRound asks for no windows (its maxK bounds K instead): each group's Hessian is one matrix.
      if (!(h instanceof Float64Array)) throw new Error(`adaRound: ${site.codes.name} came with a windowed Hessian`);
      keptNearest += await fitGroup(site, h, grid, g * per, per, values, o, pause);
    }
    return { values, keptNearest };
  });
}

type Settings = Required<Pick<AdaRoundOptions, "iterations" | "lambda" | "learningRate" | "warmup" | "bias">>;

function settings(o: AdaRoundOptions): Settings {
  const s = { iterations: o.iterations ?? 200, lambda: o.lambda ?? 100, learningRate: o.learningRate ?? 0.05, warmup: o.warmup ?? 0.2, bias: o.bias ?? true };
  if (!Number.isInteger(s.iterations) || s.iterations < 1) throw new Error(`adaRound: iterations must be a whole number ≥ 1, got ${s.iterations}`);
  if (!(s.lambda >= 0) || !Number.isFinite(s.lambda)) throw new Error(`adaRound: lambda must be a finite number ≥ 0, got ${s.lambda}`);
  if (!(s.learningRate > 0) || !Number.isFinite(s.learningRate)) throw new Error(`adaRound: learningRate must be a finite number > 0, got ${s.learningRate}`);
  if (!(s.warmup >= 0 && s.warmup < 1)) throw new Error(`adaRound: warmup is a share of the iterations in [0, 1), got ${s.warmup}`);
  return s;
}

/**
 * Fits output channels c0 … c0+per (one group; a dense layer is one group) on their Hessian `hFull` ((K+1)² with a
 * bias row), writing the chosen values into `values` where they beat the stored ones. Returns the channels kept.
 */
async function fitGroup(s: Site, hFull: Float64Array, grid: LayerGrid, c0: number, per: number, values: Float64Array, o: Settings, pause: () => Promise<void>): Promise<number> {
  const { k, n } = s;
  const kk = k + (s.bias ? 1 : 0);
  // The bias row's Hessian entries: Σx per input and the row count. With the bias corrected, the error it leaves is
  // that of H's Schur complement H − h·hᵀ/rows (the inputs' scatter about their mean); kept, it adds a linear term.
  const rows = s.bias ? hFull[k * kk + k]! : 0;
  const correct = s.bias !== undefined && o.bias && rows > 0;
  const h = new Float32Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) h[i * k + j] = hFull[i * kk + j]! - (correct ? (hFull[i * kk + k]! * hFull[j * kk + k]!) / rows : 0);
  }
  // Per channel (j = 0 … per-1): the code below each float weight, the rest above it, and the constant gradient
  // term of a kept bias.
  const floorCode = new Float32Array(per * k);
  const v = new Float32Array(per * k);
  const d = new Float32Array(per * k);
  const g0 = new Float64Array(per * k);
  const live: number[] = [];
  for (let j = 0; j < per; j++) {
    const c = c0 + j;
    const sc = s.scale[c]!;
    if (sc === 0) continue; // a dead channel: nothing to fit
    live.push(j);
    for (let i = 0; i < k; i++) {
      const x = s.w[i * n + c]! / sc;
      const f = Math.floor(x);
      floorCode[j * k + i] = f + s.zp[c]!;
      const p = (x - f - GAMMA) / (ZETA - GAMMA); // σ(V) for h = the rest: the soft weight starts at the float one
      v[j * k + i] = Math.log(p / (1 - p));
    }
    if (s.bias && !correct) {
      const b0 = grid.nearest[k * n + c]! - s.w[k * n + c]!;
      for (let i = 0; i < k; i++) g0[j * k + i] = hFull[i * kk + k]! * b0;
    }
  }
  const soft = (j: number, i: number, c: number, hv: number) => s.scale[c]! * (Math.min(grid.hi, Math.max(grid.lo, floorCode[j * k + i]! + hv)) - s.zp[c]!) - s.w[i * n + c]!;
  const hOf = (x: number) => Math.min(1, Math.max(0, sigmoid(x) * (ZETA - GAMMA) + GAMMA));
  for (const j of live) for (let i = 0; i < k; i++) d[j * k + i] = soft(j, i, c0 + j, hOf(v[j * k + i]!));

  // Nearest rounding's error on this objective normalizes the output term (layers of any scale, one λ).
  const hd = new Float64Array(per * k);
  const nearestD = new Float32Array(per * k);
  for (const j of live) for (let i = 0; i < k; i++) nearestD[j * k + i] = grid.nearest[i * n + c0 + j]! - s.w[i * n + c0 + j]!;
  multiply(h, k, nearestD, live, hd);
  let e0 = 0;
  for (const j of live) for (let i = 0; i < k; i++) e0 += nearestD[j * k + i]! * (hd[j * k + i]! + 2 * g0[j * k + i]!);
  if (!(e0 > 0) || live.length === 0) return per; // nearest is exact on these rows (or nothing to fit)

  const m = new Float32Array(per * k);
  const m2 = new Float32Array(per * k);
  const sg = new Float32Array(per * k); // σ(V), kept from the step that set V
  for (const j of live) for (let i = 0; i < k; i++) sg[j * k + i] = sigmoid(v[j * k + i]!);
  const moves = new Int32Array(per * k);
  const deltas = new Float32Array(per * k);
  const count = live.length * k;
  const warm = Math.floor(o.iterations * o.warmup);
  multiply(h, k, d, live, hd);
  for (let t = 0; t < o.iterations; t++) {
    const reg = t >= warm && o.lambda > 0;
    const beta = BETA_END + (BETA_START - BETA_END) * (1 - (t - warm) / Math.max(1, o.iterations - warm));
    const [c1, c2] = [1 - ADAM_B1 ** (t + 1), 1 - ADAM_B2 ** (t + 1)];
    let moved = 0;
    for (const j of live) {
      const c = c0 + j;
      const sc = s.scale[c]!;
      const zp = s.zp[c]!;
      const grad0 = (2 * sc) / e0;
      for (let i = 0, at = j * k; i < k; i++, at++) {
        const sig = sg[at]!;
        const raw = sig * (ZETA - GAMMA) + GAMMA;
        if (raw <= 0 || raw >= 1) continue; // h clipped: no gradient reaches V (and Adam's state waits)
        const code = floorCode[at]! + raw;
        let dh = code > grid.lo && code < grid.hi ? grad0 * (hd[at]! + g0[at]!) : 0;
        if (reg) {
          const u = 2 * raw - 1;
          dh -= (o.lambda * beta * 2 * Math.sign(u) * Math.abs(u) ** (beta - 1)) / count;
        }
        const grad = dh * (ZETA - GAMMA) * sig * (1 - sig);
        const gm = (m[at] = ADAM_B1 * m[at]! + (1 - ADAM_B1) * grad);
        const gv = (m2[at] = ADAM_B2 * m2[at]! + (1 - ADAM_B2) * grad * grad);
        const vNext = (v[at] = v[at]! - (o.learningRate * (gm / c1)) / (Math.sqrt(gv / c2) + ADAM_EPS));
        const sNext = (sg[at] = sigmoid(vNext));
        const hNext = Math.min(1, Math.max(0, sNext * (ZETA - GAMMA) + GAMMA));
        const next = sc * (Math.min(grid.hi, Math.max(grid.lo, floorCode[at]! + hNext)) - zp) - s.w[i * n + c]!;
        const delta = Math.fround(next) - d[at]!;
        if (delta === 0) continue;
        d[at] = next;
        moves[moved] = at;
        deltas[moved++] = delta;
      }
    }
    // H·d again: in full while many weights move (early), else by the columns that moved (H is symmetric: rows).
    if (moved * 4 > count) multiply(h, k, d, live, hd);
    else {
      for (let q = 0; q < moved; q++) {
        const at = moves[q]!;
        const row = at - (at % k);
        const hRow = (at % k) * k;
        const delta = deltas[q]!;
        for (let p = 0; p < k; p++) hd[row + p] += h[hRow + p]! * delta;
      }
    }
    if (t % 8 === 7) await pause();
  }

  // Hard codes: h ≥ ½, i.e. V ≥ 0, rounds up. Each channel keeps the better of these and the stored values on the
  // full objective (bias row included), so no channel's error on the rows grows.
  let kept = per - live.length;
  const e = new Float64Array(kk);
  const nearestE = new Float64Array(kk);
  for (const j of live) {
    const c = c0 + j;
    for (let i = 0; i < k; i++) {
      const code = Math.min(grid.hi, Math.max(grid.lo, floorCode[j * k + i]! + (v[j * k + i]! >= 0 ? 1 : 0)));
      e[i] = s.scale[c]! * (code - s.zp[c]!) - s.w[i * n + c]!;
    }
    if (s.bias) {
      let shift = 0;
      if (correct) for (let i = 0; i < k; i++) shift -= (hFull[k * kk + i]! * e[i]!) / rows;
      e[k] = correct ? shift : grid.nearest[k * n + c]! - s.w[k * n + c]!;
    }
    for (let i = 0; i < kk; i++) nearestE[i] = grid.nearest[i * n + c]! - s.w[i * n + c]!;
    if (quadratic(hFull, kk, e) > quadratic(hFull, kk, nearestE)) {
      kept++;
      continue;
    }
    for (let i = 0; i < kk; i++) values[i * n + c] = s.w[i * n + c]! + e[i]!;
  }
  return kept;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** out[j] = H·d[j] for the channels listed ([per][k] rows), H's row kept hot across channels; four running sums
 *  (no chain of dependent adds). */
function multiply(h: Float32Array, k: number, d: Float32Array, channels: readonly number[], out: Float64Array): void {
  const k4 = k - (k % 4);
  for (let i = 0; i < k; i++) {
    const base = i * k;
    for (const j of channels) {
      const row = j * k;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let p = 0;
      for (; p < k4; p += 4) {
        a0 += h[base + p]! * d[row + p]!;
        a1 += h[base + p + 1]! * d[row + p + 1]!;
        a2 += h[base + p + 2]! * d[row + p + 2]!;
        a3 += h[base + p + 3]! * d[row + p + 3]!;
      }
      for (; p < k; p++) a0 += h[base + p]! * d[row + p]!;
      out[row + i] = a0 + a1 + a2 + a3;
    }
  }
}

/** eᵀ·H·e (H n×n, float64). */
function quadratic(h: Float64Array, n: number, e: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (e[i] === 0) continue;
    let acc = 0;
    for (let j = 0; j < n; j++) acc += h[i * n + j]! * e[j]!;
    sum += e[i]! * acc;
  }
  return sum;
}
