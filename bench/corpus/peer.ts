// The real-model corpus beside ONNX Runtime's own Python quantizer (issue 14's "beside ONNX Runtime's Python
// quantizer (bench/peer) on the same models"; issue 15 compares against "ORT's best of its default and per-channel
// configs"). Per model, one at a time:
//   ours static    `ptq quantize M -o OUT --calib DIR` (all defaults), through bench/corpus/run-model.ts as the
//                  corpus bench runs it;
//   ORT default    quantize_static(model, out, reader): QDQ, QUInt8 activations, QInt8 weights, per-tensor, MinMax;
//   ORT per-channel  quant_pre_process (where it works; else the model as given, noted), then the same with
//                  per_channel=True;
//   ours dynamic   `ptq quantize M -o OUT --mode dynamic`;
//   ORT dynamic    quantize_dynamic(model, out), every argument at its default.
// Both static sides calibrate on the SAME samples (bench/corpus/inputs.ts, seed 1 or --calib-seed, one sample per file, fed as
// written); every file is scored by bench/corpus/evaluate.ts (our onnxruntime-node, 1 thread) on the same held-out
// samples (seed 1000): worst-output SQNR, decision agreement, the task metric where there are labels (text
// recognisers' exact lines and CER, FP32's beside), size vs FP32. A failure is a cell with its reason.
// Latency is not measured here (bench/int8-speed.ts times files in one interleaved run).
// A manual benchmark (root for the chroot), not part of `npm test`; bench/corpus.ts --peer runs it:
//   bench/peer/setup-chroot.sh
//   node --import tsx bench/corpus.ts --peer [--models id,id] [--calib N] [--eval N] [--timeout S] [--json] [--keep]
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chrootProblem, runOrtQuantizer, type OrtRecord } from "../peer/ort";
import { heldOutCount, modelPath, type Catalog, type CorpusModel } from "./catalog";
import { reasonOf, runTs } from "./child";
import { formatLines, type EvalResult, type LineScores } from "./evaluate";
import { FrontEnd, makeSamples, writeSamples } from "./inputs";
import { runModel, type Row, type RunOptions } from "./run-model";

export const SIDES = ["ours static", "ORT default", "ORT per-channel", "ours dynamic", "ORT dynamic"] as const;
export type Side = (typeof SIDES)[number];

/** ort_quantize.py's config name for each ORT side. */
const ORT_CONFIG: Partial<Record<Side, string>> = { "ORT default": "default", "ORT per-channel": "pre-pc-u8s8-minmax", "ORT dynamic": "dynamic" };

export interface Cell {
  works: boolean;
  /** Why it did not quantize, or why onnxruntime could not run what was written. */
  reason?: string;
  agreement?: number;
  /** Text recognisers: lines read exactly and character error rate, beside FP32's. */
  lines?: LineScores;
  sqnrDb?: number;
  sizeRatio?: number;
  /** Quantization wall time (whole process: start, calibration, write). */
  seconds?: number;
  peakRssMB?: number;
  /** ORT's side only: quantized ops and int8 weights in its file (see OrtRecord). */
  quantizedOps?: number;
  quantizedWeights?: number;
  notes: string[];
}

export interface PeerRow {
  model: string;
  agreementOn?: string;
  cells: Record<Side, Cell>;
}

/** What the corpus bench passes (its --calib, --eval, --timeout, --keep); modes are fixed here. */
export type PeerOptions = Omit<RunOptions, "modes"> & { log: (line: string) => void };

const mb = (b: number | undefined) => (b === undefined ? undefined : Math.round(b / 2 ** 20));

function oursCell(r: Row | undefined): Cell {
  if (!r) return { works: false, reason: "not run", notes: [] };
  const notes = [...(r.opset ? [`opset ${r.opset}`] : []), ...(r.warnings ?? [])];
  if (r.works !== "yes") return { works: false, reason: r.reason, seconds: r.seconds, peakRssMB: r.peakRssMB, notes };
  return { works: true, agreement: r.agreement, lines: r.lines, sqnrDb: r.sqnrDb, sizeRatio: r.sizeRatio, seconds: r.seconds, peakRssMB: r.peakRssMB, notes };
}

async function ortCell(m: CorpusModel, rec: OrtRecord | undefined, evalSamples: number, limitS: number): Promise<Cell> {
  if (!rec) return { works: false, reason: "not run", notes: [] };
  const base = { seconds: rec.wallSeconds, peakRssMB: mb(rec.peakRssBytes), quantizedOps: rec.quantizedOps, quantizedWeights: rec.quantizedWeights, notes: rec.notes ?? [] };
  if (!rec.ok) return { ...base, works: false, reason: `ONNX Runtime's quantizer: ${rec.error ?? "failed"}` };
  const e = await runTs("bench/corpus/evaluate.ts", ["--model", m.id, "--candidate", rec.file, "--count", String(heldOutCount(m, evalSamples))], limitS);
  let ev: EvalResult | undefined;
  try {
    ev = JSON.parse(e.stdout.trim().split("\n").pop() ?? "") as EvalResult;
  } catch {
    return { ...base, works: false, reason: `evaluation crashed: ${reasonOf(e, limitS)}` };
  }
  if (!ev.ok) return { ...base, works: false, reason: `written, but onnxruntime cannot run it: ${ev.reason}` };
  return { ...base, works: true, agreement: ev.agreement, lines: ev.lines, sqnrDb: Number(ev.sqnrDb), sizeRatio: statSync(rec.file).size / statSync(modelPath(m)).size };
}

