// The end-to-end flows through the server front door in Chromium:
// download with a cut connection, chat, switching the cache mode against the
// estimate, a restart, a truncated import, and the server's refusals.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelEntry } from "../src-main/api/contract.ts";
import { fixturePath } from "../fixtures/fixtures.ts";
import { repoRoot } from "../native/paths.ts";
import { estimateCacheBytes } from "../src-main/api/cache-modes.ts";
import { startServer } from "../src-main/server/server.ts";
import { Services } from "../src-main/services/services.ts";
import { startTestFileServer, type TestFileServer } from "../test-support/file-server.ts";
import { launchChromium, saveScreenshot } from "./browser.ts";
import { openUiApp, type UiApp } from "./ui-app.ts";

const modelFile = fixturePath("mha-trained");
const modelBytes = fs.readFileSync(modelFile);
const modelSha256 = crypto.createHash("sha256").update(modelBytes).digest("hex");

async function listModels(services: Services): Promise<ModelEntry[]> {
    const result = await services.handleRequest("listModels", {});
    if (!result.ok) throw new Error(result.error.message);
    return result.value;
}

// Measured cache bytes per context token, from the chart's latest sample in this mode.
async function measuredBytesPerToken(page: Page, mode: string): Promise<number> {
    await page.waitForFunction((expected) => document.querySelector('[data-testid="active-mode"]')?.textContent === expected
        && Number(document.querySelector('[data-testid="measured-cache-mib"]')?.getAttribute("data-bytes")) > 0, mode, { timeout: 60_000 });
    const bytes = Number(await page.getByTestId("measured-cache-mib").getAttribute("data-bytes"));
    return bytes / Number(await page.getByTestId("measured-tokens").textContent());
}

