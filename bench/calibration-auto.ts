// Calibration methods side by side, "auto" among them: each model quantized with all defaults but
// calibration.method, then scored on held-out inputs against FP32 (worst-output SQNR, argmax/threshold agreement).
//
//   node --import tsx bench/calibration-auto.ts [--corpus ppocr-v3-rec-en,blazeface-front | --corpus all]
//        [--fixtures cnn,mobilenet,vit | --fixtures none] [--methods minmax,entropy,percentile,mse,auto] [--json]
//
// Corpus models: the corpus bench's protocol exactly (bench/corpus.ts: 16 calibration samples from
// bench/corpus/inputs.ts seed 1, scored by bench/corpus/evaluate.ts on 8 held-out samples, seed 1000), so the
// figures sit beside docs/corpus.md's, ONNX Runtime's quantizer included. Fixtures: the first 64 images of
// test/fixtures/data/calib/calib.npz calibrate, the last 64 are held out; agreement is argmax agreement of the first
// output with FP32.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CALIBRATION_METHODS, type CalibrationMethod, type Feeds } from "../engine/calibrate/index";
import { readNpz } from "../engine/data/readers";
import { argmaxRows } from "../engine/analysis/metrics";
import { Model } from "../engine/onnx/model";
import { calibrate, convert, prepare, release } from "../engine/quant/index";
import { createSession } from "../engine/runtime/session";
import { byId, loadCatalog, modelPath, setIds } from "./corpus/catalog";
import { evaluate } from "./corpus/evaluate";
import { FrontEnd, makeSamples } from "./corpus/inputs";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
};

interface Score {
  model: string;
  method: CalibrationMethod;
  sqnrDb: number;
  agreement?: number;
  seconds: number;
  /** auto: how many tensors took each method. */
  chosen?: Record<string, number>;
  /** auto: what it measured at the outputs on its held-out rows (one tensor's why, from "worst-output SQNR"). */
  atOutputs?: string;
}

async function quantize(model: Model, method: CalibrationMethod, data: Feeds[]) {
  const prepared = await prepare(model, { calibration: { method } });
  const t0 = performance.now();
  try {
    await calibrate(prepared, data);
  } finally {
    await release(prepared);
  }
  const seconds = (performance.now() - t0) / 1000;
  const chosen: Record<string, number> = {};
  for (const c of prepared.choices.values()) chosen[c.method] = (chosen[c.method] ?? 0) + 1;
  const why = [...prepared.choices.values()][0]?.why;
  const atOutputs = why?.match(/worst-output SQNR.*? on the first \d+ calibration row\(s\): .*?(?=; another than mse)/)?.[0];
  return { q: (await convert(prepared)).model, seconds, ...(prepared.choices.size ? { chosen } : {}), ...(atOutputs ? { atOutputs } : {}) };
}

async function corpusScores(id: string, methods: CalibrationMethod[]): Promise<Score[]> {
  const catalog = loadCatalog();
  const m = byId(catalog, id);
  const fe = new FrontEnd(catalog);
  const samples = await makeSamples(m, 16, 1, fe).finally(() => fe.dispose());
  const data = samples.map((s): Feeds => s);
  const model = await Model.load(modelPath(m));
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-calib-auto-"));
  const out: Score[] = [];
  try {
    for (const method of methods) {
      const { q, seconds, chosen, atOutputs } = await quantize(model, method, data);
      const file = path.join(dir, `${id}.${method}.onnx`);
      await q.save(file, { overwrite: true });
      const r = await evaluate(id, file);
      if (!r.ok) throw new Error(`${id} ${method}: ${r.reason}`);
      out.push({ model: id, method, sqnrDb: r.sqnrDb!, ...(r.agreement !== undefined && !Number.isNaN(r.agreement) ? { agreement: r.agreement } : {}), seconds, ...(chosen ? { chosen } : {}), ...(atOutputs ? { atOutputs } : {}) });
      report(out.at(-1)!);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

async function fixtureScores(name: string, methods: CalibrationMethod[]): Promise<Score[]> {
  const model = await Model.load(path.join("test", "fixtures", "models", `${name}.onnx`));
  const all = [...readNpz(path.join("test", "fixtures", "data", "calib", "calib.npz"), model, { batchSize: 16 })];
  const calib = all.slice(0, 4);
  const heldOut = all.slice(-4);
  const ref = await createSession(model);
  const refOut = [];
  for (const f of heldOut) refOut.push(await ref.run(f));
  await ref.dispose();
  const out: Score[] = [];
  for (const method of methods) {
    const { q, seconds, chosen, atOutputs } = await quantize(model, method, calib);
    const s = await createSession(q);
    let signal = 0;
    let noise = 0;
    let same = 0;
    let rows = 0;
    for (let i = 0; i < heldOut.length; i++) {
      const o = await s.run(heldOut[i]!);
      const name0 = Object.keys(refOut[i]!)[0]!;
      const a = refOut[i]![name0]!;
      const b = o[name0]!;
      const x = Float64Array.from(a.data as Float32Array);
      const y = Float64Array.from(b.data as Float32Array);
      for (let k = 0; k < x.length; k++) [signal, noise] = [signal + x[k]! ** 2, noise + (x[k]! - y[k]!) ** 2];
      const cols = a.dims.at(-1)!;
      const ax = argmaxRows({ rows: x.length / cols, cols, data: x });
      const ay = argmaxRows({ rows: y.length / cols, cols, data: y });
      ax.forEach((v, k) => (same += v === ay[k] ? 1 : 0));
      rows += ax.length;
    }
    await s.dispose();
    out.push({ model: name, method, sqnrDb: 10 * Math.log10(signal / noise), agreement: same / rows, seconds, ...(chosen ? { chosen } : {}), ...(atOutputs ? { atOutputs } : {}) });
    report(out.at(-1)!);
  }
  return out;
}

function report(s: Score): void {
  if (process.argv.includes("--json")) return;
  const agree = s.agreement !== undefined ? ` agreement=${(100 * s.agreement).toFixed(1)} %` : "";
  const chosen = s.chosen ? ` chose ${Object.entries(s.chosen).map(([m, n]) => `${m}×${n}`).join(" ")}` : "";
  const atOutputs = s.atOutputs ? ` [${s.atOutputs}]` : "";
  console.log(`${s.model} ${s.method.padEnd(10)} sqnr=${s.sqnrDb.toFixed(2)} dB${agree} calib=${s.seconds.toFixed(1)} s${chosen}${atOutputs}`);
}

async function main(): Promise<void> {
  const methods = arg("methods", CALIBRATION_METHODS.join(",")).split(",") as CalibrationMethod[];
  const catalog = loadCatalog();
  const corpusArg = arg("corpus", "");
  const corpus = corpusArg === "all" ? setIds(catalog) : corpusArg ? corpusArg.split(",") : [];
  const fixturesArg = arg("fixtures", "cnn,mobilenet,vit");
  const fixtures = fixturesArg === "none" ? [] : fixturesArg.split(",");
  const rows: Score[] = [];
  for (const f of fixtures) rows.push(...(await fixtureScores(f, methods)));
  for (const id of corpus) {
    try {
      rows.push(...(await corpusScores(id, methods)));
    } catch (e) {
      console.error(`${id}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
    }
  }
  if (process.argv.includes("--json")) console.log(JSON.stringify(rows, null, 2));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
