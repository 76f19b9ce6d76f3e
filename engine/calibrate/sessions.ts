// The calibrator's onnxruntime sessions, each over an augmented copy of the model (engine/calibrate/augment.ts):
// the main ones (observed tensors, reduced or whole), a reduce-only one that seeds histograms, and a whole-tensor
// fallback for min/max batches that held NaN/Inf. Opened lazily, all freed by dispose().

import type { Model } from "../onnx/model";
import { createSession, type Session } from "../runtime/session";
import { augmentModel, type ObservedOutputs } from "./augment";
import type { CalibrationOptions } from "./types";

export interface Run {
  session: Session;
  outputs: ObservedOutputs[];
  /** The output holding every tensor's min, max, sum (whole-tensor sessions). */
  stats?: string;
  /** The output holding every tensor's element count (reduce-only sessions). */
  sizes?: string;
}

export class SessionPool {
  private main: Promise<Run[]> | undefined;
  private seedRun: Run | undefined;
  private fallback: { run: Run; tensors: Set<string> } | undefined;

  constructor(
    private readonly model: Model,
    private readonly options: CalibrationOptions,
    private readonly warn: (message: string) => void,
    /** Whole tensors the main sessions return as every step-th value (Calibrator's sampleStep); exact elsewhere. */
    private readonly steps: ReadonlyMap<string, number> = new Map(),
  ) {}

  async open(tensors: readonly string[], reduce: boolean, stats = false, sampled = false): Promise<Run> {
    const sample = sampled && !reduce ? this.steps : undefined;
    const { model, outputs, stats: statsOutput, sizes } = augmentModel(this.model, tensors, reduce, { stats, sizes: reduce, ...(sample ? { sample } : {}) });
    // Whole tensors come back as graph outputs, which onnxruntime never reuses: its memory pattern then plans one
    // block for every output plus the intermediates and keeps it (mobilenet, batch 32: +90 MiB peak, measured).
    const session = await this.session(model, !reduce);
    return { session, outputs, ...(statsOutput ? { stats: statsOutput } : {}), ...(sizes ? { sizes } : {}) };
  }

  /** A session over a model of the calibrator's own making (the augmented copies, auto's probe); the caller frees it. */
  session(model: Model, wholeOutputs = false): Promise<Session> {
    return createSession(model, {
      optimization: "disabled",
      ...(wholeOutputs ? { memPattern: false } : {}),
      ep: this.options.ep ?? "cpu",
      ...(this.options.threads ? { threads: this.options.threads } : {}),
      onFallback: (why) => this.warn(why),
    });
  }

  /** The main sessions, one per chunk of tensors (opened once; a failure closes what was opened). */
  sessions(chunks: readonly string[][], reduce: boolean): Promise<Run[]> {
    this.main ??= (async () => {
      const out: Run[] = [];
      try {
        for (const c of chunks) out.push(await this.open(c, reduce, !reduce, true));
      } catch (e) {
        await Promise.all(out.map((r) => r.session.dispose()));
        this.main = undefined;
        throw e;
      }
      return out;
    })();
    return this.main;
  }

  /**
   * The reduce-only session over `fresh` (the tensors whose histograms have no range yet), kept while some of them
   * still has none (rare: all zeros so far), so that it is not rebuilt for every batch; the tensors without a
   * range only ever become fewer, so the first session covers them all.
   */
  async seeding(fresh: readonly string[]): Promise<Run> {
    this.seedRun ??= await this.open(fresh, true);
    return this.seedRun;
  }

  /** Frees the seeding session (and the memory onnxruntime holds for it) once every histogram has a range. */
  async seeded(): Promise<void> {
    await this.seedRun?.session.dispose();
    this.seedRun = undefined;
  }

  /** A whole-tensor session covering `tensors` (and those asked for before), for min/max batches with NaN/Inf. */
  async fallbackFor(tensors: readonly string[]): Promise<Run> {
    if (!this.fallback || tensors.some((t) => !this.fallback!.tensors.has(t))) {
      const all = new Set([...(this.fallback?.tensors ?? []), ...tensors]);
      await this.fallback?.run.session.dispose();
      this.fallback = undefined;
      this.fallback = { run: await this.open([...all], false), tensors: all };
    }
    return this.fallback.run;
  }

  /** Frees every session (the memory onnxruntime holds for them); they open again when asked for. */
  async dispose(): Promise<void> {
    const runs = this.main ? await this.main.catch(() => []) : [];
    await Promise.all([...runs.map((r) => r.session.dispose()), this.fallback?.run.session.dispose(), this.seedRun?.session.dispose()]);
    this.main = undefined;
    this.fallback = undefined;
    this.seedRun = undefined;
  }
}
