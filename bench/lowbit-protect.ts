/**
 * Low-bit protection on the real-model corpus: weight-only INT4 / FP4 with every eligible layer in low bits, then
 * with the layers that cost the outputs most kept float until the outputs meet a target (engine/lowbit/protect), at
 * several targets. Calibration samples use seed 1, the agreement is measured on held-out samples (seed 1000) by
 * bench/corpus/evaluate.ts; size is the written file against the FP32 file.
 *
 *   node --import tsx bench/lowbit-protect.ts [--models id,id] [--modes int4,fp4] [--targets 15,20,25] [--calib 16]
 *     [--small-layers int8|fp4]   (FP4's small weights: int8, the default, or FP4 like the rest)
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Model } from "../engine/onnx/model";
import { lowBitModelCalibrated, type LowBitOptions } from "../engine/lowbit";
import { byId, loadCatalog, modelPath, setIds } from "./corpus/catalog";
import { evaluate } from "./corpus/evaluate";
import { FrontEnd, makeSamples } from "./corpus/inputs";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const catalog = loadCatalog();
const ids = flag("--models")?.split(",") ?? setIds(catalog);
const modes = (flag("--modes") ?? "int4,fp4").split(",") as LowBitOptions["mode"][];
const targets = (flag("--targets") ?? "15,20,25").split(",").filter(Boolean).map(Number);
const calibCount = Number(flag("--calib") ?? 16);
const smallLayers = flag("--small-layers") as "int8" | "fp4" | undefined;

async function main(): Promise<void> {
const work = mkdtempSync(path.join(tmpdir(), "ptq-lowbit-protect-"));
const fe = new FrontEnd(catalog);
console.log(`| model | mode | target dB | protected | output SQNR (calib) | agreement (held-out) | SQNR (held-out) | size | time s |`);
console.log(`|---|---|---|---|---|---|---|---|---|`);
try {
  for (const id of ids) {
    const m = byId(catalog, id);
    const file = modelPath(m);
    const source = await Model.load(file);
    const floatBytes = statSync(file).size;
    const calib = await makeSamples(m, calibCount, 1, fe);
    for (const mode of modes) {
      for (const target of [undefined, ...targets]) {
        const options = { mode, ...(mode === "fp4" && smallLayers && { smallLayers }), ...(target === undefined ? {} : { protect: { minOutputSqnrDb: target } }) } as LowBitOptions;
        const t0 = performance.now();
        let row: string;
        try {
          const { model, report } = await lowBitModelCalibrated(source, options, calib);
          if (report.layers.length === 0) {
            console.log(`| ${id} | ${mode} | – | – | – | nothing to quantize | | | |`);
            break;
          }
          const out = path.join(work, `${id}.${mode}.${target ?? "none"}.onnx`);
          await model.save(out, { overwrite: true });
          const seconds = (performance.now() - t0) / 1000;
          const e = await evaluate(id, out);
          const o = report.output!;
          row = `| ${id} | ${mode} | ${target ?? "off"} | ${o.protected.filter((p) => p.as === "int8").length} int8 + ${o.protected.filter((p) => p.as === "float").length} float of ${report.layers.length + o.protected.filter((p) => p.as === "float").length} | ${o.sqnrDb.toFixed(1)} | ${e.agreement === undefined ? "–" : (100 * e.agreement).toFixed(1) + " %"} | ${e.sqnrDb?.toFixed(1)} | ${(statSync(out).size / floatBytes).toFixed(2)}× | ${seconds.toFixed(1)} |`;
        } catch (err) {
          row = `| ${id} | ${mode} | ${target ?? "off"} | failed: ${(err as Error).message.slice(0, 120)} | | | | | |`;
        }
        console.log(row);
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
}

void main();
