// bench/corpus/samples.ts: a corpus model's generated inputs written to a folder, at the catalog's shape or another
// one, one .npy per sample or stacked in one (docs/BENCHMARKS.md's 960×960 pages). The image generators need no
// model file, so this runs offline.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { byId, loadCatalog } from "../../../bench/corpus/catalog";
import { FrontEnd } from "../../../bench/corpus/inputs";
import { reshaped, writeCorpusSamples } from "../../../bench/corpus/samples";
import { loadNpy } from "../../../engine/data/npy";
import { tempDir } from "../../temp";

test("samples at another shape, one file each or stacked: the same values, the seed's", async () => {
  const catalog = loadCatalog();
  const m = byId(catalog, "ppocr-v3-det-en");
  const fe = new FrontEnd(catalog);
  const o = { count: 3, seed: 5, shape: [1, 3, 64, 96] };
  const single = tempDir("ptq-samples-");
  const stacked = tempDir("ptq-samples-");
  const files = await writeCorpusSamples(m, single, o, fe);
  const [one] = await writeCorpusSamples(m, stacked, { ...o, stacked: true }, fe);
  await fe.dispose();
  assert.deepEqual(readdirSync(single).sort(), files.map((f) => path.basename(f)));
  const parts = files.map((f) => loadNpy(f));
  for (const p of parts) assert.deepEqual(p.dims, [1, 3, 64, 96]);
  const all = loadNpy(one!);
  assert.deepEqual(all.dims, [3, 3, 64, 96]);
  assert.deepEqual(Array.from(all.data as Float32Array), parts.flatMap((p) => Array.from(p.data as Float32Array)));
  assert.ok(new Set(Array.from(parts[0]!.data as Float32Array)).size > 100, "a generated page, not a constant");
  assert.notDeepEqual(Array.from(parts[0]!.data as Float32Array), Array.from(parts[1]!.data as Float32Array));
  assert.throws(() => reshaped(m, [3, 64, 96]), /rank 4/);
});
