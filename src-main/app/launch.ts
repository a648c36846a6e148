// npm start: runs Electron on the built app. Electron's binary is fetched on
// first use; where that cannot happen, say so and point to `npm run serve`.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { repoRoot } from "../../native/paths.ts";

const electronPackage = path.join(repoRoot, "node_modules", "electron");

// The installed Electron executable, or null; never downloads.
export function electronBinary(): string | null {
    const pathFile = path.join(electronPackage, "path.txt");
    if (!fs.existsSync(pathFile)) return null;
    const binary = path.join(electronPackage, "dist", fs.readFileSync(pathFile, "utf8"));
    return fs.existsSync(binary) ? binary : null;
}

function launch(): number {
    if (electronBinary() === null) {
        console.log("Fetching Electron's binary (first run only)…");
        const install = spawnSync(process.execPath, [path.join(electronPackage, "install.js")], { encoding: "utf8" });
        if (install.status !== 0) console.error(`The download failed: ${install.stderr.split("\n").find((line) => line.trim()) ?? "unknown error"}`);
    }
    const binary = electronBinary();
    if (binary === null) {
        console.error("Electron's binary could not be downloaded, so the desktop window cannot open here.\n"
            + "Run `npm run serve` and open the address it prints to use the same app in a browser.");
        return 1;
    }
    return spawnSync(binary, [repoRoot], { stdio: "inherit" }).status ?? 1;
}

if (process.argv[1] === import.meta.filename) process.exit(launch());
