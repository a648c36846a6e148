// Launches the real Electron shell where Electron's binary is installed; on
// machines that cannot download it, the test reports itself as skipped.
import { spawnSync } from "node:child_process";
import { _electron as electron } from "playwright-core";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../native/paths.ts";
import { electronBinary } from "../src-main/app/launch.ts";
import { saveScreenshot } from "./browser.ts";

const binary = electronBinary();
if (binary === null) console.warn("[e2e] skipped: the Electron tests (launch, app:// page, clipboard permission) need Electron's binary, which is not installed here");

describe("the Electron shell", () => {
    it.skipIf(binary === null)("opens a sandboxed window from app:// that shows the engine marker and may write the clipboard", async () => {
        expect(spawnSync("npm", ["run", "build:main", "--silent"], { cwd: repoRoot, stdio: "inherit" }).status).toBe(0);
        const app = await electron.launch({ executablePath: binary!, args: [repoRoot] });
        try {
            const window = await app.firstWindow();
            await window.getByTestId("engine-marker").waitFor({ timeout: 60_000 });
            expect(await window.getByTestId("engine-marker").textContent()).toBe("XQUANT = 1");
            expect(await window.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe("undefined");
            expect(window.url()).toBe("app://xquant/index.html");
            // the one permission granted: the Copy buttons' sanitized clipboard write
            expect(await window.evaluate(() => navigator.clipboard.writeText("copied").then(() => "written", (error: Error) => error.message))).toBe("written");
            await saveScreenshot(window, "electron");
        } finally {
            await app.close();
        }
    });
});
