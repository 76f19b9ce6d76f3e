// Layers the outputs cannot afford in INT8, kept float by default. A model whose quantized outputs are visibly off
// (worst-output SQNR between PROTECT_ABOVE_DB and PROTECT_BELOW_DB on the first calibration rows) has each weighted node quantized alone,
// every other node float, and measured at the outputs. A node whose quantization alone costs at least a quarter of
// the noise the whole quantized model has (its SQNR alone within PROTECT_MARGIN_DB of the whole model's) dominates
// the model's error where a few dozen layers share it; those nodes stay float, worst first, within a weight budget.
// On the PP-OCR recognisers they are the stem's first Convs (narrow, high-resolution, < 0.4 % of the weights), each
// of which alone takes the outputs below the whole model's SQNR; docs/calibration.md "Protected layers" has what
// keeping them float reads. Models whose error is spread over their layers, or small, are left as they were.
import type { Feeds } from "../data/feeds";
import { onCompared } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { energiesOn, noiseDb, noiseToDb, outputsOn, worstRatio, type MeasureOptions } from "../calibrate/activation-precision";

/**
 * Calibration rows the measurement runs on (the first ones kept). On 4, ppocr-v3-rec-en's second Conv measured
 * 17.3+ dB alone against the whole model's 11.3 on one calibration set and stayed quantized (92.2 % of lines); on 8,
 * 18.1 against 12.6, kept float (98.4 %). The recognisers' other sets chose the same nodes on 4 and 8.
 */
export const PROTECT_ROWS = 8;
/** A node alone within this many dB of the whole model's SQNR (≥ half its noise power) dominates its error. */
export const PROTECT_MARGIN_DB = 6;
/**
 * Only a model whose outputs are this far off is measured (worst-output SQNR below it, dB): at 30 dB the noise is 3 %
 * of the signal, where the fixture classifiers' top-1 no longer moves, and their stem Conv, alone within 3 dB of
 * models at 36–45 dB, would be kept float for nothing.
 */
export const PROTECT_BELOW_DB = 30;
/**
 * Nor a model at or below 0 dB: its outputs' error exceeds their signal, where SQNR is not the model's accuracy
 * (mlsd-320-large's line maps agree with FP32's at 100 % at −1.4 dB) and cannot say what a layer costs. There the
 * measurement kept three decoder Convs float for no agreement and took its speed from 2.99× to 1.21× FP32.
 */
export const PROTECT_ABOVE_DB = 0;
/** At most this share of the quantized weights (elements) is kept float by protection. */
export const PROTECT_MAX_WEIGHT_SHARE = 0.1;
/**
 * At most this many weighted nodes are measured, in graph order (one conversion and PROTECT_ROWS runs each): the
 * error a node adds is amplified by what follows it, so the early ones are where domination was found. A count,
 * not a time budget, so the written file never depends on the machine.
 */
export const PROTECT_MAX_NODES = 32;
/**
 * A candidate is first run on this many of the batches of rows (where there are more: a fixed-batch model's rows, or
 * rows whose shapes do not stack)…
 */
export const PROTECT_PROBE_BATCHES = 2;
/**
 * …and not on the rest when its noise there is under the bar (a quarter of the whole model's) by this factor (9 dB):
 * to lift it over the bar, the other rows would need more noise than the bar on average where the first had an
 * eighth of it. On ISNet (a fixed batch of one 1024×1024 image, 1.75 s a run on 2 cores) the 8 runs per node were
 * about 8 of its 15 minutes.
 */
export const PROTECT_PROBE_FACTOR = 8;
/** Op types measured: the ones whose weights are quantized. */
const WEIGHTED = new Set(["Conv", "ConvTranspose", "MatMul", "Gemm"]);

export interface ProtectCandidate {
  name: string;
  opType: string;
  /** Weight elements the node quantizes. */
  weights: number;
}

export interface ProtectChoice {
  /** Nodes kept float (empty: not measured, none dominates, or those that do exceed the weight budget). */
  nodes: string[];
  why: string;
}


/** The weighted nodes of a conversion's quantized list, with their weight element counts. */
export function protectCandidates(quantized: readonly { name: string; opType: string; tensors: readonly { name: string }[] }[], weightSizes: ReadonlyMap<string, number>): ProtectCandidate[] {
  return quantized
    .filter((n) => n.name && WEIGHTED.has(n.opType))
    .map((n) => ({ name: n.name, opType: n.opType, weights: n.tensors.reduce((a, t) => a + (weightSizes.get(t.name) ?? 0), 0) }))
    .filter((c) => c.weights > 0);
}

/**
 * Which of `candidates` (in graph order) stay float: `quantized(only)` is the model convert() writes with only the
 * nodes `only` quantized (undefined: all it selects). One run of the float model, one of the whole quantized model,
 * one per candidate measured; `rows` one batch each. No gate on the whole model's SQNR with them float: on PP-OCRv4's
 * recogniser it fell (18.9 → 13.8 dB on these rows) while the lines read rose (81.3 → 97.7 % on the worst
 * calibration set); docs/calibration.md "Protected layers".
 */
