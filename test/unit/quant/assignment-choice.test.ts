// calibration auto at the outputs: another assignment than mse is written only where it gains on the rows, not where
// a few rows make its pooled error lower.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { OutputEnergy, RowEnergies } from "../../../engine/calibrate/activation-precision";
import { chooseAssignment, gainText, OUTPUT_BOUND_DB } from "../../../engine/quant/assignment-choice";

/** One output "y" with signal 1 per row and the given noise per row. */
function energies(noise: readonly number[]): RowEnergies {
  const rows = noise.map((n) => new Map<string, OutputEnergy>([["y", { signal: 1, noise: n }]]));
  const pooled = new Map<string, OutputEnergy>([["y", { signal: noise.length, noise: noise.reduce((a, b) => a + b, 0) }]]);
  return { rows, pooled };
}

const mse = Array.from({ length: 16 }, (_, i) => 0.04 + 0.002 * (i % 3));

test("a lower pooled error carried by a few rows does not replace mse; a gain on every row does", () => {
  // Two rows where mse clips a peak carry its pooled error; "percentile" is 2 dB worse on the other 14.
  const peaky = mse.map((n, i) => (i < 2 ? n * 8 : n));
  const percentile = peaky.map((n, i) => (i < 2 ? n / 8 : n * 1.6));
  const c = chooseAssignment(new Map([["mse", energies(peaky)], ["percentile", energies(percentile)]]));
  const p = c.scores.find((s) => s.name === "percentile")!;
  assert.ok(p.error < c.scores[0]!.error * 0.9, `pooled, percentile is better: ${p.error} against ${c.scores[0]!.error}`);
  assert.ok(p.gain!.lower <= OUTPUT_BOUND_DB, `but not on the rows: ${gainText(p)}`);
  assert.equal(c.best, "mse");

  // 1 dB better on every row (with some spread): taken, and the least pooled error of those that qualify wins.
  const minmax = mse.map((n, i) => n / (1.26 + 0.01 * (i % 2)));
  const entropy = mse.map((n, i) => n / (1.12 + 0.01 * (i % 2)));
  const d = chooseAssignment(new Map([["mse", energies(mse)], ["entropy", energies(entropy)], ["minmax", energies(minmax)]]));
  assert.equal(d.best, "minmax");
  assert.match(gainText(d.scores.find((s) => s.name === "minmax")!), /^ \(per row \+1\.0\d dB, lower bound \+\d\.\d\d dB\)$/);
});

test("a gain within the tie stays mse, and one row cannot bound a gain", () => {
  const close = mse.map((n) => n * 0.99);
  assert.equal(chooseAssignment(new Map([["mse", energies(mse)], ["minmax", energies(close)]])).best, "mse");
  assert.equal(chooseAssignment(new Map([["mse", energies([0.04])], ["minmax", energies([0.001])]])).best, "mse");
  assert.throws(() => chooseAssignment(new Map([["minmax", energies(mse)]])), /no "mse" assignment/);
});
