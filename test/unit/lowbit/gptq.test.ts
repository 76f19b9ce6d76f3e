// GPTQ: the linear algebra against hand values, the error feedback against round-to-nearest on a layer whose inputs
// are correlated (where GPTQ's advantage comes from), and the calibrated model run in onnxruntime-node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType, Model, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, tensorToFloat32 } from "../../../engine/onnx";
import { createSession } from "../../../engine/runtime/session";
import { HessianAccumulator, cholesky, gptqQuantize, gptqQuantizeWindows, gptqRound, hessianRows, invertSpd, kWindows, lowRankFactor, outputSqnrDb, outputSqnrDbGroups, upperCholeskyOfInverse } from "../../../engine/lowbit/gptq";
import { dequantizeBlockwise, quantizeBlockwise } from "../../../engine/lowbit/intblock";
import { collectHessians, lowBitModel, lowBitModelCalibrated } from "../../../engine/lowbit/index";

function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};

test("Cholesky, SPD inverse and the upper Cholesky of the inverse match hand-computed values", () => {
  // The textbook example: A = L·Lᵀ with L = [[2,0,0],[6,1,0],[-8,5,3]].
  const a = Float64Array.from([4, 12, -16, 12, 37, -43, -16, -43, 98]);
  close(cholesky(a, 3)!, [2, 0, 0, 6, 1, 0, -8, 5, 3], 1e-12, "L");
  // A⁻¹ = (1/36)·[[1777, -488, 76], [-488, 136, -20], [76, -20, 4]] (adjugate over det 36).
  const inv = invertSpd(a, 3)!;
  close(inv, [1777, -488, 76, -488, 136, -20, 76, -20, 4].map((x) => x / 36), 1e-9, "A⁻¹");
  const u = upperCholeskyOfInverse(a, 3)!;
  for (const [i, j] of [[1, 0], [2, 0], [2, 1]]) assert.equal(u[i! * 3 + j!], 0, "U is upper triangular");
  const utu = Array.from({ length: 9 }, (_, x) => {
    const [i, j] = [Math.floor(x / 3), x % 3];
    let s = 0;
    for (let p = 0; p < 3; p++) s += u[p * 3 + i]! * u[p * 3 + j]!;
    return s;
  });
  close(utu, inv, 1e-9, "UᵀU");
  // 2×2 by hand: [[4,2],[2,3]]⁻¹ = (1/8)[[3,-2],[-2,4]] = UᵀU with U = [[√(3/8), −(1/4)/√(3/8)], [0, √(1/2 − 1/6)]].
  const u2 = upperCholeskyOfInverse(Float64Array.from([4, 2, 2, 3]), 2)!;
  close(u2, [Math.sqrt(3 / 8), -0.25 / Math.sqrt(3 / 8), 0, Math.sqrt(1 / 3)], 1e-12, "U (2×2)");
  assert.equal(cholesky(Float64Array.from([1, 2, 2, 1]), 2), undefined, "indefinite: no factor");
});

test("Cholesky and the inverse in panels of 8 give the one-column forms' bits, past several panels and a short last one", () => {
  const n = 37;
  const next = rng(5);
  const x = Array.from({ length: n + 3 }, () => Float64Array.from({ length: n }, () => next()));
  const a = new Float64Array(n * n);
  for (const r of x) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] += r[i]! * r[j]!;
  for (let i = 0; i < n; i++) a[i * n + i] += 0.01;
  // The textbook one-column forms, each entry's products subtracted in column order.
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let p = 0; p < j; p++) d -= l[j * n + p]! * l[j * n + p]!;
    l[j * n + j] = Math.sqrt(d);
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j]!;
      for (let p = 0; p < j; p++) t -= l[i * n + p]! * l[j * n + p]!;
      l[i * n + j] = t / l[j * n + j]!;
    }
  }
  assert.deepEqual([...cholesky(a, n)!], [...l]);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < i; p++) for (let j = 0; j <= p; j++) inv[i * n + j] -= l[i * n + p]! * inv[p * n + j]!;
    inv[i * n + i] = 1;
    for (let j = 0; j <= i; j++) inv[i * n + j] /= l[i * n + i]!;
  }
  // invertSpd = L⁻ᵀ·L⁻¹ from the panel forms; the reference's product the same way.
  const want = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let p = Math.max(i, j); p < n; p++) want[i * n + j] += inv[p * n + i]! * inv[p * n + j]!;
  close(invertSpd(a, n)!, want, 1e-9, "A⁻¹");
  const aInv = invertSpd(a, n)!;
  for (let i = 0; i < n; i++) {
    let e = 0;
    for (let p = 0; p < n; p++) e += a[i * n + p]! * aInv[p * n + i]!;
    assert.ok(Math.abs(e - 1) < 1e-8, `(A·A⁻¹)[${i},${i}] = ${e}`);
  }
});

