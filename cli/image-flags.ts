// `ptq report` and `ptq bench` read --data as `ptq quantize` reads --calib: the same --image-* flags, taken from
// engine/quant/options' rows (one help text, one parser) and turned into the readers' image options.
import type { ImageNormalization } from "../engine/data/images";
import { dataKind } from "../engine/data/kind";
import { getKey, jobReaderOptions, OptionError, QUANT_OPTIONS, setKey, valueFromText, defaultText, type QuantizeJob } from "../engine/quant/options";
import { UsageError } from "./args";
import type { Flag } from "./flags";

const ROWS = QUANT_OPTIONS.filter((o) => o.key.startsWith("images."));

/** The --image-* flags, as the flags table of a command that reads --data. */
export const IMAGE_FLAGS: readonly Flag[] = ROWS.map((o) => {
  const d = defaultText(o);
  return { name: o.flag!.slice(2), arg: o.arg!, help: o.help.replace(/^images \(--calib [^)]*\)/, "images (--data a folder of .png/.jpg)"), ...(d && { default: d }) };
});

/** The --image-* values parsed (`values` as parseFlags returns them); `data` is --data, which they must describe. */
export function imageOptions(values: Readonly<Record<string, unknown>>, data: string | undefined): ImageNormalization | undefined {
  const job: QuantizeJob = {};
  try {
    for (const o of ROWS) {
      const text = values[o.flag!.slice(2)];
      if (typeof text === "string") setKey(job, o.key, valueFromText(o, text));
    }
  } catch (e) {
    if (e instanceof OptionError) throw new UsageError(e.message);
    throw e;
  }
  const given = ROWS.find((o) => getKey(job, o.key) !== undefined);
  if (!given) return undefined;
  if (data === undefined || dataKind(data) !== "images") throw new UsageError(`${given.flag} applies to --data with a folder of .png/.jpg images`);
  return jobReaderOptions(job).images;
}
