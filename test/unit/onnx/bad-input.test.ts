import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Model, OnnxError, allTensors, readTensor } from "../../../kernel/onnx";
import { seededRandom } from "../../../kernel/analysis/stats";
import { bigWeights, smallMlp, withIf } from "./helpers";

const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** Loads `bytes` from a file and expects an OnnxError whose message names the file and matches `re`. */
async function expectLoadError(dir: string, name: string, bytes: Uint8Array, re: RegExp): Promise<void> {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  const before = sha(file);
  await assert.rejects(Model.load(file), (e: unknown) => {
    assert.ok(e instanceof OnnxError, `expected OnnxError, got ${String(e)}`);
    assert.ok(e.message.startsWith(file + ": "), `message names the file: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
  assert.equal(sha(file), before, "the input file is never modified");
}

test("bad files end in an error that names the file and says what is wrong", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-bad-"));
  try {
    const good = smallMlp().toBytes();
    await expectLoadError(dir, "empty.onnx", new Uint8Array(0), /the file is empty \(0 bytes\)/);
    await expectLoadError(dir, "text.onnx", new TextEncoder().encode('ir_version: 8\ngraph { node { op_type: "Relu" } }'), /text file \(starts with "ir_version: 8\?graph/);
    await expectLoadError(dir, "model.pt", Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0]), /zip archive .*PyTorch/);
    await expectLoadError(dir, "trunc.onnx", good.subarray(0, Math.floor(good.length * 0.6)), /byte offset \d+.*truncated or corrupted/);
    await expectLoadError(dir, "noise.onnx", Uint8Array.from({ length: 300 }, (_, i) => (i * 7919 + 13) & 0xff), /not a valid ONNX file|not an ONNX model/);
    await assert.rejects(Model.load(path.join(dir, "absent.onnx")), /absent\.onnx: cannot read the model file/);

    // Shape and data disagree.
    const m = smallMlp();
    m.graph.initializer[0]!.dims = [5n, 3n];
    await expectLoadError(dir, "shape.onnx", m.toBytes(), /tensor "W" \(float, shape \[5, 3\]\) needs 60 bytes of data but has 48/);
    // A node reads a value nobody produces.
    const d = smallMlp();
    d.graph.node[1]!.input[1] = "ghost";
    await expectLoadError(dir, "dangling.onnx", d.toBytes(), /node "add" \(Add\) reads "ghost", which no node, graph input or initializer provides/);
    // A cycle.
    const c = smallMlp();
    c.graph.node[0]!.input[0] = "y";
    c.graph.input = [];
    await expectLoadError(dir, "cycle.onnx", c.toBytes(), /has a cycle through node "mm" \(MatMul\)/);
    // A model without a graph.
    const ng = smallMlp();
    ng.proto.graph = undefined;
    await expectLoadError(dir, "nograph.onnx", ng.toBytes(), /no graph found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function mutate(src: Uint8Array, seed: number): Uint8Array {
  const r = seededRandom(seed);
  const b = Uint8Array.from(src);
  const kind = seed % 4;
  if (kind === 0) {
    const flips = 1 + Math.floor(r() * 8);
    for (let i = 0; i < flips; i++) b[Math.floor(r() * b.length)]! ^= 1 << Math.floor(r() * 8);
    return b;
  }
  if (kind === 1) return b.subarray(0, Math.floor(r() * b.length));
  if (kind === 2) {
    // Tamper with a length-delimited field's length: find a tag with wire type 2 and change the next byte.
    for (let tries = 0; tries < 50; tries++) {
      const p = Math.floor(r() * (b.length - 1));
      if ((b[p]! & 7) === 2) {
        b[p + 1] = Math.floor(r() * 256);
        return b;
      }
    }
    return b;
  }
  // Overwrite a run of bytes with random ones.
  const at = Math.floor(r() * b.length);
  for (let i = at; i < Math.min(b.length, at + 1 + Math.floor(r() * 16)); i++) b[i] = Math.floor(r() * 256);
  return b;
}

function corpus(): { name: string; bytes: Uint8Array }[] {
  const out = [
    { name: "mlp", bytes: smallMlp().toBytes() },
    { name: "if", bytes: withIf().toBytes() },
    { name: "weights", bytes: bigWeights(64).toBytes() },
  ];
  const node = "/usr/share/libonnx-testdata/data/node";
  if (existsSync(node)) {
    for (const c of ["test_if", "test_loop11", "test_conv_with_strides_padding", "test_qlinearconv", "test_dequantizelinear", "test_gemm_all_attributes", "test_batchnorm_example", "test_scan9_sum", "test_resize_downsample_scales_linear", "test_cast_FLOAT_to_FLOAT16"]) {
      const f = path.join(node, c, "model.onnx");
      if (existsSync(f)) out.push({ name: c, bytes: readFileSync(f) });
    }
  }
  const fixtures = path.join(__dirname, "..", "..", "fixtures", "models");
  if (existsSync(fixtures)) {
    for (const f of readdirSync(fixtures).filter((n) => n.endsWith(".onnx")).slice(0, 4)) {
      const bytes = readFileSync(path.join(fixtures, f));
      if (bytes.byteLength < 4_000_000) out.push({ name: f, bytes });
    }
  }
  return out;
}

test("fuzz: mutated real models end in an OnnxError or a valid model, never a crash", () => {
  const models = corpus();
  assert.ok(models.length >= 3);
  let errors = 0;
  let valid = 0;
  for (const { name, bytes } of models) {
    const original = Uint8Array.from(bytes);
    for (let seed = 1; seed <= 60; seed++) {
      const mutated = mutate(bytes, seed * 7919 + name.length);
      try {
        const m = Model.fromBytes(mutated, { path: `${name}#${seed}` });
        for (const t of allTensors(m.proto)) {
          try {
            readTensor(t);
          } catch (e) {
            if (!(e instanceof OnnxError)) throw e;
          }
        }
        Model.fromBytes(m.toBytes(), { skipValidation: true });
        valid++;
      } catch (e) {
        if (!(e instanceof OnnxError)) {
          assert.fail(`${name} seed ${seed}: ${(e as Error)?.stack ?? String(e)}`);
        }
        assert.match(e.message, new RegExp(`^${name}#${seed}: |tensor "|node "`));
        errors++;
      }
    }
    assert.ok(Buffer.from(bytes).equals(Buffer.from(original)), `${name}: the source bytes are untouched`);
  }
  assert.ok(errors > 0 && valid > 0, `both outcomes occur (errors ${errors}, valid ${valid})`);
});