test("HessianAccumulator sums its rows in panels of 8 to the bits of one row at a time, zeros and a short last panel included", () => {
  const [k, r] = [300, 21];
  const next = rng(9);
  const rows = Array.from({ length: r }, (_, q) => Float64Array.from({ length: k }, (_, i) => (i % 7 === q % 7 ? 0 : next())));
  const acc = new HessianAccumulator(k);
  const h = new Float64Array(k * k);
  for (const x of rows) {
    acc.addRow(x);
    for (let i = 0; i < k; i++) {
      if (x[i] === 0) continue;
      for (let j = i; j < k; j++) h[i * k + j] += x[i]! * x[j]!;
    }
  }
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) h[j * k + i] = h[i * k + j]!;
  assert.deepEqual([...acc.matrix()], [...h]);
  assert.equal(acc.rows, r);
});

test("a Hessian of few rows: its damped inverse's factor by rank-one downdates is the dense one, and GPTQ rounds alike with it", () => {
  const [k, r, n] = [40, 5, 6];
  const next = rng(11);
  // Rows with a dead input (column 7 always 0) and correlated columns, as a layer's activations have.
  const rows = Array.from({ length: r }, () => Float64Array.from({ length: k }, (_, i) => (i === 7 ? 0 : next() + (i % 3 === 0 ? 0.5 : 0))));
  const acc = new HessianAccumulator(k);
  for (const x of rows) acc.addRow(x);
  const h = acc.matrix();
  const d = Float64Array.from({ length: k }, (_, i) => (i === 7 ? 1 : 0) + 0.01 * (1 + (i % 5)));
  const damped = Float64Array.from(h);
  for (let i = 0; i < k; i++) damped[i * k + i] += d[i]!;
  close(lowRankFactor(rows, d)!, upperCholeskyOfInverse(damped, k)!, 1e-9, "U");
  // gptqRound with the rows known (hessianRows: the low-rank path) and without (dense): the same rounding.
  const w = Float64Array.from({ length: k * n }, () => next());
  const grid = (x: number) => Math.round(x * 4) / 4;
  const plain = gptqRound(w, k, n, Float64Array.from(h), grid);
  hessianRows.set(h, rows);
  const low = gptqRound(w, k, n, h, grid);
  assert.equal(low.damping, plain.damping);
  assert.deepEqual([...low.values], [...plain.values]);
  assert.ok(plain.values.some((v, i) => v !== grid(w[i]!)), "error feedback moved some weights off their nearest value");
  // The output SQNR from the rows (Σ (x·v)²) is the one from the matrix (vᵀHv).
  const nearest = Float64Array.from(w, grid);
  const dense = outputSqnrDbGroups(w, nearest, [Float64Array.from(h)], k, n);
  assert.ok(Math.abs(outputSqnrDbGroups(w, nearest, [h], k, n) - dense) < 1e-9, `${dense} dB`);
});

test("HessianAccumulator sums xᵀx over rows", () => {
  const x = [1, 2, 3, -1, 0, 2]; // two rows of K = 3
  const acc = new HessianAccumulator(3);
  acc.add(Float32Array.from(x.slice(0, 3)));
  acc.add(Float32Array.from(x.slice(3)));
  assert.equal(acc.rows, 2);
  close(acc.matrix(), [2, 2, 1, 2, 4, 6, 1, 6, 13], 0, "H");
  // matrix() hands its sums over (no copy): the accumulator is spent.
  assert.throws(() => acc.add(Float32Array.from([1, 2, 3])), /rows added after matrix\(\) handed the sums over/);
  assert.throws(() => acc.matrix(), /already taken/);
  const fresh = new HessianAccumulator(3);
  assert.throws(() => fresh.add(Float32Array.from([1, 2])), /not rows of K = 3/);
  assert.throws(() => fresh.add(Float32Array.from([1, NaN, 2]), "activation \"h\""), /activation "h": a non-finite value/);
});

