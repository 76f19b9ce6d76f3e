// The extension's own commands as a table of factories (rust-analyzer's pattern): each entry turns the context into a
// handler, so handlers never reach for globals. Feature areas (notebook, views, editor) register their commands in
// their own folders; this table holds only the extension-wide ones. Each id here is also in package.json
// `contributes.commands` (VS Code activates on it), which test/vscode/suite/manifest.test.ts checks.
import * as vscode from "vscode";
import type { Ctx } from "./ctx";
import { compareWithQuantized } from "./editor/graphCompare";

export type CommandFactory = (ctx: Ctx) => (...args: unknown[]) => unknown;

export const commands: Record<string, CommandFactory> = {
  "ptq.showVersion": (ctx) => () => {
    const message = `PTQ Studio ${ctx.version} (VS Code ${vscode.version}, ${vscode.env.uiKind === vscode.UIKind.Web ? "web" : "desktop"})`;
    void vscode.window.showInformationMessage(message);
    return message;
  },
  "ptq.showLog": (ctx) => () => ctx.log.show(true),
  "ptq.focusViews": () => () => vscode.commands.executeCommand("workbench.view.extension.ptq-studio"),
  "ptq.compareWithQuantized": (ctx) => (model?: unknown, quantized?: unknown) => compareWithQuantized(model, quantized).catch((e: unknown) => {
    ctx.log.error(`compare: ${String(e)}`);
    void vscode.window.showErrorMessage(`Compare with Quantized Model: ${e instanceof Error ? e.message : String(e)}`);
  }),
};

/** Registers every command of `table` for the extension's whole life. */
export function registerCommands(ctx: Ctx, table: Record<string, CommandFactory>): void {
  for (const [id, factory] of Object.entries(table)) {
    ctx.extensionScope.add(vscode.commands.registerCommand(id, factory(ctx)));
  }
}
