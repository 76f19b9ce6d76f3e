// The engine is a library of its own: `require("ptq-studio/engine")` (package.json "exports", built to
// out/engine.js) quantizes a model with nothing of VS Code, the kernel or the CLI loaded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const root = path.join(__dirname, "..", "..", "..");

test('require("ptq-studio/engine") quantizes the fixture CNN; nothing above the engine is loaded', { timeout: 120_000 }, () => {
  if (!existsSync(path.join(root, "out", "engine.js"))) {
    const b = spawnSync(process.execPath, ["scripts/build.mjs"], { cwd: root, encoding: "utf8" });
    assert.equal(b.status, 0, b.stderr);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-engine-lib-"));
  try {
    const script = `
      const e = require("ptq-studio/engine");
      const fix = ${JSON.stringify(path.join(root, "test", "fixtures"))};
      (async () => {
        const model = await e.Model.load(fix + "/models/cnn.onnx");
        const data = e.openData(fix + "/data/calib/calib.npz", model.proto, { batchSize: 32 });
        const s = await e.quantizeStatic(fix + "/models/cnn.onnx", ${JSON.stringify(path.join(dir, "cnn.int8.onnx"))}, data);
        const loaded = Object.keys(require.cache).map((f) => f.replace(/\\\\/g, "/"));
        console.log(JSON.stringify({ quantized: s.quantized.length, vscode: loaded.some((f) => /\\/vscode\\//.test(f)), kernel: loaded.some((f) => /out\\/(kernel|cli|extension)/.test(f)) }));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const r = spawnSync(process.execPath, ["-e", script], { cwd: root, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { quantized: number; vscode: boolean; kernel: boolean };
    assert.ok(out.quantized > 0);
    assert.deepEqual([out.vscode, out.kernel], [false, false]);
    assert.ok(existsSync(path.join(dir, "cnn.int8.onnx")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
