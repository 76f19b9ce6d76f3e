// The low-bit pass's output measurement in words: pure (no onnxruntime), so the extension host's report page says
// it as the CLI does.
import { onCompared } from "../onnx/graph";
import type { OutputReport } from "./protect";

/** The measured outputs and what protection did, in a line (the CLI's summary, the report page's notes). */
export function describeOutput(o: OutputReport): string {
  const head = `outputs vs float on ${o.batches} calibration batch(es)${onCompared(o)}: worst output SQNR ${o.sqnrDb.toFixed(1)} dB`;
  if (o.targetDb === undefined) return `${head} (protection off)`;
  const raised = o.askedMaxSize !== undefined ? ` (every layer low-bit makes a file above the cap ${o.askedMaxSize}×: the cap is that file's size)` : "";
  const size = `${o.size!.toFixed(2)}× the float model's size${raised}`;
  const stepped = o.protected.length ? `${o.protected.length} layer(s) stepped up (all low-bit: ${o.allLowBitDb.toFixed(1)} dB), ` : "";
  if (!o.capped) return o.protected.length ? `${head}, target ${o.targetDb} dB: ${stepped}${size}` : `${head}, target ${o.targetDb} dB: met with every layer low-bit`;
  return `${head}, target ${o.targetDb} dB not met within the size cap: ${stepped}${size}, cap ${+o.maxSize!.toFixed(3)}× (--protect-max-size raises it; --protect lowers the target)`;
}
