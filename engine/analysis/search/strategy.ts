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

/** A verdict with the measured metric (higher is better), which greedy re-ranking compares. */
export interface Scored extends Verdict {
  metric: number;
}

export interface GreedyLimits {
  /** Configurations greedy may ask for (one the prefix search measured already costs no time). */
  budget: number;
  /** Candidates measured on top of the accepted nodes at each step: the head of the current order. */
  window: number;
  /** Stop once this many nodes are float without meeting the target (a known answer keeps one more). */
  maxNodes: number;
}

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

/**
 * Greedy forward selection with re-ranking, for when errors compound and a one-shot ranking misorders the nodes
 * (two that each looked costly alone may fix the same error; one that looked cheap may matter once others are
 * float). From nothing kept float, each step measures the head of the current order (`window` candidates), each
 * added to the nodes accepted so far, and accepts the one that raises the metric most; the order is then re-ranked:
 * the window's other candidates by what they measured, then the rest as before. A step that does not raise the
 * measured metric is never accepted, so the path is monotone; when no candidate of a window raises it, the next
 * window is tried, up to three windows. Stops when the target is met, the budget is spent, `maxNodes` are float,
 * or three windows in a row raised nothing.
 * Configurations list their nodes in the one-shot order, so those the prefix search measured are not measured
 * again. Returns the last accepted configuration: the first that met the target, or the best reached.
 */
export async function greedySearch<M extends Scored>(candidates: readonly string[], measure: Measure<M>, limits: GreedyLimits): Promise<M> {
  const rank = new Map(candidates.map((c, i) => [c, i]));
  let asked = 0;
  const ask = (nodes: readonly string[]) => {
    asked++;
    return measure({ keepFloat: [...nodes].sort((a, b) => rank.get(a)! - rank.get(b)!), int16: [] });
  };
  let current = await ask([]);
  const accepted: string[] = [];
  let order = [...candidates];
  let skip = 0; // candidates at the head of the order that did not raise the metric at this step
  while (!current.met && asked < limits.budget && accepted.length < limits.maxNodes) {
    const window = order.slice(skip, skip + limits.window);
    if (window.length === 0) break;
    const tried: { node: string; m: M }[] = [];
    for (const node of window) {
      if (asked >= limits.budget) break;
      const m = await ask([...accepted, node]);
      tried.push({ node, m });
      if (m.met) break; // the fewest nodes this path can reach
    }
    tried.sort((a, b) => b.m.metric - a.m.metric);
    const best = tried[0];
    if (!best || !(best.m.metric > current.metric)) {
      // Two windows in a row that raise nothing: the metric cannot tell these nodes apart (an all-or-nothing
      // agreement no single node moves), and further windows would spend the budget on the same verdict.
      if (skip >= 2 * limits.window) break;
      skip += window.length;
      continue;
    }
    accepted.push(best.node);
    current = best.m;
    const seen = new Set(tried.map((t) => t.node));
    order = [...tried.slice(1).map((t) => t.node), ...order.filter((n) => !seen.has(n))];
    skip = 0;
  }
  return current;
}
