// Page skeleton shared by every PTQ webview (ONNX editor, histogram panel, quantization report): a strict CSP that
// allows only our nonce'd script and the webview's own resources, theme-coloured styles, and JSON data embedded so
// it cannot close its <script> element. Pure (no vscode import) so the escaping is unit-tested.
import { escapeHtml } from "../../media/renderer/render";

export { escapeHtml };

export interface PageParts {
  title: string;
  /** webview.cspSource */
  cspSource: string;
  nonce: string;
  /** asWebviewUri(out/media/webview.js) */
  scriptUri: string;
  /** asWebviewUri(out/media/plotly.js), when the page draws charts. */
  plotlyUri?: string;
  /** Trusted HTML built with escapeHtml for every model-derived string. */
  body: string;
  /** Data for the page script (figures); serialized safely into a JSON script element. */
  data?: unknown;
}

export function makeNonce(random: () => number = Math.random): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length: 32 }, () => chars[Math.floor(random() * chars.length)]).join("");
}

/** JSON that is safe inside <script type="application/json">: `<` never appears raw, so `</script>` cannot. */
export function jsonForScript(data: unknown): string {
  return JSON.stringify(data).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

export function page(p: PageParts): string {
  const csp = [
    "default-src 'none'",
    `img-src ${p.cspSource} data:`,
    `style-src ${p.cspSource} 'unsafe-inline'`,
    `script-src 'nonce-${p.nonce}' ${p.cspSource}`,
    `font-src ${p.cspSource}`,
  ].join("; ");
  const data = p.data === undefined ? "" : `<script type="application/json" id="ptq-data">${jsonForScript(p.data)}</script>`;
  const plotly = p.plotlyUri ? ` data-plotly="${escapeHtml(p.plotlyUri)}"` : "";
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(p.title)}</title>
<style>${PAGE_CSS}</style>
</head><body${plotly}>
${p.body}
${data}
<script type="module" nonce="${p.nonce}" src="${escapeHtml(p.scriptUri)}"></script>
</body></html>`;
}

const PAGE_CSS = `
body { color: var(--vscode-foreground); font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); padding: 0 16px 16px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.4em; }
table { border-collapse: collapse; } th, td { padding: 2px 10px; text-align: left; border-bottom: 1px solid var(--vscode-panel-border, #8884); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: var(--vscode-editor-font-family); }
button { background: var(--vscode-button-background); color: var(--vscode-button-foreground); border: none; padding: 5px 12px; margin: 0 6px 6px 0; cursor: pointer; }
button:hover { background: var(--vscode-button-hoverBackground); }
button.secondary { background: var(--vscode-button-secondaryBackground); color: var(--vscode-button-secondaryForeground); }
.muted { color: var(--vscode-descriptionForeground); }
.warn { color: var(--vscode-editorWarning-foreground); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 8px 24px; }
.ptq-plot { min-height: 340px; }
`;
