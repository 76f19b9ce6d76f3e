// bench/corpus.ts --config: the static mode quantizes with a `ptq quantize --config` file (how docs/int8-speed.md
// scored U8S8 with 7-bit weights against the default on the whole corpus). The file must reach the CLI: a config
// the CLI refuses makes the row fail with the CLI's reason, and a valid one writes a model that runs.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { byId, ensureFetched, loadCatalog } from "../../../bench/corpus/catalog";
import { runModel } from "../../../bench/corpus/run-model";

const catalog = loadCatalog();
const id = catalog.subset[0]!;

describe("corpus bench: static mode with a --config file", { timeout: 3 * 60_000 }, () => {
  let dir: string;
  before(() => {
    ensureFetched([id]);
    dir = mkdtempSync(path.join(os.tmpdir(), "ptq-corpus-config-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const run = (config: object) => {
    const file = path.join(dir, `${Object.keys(config).join("-")}.json`);
    writeFileSync(file, JSON.stringify(config));
    return runModel(catalog, byId(catalog, id), { modes: ["static"], calibSamples: 4, evalSamples: 2, limitS: 120, config: file }).then((r) => ({ file, row: r[0]! }));
  };

  it("a config the CLI refuses fails the row with the CLI's reason", async () => {
    const { file, row } = await run({ weightType: "int4" });
    assert.notEqual(row.works, "yes", "the bad config did not reach the CLI");
    assert.match(row.command ?? "", new RegExp(`--config ${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
    assert.match(row.reason ?? "", /weightType takes "int8", "uint8" or "auto", not "int4"/);
  });

  it("--config-modes gives the file to the modes named: FP4 with learned rounding, and not the static mode then", async () => {
    const file = path.join(dir, "learned.json");
    writeFileSync(file, JSON.stringify({ rounding: "learned" }));
    const rows = await runModel(catalog, byId(catalog, id), { modes: ["static", "fp4"], calibSamples: 4, evalSamples: 2, limitS: 120, config: file, configModes: ["fp4"] });
    const [plain, fp4] = [rows.find((r) => r.mode === "static")!, rows.find((r) => r.mode === "fp4")!];
    assert.equal(fp4.works, "yes", `${fp4.stage}: ${fp4.reason}\n  ${fp4.command}`);
    assert.match(fp4.command ?? "", /--mode fp4 .*--config /);
    assert.doesNotMatch(plain.command ?? "", /--config/);
  });

  it("U8S8 with 7-bit weights: the file is written, runs, and is not the default's", async () => {
    const { row } = await run({ weightType: "int8", reduceRange: true });
    assert.equal(row.works, "yes", `${row.stage}: ${row.reason}\n  ${row.command}`);
    assert.ok(row.sqnrDb !== undefined && row.sqnrDb > 0, `output SQNR ${row.sqnrDb} dB`);
    // Same calibration and held-out inputs (fixed seeds): other weights give other outputs.
    const [plain] = await runModel(catalog, byId(catalog, id), { modes: ["static"], calibSamples: 4, evalSamples: 2, limitS: 120 });
    assert.equal(plain!.works, "yes", `${plain!.stage}: ${plain!.reason}`);
    assert.notEqual(row.sqnrDb, plain!.sqnrDb, "the config changed nothing: it did not reach the quantizer");
  });
});
