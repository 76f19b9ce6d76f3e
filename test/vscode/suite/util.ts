// Helpers shared by the in-VS-Code suites (bundled into each suite; not a suite itself: no `.test.ts`).
/// <reference types="mocha" />
import * as vscode from "vscode";
import type { PtqStudioApi } from "../../../src/extension";

export const EXTENSION_ID = "ptq-studio.ptq-studio";

/** Activates the extension under test (if needed) and returns its API. */
export async function activateExtension(): Promise<{ ext: vscode.Extension<PtqStudioApi>; api: PtqStudioApi }> {
  const ext = vscode.extensions.getExtension<PtqStudioApi>(EXTENSION_ID);
  if (!ext) throw new Error(`extension ${EXTENSION_ID} is not loaded; is extensionDevelopmentPath the repo root?`);
  const api = await ext.activate();
  return { ext, api };
}

/** The extension's package.json, as VS Code read it. */
export function manifest(): Record<string, any> {
  return vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON;
}

/** What `waitFor` returns: the check's value, known to be truthy. */
export type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

/** Polls `check` until it returns a truthy value (which it returns) or `timeoutMs` passes. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000): Promise<Truthy<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await check();
    if (v) return v as Truthy<T>;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
