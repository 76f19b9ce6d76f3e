// Which configuration to try next. A strategy knows nothing about models or data: it asks an injected
// measure(config) and reads back whether the configuration met the target. The one here walks prefixes of a
// ranking by binary search, per remedy, and combines the two remedies when neither alone suffices.
import type { MixConfig } from "./mixed-model";
import type { Remedy } from "./types";

/** What a strategy needs back from a measurement. */
export interface Verdict {
  keptFloat: readonly string[];
  int16: readonly string[];
  met: boolean;
}

export type Measure<M extends Verdict> = (config: MixConfig) => Promise<M>;

export interface PrefixCandidates {
  /** Nodes the float remedy may keep float, most sensitive first (already within any weight budget). */
  float: readonly string[];
  /** Nodes the 16-bit remedy may widen, most sensitive first. */
  int16: readonly string[];
}

/**
 * Gives the k most sensitive nodes 16-bit activations or keeps them in float (remedy) for the smallest k that meets
 * the target, by binary search over each remedy's ranking (changing more nodes is assumed to move the model towards
 * float; the chosen k is measured). "auto" searches each remedy alone and takes the one that changes fewer nodes (16
 * bits on a tie: it keeps their weights int8); when neither alone meets the target (the weights of a few nodes hurt,
 * the activations of others), it combines them: the fewest float nodes that meet it with every other candidate at
 * 16 bits, then the fewest 16-bit nodes beside those. Nothing meets the target: every candidate the remedy may touch.
 */
export async function prefixSearch<M extends Verdict>(remedy: Remedy | "auto", candidates: PrefixCandidates, measure: Measure<M>): Promise<M> {
  // k float candidates and the first j int16 candidates that are not among them.
  const at = (k: number, j: number) => {
    const keepFloat = candidates.float.slice(0, k);
    return measure({ keepFloat, int16: candidates.int16.filter((n) => !keepFloat.includes(n)).slice(0, j) });
  };
  const all16 = candidates.int16.length;
  const allFloat = candidates.float.length;
  const by16 = remedy !== "float" ? await smallest(all16, (j) => at(0, j)) : undefined;
  const byFloat = remedy !== "int16" ? await smallest(allFloat, (k) => at(k, 0)) : undefined;
  const changed = (s: Verdict) => s.int16.length + s.keptFloat.length;
  let chosen = by16 && byFloat ? (changed(by16) <= changed(byFloat) ? by16 : byFloat) : (by16 ?? byFloat);
  if (!chosen && remedy === "auto") {
    const k = (await smallest(allFloat, (n) => at(n, all16)))?.keptFloat.length;
    if (k !== undefined) chosen = await smallest(all16, (j) => at(k, j));
  }
  return chosen ?? at(remedy === "int16" ? 0 : allFloat, remedy === "float" ? 0 : all16);
}

/** The smallest n in [0, max] whose configuration meets the target, by binary search; undefined when max does not. */
async function smallest<M extends Verdict>(max: number, at: (n: number) => Promise<M>): Promise<M | undefined> {
  if ((await at(0)).met) return at(0);
  if (!(await at(max)).met) return undefined;
  let lo = 0;
  let hi = max;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((await at(mid)).met) hi = mid;
    else lo = mid;
  }
  return at(hi);
}
