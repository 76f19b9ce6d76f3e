// lowBitProgress (pure): lowBitModelCalibrated's three callbacks as one calibrate()-style onProgress, each stage
// under the name `ptq quantize` and the notebook show, with its unit, an ETA once a step is timed, and the signal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lowBitProgress } from "../../../engine/lowbit/index";
import type { PhaseProgress } from "../../../engine/calibrate/types";

test("lowBitProgress names each stage, counts its unit, gives an ETA once a step is timed, and stops on the signal", () => {
  const events: { done: number; total?: number; phase?: PhaseProgress }[] = [];
  const controller = new AbortController();
  const c = lowBitProgress({}, (done, total, phase) => void events.push({ done, total, phase }), controller.signal);
  c.onProgress!(3);
  c.onRankProgress!(1, 4);
  c.onRankProgress!(2, 4);
  c.onRoundingProgress!(0, 4);
  assert.deepEqual(events.map((e) => [e.phase?.phase, e.done, e.total, e.phase?.unit]), [
    ["GPTQ calibration", 3, undefined, "batches"],
    ["protection: measuring each layer alone", 1, 4, "layers"],
    ["protection: measuring each layer alone", 2, 4, "layers"],
    ["learned FP4 rounding (rounding auto: fitted on half the rows, judged on the others)", 0, 4, "steps"],
  ]);
  // The phase's clock starts at its first report: no ETA until a step after it has taken time.
  assert.equal(events[1]!.phase!.etaSeconds, undefined);
  assert.ok(events[2]!.phase!.etaSeconds! >= 0);
  assert.equal(c.signal, controller.signal);
  controller.abort(new Error("stopped"));
  assert.throws(() => c.onRankProgress!(3, 4), /stopped/);
  // Learned rounding asked outright is named so; int4's is GPTQ.
  const named: string[] = [];
  lowBitProgress({ rounding: "learned" }, (_d, _t, p) => void named.push(p!.phase)).onRoundingProgress!(0, 1);
  lowBitProgress({ mode: "int4", rounding: "auto" }, (_d, _t, p) => void named.push(p!.phase)).onRoundingProgress!(0, 3);
  assert.deepEqual(named, ["learned FP4 rounding", "GPTQ int4 rounding (rounding auto: fitted on half the rows, judged on the others)"]);
});
