// Notebook renderer entry: the only part that touches the DOM. One handle per output id, freed in
// disposeOutputItem; plotly is imported lazily from out/media/plotly.js the first time a chart is drawn.
import { MIME, type AccuracyDisplay, type BenchmarkDisplay, type HistogramDisplay, type PlotlyFigure, type SqnrDisplay, type TableDisplay } from "../../kernel/display-types";
import { accuracyTable, benchmarkTable, escapeHtml, genericTable, histogramFigure, sortRows, sqnrFigure, tableHtml, tbodyHtml, type TableModel, type ThemeColors } from "./render";
import { RENDERER_CSS } from "./style";

/** The parts of VS Code's renderer API (vscode-notebook-renderer) this entry uses. */
interface OutputItem {
  readonly id: string;
  readonly mime: string;
  json(): unknown;
}
interface RendererApi {
  renderOutputItem(item: OutputItem, element: HTMLElement, signal?: AbortSignal): void | Promise<void>;
  disposeOutputItem(id?: string): void;
}

type PlotlyModule = typeof import("plotly.js-dist").default;
let plotly: Promise<PlotlyModule> | undefined;
function loadPlotly(): Promise<PlotlyModule> {
  plotly ??= import(/* lazy */ new URL("./plotly.js", import.meta.url).href).then((m: { default: PlotlyModule }) => m.default);
  return plotly;
}

function themeColors(): ThemeColors {
  const css = getComputedStyle(document.body);
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  return {
    foreground: v("--vscode-editor-foreground", v("--vscode-foreground", "#888")),
    accent: v("--vscode-charts-blue", "#3794ff"),
    warn: v("--vscode-charts-orange", "#d18616"),
    muted: v("--vscode-descriptionForeground", "#999"),
  };
}

function ensureStyle(): void {
  if (document.getElementById("ptq-renderer-style")) return;
  const style = document.createElement("style");
  style.id = "ptq-renderer-style";
  style.textContent = RENDERER_CSS;
  document.head.appendChild(style);
}

function renderTable(t: TableModel, element: HTMLElement): void {
  element.innerHTML = tableHtml(t);
  const tbody = element.querySelector("tbody")!;
  let sorted: { col: number; desc: boolean } | undefined;
  element.querySelectorAll<HTMLElement>("th[data-col]").forEach((th) => {
    const sort = () => {
      const col = Number(th.dataset.col);
      const desc = sorted?.col === col ? !sorted.desc : false;
      sorted = { col, desc };
      tbody.innerHTML = tbodyHtml(sortRows(t.rows, col, desc));
      element.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", desc ? "descending" : "ascending");
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && sort());
  });
}

async function renderFigure(fig: PlotlyFigure, element: HTMLElement, handles: Map<string, () => void>, id: string, extra?: (div: HTMLElement, P: PlotlyModule) => void): Promise<void> {
  const div = document.createElement("div");
  div.className = "ptq-plot";
  element.appendChild(div);
  const P = await loadPlotly();
  await P.newPlot(div, fig.data, fig.layout, fig.config);
  extra?.(div, P);
  handles.set(id, () => P.purge(div));
}

export function activate(): RendererApi {
  const handles = new Map<string, () => void>();
  const dispose = (id: string) => {
    handles.get(id)?.();
    handles.delete(id);
  };
  return {
    async renderOutputItem(item, element) {
      ensureStyle();
      dispose(item.id);
      element.innerHTML = "";
      try {
        const json = item.json();
        switch (item.mime) {
          case MIME.benchmark: return renderTable(benchmarkTable(json as BenchmarkDisplay), element);
          case MIME.accuracy: return renderTable(accuracyTable(json as AccuracyDisplay), element);
          case MIME.table: return renderTable(genericTable(json as TableDisplay), element);
          case MIME.sqnr: return await renderFigure(sqnrFigure(json as SqnrDisplay, themeColors()), element, handles, item.id);
          case MIME.plotly: return await renderFigure(json as PlotlyFigure, element, handles, item.id);
          case MIME.histogram: {
            const d = json as HistogramDisplay;
            const label = document.createElement("label");
            label.innerHTML = `<input type="checkbox" ${d.logScale ? "checked" : ""}> log scale`;
            element.appendChild(label);
            return await renderFigure(histogramFigure(d, themeColors()), element, handles, item.id, (div, P) => {
              label.querySelector("input")!.addEventListener("change", (e) => {
                void P.relayout(div, { "yaxis.type": (e.target as HTMLInputElement).checked ? "log" : "linear" });
              });
            });
          }
          default:
            element.innerHTML = `<pre class="ptq-error">PTQ renderer: unknown MIME type ${escapeHtml(item.mime)}</pre>`;
        }
      } catch (e) {
        element.innerHTML = `<pre class="ptq-error">PTQ renderer could not draw this output: ${escapeHtml(e instanceof Error ? e.message : String(e))}</pre>`;
      }
    },
    disposeOutputItem(id) {
      if (id === undefined) [...handles.keys()].forEach(dispose);
      else dispose(id);
    },
  };
}
