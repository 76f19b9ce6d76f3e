// A long step's progress as calibrate()'s onProgress reports it: (done, total, { phase, unit, etaSeconds }). Static
// calibration's measurements, low-bit protection and learned rounding report through it; the CLI draws the events
// and the notebook kernel shows them as progress outputs.
import type { CollectOptions } from "./types";

/**
 * One measurement phase's progress: `step(done, total)` reports it with an ETA from the time its steps took, after
 * checking the signal (an abort rejects calibrate() between steps).
 */
export function phaseProgress(options: Pick<CollectOptions, "onProgress" | "signal">, phase: string, unit: string): (done: number, total: number) => void {
  // The clock starts at the phase's first report, not at this call: a caller may build its phases before they run.
  let from: { at: number; done: number } | undefined;
  return (done, total) => {
    options.signal?.throwIfAborted();
    from ??= { at: performance.now(), done };
    const perStep = done > from.done ? (performance.now() - from.at) / 1000 / (done - from.done) : undefined;
    options.onProgress?.(done, total, { phase, unit, ...(perStep !== undefined && { etaSeconds: perStep * (total - done) }) });
  };
}
