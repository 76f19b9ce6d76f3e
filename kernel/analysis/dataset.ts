// Labelled data from a folder of .npy files, for the CLI and the demo: `<input name>.npy` per model input, or a
// single `x.npy` for a single-input model; labels in `y.npy` beside them or in a file given explicitly.

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseNpy } from "../data/npy";
import { ortTypeName } from "../data/feeds";
import type { Feeds, HostDType, HostTensor, ValueInfo } from "./feeds";
import type { LabelledData } from "./evaluate";

export function readNpyTensor(file: string): HostTensor {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  const a = parseNpy(bytes, file);
  return { type: ortTypeName(a.dtype) as HostDType, dims: a.dims, data: a.data as HostTensor["data"] };
}

/**
 * Loads inputs (and labels, when present) for the given model inputs. Errors name the folder and list what is
 * there, so a user can rename a file rather than guess.
 */
export function loadDataDir(dir: string, inputs: readonly ValueInfo[], labelsFile?: string): LabelledData {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--data ${dir}: not a folder; give a folder of .npy files (x.npy, y.npy or <input>.npy)`);
  const files = readdirSync(dir).filter((f) => f.endsWith(".npy"));
  const feeds: Feeds = {};
  for (const info of inputs) {
    const own = `${info.name}.npy`;
    const file = files.includes(own) ? own : inputs.length === 1 && files.includes("x.npy") ? "x.npy" : undefined;
    if (!file) {
      throw new Error(`--data ${dir}: no data for input "${info.name}": expected ${own}${inputs.length === 1 ? " or x.npy" : ""}; found ${files.join(", ") || "no .npy files"}`);
    }
    feeds[info.name] = readNpyTensor(path.join(dir, file));
  }
  const lf = labelsFile ?? (files.includes("y.npy") ? path.join(dir, "y.npy") : undefined);
  return lf ? { inputs: feeds, labels: readNpyTensor(lf) } : { inputs: feeds };
}
