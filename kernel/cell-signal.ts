// The running cell's AbortSignal. Interrupting a cell only settles it (kernel/executor): the engine work it started
// would run on unobserved, holding the CPU for minutes. The notebook's long calls (kernel/api: calibration,
// quantizeStatic, low-bit protection and fits, the accuracy-target search) take this signal unless the cell passes
// its own, so an interrupt stops them at their next step.

let current = new AbortController();

/** The signal of the cell running now (or last run). */
export const cellSignal = (): AbortSignal => current.signal;

/** A new cell starts: a new signal, so one interrupted cell does not stop the next. */
export function startCell(): void {
  current = new AbortController();
}

/** The cell was interrupted: the work it started stops at its next step. */
export function interruptCell(): void {
  current.abort(new Error("interrupted: the cell was stopped"));
}