/** Correlated inputs: x = z·M + small noise with z of rank 8, so H is far from diagonal. */
function correlatedInputs(rows: number, k: number, seed: number): Float32Array {
  const r = rng(seed);
  const rank = 8;
  const m = Float64Array.from({ length: rank * k }, () => r());
  const x = new Float32Array(rows * k);
  for (let i = 0; i < rows; i++) {
    const z = Array.from({ length: rank }, () => r());
    for (let j = 0; j < k; j++) {
      let s = 0.05 * r();
      for (let p = 0; p < rank; p++) s += z[p]! * m[p * k + j]!;
      x[i * k + j] = s;
    }
  }
  return x;
}

function outputError(x: Float32Array, rows: number, k: number, n: number, w: ArrayLike<number>, wq: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < n; c++) {
      let d = 0;
      for (let j = 0; j < k; j++) d += x[i * k + j]! * (w[j * n + c]! - wq[j * n + c]!);
      e += d * d;
    }
  }
  return Math.sqrt(e);
}

test("GPTQ's output error ‖XW − XŴ‖ is well below round-to-nearest's on correlated inputs (4 bits, blocks of 16)", () => {
  const [rows, k, n] = [512, 64, 24];
  const x = correlatedInputs(rows, k, 7);
  const r = rng(3);
  const w = Float32Array.from({ length: k * n }, () => r() * 0.3);
  const acc = new HessianAccumulator(k);
  acc.add(x);
  const h = acc.matrix();
  const opts = { bits: 4, blockSize: 16, symmetric: true };
  const rtn = dequantizeBlockwise(quantizeBlockwise(w, k, n, { ...opts, algorithm: "rtn" }));
  const rtnErr = outputError(x, rows, k, n, w, rtn);
  for (const actOrder of [false, true]) {
    const g = gptqQuantize(w, k, n, h, { ...opts, actOrder });
    const wq = dequantizeBlockwise(g.quantized);
    const err = outputError(x, rows, k, n, w, wq);
    assert.ok(err < 0.7 * rtnErr, `actOrder=${actOrder}: GPTQ ${err.toFixed(4)} vs RTN ${rtnErr.toFixed(4)}`);
    assert.equal(g.damping, 0.01);
    // outputSqnrDb is the same ratio computed from H alone.
    let sig = 0;
    for (let i = 0; i < rows; i++) for (let c = 0; c < n; c++) {
      let d = 0;
      for (let j = 0; j < k; j++) d += x[i * k + j]! * w[j * n + c]!;
      sig += d * d;
    }
    const direct = 10 * Math.log10(sig / err ** 2);
    assert.ok(Math.abs(outputSqnrDb(w, wq, h, k, n) - direct) < 1e-6, `${outputSqnrDb(w, wq, h, k, n)} vs ${direct}`);
    // Codes stay in range and the layout is the RTN one: same shapes, per-block scales.
    assert.equal(g.quantized.scales.length, (k / 16) * n);
    assert.ok(g.quantized.codes.every((c) => c <= 15));
  }
});

test("GPTQ on Hessian windows: each window on its own gives one pass's codes on the block-diagonal matrix, and its output SQNR", () => {
  const [rows, k, n, m] = [256, 64, 8, 32];
  const acc = new HessianAccumulator(m);
  acc.add(correlatedInputs(rows, m, 11));
  const a = acc.matrix();
  // The whole matrix: the window's matrix twice on the diagonal, nothing between the windows.
  const whole = new Float64Array(k * k);
  for (const s of [0, m]) for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) whole[(s + i) * k + s + j] = a[i * m + j]!;
  const r = rng(5);
  const w = Float32Array.from({ length: k * n }, () => r() * 0.3);
  const opts = { bits: 4, blockSize: 16, symmetric: false };
  assert.deepEqual(kWindows(k, m), [m, m]);
  assert.deepEqual(kWindows(70, 32), [32, 32, 6]);
  const one = gptqQuantize(w, k, n, whole, opts);
  const windows = gptqQuantizeWindows(w, k, n, [a, a], opts);
  assert.deepEqual(windows.quantized.codes, one.quantized.codes);
  assert.deepEqual(windows.quantized.scales, one.quantized.scales);
  assert.deepEqual(windows.quantized.zeroPoints, one.quantized.zeroPoints);
  const wq = dequantizeBlockwise(windows.quantized);
  const db = outputSqnrDbGroups(w, wq, [[a, a]], k, n);
  assert.ok(Math.abs(db - outputSqnrDb(w, wq, whole, k, n)) < 1e-9, `${db} vs ${outputSqnrDb(w, wq, whole, k, n)}`);
  assert.throws(() => gptqQuantizeWindows(w, k, n, [a.subarray(0, 24 * 24), a, a.subarray(0, 8 * 8)], opts), /starts at row 24, inside a block of 16/);
  assert.throws(() => outputSqnrDbGroups(w, wq, [[a]], k, n), /cover 32 of K = 64 rows/);
});

