// The slice of plotly.js the renderer and webviews call (plotly.js-dist ships no types).
declare module "plotly.js-dist" {
  const Plotly: {
    newPlot(el: HTMLElement, data: unknown[], layout?: Record<string, unknown>, config?: Record<string, unknown>): Promise<unknown>;
    purge(el: HTMLElement): void;
    relayout(el: HTMLElement, update: Record<string, unknown>): Promise<unknown>;
  };
  export default Plotly;
}
