// A threshold check's positives (bench/corpus/evaluate.ts): the elements above the threshold counted apart from the
// background, as the corpus table prints them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatTable } from "../../../bench/corpus";
import { formatPositives, thresholdPositives } from "../../../bench/corpus/evaluate";

test("thresholdPositives: FP32's positives the candidate keeps (recall) and the candidate's that FP32 has (precision), over every row", () => {
  // Row 1: FP32 above 0.1 at 1 and 3; the candidate at 3 and 4. Row 2: FP32 at 0; the candidate at 0 and 2.
  const ref = [Float64Array.of(0, 0.5, 0, 0.2, 0), Float64Array.of(0.9, 0, 0, 0, 0.1)];
  const cand = [Float64Array.of(0, 0.05, 0, 0.3, 0.4), Float64Array.of(0.8, 0, 0.2, 0, 0)];
  const p = thresholdPositives(ref, cand, 0.1);
  assert.deepEqual(p, { fp32: 3, candidate: 4, recall: 2 / 3, precision: 2 / 4 });
  // Background agreement would read 7 of 10 elements: the positives say the candidate lost one of three.
  assert.equal(formatPositives(p), "positives: recall 66.7 %, precision 50.0 % of FP32's 3");
  const none = thresholdPositives([Float64Array.of(0.5)], [Float64Array.of(0)], 0.1);
  assert.equal(formatPositives(none), "positives: recall 0.0 %, precision — of FP32's 1");
});

test("the corpus table prints a threshold check's positives in its task-metric column", () => {
  const table = formatTable([{ model: "m", mode: "static", works: "yes", seconds: 1, command: "", agreement: 0.9998, positives: { fp32: 252, candidate: 0, recall: 0, precision: NaN } }]);
  assert.match(table, /\| 100\.0 % \| positives: recall 0\.0 %, precision — of FP32's 252 \|/);
});
