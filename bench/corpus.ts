// The real-model corpus bench (issue 14): every model of bench/corpus/models.json through the `ptq` CLI — inspect,
// static INT8 (calibrated on generated realistic inputs), dynamic INT8, INT4, FP4 — then, for every file written,
// whether onnxruntime loads and runs it, output SQNR and decision agreement vs FP32 on held-out generated inputs,
// the task metric where the inputs have labels (text recognisers: exact lines and CER, FP32's beside), size ratio,
// quantize time and the child's peak RSS. One model at a time; a failure is a row with its reason.
//   node --import tsx bench/corpus.ts [--models id,id] [--modes static,int4] [--json] [--calib N] [--eval N]
//                                     [--calib-seed N] [--timeout S] [--keep] [--config FILE [--config-modes static,fp4]]
//   --set heldout: the held-out set (bench/corpus/heldout.json: real models never measured while a default was chosen)
//   instead of the corpus, when --models names none.
//   --calib-seed N: the calibration samples' seed (default 1, the corpus's own set): another set, to see whether a
//   default (or a lead over ONNX Runtime's quantizer) holds on other data. Held-out samples are seeded apart (1000).
//   --config FILE: a `ptq quantize --config` JSON file (QConfig fields) for the static mode, e.g.
//   {"weightType":"int8","reduceRange":true} to score another weight type against the default; --config-modes: the
//   modes it is given to (default static), e.g. fp4 with {"rounding":"learned"}
//   ... --peer: ours static/dynamic beside ONNX Runtime's Python quantizer on the same inputs (bench/corpus/peer.ts)
import { existsSync } from "node:fs";
import path from "node:path";
import { byId, corpusDir, ensureFetched, loadCatalog, setIds, type ModelSet } from "./corpus/catalog";
import { formatDetections, formatLines, formatPositives } from "./corpus/evaluate";
import { speechSource } from "./corpus/inputs";
import { formatPeerTable, peerCorpus } from "./corpus/peer";
import { MODES, runModel, type Mode, type Row } from "./corpus/run-model";

interface Args {
  models: string[];
  set: ModelSet;
  modes: Mode[];
  json: boolean;
  calib: number;
  calibSeed: number;
  eval: number;
  timeout: number;
  keep: boolean;
  peer: boolean;
  config?: string;
  configModes: Mode[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { models: [], set: "corpus", modes: [...MODES], json: false, calib: 16, calibSeed: 1, eval: 8, timeout: 600, keep: false, peer: false, configModes: ["static"] };
  const num = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got "${v ?? ""}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === "--models") a.models = (argv[++i] ?? "").split(",").filter(Boolean);
    else if (f === "--set") {
      const s = argv[++i];
      if (s !== "corpus" && s !== "heldout") throw new Error(`--set takes corpus or heldout, got "${s ?? ""}"`);
      a.set = s;
    }
    else if (f === "--modes") {
      a.modes = (argv[++i] ?? "").split(",").filter(Boolean) as Mode[];
      const bad = a.modes.filter((m) => !MODES.includes(m));
      if (bad.length) throw new Error(`unknown mode(s) ${bad.join(", ")}; modes: ${MODES.join(", ")}`);
    } else if (f === "--json") a.json = true;
    else if (f === "--keep") a.keep = true;
    else if (f === "--peer") a.peer = true;
    else if (f === "--calib") a.calib = num(f, argv[++i]);
    else if (f === "--calib-seed") a.calibSeed = num(f, argv[++i]);
    else if (f === "--eval") a.eval = num(f, argv[++i]);
    else if (f === "--timeout") a.timeout = num(f, argv[++i]);
    else if (f === "--config") {
      const file = argv[++i];
      if (!file) throw new Error("--config needs a file: a `ptq quantize --config` JSON file for the static mode");
      if (!existsSync(file)) throw new Error(`--config ${file}: no such file`);
      a.config = path.resolve(file);
    } else if (f === "--config-modes") {
      a.configModes = (argv[++i] ?? "").split(",").filter(Boolean) as Mode[];
      const bad = a.configModes.filter((m) => !MODES.includes(m) || m === "inspect");
      if (bad.length || a.configModes.length === 0) throw new Error(`--config-modes takes quantize modes (${MODES.filter((m) => m !== "inspect").join(", ")}), got "${a.configModes.join(",")}"`);
    }
    else throw new Error(`unknown argument "${f}"`);
  }
  return a;
}

