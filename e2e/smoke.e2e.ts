import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveScreenshot } from "./browser.ts";
import { openUiApp, type UiApp } from "./ui-app.ts";

describe("the app through the local server, in Chromium", () => {
    let app: UiApp;

    beforeAll(async () => {
        app = await openUiApp();
    });

    afterAll(() => app?.close());

    it("shows the engine's XQuant marker", async () => {
        const marker = app.page.getByTestId("engine-marker");
        await marker.waitFor({ timeout: 60_000 });
        expect(await marker.textContent()).toBe("XQUANT = 1");
        expect(await app.page.getByTestId("engine-info").textContent()).toContain("XQUANT_PATCHES");
        const screenshot = await saveScreenshot(app.page, "smoke");
        expect(fs.statSync(screenshot).size).toBeGreaterThan(1000);
        expect(app.pageErrors).toEqual([]);
    });
});
