// The corpus peer comparison (bench/corpus/peer.ts, bench/peer/ort.ts) without ONNX Runtime's chroot: it refuses
// up front with what to run when the chroot is missing, refuses a calibration folder the chroot cannot see before
// copying anything, and its table keeps every failure's reason in its cell.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { byId, loadCatalog } from "../../../bench/corpus/catalog";
import { formatPeerTable, peerCorpus, SIDES, type Cell, type PeerRow } from "../../../bench/corpus/peer";
import { runOrtQuantizer } from "../../../bench/peer/ort";

describe("corpus peer comparison", () => {
  let dir: string;
  let savedChroot: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "ptq-peer-test-"));
    savedChroot = process.env.PTQ_PEER_CHROOT;
  });
  afterEach(() => {
    if (savedChroot === undefined) delete process.env.PTQ_PEER_CHROOT;
    else process.env.PTQ_PEER_CHROOT = savedChroot;
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses before running anything when ONNX Runtime's chroot is not built, and says how to build it", async () => {
    const root = path.join(dir, "no-chroot");
    mkdirSync(root);
    process.env.PTQ_PEER_CHROOT = root;
    const catalog = loadCatalog();
    const lines: string[] = [];
    await assert.rejects(
      peerCorpus(catalog, [byId(catalog, "blazeface-front")], { calibSamples: 1, evalSamples: 1, limitS: 5, log: (l) => lines.push(l) }),
      (e: Error) => e.message.includes(`no ONNX Runtime chroot at ${root}`) && e.message.includes("bench/peer/setup-chroot.sh"),
    );
    assert.deepEqual(lines, [], "nothing was quantized nor generated");
    assert.deepEqual(readdirSync(root), []);
  });

  it("refuses a calibration folder outside the work folder (the chroot sees only that) and copies nothing", () => {
    const work = path.join(dir, "work");
    const calib = path.join(dir, "calib");
    mkdirSync(work);
    mkdirSync(calib);
    const model = path.join(dir, "m.onnx");
    writeFileSync(model, "not read");
    assert.throws(() => runOrtQuantizer({ model, calib, work, configs: "default" }), (e: Error) => e.message.startsWith(`${calib}: a calibration folder must lie inside the work folder ${work}`));
    assert.deepEqual(readdirSync(work), []);
  });

  it("keeps each failure's reason in its cell, escaped for Markdown, and lists ORT's notes once", () => {
    const ok: Cell = { works: true, agreement: 0.5, sqnrDb: Infinity, sizeRatio: 0.25, notes: [] };
    const cells = Object.fromEntries(SIDES.map((s) => [s, ok])) as PeerRow["cells"];
    cells["ORT per-channel"] = { works: false, reason: "invalid model: a | b", notes: ["opset 12 upgraded to 13"] };
    cells["ORT default"] = { ...ok, notes: ["opset 12 upgraded to 13"] };
    const table = formatPeerTable([{ model: "m", cells }]);
    const row = table.split("\n").find((l) => l.startsWith("| m |"))!;
    assert.equal(row, "| m | 50.0 % · ∞ dB · 0.25× | 50.0 % · ∞ dB · 0.25× | failed: invalid model: a \\| b | 50.0 % · ∞ dB · 0.25× | 50.0 % · ∞ dB · 0.25× |");
    assert.match(table, /- m, ORT default: opset 12 upgraded to 13\n- m, ORT per-channel: opset 12 upgraded to 13/);
  });
});
