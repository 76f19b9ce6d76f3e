// Child process of bench/corpus.ts and the corpus test: does onnxruntime load and run a quantized corpus model, and
// how close are its outputs to the FP32 model's on held-out generated samples (seeded apart from the calibration
// samples)? For the text recognisers (check "ctc") also the task metric: how many labelled lines the candidate and
// FP32 read exactly, and their character error rates. Run apart from the bench so an abort inside onnxruntime is a
// failed row, not a dead bench.
//   node --import tsx bench/corpus/evaluate.ts --model ID --candidate FILE [--candidate FILE …] [--seed N] [--count N
//   (default 8, or the model's evalSamples)]
// Prints one JSON line (EvalResult) per candidate, in order; FP32 runs once.
import { argmaxRows, editDistance, sequences } from "../../engine/analysis/metrics";
import { ErrorAccumulator } from "../../engine/analysis/error-stats";
import { pairedProportionDiff } from "../../engine/analysis/stats";
import { outputsBehind } from "../../engine/calibrate/activation-precision";
import { Model } from "../../engine/onnx/model";
import { createSession, type Session } from "../../engine/runtime/session";
import type { OutputTensor } from "../../engine/runtime/tensors";
import { byId, heldOutCount, loadCatalog, modelPath, type Catalog, type Check, type CorpusModel, type DetectorHead } from "./catalog";
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
  /** For an output the quantizer's measurements compare on another tensor (a final Softmax's logits, the values
   *  behind a detector's mask: comparedOutputs), that tensor's SQNR (dB), by output name. */
  sqnrBehind?: Record<string, number>;
  /** Share of rows (argmax) or elements (threshold) where the candidate decides as FP32 does. */
  agreement?: number;
  agreementOn?: string;
  /** Check "ctc": the candidate's and FP32's reading of the labelled held-out lines. */
  lines?: LineScores;
  /** Check "threshold": the elements above it (positives), FP32's and the candidate's (thresholdPositives). */
  positives?: Positives;
  /** An anchor detector (CorpusModel.detections): its detections after suppression against FP32's (detectionScores). */
  detections?: Detections;
}

/**
 * An anchor detector's detections after non-maximum suppression, the candidate's against FP32's on the same samples:
 * what a user of the detector sees (faces, not anchors: one face lights several anchors, and an anchor's flip near the
 * threshold may change no face). A candidate's detection matches one of FP32's on the same sample where their IoU is
 * at least 0.5, each used once, the best overlaps first.
 */
export interface Detections {
  fp32: number;
  candidate: number;
  /** Matched / FP32's and matched / the candidate's (NaN where there are none). */
  recall: number;
  precision: number;
  /** Mean IoU of the matched pairs: how closely the candidate's boxes sit on FP32's. */
  iou: number;
}

/** A detection: its box in input coordinates scaled to [0, 1], and its logit. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  score: number;
}

/**
 * A threshold check's positives: on a sparse output `agreement` is the background's (M-LSD's line centres are a few
 * of 102 400 pixels: static files that found none of FP32's 252 still agreed on 99.98 % of pixels), so the elements
 * above the threshold are counted apart. `fp32`: FP32's positives; `recall`: the share of them the candidate has too;
 * `precision`: the share of the candidate's positives that FP32 has (NaN where it has none).
 */
export interface Positives {
  fp32: number;
  candidate: number;
  recall: number;
  precision: number;
}

