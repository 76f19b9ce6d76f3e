// Progress of a long search, with an estimate of the time left. Measurements of one phase cost about the same, so
// each phase's mean so far times its measurements left is its ETA; a search step not yet timed is estimated from a
// rank measurement scaled by the samples each runs (the ranking may run on fewer: SearchOptions.rankSamples). The
// search's step count is only known once it ends (a binary search per remedy), so its total is an estimate that
// grows if the search runs longer.

export interface Progress {
  /** "rank": measuring each node; "search": measuring configurations the strategy asks for. */
  phase: "rank" | "search";
  /** Measurements done and expected in all (rank and search together). */
  done: number;
  total: number;
  elapsedSeconds: number;
  /** Seconds left at each phase's mean time per measurement so far. */
  etaSeconds: number;
  /** Samples (rows) each measurement of this phase runs, where the caller said (the ranking may run on fewer). */
  samples?: number;
}

/** What the clock knows ahead: how many measurements rank, and how many samples each phase's measurements run. */
export interface ProgressPlan {
  rankMeasurements?: number;
  samples?: Partial<Record<Progress["phase"], number>>;
  /** Milliseconds now (tests); performance.now by default. */
  now?: () => number;
}

/** Counts measurements and reports each with its ETA. */
export class ProgressClock {
  private readonly now: () => number;
  private readonly start: number;
  private last: number;
  private done = 0;
  private readonly count = { rank: 0, search: 0 };
  private readonly ms = { rank: 0, search: 0 };

  constructor(
    private total: number,
    private readonly report: (p: Progress) => void,
    private readonly plan: ProgressPlan = {},
  ) {
    this.now = plan.now ?? (() => performance.now());
    this.start = this.last = this.now();
  }

  /** One more measurement done in `phase`. */
  tick(phase: Progress["phase"]): void {
    const t = this.now();
    this.ms[phase] += t - this.last;
    this.count[phase]++;
    this.last = t;
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
    const elapsedSeconds = (this.now() - this.start) / 1000;
    const samples = this.plan.samples?.[phase];
    this.report({ phase, done: this.done, total: this.total, elapsedSeconds, etaSeconds: this.eta() / 1000, ...(samples !== undefined && { samples }) });
  }

  /** Milliseconds left: rank measurements at the rank mean, search steps at theirs (scaled from rank's until timed). */
  private eta(): number {
    if (this.done === 0) return 0;
    const left = this.total - this.done;
    const rankLeft = this.plan.rankMeasurements === undefined ? 0 : Math.min(left, Math.max(0, this.plan.rankMeasurements - this.count.rank));
    const mean = (this.ms.rank + this.ms.search) / this.done;
    const perRank = this.count.rank ? this.ms.rank / this.count.rank : mean;
    const { rank, search } = this.plan.samples ?? {};
    const perSearch = this.count.search ? this.ms.search / this.count.search : this.count.rank && rank && search ? perRank * (search / rank) : mean;
    return rankLeft * perRank + (left - rankLeft) * perSearch;
  }
}

/** Measurements a binary search over `n` prefixes takes at most: both ends, then halving. */
export function binarySearchSteps(n: number): number {
  return 2 + Math.ceil(Math.log2(n + 1));
}
