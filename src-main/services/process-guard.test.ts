import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../native/paths.ts";

// Runs a script in a Node process of its own that rejects a promise nobody handles, then
// says whether it is still running a moment later; with `guard`, the script installs the guard first.
function rejectUnhandled(guard: boolean): { status: number | null; stdout: string; stderr: string } {
    const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xq-guard-")), "script.mts");
    const guardModule = pathToFileURL(path.join(import.meta.dirname, "process-guard.ts")).href;
    fs.writeFileSync(script, [
        guard ? `import { logUnhandledRejections } from ${JSON.stringify(guardModule)};\nlogUnhandledRejections();` : "",
        `void Promise.reject(new Error("ENOSPC: no space left on device, write"));`,
        `setTimeout(() => console.log("still running"), 100);`,
    ].join("\n"));
    const { status, stdout, stderr } = spawnSync(process.execPath, ["--import", "tsx", script], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
    return { status, stdout, stderr };
}

describe("the process guard", () => {
    it("logs a rejection nobody handled and keeps the process running", () => {
        const guarded = rejectUnhandled(true);
        expect(guarded).toMatchObject({ status: 0, stdout: "still running\n" });
        expect(guarded.stderr).toMatch(/^Unhandled error \(logged; the app keeps running\): Error: ENOSPC: no space left on device, write/);
    });

    it("without it, Node ends the process at the first such rejection", () => {
        const unguarded = rejectUnhandled(false);
        expect(unguarded.status).not.toBe(0);
        expect(unguarded.stdout).toBe("");
    });
});
