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

    // The fuses block of electron-builder.yml, as key: value pairs.
    const fusesIn = (config: string): Record<string, string> => {
        const block = /^electronFuses:\n((?:[ \t]+.*\n?)+)/m.exec(config)?.[1] ?? "";
        return Object.fromEntries([...block.matchAll(/^\s+(\w+):\s*(\S+)/gm)].map((match) => [match[1]!, match[2]!]));
    };

    it("sets the Electron fuses: no RunAsNode, NODE_OPTIONS or --inspect; cookie encryption; only its own checked asar", () => {
        const fuses = fusesIn(fs.readFileSync(path.join(repoRoot, "electron-builder.yml"), "utf8"));
        expect(fuses).toEqual({
            runAsNode: "false",
            enableCookieEncryption: "true",
            enableNodeOptionsEnvironmentVariable: "false",
            enableNodeCliInspectArguments: "false",
            enableEmbeddedAsarIntegrityValidation: "true",
            onlyLoadAppFromAsar: "true",
        });
        // the names are electron-builder's own (its config schema), so none is silently ignored
        const schema = JSON.parse(fs.readFileSync(path.join(repoRoot, "node_modules", "app-builder-lib", "scheme.json"), "utf8"));
        expect(schema.properties.electronFuses).toBeDefined();
        expect(Object.keys(schema.definitions.FuseOptionsV1.properties)).toEqual(expect.arrayContaining(Object.keys(fuses)));
    });
});