test("GPTQ keeps inputs that never fired at round-to-nearest and survives a singular Hessian", () => {
  const [k, n] = [32, 8];
  const r = rng(5);
  const w = Float32Array.from({ length: k * n }, () => r());
  const acc = new HessianAccumulator(k);
  // Only the first 4 inputs ever carry data, and they are identical: H has rank 1.
  for (let i = 0; i < 50; i++) {
    const v = r();
    acc.add(Float32Array.from({ length: k }, (_, j) => (j < 4 ? v : 0)));
  }
  const g = gptqQuantize(w, k, n, acc.matrix(), { bits: 4, blockSize: 16, symmetric: false });
  const rtn = quantizeBlockwise(w, k, n, { bits: 4, blockSize: 16, symmetric: false, algorithm: "rtn" });
  // Rows 4.. receive no error (H⁻¹ couples nothing to them) and their block's params come from unchanged weights.
  assert.deepEqual(g.quantized.codes.slice(16 * n), rtn.codes.slice(16 * n));
  assert.throws(() => gptqQuantize(w, k, n, new Float64Array(4), { bits: 4, blockSize: 16, symmetric: true }), /not 32×32/);
});

/** x[B,64] → MatMul(W[64,24]) → y. */
function matmulModel(w: Float32Array): Model {
  const g = makeGraph(
    "gptq_test",
    [makeNode("MatMul", ["x", "W"], ["y"], { name: "fc" })],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 64])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 24])],
    { initializers: [makeTensor("W", DataType.FLOAT, [64, 24], w)] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
}

async function runY(model: Model, x: Float32Array): Promise<Float32Array> {
  const s = await createSession(model.toBytes(), { optimization: "basic", threads: 1 });
  try {
    return (await s.run({ x: { data: x, dims: [x.length / 64, 64] } })).y.data as Float32Array;
  } finally {
    await s.dispose();
  }
}

test("a GPTQ model calibrated on feeds runs in onnxruntime-node, beats RTN on held-out inputs, reports both", async () => {
  const r = rng(9);
  const w = Float32Array.from({ length: 64 * 24 }, () => r() * 0.3);
  const fp32 = matmulModel(w);
  const calib = Array.from({ length: 4 }, (_, b) => ({ x: { data: correlatedInputs(64, 64, 100 + b), dims: [64, 64] } }));
  assert.throws(() => lowBitModel(fp32, { mode: "int4", algorithm: "gptq" }), /GPTQ needs calibration data/);
  const heldout = correlatedInputs(128, 64, 100); // the same mixing seed family, fresh samples below
  const x = heldout.map((v, i) => v * (1 + 0.1 * Math.sin(i)));
  const want = await runY(fp32, x);
  const err = (y: Float32Array) => Math.sqrt(y.reduce((s, v, i) => s + (v - want[i]!) ** 2, 0));
  const rtn = lowBitModel(fp32, { mode: "int4", blockSize: 16, algorithm: "rtn" });
  for (const format of ["matmulnbits", "qdq"] as const) {
    const { model, report } = await lowBitModelCalibrated(fp32, { mode: "int4", blockSize: 16, algorithm: "gptq", format }, calib);
    assert.equal(report.layers.length, 1);
    const layer = report.layers[0]!;
    assert.ok(layer.outputSqnrDb! > layer.rtnOutputSqnrDb! + 2, `output SQNR ${layer.outputSqnrDb} vs RTN ${layer.rtnOutputSqnrDb}`);
    assert.ok(layer.rtnSqnrDb !== undefined && Number.isFinite(layer.sqnrDb));
    assert.ok(report.notes.some((n) => /256 batches, 256 activation rows/.test(n)), report.notes.join("; ")); // 4 batches of 64, read a row at a time
    assert.equal(model.graph.node.filter((nd) => nd.opType === (format === "qdq" ? "DequantizeLinear" : "MatMulNBits")).length, 1);
    const got = await runY(model, x);
    assert.ok(err(got) < 0.8 * err(await runY(rtn.model, x)), `${format}: GPTQ ${err(got)} vs RTN ${err(await runY(rtn.model, x))}`);
  }
  assert.deepEqual(tensorToFloat32(fp32.graph.initializer[0]!), w, "the input model is untouched");
});

