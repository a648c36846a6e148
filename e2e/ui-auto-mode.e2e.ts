// "Check this model" and auto mode as a person uses them, on SmolLM2: import it, run the check
// (its estimate and progress shown), read the advice (xqlcl-2 measured and not recommended), set a
// memory budget that kv-f16 cannot fill past 512 tokens, chat in auto, and see the chat move to a
// smaller mode once, with every message kept.
import fs from "node:fs";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath, proseTextPath } from "../fixtures/fixtures.ts";
import type { CacheMode, ModelEntry } from "../src-main/api/contract.ts";
import { call } from "../src-main/services/service-calls.ts";
import { saveScreenshot } from "./browser.ts";
import { openUiApp, type UiApp } from "./ui-app.ts";

describe("check this model, then chat in auto", () => {
    let app: UiApp;
    let page: Page;
    // the app's check, on four modes and one chunk so that it fits a test's time
    const checkPlan = { chunks: 1, depths: [256, 1024], decodeTokens: 16, modes: ["kv-f16", "kv-q8_0", "xql-4", "xqlcl-2"] as CacheMode[] };
    const model = async (): Promise<ModelEntry> => (await call(app.services, "listModels", {}))[0]!;

    beforeAll(async () => {
        // short greedy answers (auto keeps room for a reply's max tokens)
        app = await openUiApp(async (services) => {
            await call(services, "updateSettings", { defaultSampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 48, seed: 1 } });
        }, { checkPlan });
        page = app.page;
    });

    afterAll(() => app?.close());

    it("runs the check with its estimate and progress, and marks xqlcl-2 with its measured ΔPPL, not recommended", async () => {
        await page.getByTestId("nav-models").click();
        await page.getByTestId("import-path").fill(fixturePath("smollm2-135m-instruct-q4_1"));
        await page.getByTestId("import-submit").click();
        await page.getByTestId("model-entry").waitFor();
        await page.getByTestId("start-check").click();
        await page.getByTestId("check-progress").waitFor();
        await page.waitForFunction(() => /about \d+/.test(document.querySelector('[data-testid="check-step"]')?.textContent ?? ""), undefined, { timeout: 60_000 });
        await saveScreenshot(page, "check-running");
        await page.locator('[data-testid="model-check"][data-state="done"]').waitFor({ timeout: 300_000 });
        await page.getByTestId("model-entry").locator("summary").click();
        const xqlcl2 = page.locator('tr[data-mode="xqlcl-2"]');
        expect(await xqlcl2.getAttribute("data-recommended")).toBe("false");
        const measured = (await model()).modes.find((advice) => advice.mode === "xqlcl-2")!.measured!;
        expect(await xqlcl2.getByTestId("mode-delta-ppl").textContent()).toBe(`${measured.deltaPplPct.toFixed(2)}%`);
        expect(await xqlcl2.textContent()).toContain("outside the quality budget");
        // no tooltip in the picture
        await page.mouse.move(0, 0);
        await saveScreenshot(page, "check-advice");
        // the check exported as JSON (every measured mode, with the advice) and its charts as PNG
        const json = page.waitForEvent("download");
        await page.getByTestId("export-check-json").click();
        const exported = JSON.parse(fs.readFileSync(await (await json).path(), "utf8")) as { modes: { mode: string; kld: number; recommended: boolean }[] };
        expect(exported.modes.map((mode) => mode.mode)).toEqual(checkPlan.modes);
        expect(exported.modes.find((mode) => mode.mode === "xqlcl-2")).toMatchObject({ kld: measured.kld, recommended: false });
        const png = page.waitForEvent("download");
        await page.getByTestId("export-check-png").click();
        expect(fs.readFileSync(await (await png).path()).subarray(1, 4).toString()).toBe("PNG");
    });

    it("moves a chat in auto from kv-f16 to a smaller mode once the budget no longer holds it", async () => {
        // a budget in which kv-f16's context holds 512 tokens (far from 8k), set in Settings
        const entry = await model();
        const f16 = entry.modes.find((advice) => advice.mode === "kv-f16")!.measured!;
        const budgetMiB = Math.ceil((entry.metadata.sizeBytes + f16.computeBytes + f16.factorBytes + 700 * f16.bytesPerToken) / 2 ** 20);
        await page.getByTestId("nav-settings").click();
        await page.getByTestId("memory-budget-mib").fill(String(budgetMiB));
        await page.getByTestId("save-settings").click();
        await expect.poll(async () => (await call(app.services, "getSettings", {})).memoryBudgetMiB).toBe(budgetMiB);

        await page.getByTestId("new-chat").click();
        await page.getByTestId("chat-model-select").selectOption(entry.id);
        await page.getByTestId("cache-mode-select").first().selectOption("auto");
        await page.getByTestId("load-session").click();
        await page.locator('[data-testid="session-state"][data-state="ready"]').waitFor({ timeout: 60_000 });
        expect(await page.getByTestId("session-state").textContent()).toContain("auto → kv-f16");
        expect(await page.getByTestId("auto-reason").textContent()).toContain("holds");

        const prose = fs.readFileSync(proseTextPath, "utf8").replace(/\s+/g, " ");
        for (let index = 0; index < 5; ++index) {
            const answers = await page.getByTestId("message-assistant").count();
            await page.getByTestId("chat-input").fill(`Say in one sentence what this is about: ${prose.slice(index * 500, index * 500 + 500)}`);
            await page.getByTestId("send").click();
            await page.getByTestId("message-assistant").nth(answers).waitFor({ timeout: 120_000 });
        }
        expect(await page.getByTestId("mode-switch").count()).toBe(1);
        const line = await page.getByTestId("mode-switch").textContent() ?? "";
        expect(line).toContain("kv-f16 holds 512 tokens");
        // to a mode the check measured within the quality budget
        const target = /auto moved this chat from kv-f16 to (\S+),/.exec(line)?.[1];
        expect((await model()).modes.find((advice) => advice.mode === target)).toMatchObject({ withinQualityBudget: true });
        expect(await page.getByTestId("message-user").count()).toBe(5);
        expect(await page.getByTestId("message-assistant").count()).toBe(5);
        expect(await page.getByTestId("session-state").textContent()).toContain(`auto → ${target}`);
        expect(await page.getByTestId("evaluation-time").textContent()).toMatch(/history evaluated in \d+\.\d s/);
        await saveScreenshot(page, "auto-switch");
        expect(app.pageErrors).toEqual([]);
    });
});
