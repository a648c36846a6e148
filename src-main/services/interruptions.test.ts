// What the services do when work is cut short: an engine call that hangs (a FIFO in the
// models folder, a stopped engine process), an engine that crashes mid-reply, the app's
// quit mid-reply, and a compare run stopped by the user. Real engine, real fixture model;
// the faults are made at the process and file level (SIGSTOP, SIGKILL, mkfifo).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fixturePath } from "../../fixtures/fixtures.ts";
import type { ApiEvent, ChatMessage, CompareRun } from "../api/contract.ts";
import { ChatStore } from "./chats.ts";
import { call, nextEvent } from "./service-calls.ts";
import { Services } from "./services.ts";

const limitMs = 1500;
const engineTimeouts = { callMs: limitMs, progressMs: limitMs, heavyMs: limitMs };
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "xq-interruptions-"));

const tokenOf = (chatId: string) => (event: ApiEvent): event is Extract<ApiEvent, { type: "token" }> => event.type === "token" && event.chatId === chatId;
const doneOf = (chatId: string) => (event: ApiEvent): event is Extract<ApiEvent, { type: "generation-done" }> => event.type === "generation-done" && event.chatId === chatId;
const errorOf = (chatId: string) => (event: ApiEvent): event is Extract<ApiEvent, { type: "generation-error" }> => event.type === "generation-error" && event.chatId === chatId;
const compareEnded = (runId: string) => (event: ApiEvent): event is { type: "compare"; run: CompareRun } => event.type === "compare" && event.run.id === runId && event.run.state !== "running";

// Services on a fresh folder with the fixture model imported, and replies long enough to interrupt.
async function servicesWithModel(appDir = tempDir()): Promise<{ services: Services; modelId: string; appDir: string }> {
    const services = new Services({ appDir, maxThreads: 2, engineTimeouts });
    await call(services, "updateSettings", { defaultSampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 3000, seed: 1 }, defaultRun: { cacheMode: "kv-f16", contextSize: 4096, baseLayers: -1 } });
    const { id } = await call(services, "importModel", { path: fixturePath("mha-random-f16") });
    return { services, modelId: id, appDir };
}

// A chat whose reply is streaming: it resolves once some text has come.
async function streamingReply(services: Services, modelId: string): Promise<{ chatId: string; replyId: string; streamed: () => string }> {
    const chat = await call(services, "createChat", { modelId });
    let text = "";
    services.subscribe((event) => {
        if (event.type === "token" && event.chatId === chat.id) text += event.text;
    });
    const tokens = nextEvent(services, tokenOf(chat.id));
    const { replyId } = await call(services, "sendMessage", { chatId: chat.id, text: "In the beginning" });
    await tokens;
    return { chatId: chat.id, replyId, streamed: () => text };
}

const savedReply = (appDir: string, chatId: string): ChatMessage | undefined => new ChatStore(appDir).get(chatId).messages.find((message) => message.role === "assistant");

