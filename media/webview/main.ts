// Script of every PTQ webview: buttons with data-command post that command to the extension; a page with
// #ptq-data draws its figures with plotly, imported from the URL in body[data-plotly] only when there is one.
import type { PlotlyFigure } from "../../kernel/display-types";

declare function acquireVsCodeApi(): { postMessage(msg: unknown): void };
const vscode = acquireVsCodeApi();

document.addEventListener("click", (e) => {
  const button = (e.target as HTMLElement).closest<HTMLElement>("[data-command]");
  if (button) vscode.postMessage({ command: button.dataset.command, arg: button.dataset.arg });
});

interface PageData {
  figures?: Array<{ id: string; figure: PlotlyFigure; logToggle?: string }>;
}

async function drawFigures(): Promise<void> {
  const el = document.getElementById("ptq-data");
  const url = document.body.dataset.plotly;
  if (!el || !url) return;
  const data = JSON.parse(el.textContent ?? "{}") as PageData;
  if (!data.figures?.length) return;
  const Plotly = (await import(url)).default as typeof import("plotly.js-dist").default;
  const css = getComputedStyle(document.body);
  const fg = css.getPropertyValue("--vscode-foreground").trim() || "#888";
  for (const f of data.figures) {
    const div = document.getElementById(f.id);
    if (!div) continue;
    await Plotly.newPlot(div, f.figure.data, { ...f.figure.layout, font: { color: fg } }, f.figure.config);
    const toggle = f.logToggle ? document.getElementById(f.logToggle) as HTMLInputElement | null : null;
    toggle?.addEventListener("change", () => void Plotly.relayout(div, { "yaxis.type": toggle.checked ? "log" : "linear" }));
  }
  vscode.postMessage({ command: "rendered" });
}

drawFigures().catch((e: unknown) => {
  document.body.insertAdjacentHTML("beforeend", `<p class="warn">Charts could not be drawn.</p>`);
  vscode.postMessage({ command: "error", arg: String(e) });
});
