// Random feeds for a model: for smoke tests and benchmarks only. Ranges calibrated on noise are not the ranges of
// real data, so it always warns.

import { DataType, dtypeName, isIntegerType } from "../onnx/dtype";
import { arrayTypeFor, batchSymbol, checkFeeds, DataError, ortTypeName, type TensorArray, type Feeds } from "./feeds";
import { checkFeedBytes, type Limits } from "../onnx/limits";
import { inputSpecs, type ModelInputsSource } from "./feeds";
import { fillNumber } from "../runtime/tensors";

export interface RandomDataOptions {
  /** Seed of the generator (default 1), so runs are repeatable. */
  seed?: number;
  /** Value of a dynamic first dimension (default 1). */
  batchSize?: number;
  /** Shapes for inputs with symbolic dims other than the first, by input name. */
  shapes?: { readonly [inputName: string]: readonly number[] };
  /** Integer inputs get values in [0, intHigh) (default 10; token ids, class indices), but those with `choices`. */
  intHigh?: number;
  /** Where the warning goes (default process.emitWarning). */
  warn?: (message: string) => void;
  /** Override of the feedBytes limit, the most one generated batch may hold (engine/onnx/limits.ts). */
  limits?: Limits;
}

/**
 * Mulberry32: the engine's one seeded generator, uniform in [0, 1), so generated inputs and bootstrap intervals are
 * the same on every run and machine.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Float inputs get standard normal values, integer inputs uniform integers (or, where the graph tests them against
 * constants, those values in turn), bool inputs 0/1.
 */
export function* randomData(model: ModelInputsSource, n: number, options: RandomDataOptions = {}): Generator<Feeds> {
  const specs = inputSpecs(model);
  const warn = options.warn ?? ((m: string) => process.emitWarning(m, "PTQRandomData"));
  warn(`calibrating on ${n} batch(es) of RANDOM data: the ranges will not match real inputs; use real samples for a model you ship`);
  const next = seededRandom(options.seed ?? 1);
  const batch = batchSymbol(specs);
  const shapes = specs.map((s) => {
    const given = options.shapes?.[s.name];
    if (given) return [...given];
    if (!s.shape) throw new DataError(`input "${s.name}" has unknown rank; pass its shape in options.shapes`);
    return s.shape.map((d, i) => {
      if (typeof d === "number" && d > 0) return d;
      if (i === 0 || (batch !== undefined && d === batch)) return options.batchSize ?? 1;
      throw new DataError(`input "${s.name}" has a symbolic dim ${d ?? "?"} at axis ${i}; pass its shape in options.shapes`);
    });
  });
  const arrays = specs.map((s) => arrayTypeFor(s.elemType));
  checkFeedBytes(specs.map((s, k) => ({ name: s.name, dims: shapes[k]!, bytesPerElement: arrays[k]!.BYTES_PER_ELEMENT })), "random data", options.limits);
  const high = options.intHigh ?? 10;
  for (let b = 0; b < n; b++) {
    const feeds: Record<string, { data: TensorArray; dims: number[]; type: string }> = {};
    specs.forEach((s, k) => {
      const dims = shapes[k]!;
      const count = dims.reduce((a, d) => a * d, 1);
      const data = new arrays[k]!(count);
      const t = s.elemType;
      // An integer the graph tests against constants (a sample rate, a mode) takes them in turn, batch by batch.
      const chosen = s.choices?.length ? s.choices[b % s.choices.length]! : undefined;
      if (chosen !== undefined && isIntegerType(t)) {
        feeds[s.name] = { data: fillNumber(data, chosen), dims, type: ortTypeName(t) };
        return;
      }
      for (let i = 0; i < count; i++) {
        if (t === DataType.FLOAT || t === DataType.DOUBLE) {
          (data as Float32Array)[i] = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
        } else if (t === DataType.INT64 || t === DataType.UINT64) {
          (data as BigInt64Array)[i] = BigInt(Math.floor(next() * high));
        } else if (t === DataType.BOOL) {
          (data as Uint8Array)[i] = next() < 0.5 ? 0 : 1;
        } else if (t === DataType.FLOAT16) {
          throw new DataError(`input "${s.name}" is ${dtypeName(t)}: random data is generated for float32/float64 and integer inputs only`);
        } else {
          (data as Int32Array)[i] = Math.floor(next() * high);
        }
      }
      feeds[s.name] = { data, dims, type: ortTypeName(t) };
    });
    checkFeeds(feeds, specs, `random batch ${b}`);
    yield feeds;
  }
}
