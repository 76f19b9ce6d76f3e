// Regression: the calibration ranges of the fixture models must not move when the calibrator is made faster or
// leaner. reference/ranges.json was recorded by reference/record.ts with the implementation as of commit f2db699
// (before the memory/time work of issue #4): every observed activation of cnn (mse, entropy, percentile, minmax,
// and mse at batch 1), mobilenet (mse) and vit (mse) on the first fixture calibration images.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { CASES, fixtures, npz, referenceRanges } from "./reference/cases";

const reference = JSON.parse(readFileSync(path.join(__dirname, "reference", "ranges.json"), "utf8")) as Record<
  string,
  Record<string, [number, number]>
>;

// float32 activations, float64 threshold math: the same computation must give the same doubles up to rounding.
const close = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b));

for (const c of CASES) {
  const missing = !(existsSync(path.join(fixtures, "models", `${c.model}.onnx`)) && existsSync(npz)) && "fixtures not generated";
  test(`calibration ranges unchanged: ${c.key} (${c.samples} samples, batch ${c.batch})`, { skip: missing }, async () => {
    const want = reference[c.key];
    assert.ok(want, `no reference for ${c.key}: run reference/record.ts`);
    const got = await referenceRanges(c);
    // Placement may observe fewer tensors than when recorded (ops read only by float ops stay float since 73d2daf:
    // vit 70 → 53); each one observed now must have been observed then, with the same range.
    assert.ok(got.size > 0);
    assert.deepEqual([...got.keys()].filter((t) => !(t in want)), [], "no tensor observed that the reference lacks");
    const moved: string[] = [];
    for (const [t, r] of got) {
      const [min, max] = want[t]!;
      if (!close(r.min, min) || !close(r.max, max)) moved.push(`${t}: [${r.min}, ${r.max}] vs [${min}, ${max}]`);
    }
    assert.deepEqual(moved, [], `ranges moved for ${c.key}`);
  });
}
