// Streaming error statistics between a reference tensor (the float model's) and its quantized counterpart: SQNR,
// MSE, cosine similarity and max abs error, accumulated batch by batch in float64 so memory does not grow with data.

export interface ErrorFigures {
  /** 10·log10(Σref² / Σ(ref−q)²) in dB; Infinity when identical; -Infinity when the reference is all zeros but q is not. */
  sqnrDb: number;
  mse: number;
  /** Σ ref·q / (‖ref‖·‖q‖); 1 when both are all zeros, 0 when only one is. */
  cosine: number;
  maxAbs: number;
  /** Elements compared. */
  count: number;
}

export class ErrorAccumulator {
  private signal = 0;
  private noise = 0;
  private dot = 0;
  private normQ = 0;
  private maxAbs = 0;
  private count = 0;

  /** Adds one batch. Both arrays must have the same length (same tensor, same batch). */
  add(ref: ArrayLike<number>, q: ArrayLike<number>, what = "tensor"): void {
    if (ref.length !== q.length) throw new Error(`${what}: reference has ${ref.length} values, quantized has ${q.length}`);
    for (let i = 0; i < ref.length; i++) {
      const r = ref[i]!;
      const x = q[i]!;
      const d = r - x;
      this.signal += r * r;
      this.noise += d * d;
      this.dot += r * x;
      this.normQ += x * x;
      const a = Math.abs(d);
      if (a > this.maxAbs) this.maxAbs = a;
    }
    this.count += ref.length;
  }

  result(): ErrorFigures {
    const { signal, noise, dot, normQ, count } = this;
    const sqnrDb = noise === 0 ? Infinity : signal === 0 ? -Infinity : 10 * Math.log10(signal / noise);
    const denom = Math.sqrt(signal * normQ);
    const cosine = denom === 0 ? (signal === 0 && normQ === 0 ? 1 : 0) : dot / denom;
    return { sqnrDb, mse: count ? noise / count : 0, cosine, maxAbs: this.maxAbs, count };
  }
}

/** One-shot figures for two whole arrays. */
export function errorFigures(ref: ArrayLike<number>, q: ArrayLike<number>): ErrorFigures {
  const acc = new ErrorAccumulator();
  acc.add(ref, q);
  return acc.result();
}