/** A text recogniser on labelled lines, beside FP32 on the same lines. */
export interface LineScores {
  lines: number;
  /** Share of lines read exactly (a leading or trailing space aside). */
  exact: number;
  exactFp32: number;
  /** Character error rate: edit distance summed over the lines / label characters summed. */
  cer: number;
  cerFp32: number;
  /** Share of lines the candidate reads exactly as FP32 does. */
  sameAsFp32: number;
  /**
   * exact − exactFp32, paired on the same lines: the lines only FP32 reads and only the candidate reads, a 95 %
   * interval of the difference and McNemar's exact p-value (absent in results written before it was measured).
   */
  vsFp32?: { onlyFp32: number; onlyThis: number; lo: number; hi: number; pValue: number };
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

/** Elements above `at` in `ref` and `cand` (the same rows of one output): Positives. */
export function thresholdPositives(ref: readonly ArrayLike<number>[], cand: readonly ArrayLike<number>[], at: number): Positives {
  let [both, fp32, candidate] = [0, 0, 0];
  ref.forEach((a, i) => {
    const b = cand[i]!;
    for (let k = 0; k < a.length; k++) {
      const [x, y] = [a[k]! > at, b[k]! > at];
      fp32 += x ? 1 : 0;
      candidate += y ? 1 : 0;
      both += x && y ? 1 : 0;
    }
  });
  return { fp32, candidate, recall: fp32 ? both / fp32 : NaN, precision: candidate ? both / candidate : NaN };
}

/** A share as a percentage with one decimal, "—" where it is undefined (NaN). */
const pct = (v: number) => (Number.isNaN(v) ? "—" : `${(100 * v).toFixed(1)} %`);

const area = (b: Box) => Math.max(0, b.x1 - b.x0) * Math.max(0, b.y1 - b.y0);

/** Intersection over union of two boxes (0 where both are empty). */
export function iou(a: Box, b: Box): number {
  const inter = area({ x0: Math.max(a.x0, b.x0), y0: Math.max(a.y0, b.y0), x1: Math.min(a.x1, b.x1), y1: Math.min(a.y1, b.y1), score: 0 });
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** One sample's detections: every anchor above `head.at` decoded into its box, then non-maximum suppression. */
export function detect(head: DetectorHead, out: Readonly<Record<string, OutputTensor>>): Box[] {
  const found: Box[] = [];
  for (const scale of head.scales) {
    const [s, b] = [out[scale.scores], out[scale.boxes]];
    if (!s || !b) throw new Error(`the detector's outputs "${scale.scores}" and "${scale.boxes}" are not both among the model's outputs`);
    const [scores, boxes] = [floats(s), floats(b)];
    const anchors = scale.grid * scale.grid * scale.perCell;
    if (scores.length !== anchors || boxes.length % anchors !== 0) throw new Error(`"${scale.scores}" holds ${scores.length} scores and "${scale.boxes}" ${boxes.length} values, not ${anchors} anchors' (${scale.grid}² cells × ${scale.perCell})`);
    const stride = boxes.length / anchors;
    for (let i = 0; i < anchors; i++) {
      const score = scores[i]!;
      if (!(score > head.at)) continue;
      const cell = Math.floor(i / scale.perCell);
      const [cx, cy] = [((cell % scale.grid) + 0.5) / scale.grid, (Math.floor(cell / scale.grid) + 0.5) / scale.grid];
      const [dx, dy, w, h] = [0, 1, 2, 3].map((k) => boxes[i * stride + k]! / head.inputSize) as [number, number, number, number];
      found.push({ x0: cx + dx - w / 2, y0: cy + dy - h / 2, x1: cx + dx + w / 2, y1: cy + dy + h / 2, score });
    }
  }
  found.sort((a, b) => b.score - a.score);
  const kept: Box[] = [];
  for (const b of found) if (kept.every((k) => iou(k, b) <= head.iou)) kept.push(b);
  return kept;
}

/** Each sample's candidate detections matched to FP32's (Detections). */
export function detectionScores(ref: readonly Box[][], cand: readonly Box[][]): Detections {
  let [fp32, candidate, matched, overlap] = [0, 0, 0, 0];
  ref.forEach((a, s) => {
    const b = cand[s] ?? [];
    fp32 += a.length;
    candidate += b.length;
    const pairs = a.flatMap((x, i) => b.map((y, j) => ({ i, j, o: iou(x, y) }))).filter((p) => p.o >= 0.5);
    pairs.sort((p, q) => q.o - p.o);
    const [usedA, usedB] = [new Set<number>(), new Set<number>()];
    for (const p of pairs) {
      if (usedA.has(p.i) || usedB.has(p.j)) continue;
      usedA.add(p.i);
      usedB.add(p.j);
      matched++;
      overlap += p.o;
    }
  });
  return { fp32, candidate, recall: fp32 ? matched / fp32 : NaN, precision: candidate ? matched / candidate : NaN, iou: matched ? overlap / matched : NaN };
}

/** "detections: recall 95.0 %, precision 97.4 % of FP32's 80, IoU 0.91" */
export function formatDetections(d: Detections): string {
  return `detections: recall ${pct(d.recall)}, precision ${pct(d.precision)} of FP32's ${d.fp32}, IoU ${Number.isNaN(d.iou) ? "—" : d.iou.toFixed(2)}`;
}

/** "positives: recall 90.2 %, precision 33.1 % of FP32's 245" */
export function formatPositives(p: Positives): string {
  return `positives: recall ${pct(p.recall)}, precision ${pct(p.precision)} of FP32's ${p.fp32}`;
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

/**
 * The characters of a CTC recogniser's classes: class 0 the blank (""), class i + 1 the i-th line of metadata_props
 * "character" of `m.check.dictionaryOf` (default `m`), the last class a space (PaddleOCR's use_space_char).
 */
export function ctcCharacters(catalog: Catalog, m: CorpusModel, classes: number): string[] {
  const check = m.check;
  const source = check?.kind === "ctc" && check.dictionaryOf ? byId(catalog, check.dictionaryOf) : m;
  const file = modelPath(source);
  const prop = Model.loadSync(file).proto.metadataProps.find((p) => p.key === "character");
  if (!prop) throw new Error(`${m.id}: ${file} has no metadata_props "character" to decode its CTC output with; name a model that has it in check.dictionaryOf (bench/corpus/models.json)`);
  const dict = prop.value.split("\n");
  if (dict[dict.length - 1] === "") dict.pop();
  const chars = ["", ...dict, " "];
  if (chars.length !== classes) {
    throw new Error(`${m.id}: its output has ${classes} classes but ${file}'s metadata_props "character" lists ${dict.length} characters (+ blank + space = ${chars.length}): it is not this model's dictionary`);
  }
  return chars;
}

/** Greedy CTC decoding of [N, T, classes] scores: argmax per frame, repeats collapsed, blanks dropped. */
export function ctcTexts(t: OutputTensor, characters: readonly string[]): string[] {
  return sequences(t, { ctcBlank: 0 }, true).map((ids) => ids.map((i) => characters[i]).join(""));
}

/** Exact-line share and character error rate of `texts` against `labels` (a leading or trailing space aside). */
export function scoreLines(labels: readonly string[], texts: readonly string[]): { exact: number; cer: number; correct: boolean[] } {
  if (labels.length !== texts.length) throw new Error(`${texts.length} lines read but ${labels.length} labels`);
  let edits = 0;
  let chars = 0;
  const correct = labels.map((label, i) => {
    const [want, got] = [label.trim(), texts[i]!.trim()];
    edits += editDistance(codes(got), codes(want));
    chars += codes(want).length;
    return want === got;
  });
  return { exact: correct.filter(Boolean).length / labels.length, cer: chars ? edits / chars : NaN, correct };
}

const pp = (v: number) => `${v >= 0 ? "+" : "−"}${Math.abs(100 * v).toFixed(1)}`;

/**
 * "lines 93.0 % (FP32 95.3 %; −2.3 pp [−4.1, −0.5], 4 vs 1 lines, p 0.38), CER 1.2 % (FP32 0.4 %)": for the bench's
 * tables; the bracket is the paired difference from FP32 on the same lines where it was measured.
 */
export function formatLines(l: LineScores): string {
  const v = l.vsFp32;
  const paired = v ? `; ${pp(l.exact - l.exactFp32)} pp [${pp(v.lo)}, ${pp(v.hi)}], ${v.onlyFp32} vs ${v.onlyThis} lines, p ${v.pValue.toPrecision(2)}` : "";
  return `lines ${pct(l.exact)} (FP32 ${pct(l.exactFp32)}${paired}), CER ${pct(l.cer)} (FP32 ${pct(l.cerFp32)})`;
}

const codes = (s: string) => Array.from(s, (c) => c.codePointAt(0)!);

function lineScores(catalog: Catalog, m: CorpusModel, samples: readonly Sample[], ref: readonly Record<string, OutputTensor>[], cand: readonly Record<string, OutputTensor>[], name: string): LineScores {
  const labels = samples.map((s, i) => {
    const label = Object.values(s).find((t) => t.label !== undefined)?.label;
    if (label === undefined) throw new Error(`${m.id}: held-out sample ${i} has no label; check "ctc" needs an input of style "text-line"`);
    return label;
  });
  const chars = ctcCharacters(catalog, m, ref[0]![name]!.dims.at(-1) ?? 0);
  const known = new Set(chars);
  for (const label of labels) {
    const bad = [...label].filter((c) => !known.has(c));
    if (bad.length) throw new Error(`${m.id}: the label ${JSON.stringify(label)} has characters outside the model's dictionary: ${JSON.stringify(bad.join(""))}`);
  }
  const fp32 = ref.flatMap((r) => ctcTexts(r[name]!, chars));
  const ours = cand.flatMap((r) => ctcTexts(r[name]!, chars));
  const [a, b] = [scoreLines(labels, ours), scoreLines(labels, fp32)];
  const d = pairedProportionDiff(b.correct, a.correct);
  const vsFp32 = { onlyFp32: d.onlyA, onlyThis: d.onlyB, lo: d.diff.lo, hi: d.diff.hi, pValue: d.pValue };
  return { lines: labels.length, exact: a.exact, exactFp32: b.exact, cer: a.cer, cerFp32: b.cer, sameAsFp32: scoreLines(fp32, ours).exact, vsFp32 };
}

/** Scores `candidate` against model `id`'s FP32 on `count` held-out samples (default 8, or the model's evalSamples). */
export async function evaluate(id: string, candidate: string, seed = EVAL_SEED, count?: number): Promise<EvalResult> {
  return (await evaluateEach(id, [candidate], seed, count))[0]!;
}

/** As evaluate, for several candidates on the same samples: FP32 runs once. */
export async function evaluateEach(id: string, candidates: readonly string[], seed = EVAL_SEED, count?: number): Promise<EvalResult[]> {
  return (await evaluator(id, seed, count))(candidates);
}

/**
 * Model `id`'s held-out samples and FP32's outputs on them, made once; the function scores candidates on them, as
 * evaluateEach does, as often as it is called (bench/weight-bisect.ts scores a few files a round).
 */
export async function evaluator(id: string, seed = EVAL_SEED, count?: number): Promise<(candidates: readonly string[]) => Promise<EvalResult[]>> {
  const catalog = loadCatalog();
  const m = byId(catalog, id);
  const n = count ?? heldOutCount(m, 8);
  const fe = new FrontEnd(catalog);
  let samples: Sample[];
  try {
    samples = await makeSamples(m, n, seed, fe);
  } finally {
    await fe.dispose();
  }
  // The tensors the quantizer's measurements compare in place of an output, run as extra outputs of both models.
  const float = await Model.load(modelPath(m));
  const names = float.graph.output.map((o) => o.name);
  const behind = new Map(outputsBehind(float).map((b) => [b.output, b.tensor]));
  const extra = float.outputInfos([...new Set(behind.values())].filter((t) => !names.includes(t)));
  const view = async (file: string) => {
    if (!extra.length) return file;
    const model = await Model.load(file);
    return model.withOutputs([...model.graph.output, ...extra]);
  };
  const refSession = await createSession(await view(modelPath(m)), { threads: 1 });
  const ref = await outputs(refSession, samples).finally(() => refSession.dispose());
  return async (candidates) => {
    const results: EvalResult[] = [];
    for (const candidate of candidates) {
      let cand: Record<string, OutputTensor>[];
      try {
        const s = await createSession(await view(candidate), { threads: 1 });
        cand = await outputs(s, samples).finally(() => s.dispose());
      } catch (e) {
        results.push({ ok: false, reason: e instanceof Error ? e.message.split("\n")[0] : String(e), samples: n });
        continue;
      }
      results.push(score(catalog, m, samples, ref, cand, n, names, behind));
    }
    return results;
  };
}

/** Output SQNR (dB) of `name`, every sample pooled. */
function sqnrOf(ref: readonly Record<string, OutputTensor>[], cand: readonly Record<string, OutputTensor>[], name: string): number {
  const acc = new ErrorAccumulator();
  ref.forEach((r, i) => acc.add(floats(r[name]!), floats(cand[i]![name]!), name));
  return acc.result().sqnrDb;
}

function score(
  catalog: Catalog,
  m: CorpusModel,
  samples: readonly Sample[],
  ref: readonly Record<string, OutputTensor>[],
  cand: readonly Record<string, OutputTensor>[],
  count: number,
  names: readonly string[],
  behind: ReadonlyMap<string, string>,
): EvalResult {
  const sqnrByOutput = Object.fromEntries(names.map((name) => [name, sqnrOf(ref, cand, name)]));
  const result: EvalResult = { ok: true, samples: count, sqnrByOutput, sqnrDb: Math.min(...Object.values(sqnrByOutput)) };
  if (behind.size) result.sqnrBehind = Object.fromEntries([...behind].map(([output, tensor]) => [output, sqnrOf(ref, cand, tensor)]));
  if (m.check) {
    const name = m.check.output ?? Object.keys(ref[0]!)[0]!;
    result.agreement = agreement(m.check, ref, cand, name);
    result.agreementOn = `${m.check.kind === "threshold" ? `>${m.check.at}` : "argmax"} of ${name.length > 24 ? `${name.slice(0, 24)}…` : name}`;
    if (m.check.kind === "threshold") {
      const at = m.check.at;
      result.positives = thresholdPositives(ref.map((r) => floats(r[name]!)), cand.map((r) => floats(r[name]!)), at);
    }
    if (m.check.kind === "ctc") result.lines = lineScores(catalog, m, samples, ref, cand, name);
  }
  if (m.detections) {
    const head = m.detections;
    result.detections = detectionScores(ref.map((r) => detect(head, r)), cand.map((r) => detect(head, r)));
  }
  return result;
}

function main(argv: string[]): void {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const id = get("--model");
  const candidates = argv.flatMap((a, i) => (a === "--candidate" && argv[i + 1] !== undefined ? [argv[i + 1]!] : []));
  if (!id || !candidates.length) {
    console.error("usage: evaluate.ts --model ID --candidate FILE [--candidate FILE …] [--seed N] [--count N]");
    process.exitCode = 2;
    return;
  }
  evaluateEach(id, candidates, Number(get("--seed") ?? EVAL_SEED), get("--count") === undefined ? undefined : Number(get("--count"))).then(
    // One line per candidate, in order. JSON has no Infinity: identical outputs (SQNR = ∞) are written as a string.
    (rs) => rs.forEach((r) => console.log(JSON.stringify(r, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v)))),
    (e: unknown) => {
      console.error(`evaluate: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) main(process.argv.slice(2));
