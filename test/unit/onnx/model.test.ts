import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DataType, Model, externalRef, isExternal, loadModel, makeTensor, readTensor } from "../../../engine/onnx";
import { bigWeights, smallMlp, withIf } from "./helpers";

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), "ptq-onnx-"));
}

test("fromBytes/toBytes round-trips byte for byte; save+load keeps everything", async () => {
  const m = smallMlp();
  const bytes = m.toBytes();
  assert.deepEqual(Model.fromBytes(bytes).toBytes(), bytes);
  const dir = tmp();
  try {
    const file = path.join(dir, "m.onnx");
    await m.save(file);
    assert.deepEqual(new Uint8Array(readFileSync(file)), bytes);
    const back = await loadModel(file);
    assert.equal(back.path, file);
    assert.equal(back.dir, dir);
    assert.deepEqual(back.graph.node.map((n) => n.opType), ["MatMul", "Add", "Constant", "Mul", "Relu"]);
    assert.deepEqual(Array.from(readTensor(back.graph.initializer[1]!).data as Float32Array), [0.5, -0.25, 0]);
    assert.deepEqual(readdirSync(dir), ["m.onnx"], "no temp file left behind");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("save refuses to write over the source file, and over any file without overwrite", async () => {
  const dir = tmp();
  try {
    const file = path.join(dir, "m.onnx");
    await smallMlp().save(file);
    const before = readFileSync(file);
    const loaded = await Model.load(file);
    loaded.graph.node.pop();
    await assert.rejects(loaded.save(file, { overwrite: true }), /m\.onnx: refusing to write over the file this model was loaded from/);
    await assert.rejects(smallMlp().save(file), /m\.onnx: the file exists: choose another output, or replace it/);
    assert.deepEqual(readFileSync(file), before, "the input is unchanged");
    await smallMlp(13).save(file, { overwrite: true });
    assert.equal((await Model.load(file)).opset(), 13);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("cloneSharingInitializers: every graph's initializers are the same TensorProto objects, in arrays of the clone's own; the rest is deep", () => {
  const m = withIf();
  const body = m.graph.node[0]!.attribute[0]!.g!;
  body.initializer.push(makeTensor("two", DataType.FLOAT, [2], [2, 2]));
  const before = m.toBytes();
  const c = m.cloneSharingInitializers();
  assert.deepEqual(c.toBytes(), before, "the same model");
  const cBody = c.graph.node[0]!.attribute[0]!.g!;
  assert.equal(c.graph.initializer[0], m.graph.initializer[0]);
  assert.equal(cBody.initializer[0], body.initializer[0]);
  // Adding, removing and replacing initializers, and changing nodes, in the clone leave the model as it was.
  c.graph.initializer.push(makeTensor("three", DataType.FLOAT, [1], [3]));
  cBody.initializer[0] = makeTensor("two", DataType.FLOAT, [2], [4, 4]);
  c.graph.initializer.length = 0;
  c.graph.node[0]!.name = "renamed";
  cBody.node[0]!.input[1] = "two";
  assert.deepEqual(m.toBytes(), before);
  assert.equal(body.initializer.length, 1);
});

test("clone is deep; opset and setOpset", () => {
  const m = smallMlp(17);
  const c = m.clone();
  c.graph.node.pop();
  c.setOpset(21);
  c.setOpset(1, "com.microsoft");
  assert.equal(m.graph.node.length, 5);
  assert.equal(m.opset(), 17);
  assert.equal(c.opset(), 21);
  assert.equal(c.opset("ai.onnx"), 21);
  assert.equal(c.opset("com.microsoft"), 1);
  assert.equal(m.opset("com.microsoft"), undefined);
});

test("external data: written aligned, read back, and saved self-contained elsewhere", async () => {
  const dir = tmp();
  const dir2 = tmp();
  try {
    const m = bigWeights(5000);
    const file = path.join(dir, "big.onnx");
    await m.save(file, { externalData: true });
    assert.equal(m.hasExternalData(), false, "saving does not change the in-memory model");
    const loaded = await Model.load(file);
    const big = loaded.graph.initializer.find((t) => t.name === "big")!;
    const small = loaded.graph.initializer.find((t) => t.name === "small")!;
    assert.ok(isExternal(big));
    assert.ok(!isExternal(small), "tensors under the threshold stay inline");
    assert.deepEqual(externalRef(big), { location: "big.onnx.data", offset: 0, length: 20000 });
    assert.deepEqual(readTensor(big, loaded.dir).data, readTensor(m.graph.initializer[0]!).data);
    assert.deepEqual(loaded.readTensor(big).data, readTensor(m.graph.initializer[0]!).data);
    assert.ok(readFileSync(file).byteLength < 1000);

    const other = path.join(dir2, "inline.onnx");
    await loaded.save(other);
    const inline = await Model.load(other);
    assert.equal(inline.hasExternalData(), false);
    assert.deepEqual(inline.toBytes(), m.toBytes());

    // Two external tensors: the second starts on a 4096-byte boundary.
    const two = bigWeights(3000);
    two.graph.initializer.push({ ...two.graph.initializer[0]!, name: "big2" } as typeof two.graph.initializer[0]);
    await two.save(path.join(dir2, "two.onnx"), { externalData: { location: "w.bin", threshold: 100 } });
    const t2 = await Model.load(path.join(dir2, "two.onnx"));
    assert.deepEqual(t2.graph.initializer.filter(isExternal).map((t) => externalRef(t).offset), [0, 12288]);
    await assert.rejects(t2.save(path.join(dir2, "again.onnx"), { externalData: { location: "w.bin" } }), /would overwrite "w.bin"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(dir2, { recursive: true, force: true });
  }
});

test("missing or truncated external data is an error naming the tensor and file", async () => {
  const dir = tmp();
  try {
    const file = path.join(dir, "big.onnx");
    await bigWeights(2000).save(file, { externalData: true });
    const data = readFileSync(file + ".data");
    writeFileSync(file + ".data", data.subarray(0, 100));
    await assert.rejects(Model.load(file), /big\.onnx: external data for tensor "big" runs past the end of "big\.onnx\.data" \(100 bytes\)/);
    rmSync(file + ".data");
    await assert.rejects(Model.load(file), /big\.onnx: external data file "big\.onnx\.data" for tensor "big" is missing/);
    // A model in memory with external references: reading needs the folder.
    const m = Model.fromBytes(readFileSync(file), { skipValidation: true });
    assert.throws(() => readTensor(m.graph.initializer[0]!), /keeps its data in external file "big\.onnx\.data", but the model was not loaded from a file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("external data locations may not leave the model's folder", () => {
  const m = bigWeights(10);
  const t = m.graph.initializer[0]!;
  t.dataLocation = 1;
  t.externalData = [{ $typeName: "onnx.StringStringEntryProto", key: "location", value: "../../etc/passwd" }];
  assert.throws(() => externalRef(t), /location "..\/..\/etc\/passwd" must be a relative path inside the model's folder/);
});

test("subgraphs survive a save/load round trip intact", async () => {
  const dir = tmp();
  try {
    const m = withIf();
    await m.save(path.join(dir, "if.onnx"));
    const back = await Model.load(path.join(dir, "if.onnx"));
    const ifNode = back.graph.node[0]!;
    assert.deepEqual(ifNode.attribute.map((a) => [a.name, a.g?.node[0]?.opType]), [["then_branch", "Add"], ["else_branch", "Sub"]]);
    assert.deepEqual(back.toBytes(), m.toBytes());
    assert.equal(existsSync(path.join(dir, "if.onnx")), true);
    assert.equal(back.graph.input[0]!.type?.value.case, "tensorType");
    assert.equal(DataType.BOOL, 9);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("subgraph initializers go to external data and come back (If branch weights)", async () => {
  const dir = tmp();
  try {
    const m = withIf();
    const branch = m.graph.node[0]!.attribute[0]!.g!;
    branch.initializer.push(makeTensor("branch_w", DataType.FLOAT, [600], Float32Array.from({ length: 600 }, (_, i) => i / 7)));
    const file = path.join(dir, "if-ext.onnx");
    await m.save(file, { externalData: { threshold: 1000 } });
    const back = await Model.load(file);
    const t = back.graph.node[0]!.attribute[0]!.g!.initializer[0]!;
    assert.ok(isExternal(t));
    assert.deepEqual(back.readTensor(t).data, readTensor(branch.initializer[0]!).data);
    const inline = path.join(dir, "if-inline.onnx");
    await back.save(inline);
    assert.deepEqual((await Model.load(inline)).toBytes(), m.toBytes());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
