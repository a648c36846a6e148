import dns from "node:dns/promises";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { builtCpuVariantTags } from "../../native/cpu-variants.ts";
import { installedBinDir, repoRoot } from "../../native/paths.ts";
import { packageApp } from "./dist.ts";

const githubReachable = await dns.lookup("github.com").then(() => true, () => false);

describe("npm run dist", () => {
    // Where GitHub is reachable this would build real packages (minutes); that is `npm run dist` itself.
    it.skipIf(githubReachable)("says clearly that Electron's binaries cannot be downloaded here", () => {
        const { status, message } = packageApp(["--linux", "AppImage"]);
        expect(status).toBe(1);
        expect(message).toContain("could not download Electron's binaries");
        expect(message).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
    }, 300_000);

    // The package takes node-llama-cpp's local build as it is (npmRebuild: false) and keeps it
    // out of the asar, so every CPU variant library built here ships and can be loaded.
    it.skipIf(process.arch !== "x64")("ships every CPU variant of the native build, outside the asar", () => {
        const config = fs.readFileSync(path.join(repoRoot, "electron-builder.yml"), "utf8");
        const unpacked = [...config.matchAll(/^\s+- (\S+)\/\*\*$/gm)].map((match) => match[1]!);
        const buildFolder = path.relative(repoRoot, installedBinDir);
        expect(unpacked.some((folder) => buildFolder.startsWith(`${folder}/`))).toBe(true);
        for (const tag of builtCpuVariantTags) {
            expect(fs.existsSync(path.join(installedBinDir, `libggml-cpu-${tag}.so`)), tag).toBe(true);
        }
    });
});