export async function chooseProtected(
  float: Model,
  rows: readonly Feeds[],
  candidates: readonly ProtectCandidate[],
  quantized: (only?: readonly string[]) => Promise<Model>,
  measure: MeasureOptions = {},
  onStep?: (done: number, total: number) => void,
): Promise<ProtectChoice> {
  const none = (why: string): ProtectChoice => ({ nodes: [], why });
  if (rows.length === 0 || candidates.length === 0) return none("protected layers: nothing to measure");
  const ref = await outputsOn(float, rows, measure);
  const whole = worstRatio((await energiesOn(await quantized(), rows, ref, measure)).pooled);
  const batches = `on ${rows.length} calibration batch(es)`;
  const onJudged = onCompared(measure.judged);
  if (!(noiseToDb(whole) < PROTECT_BELOW_DB)) return none(`protected layers: none (whole model ${noiseDb(whole)} ${batches}${onJudged}, not below ${PROTECT_BELOW_DB} dB: nothing to protect)`);
  if (!(noiseToDb(whole) > PROTECT_ABOVE_DB)) return none(`protected layers: none (whole model ${noiseDb(whole)} ${batches}${onJudged}, not above ${PROTECT_ABOVE_DB} dB: SQNR cannot judge its layers)`);
  const capped = candidates.length > PROTECT_MAX_NODES ? ` (the first ${PROTECT_MAX_NODES} of ${candidates.length} weighted nodes)` : "";
  const on = () => `${batches}${capped}, whole model ${noiseDb(whole)}${onJudged}${probed}`;
  const alone = new Map<string, number>();
  const measured = candidates.slice(0, PROTECT_MAX_NODES);
  onStep?.(0, measured.length);
  const bar = whole * 10 ** (-PROTECT_MARGIN_DB / 10);
  const probe = rows.length > PROTECT_PROBE_BATCHES ? PROTECT_PROBE_BATCHES : rows.length;
  let probedOnly = 0;
  for (const [i, c] of measured.entries()) {
    const model = await quantized([c.name]);
    // The rest of the rows continue the first ones' pooled sums: the same figure as measuring them all at once.
    const { pooled } = await energiesOn(model, rows.slice(0, probe), ref, measure);
    let noise = worstRatio(pooled);
    if (probe < rows.length && noise * PROTECT_PROBE_FACTOR >= bar) noise = worstRatio((await energiesOn(model, rows.slice(probe), ref.slice(probe), measure, undefined, pooled)).pooled);
    else if (probe < rows.length) probedOnly++;
    alone.set(c.name, noise);
    onStep?.(i + 1, measured.length);
  }
  const probed = probedOnly ? `; ${probedOnly} of ${measured.length} measured on the first ${probe} batches only (${noiseDb(bar / PROTECT_PROBE_FACTOR)} or better there)` : "";
  const dominant = measured.filter((c) => alone.get(c.name)! >= bar).sort((a, b) => alone.get(b.name)! - alone.get(a.name)!);
  if (dominant.length === 0) return none(`protected layers: none (no weighted node alone within ${PROTECT_MARGIN_DB} dB of the whole model, ${on()})`);
  // The worst first, within the weight budget.
  const totalWeights = candidates.reduce((a, c) => a + c.weights, 0);
  const weights = new Map(candidates.map((c) => [c.name, c.weights]));
  const { float: nodes } = withinBudget(dominant.map((c) => c.name), weights, PROTECT_MAX_WEIGHT_SHARE * totalWeights);
  const kept = nodes.reduce((a, n) => a + weights.get(n)!, 0);
  const list = (names: readonly string[]) => names.map((n) => `${n} ${noiseDb(alone.get(n)!)}`).join(", ");
  if (nodes.length === 0) return none(`protected layers: none (${list(dominant.map((c) => c.name))} dominate, ${on()}, but exceed ${PROTECT_MAX_WEIGHT_SHARE * 100} % of the weights)`);
  const share = `${((100 * kept) / Math.max(totalWeights, 1)).toFixed(2)} % of the weights`;
  return {
    nodes,
    why:
      `protected layers: ${nodes.length} node(s) kept float (${share}), each alone within ${PROTECT_MARGIN_DB} dB of the whole model's error: ` +
      `${list(nodes)} alone; ${on()} (--no-protect to quantize them)`,
  };
}

/**
 * The ranked nodes whose float weights fit `budget` parameters together, in order; one that does not fit is over
 * budget and the next ones are still tried. Also the accuracy-target search's (engine/analysis/sensitivity) and
 * dynamic mode's smallest Convs (keyed by weight tensor).
 */
export function withinBudget<K>(ranked: readonly K[], weights: ReadonlyMap<K, number>, budget: number): { float: K[]; overBudget: K[] } {
  const float: K[] = [];
  const overBudget: K[] = [];
  let used = 0;
  for (const node of ranked) {
    const w = weights.get(node) ?? 0;
    if (used + w > budget) {
      overBudget.push(node);
    } else {
      used += w;
      float.push(node);
    }
  }
  return { float, overBudget };
}
