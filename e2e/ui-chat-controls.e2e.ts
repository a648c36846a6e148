// The chat view's controls in Chromium against the real engine: Stop (even
// pressed at once), Regenerate, Edit & resend, and the context-shift notice.
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath } from "../fixtures/fixtures.ts";
import { saveScreenshot } from "./browser.ts";
import { openUiApp, type UiApp } from "./ui-app.ts";

describe("chat controls", () => {
    let app: UiApp;
    let page: Page;

    beforeAll(async () => {
        app = await openUiApp(async (services) => {
            await services.handleRequest("importModel", { path: fixturePath("mha-trained") });
            // a small context, so that a 512-token reply has to shift it
            await services.handleRequest("updateSettings", { defaultRun: { cacheMode: "xq-4", contextSize: 256, baseLayers: -1 } });
        });
        page = app.page;
    });

    afterAll(() => app?.close());

    const idle = () => page.getByTestId("send").waitFor({ timeout: 90_000 });

    it("sends without a prior Load, streams, and notices the context shift", async () => {
        await page.getByTestId("empty-chat").waitFor();
        await page.getByTestId("new-chat").click();
        await page.getByTestId("chat-input").fill("And God said");
        await page.getByTestId("send").click();
        await page.getByTestId("message-streaming").waitFor();
        await page.getByTestId("message-assistant").waitFor({ timeout: 90_000 });
        expect(await page.getByTestId("message-stats").textContent()).toContain("context shifted");
        expect(await page.getByTestId("context-shift-notice").textContent()).toContain("Context full");
        expect(await page.getByTestId("active-mode").textContent()).toBe("xq-4");
    });

    it("stops a regenerated reply even when Stop is pressed at once", async () => {
        await page.getByTestId("regenerate").click();
        await page.getByTestId("stop").click();
        await page.locator('[data-testid="message-stats"]', { hasText: "stopped" }).waitFor({ timeout: 90_000 });
        await idle();
        expect(await page.getByTestId("message-assistant").count()).toBe(1);
    });

    it("edits the question and answers it again", async () => {
        await page.getByTestId("edit-message").click();
        await page.getByTestId("edit-input").fill("In the beginning");
        await page.getByTestId("edit-submit").click();
        await page.getByTestId("message-streaming").waitFor();
        await idle();
        expect(await page.getByTestId("message-user").textContent()).toContain("In the beginning");
        expect(await page.getByTestId("message-assistant").count()).toBe(1);
        expect(app.pageErrors).toEqual([]);
        await saveScreenshot(page, "ui-chat-controls");
    });
});
