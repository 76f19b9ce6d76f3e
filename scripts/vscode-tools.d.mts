// Types for scripts/vscode-tools.mjs (imported by e2e tests that start a code-server of their own).
export declare const NODE24_VERSION: string;
export declare const CODE_SERVER_VERSION: string;
export declare const CHROMIUM: string;
export declare const cacheDir: string;
export declare const node24: string;
export declare const codeServerEntry: string;
/** Returns the paths of Node 24 and code-server's entry, installing them first if the cache lacks them. */
export declare function ensureTools(): { node24: string; codeServerEntry: string };
