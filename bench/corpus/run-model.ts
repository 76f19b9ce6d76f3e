// One corpus model through the `ptq` CLI, as a user would run it: inspect, then quantize in each mode, then for
// every file written: does onnxruntime load and run it, and how close is it to FP32 (bench/corpus/evaluate.ts, in
// a child). Every step is a child process with a time limit; a failure is a row with its reason.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { modelInputs } from "../../engine/data/feeds";
import { Model } from "../../engine/onnx/model";
import { heldOutCount, modelPath, type Catalog, type CorpusModel } from "./catalog";
import { reasonOf, runTs, type ChildResult } from "./child";
import type { Detections, EvalResult, LineScores, Positives } from "./evaluate";
import { FrontEnd, makeSamples, writeSamples } from "./inputs";

export const MODES = ["inspect", "static", "dynamic", "int4", "fp4"] as const;
export type Mode = (typeof MODES)[number];

export interface Row {
  model: string;
  mode: Mode;
  /** "yes": written (or inspected) and, for a written file, loaded and run by onnxruntime. */
  works: "yes" | "no";
  /** Where it broke: the CLI refused or crashed ("cli"), or onnxruntime could not load/run the file ("ort"). */
  stage?: "cli" | "ort" | "eval";
  reason?: string;
  /** Quantized node count from the CLI's --json summary, when it gives one. */
  quantizedNodes?: number;
  agreement?: number;
  agreementOn?: string;
  /** Text recognisers: lines read exactly and character error rate, the candidate's and FP32's. */
  lines?: LineScores;
  sqnrDb?: number;
  /** Threshold checks: EvalResult.positives. */
  positives?: Positives;
  /** Anchor detectors: EvalResult.detections. */
  detections?: Detections;
  /** EvalResult.sqnrBehind: a Softmax output's logits, a masked output's values behind the mask. */
  sqnrBehind?: Record<string, number>;
  sizeRatio?: number;
  seconds: number;
  peakRssMB?: number;
  command: string;
  /** Opset change the CLI reported (e.g. upgraded 10 → 13). */
  opset?: string;
  warnings?: string[];
  /**
   * What the defaults decided, as the CLI's summary says it (static INT8): the weight format and why, the protected
   * layers and why (which carries the whole model's SQNR on its calibration rows), the widened activations' count, and
   * with --config {"rounding": "auto"} the rounding written and why.
   */
  decided?: { weights?: string; protectedLayers?: string; wideActivations?: number; rounding?: string };
}

export interface RunOptions {
  modes: readonly Mode[];
  calibSamples: number;
  /** The calibration samples' seed (default 1, the corpus's own set; held-out samples use 1000 and on). */
  calibSeed?: number;
  /** Held-out samples, or the model's own `evalSamples` where that is more. */
  evalSamples: number;
  limitS: number;
  /** Keep the work folder (written models and data) and say where it is. */
  keep?: boolean;
  /** A `ptq quantize --config` file (QConfig fields), for `configModes` (default static): e.g. another default weight
   *  type, or FP4's learned rounding. */
  config?: string;
  configModes?: readonly Mode[];
  log?: (line: string) => void;
}

const CLI = "cli/main.ts";
const EVALUATE = "bench/corpus/evaluate.ts";

/** `--dim NAME=SIZE` for every named symbolic input dimension, from the corpus entry's concrete shapes. */
function dimFlags(m: CorpusModel, file: string): string[] {
  const flags = new Map<string, string>();
  for (const spec of modelInputs(Model.loadSync(file).proto)) {
    const given = m.inputs.find((i) => i.name === spec.name)?.shape;
    spec.shape?.forEach((d, k) => {
      if (typeof d === "string" && d && given?.[k] !== undefined) flags.set(d, `${d}=${given[k]}`);
    });
  }
  return [...flags.values()].flatMap((f) => ["--dim", f]);
}

const shellQuote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
const mb = (b: number | undefined) => (b === undefined ? undefined : Math.round(b / 2 ** 20));

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

interface SummaryLike {
  quantized?: unknown[];
  opset?: { before: number; after: number };
  warnings?: string[];
  weights?: { type: string; reduceRange?: boolean; why?: string };
  protectedLayers?: { why: string };
  wideActivations?: { tensors: unknown[] };
  rounding?: { why: string };
}

