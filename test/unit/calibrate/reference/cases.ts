// The calibration runs whose ranges are pinned by ranges.json (recorded by record.ts, checked by ../ranges.test.ts).
import path from "node:path";
import type { Feeds } from "../../../../engine/calibrate/index";
import { readNpz } from "../../../../engine/data/readers";
import { Model } from "../../../../engine/onnx/model";
import { calibrate, prepare, release } from "../../../../engine/quant/index";
import type { CalibrationMethod } from "../../../../engine/quant/types";

export const fixtures = path.join(__dirname, "..", "..", "..", "fixtures");
export const npz = path.join(fixtures, "data", "calib", "calib.npz");

export interface Case {
  key: string;
  model: string;
  method: CalibrationMethod;
  samples: number;
  batch: number;
}

export const CASES: Case[] = [
  { key: "cnn/mse", model: "cnn", method: "mse", samples: 64, batch: 16 },
  { key: "cnn/entropy", model: "cnn", method: "entropy", samples: 64, batch: 16 },
  { key: "cnn/percentile", model: "cnn", method: "percentile", samples: 64, batch: 16 },
  { key: "cnn/minmax", model: "cnn", method: "minmax", samples: 64, batch: 16 },
  { key: "cnn/mse/batch1", model: "cnn", method: "mse", samples: 48, batch: 1 },
  { key: "mobilenet/mse", model: "mobilenet", method: "mse", samples: 64, batch: 16 },
  { key: "vit/mse", model: "vit", method: "mse", samples: 64, batch: 16 },
];

function* firstSamples(model: Model, samples: number, batch: number): Generator<Feeds> {
  let n = 0;
  for (const f of readNpz(npz, model, { batchSize: batch })) {
    if (n >= samples) return;
    yield f;
    n += Object.values(f)[0]!.dims[0]!;
  }
}

/** The ranges prepare() + calibrate() choose for every observed activation, as `ptq quantize` would. */
export async function referenceRanges(c: Case): Promise<Map<string, { min: number; max: number }>> {
  const model = await Model.load(path.join(fixtures, "models", `${c.model}.onnx`));
  const prepared = await prepare(model, { calibration: { method: c.method } });
  try {
    await calibrate(prepared, firstSamples(prepared.model, c.samples, c.batch));
    return prepared.ranges;
  } finally {
    await release(prepared);
  }
}
