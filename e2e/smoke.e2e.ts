import fs from "node:fs";
import path from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../native/paths.ts";
import { startServer, type RunningServer } from "../src-main/server/server.ts";
import { Services } from "../src-main/services/services.ts";
import { launchChromium, saveScreenshot } from "./browser.ts";

describe("the app through the local server, in Chromium", () => {
    const services = new Services();
    let server: RunningServer;
    let browser: Browser;

    beforeAll(async () => {
        server = await startServer({ services, staticDir: path.join(repoRoot, "dist-renderer") });
        browser = await launchChromium();
    });

    afterAll(async () => {
        await browser?.close();
        await server?.close();
        await services.dispose();
    });

    it("shows the engine's XQuant marker", async () => {
        const page = await browser.newPage();
        await page.goto(server.url);
        const marker = page.getByTestId("engine-marker");
        await marker.waitFor({ timeout: 60_000 });
        expect(await marker.textContent()).toBe("XQUANT = 1");
        expect(await page.getByTestId("engine-info").textContent()).toContain("XQUANT_PATCHES");
        const screenshot = await saveScreenshot(page, "smoke");
        expect(fs.statSync(screenshot).size).toBeGreaterThan(1000);
    });
});
