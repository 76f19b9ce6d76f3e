// Accuracy recovery on and off, on the fixture models: cross-layer equalization (CLE) and bias correction (BC) on
// mobilenet, SmoothQuant (SQ) on vit, each under the default INT8 config (per-channel weights) and per-tensor INT8
// weights (where CLE matters most). Scored on data/eval (2000 images): top-1, and output SQNR against the FP32
// logits of the same model. Calibration: data/calib/calib.npz. Learned rounding (LR: the layers' inputs from the
// quantized model; LRF: from the float model) on both.
//
//   node --import tsx bench/recovery.ts [--models mobilenet,vit] [--alpha 0.5] [--plans none,cle,bc,cle+bc,lr,...] [--json]
//
// --corpus id,id: learned rounding on real corpus models (bench/corpus), nearest vs learned, for static INT8 (the
// layers' inputs from the quantized model, and from the float model) and FP4 weights (NVFP4, MXFP4, smallLayers
// int8 as by default; INT4, MatMul/Gemm only: learned = GPTQ), scored by bench/corpus/evaluate on held-out samples (output agreement and SQNR vs FP32):
//   node --import tsx bench/recovery.ts --corpus ppocr-v3-rec-en,blazeface-back [--calib 16] [--variants int8,int4,nvfp4,mxfp4]
import path from "node:path";
import { errorFigures } from "../engine/analysis/error-stats";
import type { Feeds } from "../engine/data/feeds";
import { loadNpy } from "../engine/data/npy";
import { openData } from "../engine/data/readers";
import { Model } from "../engine/onnx/model";
import { calibrate, convert, prepare, release, type QConfig } from "../engine/quant/index";
import { correctBias, equalizeCrossLayer, refineRounding, smoothQuant } from "../engine/recovery/index";
import { createSession } from "../engine/runtime/session";

const FIX = path.join(__dirname, "..", "test", "fixtures");
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] ?? fallback : fallback;
};
const CONFIGS: Record<string, QConfig> = { "default INT8": {}, "per-tensor INT8": { perChannel: false } };
type Technique = "cle" | "bc" | "sq" | "lr" | "lrf";
const PLANS: Record<string, Technique[][]> = {
  mobilenet: [[], ["cle"], ["bc"], ["cle", "bc"], ["lr"], ["lrf"]],
  vit: [[], ["sq"], ["bc"], ["sq", "bc"], ["lr"], ["lrf"]],
};

interface Row {
  model: string;
  config: string;
  techniques: string;
  top1: number;
  sqnrDb: number;
  notes: string;
}

async function logits(m: Model, x: Float32Array, dims: number[], input: string, batch = 200): Promise<Float32Array> {
  const s = await createSession(m, { threads: 2 });
  try {
    const per = dims.slice(1).reduce((a, b) => a * b, 1);
    const parts: Float32Array[] = [];
    for (let i = 0; i < dims[0]!; i += batch) {
      const n = Math.min(batch, dims[0]! - i);
      const r = await s.run({ [input]: { data: x.subarray(i * per, (i + n) * per), dims: [n, ...dims.slice(1)] } });
      parts.push(Float32Array.from(Object.values(r)[0]!.data as Float32Array));
    }
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  } finally {
    await s.dispose();
  }
}

function top1(l: Float32Array, labels: ArrayLike<number | bigint>): number {
  const n = labels.length;
  const k = l.length / n;
  let ok = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (l[i * k + j]! > l[i * k + best]!) best = j;
    if (best === Number(labels[i])) ok++;
  }
  return ok / n;
}