describe("XQuant Desktop end to end", () => {
    let app: UiApp;
    let page: Page;
    let files: TestFileServer;

    beforeAll(async () => {
        files = await startTestFileServer({ "mha-trained.gguf": modelBytes }, { cutAfterBytes: 4_000_000 });
        app = await openUiApp(async (services) => {
            await services.handleRequest("updateSettings", { defaultSampling: { temperature: 0.7, topP: 0.95, topK: 40, maxTokens: 32, seed: null } });
            // a catalog entry with a known checksum, served from 127.0.0.1
            fs.writeFileSync(path.join(services.appDir, "catalog.json"), JSON.stringify([{
                id: "fixture-mha", name: "Fixture MHA (trained here)", url: files.url("mha-trained.gguf"), sizeBytes: modelBytes.length, sha256: modelSha256,
                shape: { architecture: "llama", nLayer: 10, nEmbd: 256, nHead: 4, nHeadKv: 4, headDimK: 64, headDimV: 64 }, description: "The 10-layer MHA fixture model.",
            }]));
        });
        page = app.page;
    });

    afterAll(async () => {
        await app?.close();
        await files?.close();
    });

    it("downloads a model from a local server through a cut connection, resumes, and verifies its sha256", async () => {
        await page.getByTestId("nav-models").click();
        const entry = page.getByTestId("catalog-entry").filter({ hasText: "Fixture MHA" });
        await entry.getByTestId("catalog-download").click();
        await page.getByTestId("model-entry").waitFor({ timeout: 60_000 });
        // after the cut, the transfer resumed with ranged requests for the rest only
        expect(files.ranges.some((range) => /^bytes=[1-9]\d*-/.test(range))).toBe(true);
        const [model] = await listModels(app.services);
        expect(model).toMatchObject({ sha256: modelSha256, source: "download", metadata: { nLayer: 10 } });
        expect(crypto.createHash("sha256").update(fs.readFileSync(model!.path)).digest("hex")).toBe(modelSha256);
        expect(await page.getByTestId("model-entry").textContent()).toContain("MHA");
        await saveScreenshot(page, "models");
    });

    it("chats with streaming, and the measured cache drops by the estimated factor when the mode switches to xq-4", async () => {
        await page.getByTestId("nav-chat").click();
        await page.getByTestId("new-chat").click();
        const [model] = await listModels(app.services);
        await page.getByTestId("chat-model-select").selectOption(model!.id);
        await page.getByTestId("chat-input").fill("In the beginning God created the heaven and the earth.");
        await page.getByTestId("send").click();
        await page.getByTestId("message-stats").waitFor({ timeout: 60_000 });
        expect((await page.getByTestId("message-assistant").textContent())!.length).toBeGreaterThan(0);
        const f16PerToken = await measuredBytesPerToken(page, "kv-f16");
        await saveScreenshot(page, "chat");

        await page.getByTestId("cache-mode-select").first().selectOption("xq-4");
        await page.locator('[data-testid="session-state"][data-state="ready"]').waitFor({ timeout: 60_000 });
        const xq4PerToken = await measuredBytesPerToken(page, "xq-4");
        const shape = model!.metadata;
        const expected = estimateCacheBytes(shape, "kv-f16", 2048) / estimateCacheBytes(shape, "xq-4", 2048);
        expect(Math.abs(f16PerToken / xq4PerToken / expected - 1)).toBeLessThan(0.05);
        expect(await page.getByTestId("message-user").count()).toBe(1);
        expect(await page.getByTestId("message-assistant").count()).toBe(1);
        await saveScreenshot(page, "memory-chart");
    });

    it("shows a clear error for a truncated .gguf and keeps working", async () => {
        const truncated = path.join(app.appDir, "cut-short.gguf");
        fs.writeFileSync(truncated, modelBytes.subarray(0, modelBytes.length - 10_000));
        await page.getByTestId("nav-models").click();
        await page.getByTestId("import-path").fill(truncated);
        await page.getByTestId("import-submit").click();
        const banner = page.getByTestId("error-banner");
        await banner.waitFor();
        expect(await banner.textContent()).toMatch(/cut-short\.gguf is truncated/);
        expect(await banner.textContent()).not.toMatch(/\bat .*:\d+:\d+/);
        await saveScreenshot(page, "import-error");
        await page.getByTestId("nav-chat").click();
        await page.getByTestId("chat-input").fill("And God said");
        await page.getByTestId("send").click();
        await page.waitForFunction(() => document.querySelectorAll('[data-testid="message-assistant"]').length === 2, undefined, { timeout: 60_000 });
        expect(await listModels(app.services)).toHaveLength(1);
    });

    it("refuses API requests without the token, and from a foreign page even with the token", async () => {
        const status = await page.evaluate(async () => (await fetch("./api/listChats", { method: "POST", body: "{}" })).status);
        expect(status).toBe(401);
        const chatsBefore = await app.services.handleRequest("listChats", {});
        const token = new URL(page.url()).hash.replace("#token=", "");
        const foreign = await page.context().browser()!.newPage();
        await foreign.goto("about:blank");
        const outcome = await foreign.evaluate(async ({ url, token }) => {
            try {
                const response = await fetch(url, { method: "POST", body: "{}", headers: { "x-xquant-token": token } });
                return `status ${response.status}`;
            } catch {
                return "blocked";
            }
        }, { url: new URL("/api/createChat", page.url()).href, token });
        expect(outcome).toMatch(/blocked|status 403/);
        // nothing happened on the server
        expect(await app.services.handleRequest("listChats", {})).toEqual(chatsBefore);
        await foreign.close();
    });

    it("works from the keyboard: new chat with the input focused, settings, back to the input", async () => {
        const chatsBefore = await page.getByTestId("chat-list").locator("li").count();
        await page.keyboard.press("Control+Shift+O");
        await page.waitForFunction((count) => document.querySelectorAll('[data-testid="chat-list"] li').length === count + 1, chatsBefore);
        await page.waitForFunction(() => document.activeElement?.getAttribute("data-testid") === "chat-input");
        await page.keyboard.press("Control+,");
        await page.getByTestId("fit-table").waitFor();
        await page.keyboard.press("Control+l");
        await page.waitForFunction(() => document.activeElement?.getAttribute("data-testid") === "chat-input");
    });

    it("still has the chats after the server restarts", async () => {
        const before = await app.services.handleRequest("listChats", {});
        const services = new Services({ appDir: app.appDir, maxThreads: 2 });
        const server = await startServer({ services, staticDir: path.join(repoRoot, "dist-renderer") });
        const browser = await launchChromium();
        try {
            const restarted = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
            await restarted.goto(server.url);
            await restarted.getByTestId("chat-list").getByText("In the beginning").waitFor({ timeout: 30_000 });
            await restarted.getByTestId("chat-list").getByText("In the beginning").click();
            await restarted.getByTestId("message-assistant").nth(1).waitFor({ timeout: 30_000 });
            expect(await restarted.getByTestId("message-assistant").count()).toBe(2);
            expect(await services.handleRequest("listChats", {})).toEqual(before);
            await saveScreenshot(restarted, "restarted");
        } finally {
            await browser.close();
            await server.close();
            await services.dispose();
        }
    });
});