test("MatMul GPTQ on Hessian windows: the collected windows are the whole matrix's diagonal blocks; per-window GPTQ still beats RTN", async () => {
  const r = rng(9);
  const w = Float32Array.from({ length: 64 * 24 }, () => r() * 0.3);
  const fp32 = matmulModel(w);
  const calib = Array.from({ length: 4 }, (_, b) => ({ x: { data: correlatedInputs(64, 64, 100 + b), dims: [64, 64] } }));
  const whole = await collectHessians(fp32, [{ tensor: "x", k: 64 }], calib);
  const windowed = await collectHessians(fp32, [{ tensor: "x", k: 64, window: 24 }], calib);
  const [h, parts] = [whole.matrices.get("x") as Float64Array, windowed.matrices.get("x") as Float64Array[]];
  assert.deepEqual(parts.map((m) => m.length), [24 * 24, 24 * 24, 16 * 16]);
  parts.forEach((m, i) => {
    const size = Math.sqrt(m.length);
    for (let a = 0; a < size; a++) for (let b = 0; b < size; b++) assert.equal(m[a * size + b], h[(24 * i + a) * 64 + 24 * i + b], `window ${i} [${a}, ${b}]`);
  });
  assert.equal(windowed.rows.get("x"), 256);
  await assert.rejects(collectHessians(fp32, [{ tensor: "x", k: 64 }, { tensor: "x", k: 64, window: 24 }], calib), /windows of K and 24 rows/);

  const opts = { mode: "int4", blockSize: 16, algorithm: "gptq" } as const;
  const one = await lowBitModelCalibrated(fp32, { ...opts, protect: false }, calib);
  const split = await lowBitModelCalibrated(fp32, { ...opts, protect: false, gptq: { window: 40 } }, calib); // 40 → 32: whole blocks
  const layer = split.report.layers[0]!;
  assert.ok(layer.outputSqnrDb! > layer.rtnOutputSqnrDb! + 2, `windows: output SQNR ${layer.outputSqnrDb} vs RTN ${layer.rtnOutputSqnrDb}`);
  assert.notDeepEqual(split.model.toBytes(), one.model.toBytes(), "error feedback stops at the windows");
  const x = correlatedInputs(128, 64, 100).map((v, i) => v * (1 + 0.1 * Math.sin(i)));
  const want = await runY(fp32, x);
  const err = (y: Float32Array) => Math.sqrt(y.reduce((t, v, i) => t + (v - want[i]!) ** 2, 0));
  const rtn = lowBitModel(fp32, { mode: "int4", blockSize: 16, algorithm: "rtn" });
  const [e0, e1] = [err(await runY(rtn.model, x)), err(await runY(split.model, x))];
  assert.ok(e1 < 0.8 * e0, `held out: RTN ${e0}, GPTQ in windows ${e1}`);
});

test("GPTQ calibration refuses bad data with the input or tensor named", async () => {
  const fp32 = matmulModel(new Float32Array(64 * 24).fill(0.1));
  const opts = { mode: "int4" as const, algorithm: "gptq" as const };
  await assert.rejects(lowBitModelCalibrated(fp32, opts, []), /calibration data is empty/);
  await assert.rejects(lowBitModelCalibrated(fp32, opts, [{ y: { data: new Float32Array(64), dims: [1, 64] } }]), /"x"/);
  const nan = Float32Array.from({ length: 64 }, (_, i) => (i === 5 ? NaN : 1));
  await assert.rejects(lowBitModelCalibrated(fp32, opts, [{ x: { data: nan, dims: [1, 64] } }]), /activation "x" \(batch 1\): a non-finite value/);
});
