// The UI's own views in Chromium against the real engine: first-run empty
// states, import, the live memory chart (cache and compute buffers), the
// will-it-fit table with its measured compute buffers, themes, and a
// comparison with its JSON and PNG exports.
import fs from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath } from "../fixtures/fixtures.ts";
import { saveScreenshot } from "./browser.ts";
import { openUiApp, type UiApp } from "./ui-app.ts";

describe("the renderer's views", () => {
    let app: UiApp;
    let page: Page;

    beforeAll(async () => {
        app = await openUiApp();
        page = app.page;
    });

    afterAll(() => app?.close());

    it("tells a first-time user to get a model, then imports one by path", async () => {
        await page.getByTestId("empty-models").waitFor();
        await page.getByTestId("nav-models").click();
        await page.getByTestId("import-path").fill(path.join(app.appDir, "missing.gguf"));
        await page.getByTestId("import-submit").click();
        expect(await page.getByTestId("error-banner").textContent()).toContain("There is no file");
        await page.getByTestId("import-path").fill(fixturePath("gqa-trained"));
        await page.getByTestId("import-submit").click();
        await page.getByTestId("model-entry").waitFor();
        expect(await page.getByTestId("model-entry").textContent()).toContain("GQA");
        await saveScreenshot(page, "ui-models");
    });

    it("streams a reply and charts the measured cache of the active mode", async () => {
        await page.getByTestId("new-chat").click();
        const modelId = (await app.services.handleRequest("listModels", {}) as { ok: true; value: { id: string }[] }).value[0]!.id;
        await page.getByTestId("chat-model-select").selectOption(modelId);
        await page.getByTestId("load-session").click();
        await page.locator('[data-testid="session-state"][data-state="ready"]').waitFor({ timeout: 60_000 });
        await page.getByTestId("chat-input").fill("And God said");
        await page.getByTestId("send").click();
        await page.getByTestId("message-assistant").waitFor({ timeout: 60_000 });
        expect(await page.getByTestId("message-stats").textContent()).toMatch(/tokens\/s/);
        expect(await page.getByTestId("active-mode").textContent()).toBe("kv-f16");
        await page.waitForFunction(() => Number(document.querySelector('[data-testid="measured-cache-mib"]')?.textContent) > 0, undefined, { timeout: 10_000 });
        await page.getByTestId("memory-chart").locator("svg.recharts-surface").waitFor();
        expect(await page.getByTestId("memory-line-measured").count()).toBe(1);
        expect(await page.getByTestId("memory-line-measuredWithCompute").count()).toBe(1);
        // the headline counts the cache plus the compute buffers
        const [cache, compute, total] = await Promise.all(["measured-cache-mib", "measured-compute-mib", "measured-total-mib"]
            .map(async (testId) => Number(await page.getByTestId(testId).getAttribute("data-bytes"))));
        expect(compute).toBeGreaterThan(0);
        expect(total).toBe(cache! + compute!);
        // formula lines: the chat's own mode and the caches users have, until the user picks others
        expect(await page.getByTestId("memory-line-kv-f16").count()).toBe(1);
        expect(await page.getByTestId("memory-line-kv-q4_0").count()).toBe(1);
        expect(await page.getByTestId("memory-line-xql-4").count()).toBe(0);
        await page.getByTestId("compare-xql-4").check();
        expect(await page.getByTestId("memory-line-xql-4").count()).toBe(1);
        await page.getByTestId("compare-xqlcl-4").check();
        // a fourth pick waits until one of the three is unticked
        expect(await page.getByTestId("compare-xql-2").isDisabled()).toBe(true);
        expect(await page.locator('[data-testid^="memory-line-"]').count()).toBe(2 + 4 + 1);
        expect(await page.getByTestId("memory-line-rss").count()).toBe(1);
        await saveScreenshot(page, "ui-chat");
    });

    it("lists the model's modes with a will-it-fit table, and switches theme", async () => {
        await page.getByTestId("nav-settings").click();
        // the table comes once every mode's context is measured (latent factors computed on first use)
        await page.getByTestId("fit-table").waitFor({ timeout: 100_000 });
        expect(await page.getByTestId("fit-xql-4").textContent()).toMatch(/✓|✗/);
        expect(await page.getByTestId("fit-compute-xql-4").textContent()).toMatch(/^\d+\.\d$/);
        const options = await page.getByTestId("cache-mode-select").locator("option").allTextContents();
        expect(options.some((text) => text.includes("★ recommended"))).toBe(true);
        await page.getByTestId("theme-select").selectOption("dark");
        await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
        const background = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
        expect(background).toBe("rgb(23, 24, 27)");
        await saveScreenshot(page, "ui-settings-dark");
        await page.getByTestId("theme-select").selectOption("system");
    });

    it("compares two modes and exports the run as JSON and PNG", async () => {
        await page.getByTestId("nav-compare").click();
        await page.getByTestId("compare-mode-xql-4").check();
        await page.getByTestId("compare-text").fill("And God said");
        await page.getByTestId("compare-run").click();
        await page.locator('[data-testid="compare-state"]', { hasText: "done" }).waitFor({ timeout: 90_000 });
        expect(await page.getByTestId("compare-chart").locator("svg.recharts-surface").count()).toBe(3);

        const json = page.waitForEvent("download");
        await page.getByTestId("export-json").click();
        const run = JSON.parse(fs.readFileSync(await (await json).path(), "utf8")) as { results: { mode: string }[] };
        expect(run.results.map((result) => result.mode).sort()).toEqual(["kv-f16", "xql-4"]);

        const png = page.waitForEvent("download");
        await page.getByTestId("export-png").click();
        const bytes = fs.readFileSync(await (await png).path());
        expect(bytes.subarray(1, 4).toString()).toBe("PNG");
        await saveScreenshot(page, "ui-compare");
        expect(app.pageErrors).toEqual([]);
    });
});
