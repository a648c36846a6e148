import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiEvent, Chat, CheckStatus, MetricsSample, ModeAdvice, SessionInfo } from "../api/contract.ts";
import { fixturePath, heldOutTextPath } from "../../fixtures/fixtures.ts";
import { estimateCacheBytes } from "../api/cache-modes.ts";
import { modesToCheck, speedTie } from "../api/mode-advice.ts";
import { evaluateModes } from "../engine/quality.ts";
import { checkTextPath, engineBuild } from "./model-check.ts";
import { call, nextEvent } from "./service-calls.ts";
import { Services } from "./services.ts";

const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-services-"));

const done = (chatId: string) => (event: ApiEvent): event is Extract<ApiEvent, { type: "generation-done" }> => event.type === "generation-done" && event.chatId === chatId;
const ready = (event: ApiEvent): event is { type: "session"; session: SessionInfo } => event.type === "session" && (event.session?.state === "ready" || event.session?.state === "failed");

describe("services", () => {
    // a smaller check than the app's: one chunk of the check text, two depths
    const checkPlan = { chunks: 1, depths: [128, 256], decodeTokens: 4 };
    const services = new Services({ appDir, maxThreads: 2, checkPlan });
    let modelId = "";
    afterAll(() => services.dispose());

    beforeAll(async () => {
        await call(services, "updateSettings", { defaultSampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 12, seed: 1 }, defaultRun: { cacheMode: "kv-f16", contextSize: 512, baseLayers: -1 } });
        modelId = (await call(services, "importModel", { path: fixturePath("mha-trained") })).id;
    });

    it("answers getEngineInfo from the real engine", async () => {
        expect(await call(services, "getEngineInfo", {})).toMatchObject({ xquant: true, systemInfo: expect.stringContaining("XQUANT = 1") });
    });

    it("rejects an unknown method with a typed error", async () => {
        expect(await services.handleRequest("deleteEverything", {})).toEqual({ ok: false, error: { code: "unknown-method", message: "Unknown method: deleteEverything" } });
    });

    it.each([null, 42, "text", [1]])("rejects the malformed argument %j", async (argument) => {
        expect(await services.handleRequest("getEngineInfo", argument)).toMatchObject({ ok: false, error: { code: "bad-request" } });
    });

    it.each([
        ["sendMessage", { chatId: 5, text: "hi" }, /^"chatId": Invalid input: expected string, received number$/],
        ["sendMessage", { chatId: "c", text: "  " }, /^"text": must not be empty$/],
        ["updateSettings", { theme: "neon" }, /^"theme": Invalid option: expected one of "system"\|"light"\|"dark"$/],
        ["updateSettings", { defaultSampling: { temperature: 0, topP: 2, topK: 1, maxTokens: 8, seed: null } }, /^"defaultSampling.topP": Too big: expected number to be <=1$/],
        ["estimateModes", { modelId: "x", contextSize: -3 }, /^"contextSize": Too small: expected number to be >=64$/],
        ["startDownload", { url: "https://a/b.gguf", catalogId: "c" }, /^Give either "catalogId" or "url"$/],
        ["startDownload", { url: "https://a/b.gguf", sha256: "abc" }, /^"sha256": must be 64 hex digits$/],
        ["startCompare", { modelId: "m", modes: ["kv-f17"], kind: "prompt", text: "a", maxTokens: 4, contextSize: 256 }, /^"modes.0": Invalid option: expected one of "kv-f16"/],
    ] as const)("validates %s arguments", async (method, argument, message) => {
        const result = await services.handleRequest(method, argument);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.error).toMatchObject({ code: "bad-request", message: expect.stringMatching(message) });
    });

    it("imports a model with its metadata and the engine's mode advice, which before a check recommends only kv-f16", async () => {
        const [model] = await call(services, "listModels", {});
        expect(model).toMatchObject({ id: modelId, source: "import", metadata: { architecture: "llama", nLayer: 10, nEmbd: 256, nHead: 4, nHeadKv: 4, headDimK: 64, headDimV: 64, contextLength: 512 } });
        expect(model!.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(model!.modes.find((mode) => mode.mode === "xq-4")).toMatchObject({ available: true, recommended: false, measured: null, reason: expect.stringContaining("not measured") });
        expect(model!.modes.filter((mode) => mode.recommended).map((mode) => mode.mode)).toEqual(["kv-f16"]);
        expect(model!.modes.find((mode) => mode.mode === "xql-4")).toMatchObject({ available: false });
    });

    it("refuses a truncated GGUF with a clear error and leaves the library as it was", async () => {
        const truncated = path.join(appDir, "truncated.gguf");
        const bytes = fs.readFileSync(fixturePath("mha-random-f16"));
        fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 4096));
        const result = await services.handleRequest("importModel", { path: truncated });
        expect(result).toMatchObject({ ok: false, error: { code: "model-invalid", message: expect.stringContaining("truncated") } });
        expect((await call(services, "listModels", {})).map((model) => model.id)).toEqual([modelId]);
    });

    it("refuses a GGUF that crashes node-llama-cpp's reader with a typed error; only the engine process dies", async () => {
        const bytes = Buffer.from(fs.readFileSync(fixturePath("mha-random-f16")));
        // the first key's length, between 2^31 and 2^32: node-llama-cpp hands it to a native fs read, which asserts and aborts
        bytes.writeBigUInt64LE(3_000_000_000n, 24);
        const file = path.join(appDir, "crashes-the-reader.gguf");
        fs.writeFileSync(file, bytes);
        const reader = await services.engine();
        const result = await services.handleRequest("importModel", { path: file });
        expect(result).toMatchObject({ ok: false, error: { code: "model-invalid", message: expect.stringMatching(/^crashes-the-reader\.gguf is not a valid GGUF file: reading it stopped the engine process \(SIGABRT\)/) } });
        expect(reader.alive).toBe(false);
        expect((await call(services, "listModels", {})).map((model) => model.id)).toEqual([modelId]);
    });

    it("estimates every mode as weights + the exact cache + the compute buffers that a chat's context of that mode reports", async () => {
        const estimates = await call(services, "estimateModes", { modelId, contextSize: 512 });
        const [model] = await call(services, "listModels", {});
        const shape = model!.metadata;
        for (const estimate of estimates.filter((entry) => entry.available)) {
            expect(estimate.cacheBytes).toBe(estimateCacheBytes(shape, estimate.mode, 512));
            expect(estimate.computeBytes).toBeGreaterThan(0);
            expect(estimate.totalBytes).toBe(shape.sizeBytes + estimate.cacheBytes + estimate.computeBytes!);
        }
        expect(estimates.find((estimate) => estimate.mode === "xq-4")!.fits).toBe(true);
        // an unavailable mode is not measured, and says why
        expect(estimates.find((estimate) => estimate.mode === "xql-4")).toMatchObject({ available: false, computeBytes: null, fits: false, explanation: expect.stringMatching(/^latent modes are for GQA models/) });

        for (const cacheMode of ["kv-f16", "xq-4", "xqcl-2"] as const) {
            const chat = await call(services, "updateChat", { chatId: (await call(services, "createChat", { modelId })).id, runOverride: { cacheMode, contextSize: 512, baseLayers: -1 } });
            const loaded = nextEvent(services, ready);
            const sample = nextEvent(services, (event): event is { type: "metrics"; sample: MetricsSample } => event.type === "metrics" && event.sample.chatId === chat.id);
            await call(services, "openSession", { chatId: chat.id });
            expect((await loaded).session.state).toBe("ready");
            expect((await sample).sample.computeBytes).toBe(estimates.find((estimate) => estimate.mode === cacheMode)!.computeBytes);
        }
    });

    it("counts a chat's context as measured, and an estimate that must measure waits for the running reply without disturbing it", async () => {
        const run = { cacheMode: "xq-2", contextSize: 384, baseLayers: -1 } as const;
        const chat = await call(services, "updateChat", {
            chatId: (await call(services, "createChat", { modelId })).id, runOverride: run, sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 4000, seed: 1 },
        });
        const sample = nextEvent(services, (event): event is { type: "metrics"; sample: MetricsSample } => event.type === "metrics" && event.sample.chatId === chat.id);
        const firstToken = nextEvent(services, (event): event is ApiEvent => event.type === "token" && event.chatId === chat.id);
        const finished = nextEvent(services, done(chat.id));
        await call(services, "sendMessage", { chatId: chat.id, text: "And the LORD" });
        await firstToken;
        // the chat's own context answers at once, though the queue is busy with its reply
        const [known] = await services.session.measureContexts(modelId, [run]);
        expect(known).toEqual({ ok: true, value: { cacheBytes: expect.any(Number), computeBytes: (await sample).sample.computeBytes } });

        const order: string[] = [];
        const estimated = call(services, "estimateModes", { modelId, contextSize: 384 }).then((estimates) => {
            order.push("estimated");
            return estimates;
        });
        void finished.then(() => order.push("reply done"));
        await call(services, "stopGeneration", { chatId: chat.id });
        const reply = (await finished).message;
        const estimates = await estimated;
        expect(order).toEqual(["reply done", "estimated"]);
        expect(reply.stats).toMatchObject({ stopped: true });
        expect(reply.text.length).toBeGreaterThan(0);
        expect(estimates.find((estimate) => estimate.mode === "xq-2")!.computeBytes).toBe((known as { ok: true; value: { computeBytes: number } }).value.computeBytes);
        expect(estimates.filter((estimate) => estimate.available).every((estimate) => estimate.computeBytes! > 0)).toBe(true);
    });

    it("chats with streaming, regenerates deterministically, edits and resends, and saves every turn", async () => {
        let chat: Chat = await call(services, "createChat", { modelId });
        const tokens: string[] = [];
        const unsubscribe = services.subscribe((event) => {
            if (event.type === "token" && event.chatId === chat.id) tokens.push(event.text);
        });
        let finished = nextEvent(services, done(chat.id));
        const started = await call(services, "sendMessage", { chatId: chat.id, text: "In the beginning" });
        expect(started.chat.messages.map((message) => message.text)).toEqual(["In the beginning"]);
        const first = (await finished).message;
        unsubscribe();
        expect(first.id).toBe(started.replyId);
        expect(first.text.length).toBeGreaterThan(0);
        expect(tokens.join("")).toBe(first.text);
        expect(first.stats).toMatchObject({ tokens: 12, stopped: false });
        expect(first.stats!.tokensPerSecond).toBeGreaterThan(0);

        finished = nextEvent(services, done(chat.id));
        await call(services, "regenerate", { chatId: chat.id });
        expect((await finished).message.text).toBe(first.text);
        chat = await call(services, "getChat", { chatId: chat.id });
        expect(chat.messages.map((message) => message.role)).toEqual(["user", "assistant"]);
        expect(chat.title).toBe("In the beginning");

        finished = nextEvent(services, done(chat.id));
        await call(services, "editMessage", { chatId: chat.id, messageId: chat.messages[0]!.id, text: "And God said" });
        await finished;
        chat = await call(services, "getChat", { chatId: chat.id });
        expect(chat.messages.map((message) => message.text.slice(0, 12))).toEqual(["And God said", expect.any(String)]);

        const restarted = new Services({ appDir, maxThreads: 2 });
        expect((await restarted.handleRequest("getChat", { chatId: chat.id }))).toMatchObject({ ok: true, value: { messages: chat.messages } });
    });

    it("stops a generation on request and keeps what was generated", async () => {
        const chat = await call(services, "updateChat", { chatId: (await call(services, "createChat", { modelId })).id, sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 400, seed: 1 } });
        const finished = nextEvent(services, done(chat.id));
        const firstToken = nextEvent(services, (event): event is ApiEvent => event.type === "token" && event.chatId === chat.id);
        await call(services, "sendMessage", { chatId: chat.id, text: "And the LORD" });
        await firstToken;
        await call(services, "stopGeneration", { chatId: chat.id });
        const message = (await finished).message;
        expect(message.stats!.stopped).toBe(true);
        expect(message.stats!.tokens).toBeLessThan(400);
    });

    it("switching the cache mode reloads the chat, keeps its messages, and the measured cache drops as estimated", async () => {
        const chat = await call(services, "createChat", { modelId });
        const finished = nextEvent(services, done(chat.id));
        await call(services, "sendMessage", { chatId: chat.id, text: "In the beginning God created" });
        await finished;
        const [model] = await call(services, "listModels", {});
        const shape = model!.metadata;
        const measured: Record<string, MetricsSample> = {};
        for (const cacheMode of ["kv-f16", "xq-4"] as const) {
            await call(services, "updateChat", { chatId: chat.id, runOverride: { cacheMode, contextSize: 512, baseLayers: -1 } });
            const loaded = nextEvent(services, ready);
            await call(services, "openSession", { chatId: chat.id });
            expect((await loaded).session.state).toBe("ready");
            const sample = await nextEvent(services, (event): event is { type: "metrics"; sample: MetricsSample } => event.type === "metrics" && event.sample.mode === cacheMode);
            measured[cacheMode] = sample.sample;
            const perCell = estimateCacheBytes(shape, cacheMode, 512) / 512;
            expect(sample.sample.cacheBytesUsed).toBeCloseTo(perCell * sample.sample.contextTokens, -2);
        }
        expect(measured["kv-f16"]!.contextTokens).toBe(measured["xq-4"]!.contextTokens);
        const ratio = measured["kv-f16"]!.cacheBytesUsed / measured["xq-4"]!.cacheBytesUsed;
        const expected = estimateCacheBytes(shape, "kv-f16", 512) / estimateCacheBytes(shape, "xq-4", 512);
        expect(Math.abs(ratio / expected - 1)).toBeLessThan(0.05);
        expect((await call(services, "getChat", { chatId: chat.id })).messages).toHaveLength(2);
    });

    it("draws the engine process's RSS: a context about 100 MB larger in the engine process moves it by about that much", async () => {
        const chat = await call(services, "createChat", { modelId });
        const rssAt = async (contextSize: number) => {
            await call(services, "updateChat", { chatId: chat.id, runOverride: { cacheMode: "kv-f16", contextSize, baseLayers: -1 } });
            const loaded = nextEvent(services, ready);
            const sample = nextEvent(services, (event): event is { type: "metrics"; sample: MetricsSample } => event.type === "metrics" && event.sample.chatId === chat.id && event.sample.contextSize === contextSize);
            await call(services, "openSession", { chatId: chat.id });
            expect((await loaded).session.state).toBe("ready");
            return (await sample).sample;
        };
        const small = await rssAt(512);
        // 10,240 cells of this model's f16 K and V: llama.cpp clears the cache when it allocates it, so every page is resident
        const large = await rssAt(10_240);
        const allocated = large.cacheBytesAllocated - small.cacheBytesAllocated;
        expect(allocated).toBeGreaterThanOrEqual(95 * 2 ** 20);
        const moved = large.rssBytes - small.rssBytes;
        // compute buffers are reserved, and only partly touched by evaluating the empty chat
        expect(moved).toBeGreaterThan(0.8 * allocated);
        expect(moved).toBeLessThan(allocated + (large.computeBytes - small.computeBytes) + 32 * 2 ** 20);
        await call(services, "closeSession", {});
    });

    it("checks a model in the generation queue with progress, saves it per model, engine and backend, and advises from it", async () => {
        const statuses: CheckStatus[] = [];
        const unsubscribe = services.subscribe((event) => {
            if (event.type === "check") statuses.push(event.check);
        });
        const ended = nextEvent(services, (event): event is { type: "check"; check: CheckStatus } => event.type === "check" && ["done", "failed", "stopped"].includes(event.check.state));
        expect(await call(services, "startCheck", { modelId })).toMatchObject({ modelId, state: "waiting" });
        expect((await services.handleRequest("startCheck", { modelId }))).toMatchObject({ ok: false, error: { code: "busy" } });
        const end = (await ended).check;
        unsubscribe();
        expect(end).toMatchObject({ state: "done", progress: 1, error: null });
        expect(statuses.some((status) => status.state === "running" && status.progress > 0 && status.progress < 1)).toBe(true);
        const [model] = await call(services, "listModels", {});
        const info = await call(services, "getEngineInfo", {});
        expect(fs.readdirSync(path.join(appDir, "checks"))).toEqual([`${model!.sha256}-${engineBuild(info)}-${info.backend}.json`]);
        expect(model!.modes.filter((mode) => mode.measured !== null).map((mode) => mode.mode)).toEqual(modesToCheck(model!.modes));
        for (const mode of model!.modes.filter((entry) => entry.measured !== null)) {
            expect(mode.measured).toMatchObject({ kld: expect.any(Number), deltaPplPct: expect.any(Number), decodeTokensPerSecond: { 128: expect.any(Number), 256: expect.any(Number) } });
            expect(mode.measured!.maxContextInBudget).toBeGreaterThan(0);
        }
        // exactly one mode is recommended: within the quality budget, and no other such mode is faster
        // by more than a tie
        const [recommended, ...others] = model!.modes.filter((mode) => mode.recommended);
        expect(others).toEqual([]);
        expect(recommended!.withinQualityBudget).toBe(true);
        const speed = (mode: ModeAdvice) => mode.measured!.decodeTokensPerSecond[256]!;
        for (const mode of model!.modes.filter((entry) => entry.withinQualityBudget)) expect(speed(mode)).toBeLessThanOrEqual(speedTie * speed(recommended!));
        // the check's KLD is npm run eval's on the same text
        const rows = await evaluateModes({ model: fixturePath("mha-trained"), text: checkTextPath, modes: ["kv-f16", "xq-3"], contextSize: 512, chunks: checkPlan.chunks, baseLayers: -1, threads: 2 });
        const checked = model!.modes.find((mode) => mode.mode === "xq-3")!.measured!.kld;
        expect(Math.abs(checked / rows[1]!.kld - 1)).toBeLessThan(0.2);
    }, 600_000);

    it("stops a check on request: it ends as stopped and nothing new is saved", async () => {
        const saved = fs.readdirSync(path.join(appDir, "checks")).map((file) => fs.statSync(path.join(appDir, "checks", file)).mtimeMs);
        const ended = nextEvent(services, (event): event is { type: "check"; check: CheckStatus } => event.type === "check" && ["done", "failed", "stopped"].includes(event.check.state));
        await call(services, "startCheck", { modelId });
        await call(services, "stopCheck", { modelId });
        expect((await ended).check).toMatchObject({ state: "stopped" });
        expect(fs.readdirSync(path.join(appDir, "checks")).map((file) => fs.statSync(path.join(appDir, "checks", file)).mtimeMs)).toEqual(saved);
        expect(await services.handleRequest("stopCheck", { modelId })).toMatchObject({ ok: false, error: { code: "not-found" } });
    });

    it("keeps a chat going past a full context through context shift, and says so", async () => {
        const chat = await call(services, "updateChat", {
            chatId: (await call(services, "createChat", { modelId })).id,
            runOverride: { cacheMode: "xq-4", contextSize: 256, baseLayers: -1 },
            sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 400, seed: 1 },
        });
        const shifted = nextEvent(services, (event): event is ApiEvent => event.type === "context-shift" && event.chatId === chat.id, 120_000);
        const finished = nextEvent(services, done(chat.id), 120_000);
        await call(services, "sendMessage", { chatId: chat.id, text: "And the LORD spake unto Moses, saying," });
        await shifted;
        const message = (await finished).message;
        expect(message.stats).toMatchObject({ tokens: 400, contextShifted: true, stopped: false });
    });

    it("queues a reply in another chat while one generates, and loses no message of either chat", async () => {
        const chatA = await call(services, "updateChat", { chatId: (await call(services, "createChat", { modelId })).id, sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 400, seed: 1 } });
        const chatB = await call(services, "createChat", { modelId });
        let finishedB = nextEvent(services, done(chatB.id));
        await call(services, "sendMessage", { chatId: chatB.id, text: "In the beginning" });
        const firstReplyB = (await finishedB).message;

        const firstTokenA = nextEvent(services, (event): event is ApiEvent => event.type === "token" && event.chatId === chatA.id);
        const finishedA = nextEvent(services, done(chatA.id));
        await call(services, "sendMessage", { chatId: chatA.id, text: "And the LORD" });
        await firstTokenA;
        finishedB = nextEvent(services, done(chatB.id));
        const regenerated = await call(services, "regenerate", { chatId: chatB.id });
        expect(regenerated.chat.messages.map((message) => message.role)).toEqual(["user"]);
        // a second request for a chat whose reply still waits is refused, and changes nothing
        const edited = await services.handleRequest("editMessage", { chatId: chatB.id, messageId: regenerated.chat.messages[0]!.id, text: "Changed" });
        expect(edited).toMatchObject({ ok: false, error: { code: "busy" } });
        expect((await call(services, "getChat", { chatId: chatB.id })).messages.map((message) => message.text)).toEqual(["In the beginning"]);

        await call(services, "stopGeneration", { chatId: chatA.id });
        const [replyA, replyB] = await Promise.all([finishedA, finishedB]);
        expect(replyA.message.stats!.stopped).toBe(true);
        expect(replyB.message).toMatchObject({ id: regenerated.replyId, text: firstReplyB.text });
        expect((await call(services, "getChat", { chatId: chatB.id })).messages.map((message) => message.text)).toEqual(["In the beginning", firstReplyB.text]);
        expect((await call(services, "getChat", { chatId: chatA.id })).messages.map((message) => message.role)).toEqual(["user", "assistant"]);
    });

    it("keeps one model loaded: a completion on another model unloads the first, and the session on it", async () => {
        const chat = await call(services, "createChat", { modelId });
        const finished = nextEvent(services, done(chat.id));
        await call(services, "sendMessage", { chatId: chat.id, text: "In the beginning" });
        await finished;
        expect(services.session.residentModels()).toEqual([modelId]);
        const secondId = (await call(services, "importModel", { path: fixturePath("mha-trained-q8_0") })).id;
        const plan = await services.planCompletion({ modelId: secondId, systemPrompt: "", messages: [{ role: "user", text: "In the beginning" }] });
        if (!plan.ok) throw new Error(plan.error.message);
        expect(await services.complete(plan.value, () => {}, new AbortController().signal)).toMatchObject({ ok: true, value: { tokens: 12 } });
        expect(services.session.residentModels()).toEqual([secondId]);
        expect(services.session.info()).toBeNull();
        await call(services, "deleteModel", { modelId: secondId });
        expect(services.session.residentModels()).toEqual([]);
    });

    it("survives a SIGKILL of the engine process mid-reply: a typed error, the chat kept, the session reloaded in a new process", async () => {
        const chat = await call(services, "updateChat", { chatId: (await call(services, "createChat", { modelId })).id, sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 400, seed: 1 } });
        const firstToken = nextEvent(services, (event): event is ApiEvent => event.type === "token" && event.chatId === chat.id);
        const failed = nextEvent(services, (event): event is Extract<ApiEvent, { type: "generation-error" }> => event.type === "generation-error" && event.chatId === chat.id);
        const sessionStates: string[] = [];
        const unsubscribe = services.subscribe((event) => {
            if (event.type === "session" && event.session?.chatId === chat.id) sessionStates.push(event.session.state);
        });
        await call(services, "sendMessage", { chatId: chat.id, text: "And the LORD" });
        await firstToken;
        const killed = await services.engine();
        const reloaded = nextEvent(services, (event): event is ApiEvent => event.type === "session" && event.session?.chatId === chat.id && event.session.state === "ready");
        process.kill(killed.pid!, "SIGKILL");
        expect((await failed).error).toEqual({ code: "engine-stopped", message: "The engine process stopped (SIGKILL). It restarts on the next request; your chats are saved." });
        await reloaded;
        unsubscribe();
        expect(sessionStates).toEqual(expect.arrayContaining(["failed", "loading", "evaluating", "ready"]));
        const restarted = await services.engine();
        expect(restarted.pid).not.toBe(killed.pid);
        // the reply streamed before the kill is kept, marked interrupted
        const kept = (await call(services, "getChat", { chatId: chat.id })).messages;
        expect(kept.map((message) => message.role)).toEqual(["user", "assistant"]);
        expect(kept[0]!.text).toBe("And the LORD");
        expect(kept[1]!.stats).toMatchObject({ stopped: true, interrupted: "engine-stopped" });

        await call(services, "updateChat", { chatId: chat.id, sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 8, seed: 1 } });
        const finished = nextEvent(services, done(chat.id));
        await call(services, "regenerate", { chatId: chat.id });
        expect((await finished).message.stats).toMatchObject({ tokens: 8, stopped: false });
        expect((await call(services, "getChat", { chatId: chat.id })).messages.map((message) => message.role)).toEqual(["user", "assistant"]);
    });

    it("compares modes on a probe text against kv-f16 and saves the run", async () => {
        const probe = fs.readFileSync(heldOutTextPath, "utf8").slice(0, 1500);
        const run = await call(services, "startCompare", { modelId, modes: ["kv-f16", "xq-4", "xq-2"], kind: "perplexity", text: probe, maxTokens: 16, contextSize: 256 });
        const finishedRun = (await nextEvent(services, (event): event is Extract<ApiEvent, { type: "compare" }> => event.type === "compare" && event.run.id === run.id && event.run.state !== "running", 120_000)).run;
        expect(finishedRun.state).toBe("done");
        const [f16, xq4, xq2] = finishedRun.results;
        expect(finishedRun.results.map((result) => [result.mode, result.error])).toEqual([["kv-f16", null], ["xq-4", null], ["xq-2", null]]);
        expect(f16!.kldVsF16).toBe(0);
        expect(xq4!.kldVsF16).toBeGreaterThan(0);
        expect(xq2!.kldVsF16).toBeGreaterThan(xq4!.kldVsF16);
        expect(f16!.perplexity).toBeGreaterThan(1);
        const [model] = await call(services, "listModels", {});
        const shape = model!.metadata;
        expect(xq4!.cacheBytes).toBe(estimateCacheBytes(shape, "xq-4", 256));
        expect((await call(services, "listCompareRuns", {}))[0]).toMatchObject({ id: run.id, state: "done" });
    });
});