export async function runModel(catalog: Catalog, m: CorpusModel, o: RunOptions): Promise<Row[]> {
  const log = o.log ?? (() => {});
  const file = modelPath(m);
  const work = mkdtempSync(path.join(os.tmpdir(), `ptq-corpus-${m.id}-`));
  const rows: Row[] = [];
  try {
    const fe = new FrontEnd(catalog);
    const calib = path.join(work, "calib");
    try {
      writeSamples(calib, await makeSamples(m, o.calibSamples, o.calibSeed ?? 1, fe));
    } finally {
      await fe.dispose();
    }
    const configured = (mode: Mode) => (o.config && (o.configModes ?? ["static"]).includes(mode) ? ["--config", o.config] : []);
    for (const mode of o.modes) {
      const out = path.join(work, `${m.id}.${mode}.onnx`);
      const args =
        mode === "inspect"
          ? ["inspect", file, "--json", ...dimFlags(m, file)]
          : mode === "static"
            ? ["quantize", file, "-o", out, "--json", "--calib", calib, ...configured(mode)]
            : // The low-bit modes get the calibration data too: with it they measure and protect the outputs by default.
              ["quantize", file, "-o", out, "--json", "--mode", mode, ...(mode === "dynamic" ? [] : ["--calib", calib]), ...configured(mode)];
      const command = `node --import tsx ${CLI} ${args.map(shellQuote).join(" ")}`;
      log(`${m.id} ${mode}: ${command}`);
      const r: ChildResult = await runTs(CLI, args, o.limitS);
      const row: Row = { model: m.id, mode, works: "no", seconds: r.ms / 1000, peakRssMB: mb(r.peakRssBytes), command };
      rows.push(row);
      if (r.code !== 0) {
        row.stage = "cli";
        row.reason = reasonOf(r, o.limitS);
        continue;
      }
      if (mode === "inspect") {
        row.works = "yes";
        continue;
      }
      const summary = parseJson<SummaryLike>(r.stdout);
      if (Array.isArray(summary?.quantized)) row.quantizedNodes = summary.quantized.length;
      if (summary?.opset && summary.opset.before !== summary.opset.after) row.opset = `${summary.opset.before}→${summary.opset.after}`;
      if (summary?.warnings?.length) row.warnings = summary.warnings;
      if (summary && (summary.weights || summary.protectedLayers || summary.wideActivations || summary.rounding)) {
        const w = summary.weights;
        row.decided = {
          weights: w && (w.why ?? `${w.type}${w.reduceRange ? ", 7 bits" : ""}`),
          protectedLayers: summary.protectedLayers?.why,
          wideActivations: summary.wideActivations?.tensors.length,
          rounding: summary.rounding?.why,
        };
      }
      try {
        row.sizeRatio = statSync(out).size / statSync(file).size;
      } catch {
        row.stage = "cli";
        row.reason = "the CLI exited 0 but wrote no file";
        continue;
      }
      const e = await runTs(EVALUATE, ["--model", m.id, "--candidate", out, "--count", String(heldOutCount(m, o.evalSamples))], o.limitS);
      const ev = parseJson<EvalResult>(e.stdout.trim().split("\n").pop() ?? "");
      if (!ev) {
        row.stage = "ort";
        row.reason = `evaluation crashed: ${reasonOf(e, o.limitS)}`;
        continue;
      }
      if (!ev.ok) {
        row.stage = "ort";
        row.reason = `written, but onnxruntime cannot run it: ${ev.reason}`;
        continue;
      }
      row.works = "yes";
      row.sqnrDb = Number(ev.sqnrDb);
      if (ev.sqnrBehind) row.sqnrBehind = ev.sqnrBehind;
      row.agreement = ev.agreement;
      row.agreementOn = ev.agreementOn;
      row.lines = ev.lines;
      if (ev.positives) row.positives = ev.positives;
      if (ev.detections) row.detections = ev.detections;
    }
  } catch (e) {
    rows.push({ model: m.id, mode: o.modes[0] ?? "inspect", works: "no", stage: "eval", reason: `bench could not prepare inputs: ${e instanceof Error ? e.message : String(e)}`, seconds: 0, command: "" });
  } finally {
    if (o.keep) log(`${m.id}: files kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  return rows;
}
