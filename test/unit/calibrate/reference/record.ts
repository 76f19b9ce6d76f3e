// Records the calibration ranges that the regression test (../ranges.test.ts) compares against: every observed
// activation of the fixture cnn, mobilenet and vit, through prepare() + calibrate() as `ptq quantize` runs them, on
// the first 64 fixture calibration images in batches of 16 (several batches, so the histograms widen and merge).
// Run only to record a NEW reference on purpose (it overwrites ranges.json):
//   node --import tsx test/unit/calibrate/reference/record.ts
import { writeFileSync } from "node:fs";
import path from "node:path";
import { referenceRanges, CASES } from "./cases";

async function main(): Promise<void> {
  const out: Record<string, Record<string, [number, number]>> = {};
  for (const c of CASES) {
    const ranges = await referenceRanges(c);
    out[c.key] = Object.fromEntries([...ranges].map(([t, r]) => [t, [r.min, r.max]]));
    process.stderr.write(`${c.key}: ${ranges.size} tensors\n`);
  }
  writeFileSync(path.join(__dirname, "ranges.json"), JSON.stringify(out, null, 1) + "\n");
}
void main();
