// The UI when work is cut short or trust is in question, in Chromium against the real
// engine: the token out of the address after the first load, unverified catalog
// entries, a compare run stopped from its Stop button, and a reply the engine's crash
// cut short.
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath } from "../fixtures/fixtures.ts";
import { saveScreenshot } from "./browser.ts";
import { openUiApp, type UiApp } from "./ui-app.ts";

describe("the UI when work is cut short", () => {
    let app: UiApp;
    let page: Page;
    let modelId = "";

    beforeAll(async () => {
        app = await openUiApp(async (services) => {
            const imported = await services.handleRequest("importModel", { path: fixturePath("mha-random-f16") });
            if (!imported.ok) throw new Error(imported.error.message);
            modelId = imported.value.id;
            // replies long enough to be cut short
            await services.handleRequest("updateSettings", { defaultSampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 3000, seed: 1 }, defaultRun: { cacheMode: "kv-f16", contextSize: 4096, baseLayers: -1 } });
        });
        page = app.page;
    });

    afterAll(() => app?.close());

    it("takes the token out of the address after the first load, and still works after a reload", async () => {
        await page.getByTestId("nav-models").click();
        await page.getByTestId("model-entry").waitFor();
        expect(await page.evaluate(() => location.hash)).toBe("");
        expect(page.url()).not.toContain(app.token);
        await page.reload();
        // the models list needs an answered API call
        await page.getByTestId("nav-models").click();
        await page.getByTestId("model-entry").waitFor({ timeout: 30_000 });
        expect(page.url()).not.toContain(app.token);
    });

    it("marks the catalog entries without a sha256 as unverified", async () => {
        const catalog = await app.services.handleRequest("getCatalog", {});
        if (!catalog.ok) throw new Error(catalog.error.message);
        const entries = page.getByTestId("catalog-entry");
        await entries.first().waitFor();
        expect(await entries.count()).toBe(catalog.value.length);
        for (const [index, entry] of catalog.value.entries()) {
            const label = await entries.nth(index).getByTestId(entry.sha256 === null ? "catalog-unverified" : "catalog-verified").textContent();
            expect(label).toMatch(entry.sha256 === null ? /^Unverified/ : /^Verified/);
        }
        expect(catalog.value.some((entry) => entry.sha256 === null)).toBe(true);
        await saveScreenshot(page, "ui-catalog-unverified");
    });

    it("stops a compare run from its Stop button: the run ends stopped, and the next run gets the queue", async () => {
        await page.getByTestId("nav-compare").click();
        await page.getByLabel("Max tokens").fill("4000");
        await page.getByLabel("Context size").fill("8192");
        await page.getByTestId("compare-mode-xq-4").check();
        await page.getByTestId("compare-run").click();
        await page.getByTestId("compare-stop").click({ timeout: 60_000 });
        await page.locator('[data-testid="compare-state"]', { hasText: "stopped" }).waitFor({ timeout: 60_000 });
        expect(await page.getByTestId("compare-stop").count()).toBe(0);
        const runs = await app.services.handleRequest("listCompareRuns", {});
        expect(runs).toMatchObject({ ok: true, value: [{ state: "stopped" }] });

        // a run that still held its place in the queue would leave this one waiting for ever
        await page.getByLabel("Max tokens").fill("4");
        await page.getByTestId("compare-run").click();
        await page.locator('[data-testid="compare-state"]', { hasText: "done" }).waitFor({ timeout: 90_000 });
        expect(await page.getByTestId("compare-state").allTextContents()).toEqual(expect.arrayContaining(["done", "stopped"]));
    });

    it("shows a reply that the engine's crash cut short as interrupted, with the text it had", async () => {
        await page.getByTestId("nav-chat").click();
        await page.getByTestId("new-chat").click();
        await page.getByTestId("chat-model-select").selectOption(modelId);
        await page.getByTestId("chat-input").fill("In the beginning");
        await page.getByTestId("send").click();
        // some text has streamed
        await page.waitForFunction(() => (document.querySelector('[data-testid="message-streaming"]')?.textContent ?? "").trim().length > 20, undefined, { timeout: 90_000 });
        process.kill((await app.services.engine()).pid!, "SIGKILL");
        const stats = page.locator('[data-testid="message-stats"]', { hasText: "interrupted: the engine stopped" });
        await stats.waitFor({ timeout: 60_000 });
        expect((await page.getByTestId("message-assistant").getByTestId("message-text").textContent())!.trim().length).toBeGreaterThan(0);
        // the chat as saved says the same
        const chats = await app.services.handleRequest("listChats", {});
        if (!chats.ok) throw new Error(chats.error.message);
        const chat = await app.services.handleRequest("getChat", { chatId: chats.value[0]!.id });
        expect(chat).toMatchObject({ ok: true, value: { messages: [{ role: "user" }, { role: "assistant", stats: { interrupted: "engine-stopped" } }] } });
        await saveScreenshot(page, "ui-reply-interrupted");
        expect(app.pageErrors).toEqual([]);
    });
});
