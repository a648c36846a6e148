// npm run dist: packages the built app with electron-builder. Packaging needs
// Electron's release archives from the network; where they cannot be fetched,
// say so in one readable paragraph instead of a stack trace.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { repoRoot } from "../../native/paths.ts";

const networkFailure = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|getaddrinfo|socket hang up|unable to download/i;

export function packageApp(extraArguments: string[]): { status: number; message: string } {
    const builder = path.join(repoRoot, "node_modules", ".bin", "electron-builder");
    const result = spawnSync(builder, ["--config", "electron-builder.yml", ...extraArguments], { cwd: repoRoot, encoding: "utf8" });
    const output = `${result.stdout}${result.stderr}`;
    if (result.status === 0) return { status: 0, message: `Packages are in ${path.join(repoRoot, "release")}.` };
    if (networkFailure.test(output)) {
        return {
            status: 1,
            message: "Packaging stopped: electron-builder could not download Electron's binaries for the target platforms (no network access to GitHub here).\n"
                + "Run `npm run dist` on a machine that can reach github.com; the app itself still runs with `npm run serve`.",
        };
    }
    return { status: result.status ?? 1, message: `electron-builder failed:\n${output.split("\n").filter((line) => line.includes("⨯") || /error/i.test(line)).slice(0, 10).join("\n")}` };
}

if (process.argv[1] === import.meta.filename) {
    const { status, message } = packageApp(process.argv.slice(2));
    (status === 0 ? console.log : console.error)(message);
    process.exit(status);
}
