// Renderer styles, built from VS Code's theme variables so tables follow light, dark and high-contrast themes.
export const RENDERER_CSS = `
.ptq-table { border-collapse: collapse; font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); color: var(--vscode-foreground); }
.ptq-table caption { text-align: left; font-weight: 600; padding: 4px 0; }
.ptq-table th, .ptq-table td { padding: 3px 10px; border-bottom: 1px solid var(--vscode-panel-border, #8884); text-align: right; }
.ptq-table th:first-child, .ptq-table td:first-child { text-align: left; }
.ptq-table th { cursor: pointer; user-select: none; }
.ptq-table th[aria-sort=ascending]::after { content: " ▲"; }
.ptq-table th[aria-sort=descending]::after { content: " ▼"; }
.ptq-good { color: var(--vscode-charts-green, #388a34); font-weight: 600; }
.ptq-bad { color: var(--vscode-errorForeground, #f14c4c); font-weight: 600; }
.ptq-noisy { color: var(--vscode-descriptionForeground, #999); font-style: italic; }
.ptq-base { color: var(--vscode-descriptionForeground, #999); }
.ptq-notes { color: var(--vscode-descriptionForeground); font-size: 90%; }
.ptq-error { color: var(--vscode-errorForeground); }
.ptq-plot { min-height: 320px; }
`;
