// Plotly as its own ESM bundle (out/media/plotly.js, ~4 MB), fetched by the renderer only when an output needs a
// chart: tables render without paying for it.
import Plotly from "plotly.js-dist";
export default Plotly;
