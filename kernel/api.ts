// What `import { … } from "ptq"` gives a notebook cell. Typings for it are generated from this file at build time
// (scripts/build-ptq-types.mjs → out/ptq). Adding an engine API to notebooks is one export line here.
export { display, richDisplay, Mime, toBundle } from "./display";
export type { DisplayHandle, ProgressHandle, TableData, TableRow, PlotlyFigure } from "./display";
export type { MimeBundle, ModelSummary, TensorQuantState } from "./protocol";
