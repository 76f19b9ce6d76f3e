// Progress of a long search, with an estimate of the time left: every measurement (one conversion and run) costs
// about the same, so the mean so far times the measurements left is the ETA. The search's step count is only known
// once it ends (a binary search per remedy), so its total is an estimate that grows if the search runs longer.

export interface Progress {
  /** "rank": measuring each node; "search": measuring configurations the strategy asks for. */
  phase: "rank" | "search";
  /** Measurements done and expected in all (rank and search together). */
  done: number;
  total: number;
  elapsedSeconds: number;
  /** Seconds left at the mean time per measurement so far. */
  etaSeconds: number;
  /** Samples (rows) each measurement of this phase runs, where the caller said (the ranking may run on fewer). */
  samples?: number;
}

/** Counts measurements and reports each with its ETA. */
export class ProgressClock {
  private readonly start = performance.now();
  private done = 0;

  constructor(
    private total: number,
    private readonly report: (p: Progress) => void,
    private readonly samples: Partial<Record<Progress["phase"], number>> = {},
  ) {}

  /** One more measurement done in `phase`. */
  tick(phase: Progress["phase"]): void {
    this.done++;
    this.total = Math.max(this.total, this.done);
    this.emit(phase);
  }

  /** The work is over (a search may end before its estimate): reports done = total once, if it was not already. */
  finish(): void {
    if (this.total === this.done) return;
    this.total = this.done;
    this.emit("search");
  }

  private emit(phase: Progress["phase"]): void {
    const elapsedSeconds = (performance.now() - this.start) / 1000;
    const etaSeconds = this.done ? (elapsedSeconds / this.done) * (this.total - this.done) : 0;
    this.report({ phase, done: this.done, total: this.total, elapsedSeconds, etaSeconds, ...(this.samples[phase] !== undefined && { samples: this.samples[phase] }) });
  }
}

/** Measurements a binary search over `n` prefixes takes at most: both ends, then halving. */
export function binarySearchSteps(n: number): number {
  return 2 + Math.ceil(Math.log2(n + 1));
}
