// Where the native build reads from and writes to. Shared by the build script,
// the fixture generator and the engine, so that they all agree.
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const nativeDir = path.join(repoRoot, "native");
export const nodeLlamaCppDir = path.join(repoRoot, "node_modules", "node-llama-cpp");

// Persistent cache outside the clone (ccache, finished builds, fixtures), so a
// fresh clone of an unchanged tree rebuilds in seconds.
export const cacheDir = process.env.XQ_CACHE_DIR ?? path.join(os.homedir(), ".cache", "xquant-desktop");

// The folder name node-llama-cpp looks up in llama/localBuilds via lastBuild.json.
export const localBuildName = `xquant-${process.platform}-${process.arch}`;
export const installedBinDir = path.join(nodeLlamaCppDir, "llama", "localBuilds", localBuildName, "Release");

export function toolPath(name: string): string {
    return path.join(installedBinDir, process.platform === "win32" ? `${name}.exe` : name);
}