export async function peerModel(catalog: Catalog, m: CorpusModel, o: PeerOptions): Promise<PeerRow> {
  const log = o.log;
  const work = mkdtempSync(path.join(os.tmpdir(), `ptq-corpus-peer-${m.id}-`));
  try {
    // Ours exactly as bench/corpus.ts runs it; it writes its calibration samples with the same seed, as below.
    log(`${m.id}: ours (static, dynamic)`);
    const ours = await runModel(catalog, m, { ...o, modes: ["static", "dynamic"] });
    const calib = path.join(work, "calib");
    const fe = new FrontEnd(catalog);
    try {
      writeSamples(calib, await makeSamples(m, o.calibSamples, o.calibSeed ?? 1, fe));
    } finally {
      await fe.dispose();
    }
    log(`${m.id}: ONNX Runtime's quantizer (${Object.values(ORT_CONFIG).join(", ")})`);
    let records: OrtRecord[] = [];
    let failure: string | undefined;
    try {
      records = runOrtQuantizer({ model: modelPath(m), calib, work, configs: Object.values(ORT_CONFIG).join(","), timeoutS: o.limitS });
    } catch (e) {
      failure = e instanceof Error ? e.message.split("\n")[0] : String(e);
    }
    const cells = {} as Record<Side, Cell>;
    for (const side of SIDES) {
      const config = ORT_CONFIG[side];
      if (!config) cells[side] = oursCell(ours.find((r) => r.mode === (side === "ours static" ? "static" : "dynamic")));
      else if (failure) cells[side] = { works: false, reason: failure, notes: [] };
      else cells[side] = await ortCell(m, records.find((r) => r.config === config), o.evalSamples, o.limitS);
      const c = cells[side];
      log(`  ${m.id} ${side}: ${c.works ? `agreement ${c.agreement ?? "—"}, ${c.lines ? `${formatLines(c.lines)}, ` : ""}SQNR ${c.sqnrDb}` : `FAILED: ${c.reason}`}`);
    }
    return { model: m.id, agreementOn: ours.find((r) => r.agreementOn)?.agreementOn, cells };
  } finally {
    if (o.keep) log(`${m.id}: ONNX Runtime's files kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

/** Every model, one at a time; refuses up front when the chroot is not built. */
export async function peerCorpus(catalog: Catalog, models: readonly CorpusModel[], o: PeerOptions): Promise<PeerRow[]> {
  const problem = chrootProblem();
  if (problem) throw new Error(problem);
  const rows: PeerRow[] = [];
  for (const m of models) rows.push(await peerModel(catalog, m, o));
  return rows;
}

const cellText = (c: Cell) => {
  if (!c.works) return `failed: ${(c.reason ?? "").replace(/\|/g, "\\|")}`;
  const agreement = [...(c.agreement === undefined ? [] : [`${(100 * c.agreement).toFixed(1)} %`]), ...(c.lines ? [formatLines(c.lines)] : [])];
  const sqnr = c.sqnrDb === undefined ? "" : c.sqnrDb === Infinity ? "∞ dB" : `${c.sqnrDb.toFixed(1)} dB`;
  // ORT can write a file with nothing (or no weight) quantized and exit 0: say so in the cell.
  const what = c.quantizedOps === 0 ? ["nothing quantized"] : c.quantizedWeights === 0 ? ["weights left float"] : [];
  return [...agreement, sqnr, `${c.sizeRatio?.toFixed(2)}×`, ...what].join(" · ");
};

/** Markdown: one row per model, one column per side; notes (ORT's opset upgrade, a failed pre-process) below. */
export function formatPeerTable(rows: readonly PeerRow[]): string {
  const head = ["model", ...SIDES];
  const lines = [head, head.map(() => "---"), ...rows.map((r) => [r.model, ...SIDES.map((s) => cellText(r.cells[s]))])].map((c) => `| ${c.join(" | ")} |`);
  const notes = rows.flatMap((r) => SIDES.flatMap((s) => (s.startsWith("ORT") ? r.cells[s].notes.map((n) => `- ${r.model}, ${s}: ${n}`) : [])));
  const times = rows.map((r) => `- ${r.model}: ${SIDES.map((s) => `${s} ${r.cells[s].seconds?.toFixed(1) ?? "—"} s / ${r.cells[s].peakRssMB ?? "—"} MB`).join(", ")}`);
  return [...lines, "", "Notes:", ...(notes.length ? [...new Set(notes)] : ["- none"]), "", "Quantize wall time / peak RSS (whole process):", ...times].join("\n");
}