describe("interrupted work", () => {
    let services: Services | null = null;
    afterEach(async () => {
        await services?.dispose();
        services = null;
    });

    it("reads a FIFO named .gguf in the models folder once: the hung read times out, the engine restarts, and the model list answers", async () => {
        const setup = await servicesWithModel();
        services = setup.services;
        const modelsDir = path.join(services.settings.get().dataDir, "models");
        execFileSync("mkfifo", [path.join(modelsDir, "x.gguf")]);
        const index = JSON.parse(fs.readFileSync(path.join(modelsDir, "index.json"), "utf8")) as unknown[];
        fs.writeFileSync(path.join(modelsDir, "index.json"), JSON.stringify([...index, { id: "x", fileName: "x.gguf", sha256: null, source: "import" }]));
        const firstPid = (await services.engine()).pid;

        const started = performance.now();
        expect((await call(services, "listModels", {})).map((model) => model.id)).toEqual([setup.modelId]);
        expect(performance.now() - started).toBeLessThan(limitMs + 2000);
        const secondPid = (await services.engine()).pid;
        expect(secondPid).not.toBe(firstPid);

        // remembered: neither a list nor a completion reads the FIFO again (a read would hang, and restart the engine)
        expect((await call(services, "listModels", {})).map((model) => model.id)).toEqual([setup.modelId]);
        const plan = await services.planCompletion({ modelId: setup.modelId, systemPrompt: "", messages: [{ role: "user", text: "In the beginning" }], sampling: { maxTokens: 4 } });
        expect(plan.ok).toBe(true);
        expect(await services.complete(plan.ok ? plan.value : (null as never), () => {}, new AbortController().signal)).toMatchObject({ ok: true });
        expect((await services.engine()).pid).toBe(secondPid);
        // and a model that cannot be read can still be deleted
        expect((await call(services, "deleteModel", { modelId: "x" })).map((model) => model.id)).toEqual([setup.modelId]);
        expect(fs.existsSync(path.join(modelsDir, "x.gguf"))).toBe(false);
    });

    it("reads a GGUF that crashes the reader once: the engine dies once, not on every list, load or completion", async () => {
        const setup = await servicesWithModel();
        services = setup.services;
        const modelsDir = path.join(services.settings.get().dataDir, "models");
        const bytes = Buffer.from(fs.readFileSync(fixturePath("mha-random-f16")));
        // the first key's length, between 2^31 and 2^32: node-llama-cpp hands it to a native fs read, which asserts and aborts
        bytes.writeBigUInt64LE(3_000_000_000n, 24);
        fs.writeFileSync(path.join(modelsDir, "crashes.gguf"), bytes);
        const index = JSON.parse(fs.readFileSync(path.join(modelsDir, "index.json"), "utf8")) as unknown[];
        fs.writeFileSync(path.join(modelsDir, "index.json"), JSON.stringify([...index, { id: "crashes", fileName: "crashes.gguf", sha256: null, source: "import" }]));
        const pids = new Set([(await services.engine()).pid]);
        expect((await call(services, "listModels", {})).map((model) => model.id)).toEqual([setup.modelId]);
        pids.add((await services.engine()).pid);
        expect(pids.size).toBe(2);
        for (let round = 0; round < 3; round++) {
            expect((await call(services, "listModels", {})).map((model) => model.id)).toEqual([setup.modelId]);
            expect(await services.planCompletion({ modelId: "crashes", systemPrompt: "", messages: [{ role: "user", text: "hi" }] })).toMatchObject({ ok: false, error: { code: "model-invalid" } });
            const plan = await services.planCompletion({ modelId: setup.modelId, systemPrompt: "", messages: [{ role: "user", text: "In the beginning" }], sampling: { maxTokens: 2 } });
            expect(await services.complete(plan.ok ? plan.value : (null as never), () => {}, new AbortController().signal)).toMatchObject({ ok: true });
            pids.add((await services.engine()).pid);
        }
        expect(pids.size).toBe(2);
    });

    it("remembers a damaged .gguf as refused, and reads it again once it changes", async () => {
        const setup = await servicesWithModel();
        services = setup.services;
        const modelsDir = path.join(services.settings.get().dataDir, "models");
        const bad = path.join(modelsDir, "later.gguf");
        // cut short: the header is whole, the tensors are not
        fs.writeFileSync(bad, fs.readFileSync(fixturePath("mha-random-f16")).subarray(0, 1 << 20));
        const index = JSON.parse(fs.readFileSync(path.join(modelsDir, "index.json"), "utf8")) as unknown[];
        fs.writeFileSync(path.join(modelsDir, "index.json"), JSON.stringify([...index, { id: "later", fileName: "later.gguf", sha256: null, source: "import" }]));
        expect((await call(services, "listModels", {})).map((model) => model.id)).toEqual([setup.modelId]);
        const refused = await services.planCompletion({ modelId: "later", systemPrompt: "", messages: [{ role: "user", text: "hi" }] });
        expect(refused).toMatchObject({ ok: false, error: { code: "model-invalid", message: expect.stringMatching(/^later\.gguf cannot be used: later\.gguf is truncated/) } });
        fs.copyFileSync(fixturePath("mha-random-f16"), bad);
        expect((await call(services, "listModels", {})).map((model) => model.id).sort()).toEqual([setup.modelId, "later"].sort());
    });

    it("ends a reply whose engine stops answering with engine-timeout, keeps what it had streamed as interrupted, and restarts the engine", async () => {
        const setup = await servicesWithModel();
        services = setup.services;
        const { chatId, replyId, streamed } = await streamingReply(services, setup.modelId);
        const pid = (await services.engine()).pid!;
        const failed = nextEvent(services, errorOf(chatId));
        const saved = nextEvent(services, doneOf(chatId));
        process.kill(pid, "SIGSTOP");
        const stoppedAt = performance.now();
        expect((await failed).error).toMatchObject({ code: "engine-timeout" });
        expect(performance.now() - stoppedAt).toBeLessThan(limitMs + 1000);
        const { message } = await saved;
        expect(message).toMatchObject({ id: replyId, text: streamed(), stats: { stopped: true, interrupted: "engine-stopped" } });
        expect(message.text.length).toBeGreaterThan(0);
        expect(savedReply(setup.appDir, chatId)).toEqual(message);
        expect((await services.engine()).pid).not.toBe(pid);
    });

    it("keeps what a reply had streamed when the engine process crashes", async () => {
        const setup = await servicesWithModel();
        services = setup.services;
        const { chatId, streamed } = await streamingReply(services, setup.modelId);
        const failed = nextEvent(services, errorOf(chatId));
        const saved = nextEvent(services, doneOf(chatId));
        process.kill((await services.engine()).pid!, "SIGKILL");
        expect((await failed).error).toMatchObject({ code: "engine-stopped", message: expect.stringContaining("SIGKILL") });
        expect((await saved).message).toMatchObject({ text: streamed(), stats: { interrupted: "engine-stopped" } });
        expect(savedReply(setup.appDir, chatId)).toMatchObject({ text: streamed(), stats: { interrupted: "engine-stopped" } });
    });

    it("saves a reply in progress when the app quits, marked as interrupted by the quit", async () => {
        const setup = await servicesWithModel();
        const { chatId, replyId } = await streamingReply(setup.services, setup.modelId);
        await setup.services.dispose();
        const message = savedReply(setup.appDir, chatId);
        expect(message).toMatchObject({ id: replyId, stats: { stopped: true, interrupted: "app-quit" } });
        expect(message!.stats!.tokens).toBeGreaterThan(0);
        expect(message!.text.length).toBeGreaterThan(0);
    });

    it("stops a compare run on request: it ends as stopped, saved, and frees its place in the queue", async () => {
        const setup = await servicesWithModel();
        services = setup.services;
        const run = await call(services, "startCompare", { modelId: setup.modelId, modes: ["xq-4", "xq-2", "kv-q8_0"], kind: "prompt", text: "In the beginning", maxTokens: 4096, contextSize: 8192 });
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const ended = nextEvent(services, compareEnded(run.id), 5000);
        const asked = performance.now();
        expect(await call(services, "stopCompare", { runId: run.id })).toEqual({});
        expect((await ended).run).toMatchObject({ state: "stopped", results: [] });
        expect(performance.now() - asked).toBeLessThan(1000);
        expect((await call(services, "listCompareRuns", {})).find((saved) => saved.id === run.id)).toMatchObject({ state: "stopped" });
        expect(await services.handleRequest("stopCompare", { runId: run.id })).toMatchObject({ ok: false, error: { code: "not-found" } });
        expect(await services.handleRequest("stopCompare", { runId: 7 })).toMatchObject({ ok: false, error: { code: "bad-request" } });
        // the queue is free: a completion runs at once
        const plan = await services.planCompletion({ modelId: setup.modelId, systemPrompt: "", messages: [{ role: "user", text: "hi" }], sampling: { maxTokens: 2 } });
        expect(await services.complete(plan.ok ? plan.value : (null as never), () => {}, new AbortController().signal)).toMatchObject({ ok: true });
    });
});
