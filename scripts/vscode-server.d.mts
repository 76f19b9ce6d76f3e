// Types for scripts/vscode-server.mjs (imported by the TypeScript e2e helpers).
import type { Page } from "playwright-core";
export declare const chromiumArgs: string[];
export interface CodeServer {
  url: string;
  port: number;
  runDir: string;
  logFile: string;
  pid: number;
  stop(): void;
}
export declare function startCodeServer(opts: {
  node24: string;
  codeServerEntry: string;
  runDir?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  settings?: Record<string, unknown>;
  /** Keep VS Code's workspace trust on (Restricted Mode tests); off by default. */
  workspaceTrust?: boolean;
}): Promise<CodeServer>;
export declare const testSettings: Record<string, unknown>;
export declare function installExtension(opts: { node24: string; codeServerEntry: string; runDir: string; vsix: string }): Promise<string>;
export declare function workbenchUrl(
  url: string,
  opts: { folder: string; extensionDevelopmentPath?: string; extensionTestsPath?: string },
): string;
export declare const PTQ_ACTIVITY_ITEM: string;
export declare function runPaletteCommand(page: Page, title: string): Promise<void>;
export declare function waitForNotification(page: Page, text: string | RegExp, timeoutMs?: number): Promise<string>;