async function corpus(ids: string[]) {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { byId, loadCatalog, modelPath } = await import("./corpus/catalog");
  const { evaluate } = await import("./corpus/evaluate");
  const { FrontEnd, makeSamples } = await import("./corpus/inputs");
  const { lowBitModelCalibrated } = await import("../engine/lowbit/index");
  const catalog = loadCatalog();
  const fe = new FrontEnd(catalog);
  const variants = arg("variants", "int8,nvfp4,mxfp4").split(",");
  const work = mkdtempSync(path.join(tmpdir(), "ptq-rounding-"));
  console.log("| model | weights | rounding | agreement (held-out) | SQNR dB (held-out) | layers, mean layer SQNR nearest → learned | time s |");
  console.log("|---|---|---|---|---|---|---|");
  const row = async (id: string, what: string, how: string, m: Model, info: string, seconds: number) => {
    const out = path.join(work, `${id}.${`${what}.${how}`.replace(/\W+/g, "-")}.onnx`);
    await m.save(out, { overwrite: true });
    const e = await evaluate(id, out);
    const agree = e.agreement === undefined ? "–" : `${(100 * e.agreement).toFixed(1)} %`;
    console.log(`| ${id} | ${what} | ${how} | ${agree} | ${e.sqnrDb?.toFixed(2) ?? e.reason} | ${info} | ${seconds.toFixed(1)} |`);
  };
  try {
    for (const id of ids) {
      const cm = byId(catalog, id);
      const source = await Model.load(modelPath(cm));
      const calib = await makeSamples(cm, Number(arg("calib", "16")), 1, fe);
      if (variants.includes("int8")) {
        let t = performance.now();
        const p = await prepare(source, {});
        try {
          await calibrate(p, calib);
        } finally {
          await release(p);
        }
        const q = (await convert(p)).model;
        await row(id, "INT8 static", "nearest", q, "", (performance.now() - t) / 1000);
        for (const inputs of ["quantized", "float"] as const) {
          t = performance.now();
          const r = await refineRounding(p.model, q, calib, { inputs });
          const rr = r.report;
          const info = `${rr.layers.length} (${rr.skipped.length} kept nearest), ${rr.meanBeforeDb.toFixed(1)} → ${rr.meanAfterDb.toFixed(1)}`;
          await row(id, "INT8 static", `learned (${inputs} inputs)`, r.model, info, (performance.now() - t) / 1000);
        }
      }
      if (variants.includes("int4")) {
        for (const rounding of ["nearest", "learned"] as const) {
          const t = performance.now();
          try {
            const { model, report } = await lowBitModelCalibrated(source, { mode: "int4", rounding }, calib);
            const g = report.layers.filter((l) => l.outputSqnrDb !== undefined);
            const info = g.length ? `${g.length} GPTQ, ${(g.reduce((a, l) => a + l.rtnOutputSqnrDb!, 0) / g.length).toFixed(1)} → ${(g.reduce((a, l) => a + l.outputSqnrDb!, 0) / g.length).toFixed(1)}` : `${report.layers.length} weights`;
            await row(id, "INT4 (MatMul/Gemm)", rounding, model, info, (performance.now() - t) / 1000);
          } catch (e) {
            console.log(`| ${id} | INT4 (MatMul/Gemm) | ${rounding} | – | – | ${(e as Error).message.split(": ").slice(1).join(": ").slice(0, 160)} | |`);
          }
        }
      }
      for (const fmt of ["nvfp4", "mxfp4"] as const) {
        if (!variants.includes(fmt)) continue;
        for (const rounding of ["nearest", "learned"] as const) {
          const t = performance.now();
          const { model, report } = await lowBitModelCalibrated(source, { mode: "fp4", fp4Format: fmt, rounding }, calib);
          const fp4 = report.layers.filter((l) => l.bits !== 8 && l.outputSqnrDb !== undefined);
          const mean = (f: (l: (typeof fp4)[number]) => number) => fp4.reduce((a, l) => a + f(l), 0) / fp4.length;
          const info = rounding === "learned" ? `${fp4.length} of ${report.layers.length}, ${mean((l) => l.rtnOutputSqnrDb!).toFixed(1)} → ${mean((l) => l.outputSqnrDb!).toFixed(1)}` : `${report.layers.length} weights`;
          await row(id, fmt.toUpperCase(), rounding, model, info, (performance.now() - t) / 1000);
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main() {
  const ids = arg("corpus", "");
  if (ids) return corpus(ids.split(","));
  const models = arg("models", "mobilenet,vit").split(",");
  const alpha = Number(arg("alpha", "0.5"));
  const json = process.argv.includes("--json");
  const only = arg("plans", "") ? new Set(arg("plans", "").split(",")) : undefined;
  const ex = loadNpy(path.join(FIX, "data", "eval", "x.npy"));
  const ey = loadNpy(path.join(FIX, "data", "eval", "y.npy"));
  const x = ex.data as Float32Array;
  const rows: Row[] = [];
  for (const name of models) {
    const fp32 = await Model.load(path.join(FIX, "models", `${name}.onnx`));
    const input = fp32.graph.input[0]!.name;
    const calib: Feeds[] = Array.from(openData(path.join(FIX, "data", "calib", "calib.npz"), fp32.proto, { batchSize: 32 }));
    const ref = await logits(fp32, x, ex.dims, input);
    rows.push({ model: name, config: "FP32", techniques: "", top1: top1(ref, ey.data as ArrayLike<number>), sqnrDb: Infinity, notes: "" });
    for (const [config, qc] of Object.entries(CONFIGS)) {
      for (const plan of PLANS[name] ?? [[]]) {
        if (only && !only.has(plan.join("+") || "none")) continue;
        const notes: string[] = [];
        let float = fp32;
        if (plan.includes("cle")) {
          const r = await equalizeCrossLayer(float);
          float = r.model;
          notes.push(`CLE pairs: ${r.report.pairs.map((p) => `${p.first}→${p.second}`).join(", ") || "none"}; skipped ${r.report.skipped.length} (${[...new Set(r.report.skipped.map((s) => s.reason.split(" ")[0]))].join(", ")})`);
        }
        if (plan.includes("sq")) {
          const r = await smoothQuant(float, calib, { alpha });
          float = r.model;
          notes.push(`SQ α=${alpha}: ${r.report.smoothed.map((s) => `${s.foldedInto} ${s.outlierRatio.before.toFixed(1)}→${s.outlierRatio.after.toFixed(1)}`).join("; ")}`);
        }
        const p = await prepare(float, qc);
        try {
          await calibrate(p, calib);
        } finally {
          await release(p);
        }
        let q = (await convert(p)).model;
        if (plan.includes("bc")) {
          const r = await correctBias(p.model, q, calib);
          q = r.model;
          const why = [...new Set(r.report.skipped.map((k) => k.reason.replace(/"[^"]*"/g, "…")))];
          notes.push(`BC: ${r.report.corrected.length} layers${why.length ? `; skipped ${r.report.skipped.length}: ${why.join("; ")}` : ""}`);
        }
        for (const t of ["lr", "lrf"] as const) {
          if (!plan.includes(t)) continue;
          const r = await refineRounding(p.model, q, calib, { inputs: t === "lr" ? "quantized" : "float" });
          q = r.model;
          const rr = r.report;
          notes.push(`LR (${rr.inputs} inputs): ${rr.layers.length} layers, mean layer SQNR ${rr.meanBeforeDb.toFixed(1)} → ${rr.meanAfterDb.toFixed(1)} dB, ${rr.seconds.toFixed(1)} s; skipped ${rr.skipped.length}`);
        }
        const l = await logits(q, x, ex.dims, input);
        rows.push({ model: name, config, techniques: plan.join("+") || "none", top1: top1(l, ey.data as ArrayLike<number>), sqnrDb: errorFigures(ref, l).sqnrDb, notes: notes.join(" | ") });
        if (!json) console.error(`${name} ${config} ${plan.join("+") || "none"}: top-1 ${(rows.at(-1)!.top1 * 100).toFixed(2)} %, SQNR ${rows.at(-1)!.sqnrDb.toFixed(2)} dB`);
      }
    }
  }
  if (json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  console.log("| model | config | recovery | top-1 | output SQNR (dB) | what changed |");
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.model} | ${r.config} | ${r.techniques} | ${(r.top1 * 100).toFixed(2)} % | ${Number.isFinite(r.sqnrDb) ? r.sqnrDb.toFixed(2) : "—"} | ${r.notes} |`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