const fmt = (v: number | string | null | undefined, digits: number) =>
  v === undefined || v === null ? "" : Number(v) === Infinity ? "∞" : Number.isNaN(Number(v)) ? "" : Number(v).toFixed(digits);
/** JSON has no Infinity (identical outputs) or NaN: write them as strings. */
const nonFinite = (_k: string, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v);

/** A Markdown table: paste-able into docs/corpus.md. */
export function formatTable(rows: readonly Row[]): string {
  const head = ["model", "mode", "works", "reason / notes", "q nodes", "agreement", "task metric", "SQNR dB", "size", "time s", "RSS MB"];
  const lines = rows.map((r) => {
    const notes = [r.reason, r.opset ? `opset ${r.opset}` : undefined, r.agreementOn ? `agreement on ${r.agreementOn}` : undefined].filter(Boolean).join("; ");
    return [
      r.model,
      r.mode,
      r.works === "yes" ? "yes" : `NO (${r.stage})`,
      notes.replace(/\|/g, "\\|"),
      r.quantizedNodes === undefined ? "" : String(r.quantizedNodes),
      r.agreement === undefined ? "" : `${(100 * r.agreement).toFixed(1)} %`,
      r.lines ? formatLines(r.lines) : [r.positives && formatPositives(r.positives), r.detections && formatDetections(r.detections)].filter(Boolean).join("; "),
      fmt(r.sqnrDb, 1),
      r.sizeRatio === undefined ? "" : `${fmt(r.sizeRatio, 2)}×`,
      fmt(r.seconds, 1),
      r.peakRssMB === undefined ? "" : String(r.peakRssMB),
    ];
  });
  return [head, head.map(() => "---"), ...lines].map((c) => `| ${c.join(" | ")} |`).join("\n");
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`corpus bench: ${(e as Error).message}`);
    return 2;
  }
  const catalog = loadCatalog();
  const models = (args.models.length ? args.models : setIds(catalog, args.set)).map((id) => byId(catalog, id));
  ensureFetched(models.map((m) => m.id));
  const log = (l: string) => console.error(l);
  log(`corpus: ${models.length} model(s)${args.set === "heldout" && !args.models.length ? " of the held-out set" : ""} from ${corpusDir()}, modes ${args.modes.join(",")}, ${args.calib} calibration / ${args.eval} held-out samples${args.config ? `, ${args.configModes.join(",")} with --config ${args.config}` : ""}; audio inputs: ${speechSource()}`);
  if (args.peer) {
    const peer = await peerCorpus(catalog, models, { calibSamples: args.calib, calibSeed: args.calibSeed, evalSamples: args.eval, limitS: args.timeout, keep: args.keep, log });
    console.log(args.json ? JSON.stringify(peer, nonFinite, 2) : formatPeerTable(peer));
    return 0;
  }
  const rows: Row[] = [];
  for (const m of models) {
    const r = await runModel(catalog, m, { modes: args.modes, calibSamples: args.calib, calibSeed: args.calibSeed, evalSamples: args.eval, limitS: args.timeout, keep: args.keep, config: args.config, configModes: args.configModes, log });
    for (const row of r) log(`  ${row.model} ${row.mode}: ${row.works === "yes" ? "ok" : `FAILED (${row.stage}): ${row.reason}`}`);
    rows.push(...r);
  }
  console.log(args.json ? JSON.stringify(rows, nonFinite, 2) : formatTable(rows));
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      console.error(`corpus bench: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  );
}
