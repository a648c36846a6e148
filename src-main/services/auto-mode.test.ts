import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath, proseTextPath } from "../../fixtures/fixtures.ts";
import type { ApiEvent, CacheMode, CheckStatus, ModeSwitch, SessionInfo } from "../api/contract.ts";
import { call, nextEvent } from "./service-calls.ts";
import { Services } from "./services.ts";

const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-auto-"));
const mib = 2 ** 20;

const ready = (chatId: string) => (event: ApiEvent): event is { type: "session"; session: SessionInfo } =>
    event.type === "session" && event.session?.chatId === chatId && (event.session.state === "ready" || event.session.state === "failed");
const done = (chatId: string) => (event: ApiEvent): event is Extract<ApiEvent, { type: "generation-done" }> => event.type === "generation-done" && event.chatId === chatId;

describe("auto mode on SmolLM2", () => {
    // a small check: the reference, llama.cpp's 8-bit cache (the quality budget's yardstick) and
    // xql-4, timed at two depths so that the chat's 2048-token context is judged at 1024
    const checkPlan = { chunks: 1, depths: [256, 1024], decodeTokens: 16, modes: ["kv-f16", "kv-q8_0", "xql-4"] as CacheMode[] };
    const services = new Services({ appDir, maxThreads: 2, checkPlan });
    let modelId = "";
    afterAll(async () => {
        await services.dispose();
        fs.rmSync(appDir, { recursive: true, force: true });
    });

    beforeAll(async () => {
        modelId = (await call(services, "importModel", { path: fixturePath("smollm2-135m-instruct-q4_1") })).id;
        const ended = nextEvent(services, (event): event is { type: "check"; check: CheckStatus } => event.type === "check" && ["done", "failed", "stopped"].includes(event.check.state));
        await call(services, "startCheck", { modelId });
        expect((await ended).check).toMatchObject({ state: "done" });
    }, 600_000);

    it("moves a growing chat from kv-f16 to a smaller mode exactly once when kv-f16 no longer fits the budget, and loses no message", async () => {
        const measured = (await call(services, "listModels", {})).find((model) => model.id === modelId)!;
        const f16 = measured.modes.find((advice) => advice.mode === "kv-f16")!.measured!;
        // a budget whose kv-f16 context holds 1280 tokens (weights, compute buffers and 1400 cells of its
        // cache): past about 1050 tokens, xql-4's cache and its 17.7 MB of factors take less than kv-f16's
        const budgetMiB = Math.ceil((measured.metadata.sizeBytes + f16.computeBytes + f16.factorBytes + 1400 * f16.bytesPerToken) / mib);
        await call(services, "updateSettings", { memoryBudgetMiB: budgetMiB });
        const [check] = fs.readdirSync(path.join(appDir, "checks"));
        const advice = (await call(services, "listModels", {})).find((model) => model.id === modelId)!.modes;
        const holds = (mode: CacheMode) => advice.find((entry) => entry.mode === mode)!.measured!.maxContextInBudget;
        expect(check).toBeDefined();
        expect(holds("kv-f16")).toBe(1280);
        // what auto may move to: within the quality budget, holding more than kv-f16 in the same budget
        const smaller = advice.filter((entry) => entry.withinQualityBudget && entry.mode !== "kv-f16").map((entry) => entry.mode);
        expect(smaller.some((mode) => holds(mode) >= 2048), `a mode within the quality budget holds 2048 tokens: ${smaller.map((mode) => `${mode} ${holds(mode)}`).join(", ")}`).toBe(true);

        const chat = await call(services, "updateChat", {
            chatId: (await call(services, "createChat", { modelId })).id,
            runOverride: { cacheMode: "auto", contextSize: 4096, baseLayers: -1 },
            sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 48, seed: 1 },
        });
        const loaded = nextEvent(services, ready(chat.id), 120_000);
        await call(services, "openSession", { chatId: chat.id });
        expect((await loaded).session).toMatchObject({ state: "ready", mode: "kv-f16", contextSize: 1280, autoReason: expect.stringContaining("auto: kv-f16") });

        const switches: ModeSwitch[] = [];
        const unsubscribe = services.subscribe((event) => {
            if (event.type === "mode-switch" && event.chatId === chat.id) switches.push(event.modeSwitch);
        });
        // ten passages of about 110 tokens each: with the questions and the answers (at most 48 tokens),
        // 1400 to 1900 tokens in all
        const prose = fs.readFileSync(proseTextPath, "utf8").replace(/\s+/g, " ");
        const passages = Array.from({ length: 10 }, (_, index) => prose.slice(index * 500, index * 500 + 500));
        const replies: string[] = [];
        for (const passage of passages) {
            const finished = nextEvent(services, done(chat.id), 120_000);
            await call(services, "sendMessage", { chatId: chat.id, text: `Say in one sentence what this is about:\n\n${passage}` });
            const { message } = await finished;
            expect(message.stats).toMatchObject({ contextShifted: false });
            replies.push(message.text);
        }
        unsubscribe();

        expect(switches).toHaveLength(1);
        const [moved] = switches;
        expect(moved).toMatchObject({ from: "kv-f16", reason: expect.stringContaining("kv-f16 holds 1280 tokens") });
        expect(smaller).toContain(moved!.to);
        const saved = await call(services, "getChat", { chatId: chat.id });
        expect(saved.modeSwitches).toEqual([moved]);
        // every question and every answer is kept, and the answers go on after the switch
        expect(saved.messages.map((message) => message.role)).toEqual(Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? "user" : "assistant")));
        expect(moved!.afterMessages).toBeGreaterThan(1);
        expect(moved!.afterMessages).toBeLessThan(20);
        for (const reply of replies) expect(reply).toMatch(/[a-z]{3,}/i);
        const session = await call(services, "getSession", {});
        expect(session).toMatchObject({ mode: moved!.to, contextSize: holds(moved!.to) });
        // the budget sits between xql-4's memory and kv-f16's at the chat's length
        expect(holds("xql-4")).toBeGreaterThanOrEqual(session!.contextTokens);
        expect(holds("kv-f16")).toBeLessThan(session!.contextTokens);
    }, 600_000);
});
