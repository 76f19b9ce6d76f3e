// Child process of bench/corpus.ts and the corpus test: does onnxruntime load and run a quantized corpus model, and
// how close are its outputs to the FP32 model's on held-out generated samples (seeded apart from the calibration
// samples)? Run apart from the bench so an abort inside onnxruntime is a failed row, not a dead bench.
//   node --import tsx bench/corpus/evaluate.ts --model ID --candidate FILE [--seed N] [--count N]
// Prints one JSON line: EvalResult.
import { argmaxRows } from "../../engine/analysis/metrics";
import { ErrorAccumulator } from "../../engine/analysis/error-stats";
import { createSession, type Session } from "../../engine/runtime/session";
import type { OutputTensor } from "../../engine/runtime/tensors";
import { byId, loadCatalog, modelPath, type Check } from "./catalog";
import { FrontEnd, makeSamples, type Sample } from "./inputs";

export interface EvalResult {
  ok: boolean;
  /** Why onnxruntime could not load or run the candidate. */
  reason?: string;
  samples: number;
  /** Lowest output SQNR (dB) over the graph's outputs, all samples pooled per output. */
  sqnrDb?: number;
  /** SQNR per output name. */
  sqnrByOutput?: Record<string, number>;
  /** Share of rows (argmax) or elements (threshold) where the candidate decides as FP32 does. */
  agreement?: number;
  agreementOn?: string;
}

/** Held-out samples use seeds from here on; calibration uses 1. */
export const EVAL_SEED = 1000;

async function outputs(s: Session, samples: readonly Sample[]): Promise<Record<string, OutputTensor>[]> {
  const out: Record<string, OutputTensor>[] = [];
  for (const feeds of samples) out.push(await s.run(feeds));
  return out;
}

function floats(t: OutputTensor): Float64Array {
  return Float64Array.from(t.data as ArrayLike<number | bigint>, Number);
}

function agreement(check: Check, ref: readonly Record<string, OutputTensor>[], cand: readonly Record<string, OutputTensor>[], name: string): number {
  let same = 0;
  let total = 0;
  ref.forEach((r, i) => {
    const a = floats(r[name]!);
    const b = floats(cand[i]![name]!);
    if (check.kind === "threshold") {
      for (let k = 0; k < a.length; k++) same += a[k]! > check.at === b[k]! > check.at ? 1 : 0;
      total += a.length;
      return;
    }
    const cols = r[name]!.dims[r[name]!.dims.length - 1] ?? 1;
    const x = argmaxRows({ rows: a.length / cols, cols, data: a });
    const y = argmaxRows({ rows: b.length / cols, cols, data: b });
    for (let k = 0; k < x.length; k++) same += x[k] === y[k] ? 1 : 0;
    total += x.length;
  });
  return total ? same / total : NaN;
}

export async function evaluate(id: string, candidate: string, seed = EVAL_SEED, count = 8): Promise<EvalResult> {
  const catalog = loadCatalog();
  const m = byId(catalog, id);
  const fe = new FrontEnd(catalog);
  let samples: Sample[];
  try {
    samples = await makeSamples(m, count, seed, fe);
  } finally {
    await fe.dispose();
  }
  const refSession = await createSession(modelPath(m), { threads: 1 });
  const ref = await outputs(refSession, samples).finally(() => refSession.dispose());
  let cand: Record<string, OutputTensor>[];
  try {
    const s = await createSession(candidate, { threads: 1 });
    cand = await outputs(s, samples).finally(() => s.dispose());
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message.split("\n")[0] : String(e), samples: count };
  }
  const sqnrByOutput: Record<string, number> = {};
  for (const name of Object.keys(ref[0]!)) {
    const acc = new ErrorAccumulator();
    ref.forEach((r, i) => acc.add(floats(r[name]!), floats(cand[i]![name]!), name));
    sqnrByOutput[name] = acc.result().sqnrDb;
  }
  const result: EvalResult = { ok: true, samples: count, sqnrByOutput, sqnrDb: Math.min(...Object.values(sqnrByOutput)) };
  if (m.check) {
    const name = m.check.output ?? Object.keys(ref[0]!)[0]!;
    result.agreement = agreement(m.check, ref, cand, name);
    result.agreementOn = `${m.check.kind === "argmax" ? "argmax" : `>${m.check.at}`} of ${name.length > 24 ? `${name.slice(0, 24)}…` : name}`;
  }
  return result;
}

function main(argv: string[]): void {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const id = get("--model");
  const candidate = get("--candidate");
  if (!id || !candidate) {
    console.error("usage: evaluate.ts --model ID --candidate FILE [--seed N] [--count N]");
    process.exitCode = 2;
    return;
  }
  evaluate(id, candidate, Number(get("--seed") ?? EVAL_SEED), Number(get("--count") ?? 8)).then(
    // JSON has no Infinity: identical outputs (SQNR = ∞) are written as a string.
    (r) => console.log(JSON.stringify(r, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v))),
    (e: unknown) => {
      console.error(`evaluate: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) main(process.argv.slice(2));
