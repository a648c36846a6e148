// Whatever the services save, they read again after a restart: every chat, the
// settings, the model index and the unfinished downloads come back as they were,
// and nothing is kept aside as damaged. Property-based (fast-check) over the
// requests the services accept and the replies the engine can return. No engine
// runs here: replies are saved as the session saves them, and the library's
// metadata reader accepts any file.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { startTestFileServer, type TestFileServer } from "../../test-support/file-server.ts";
import { cacheModes } from "../api/cache-modes.ts";
import { maxMessageLength, type ApiMethod, type ApiRequest, type ApiResponse, type ModelMetadata, type RunSettings, type SamplingSettings, type SettingsPatch } from "../api/contract.ts";
import type { ReplyResult } from "../engine/chat.ts";
import { newId } from "./chats.ts";
import { EventBus } from "./events.ts";
import { ModelLibrary } from "./library.ts";
import { Services } from "./services.ts";
import { replyMessage } from "./session.ts";

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "xq-restart-"));

// Every file under `dir` that a read kept aside as damaged.
const damagedFiles = (dir: string): string[] => (fs.readdirSync(dir, { recursive: true }) as string[]).filter((file) => /\.damaged-\d+$/.test(file));

async function call<M extends ApiMethod>(services: Services, method: M, request: ApiRequest<M>): Promise<ApiResponse<M>> {
    const result = await services.handleRequest(method, request);
    if (!result.ok) throw new Error(`${method}: ${result.error.code}: ${result.error.message}`);
    return result.value;
}

// ---- what the requests accept (the contract's ranges) ----

const text = (maxLength: number) => fc.oneof(fc.string({ maxLength: 40, unit: "binary" }), fc.constantFrom(maxLength - 1, maxLength).map((length) => "é".repeat(length)));
const nonEmptyText = (maxLength: number) => text(maxLength).filter((value) => value.trim() !== "");
const runSettings: fc.Arbitrary<RunSettings> = fc.record({
    cacheMode: fc.constantFrom(...cacheModes), contextSize: fc.integer({ min: 64, max: 1 << 20 }), baseLayers: fc.integer({ min: -1, max: 1024 }),
});
const sampling = fc.record({
    temperature: fc.double({ min: 0, max: 5, noNaN: true }), topP: fc.double({ min: 0, max: 1, noNaN: true }), topK: fc.integer({ min: 0, max: 100_000 }),
    maxTokens: fc.integer({ min: 1, max: 1 << 20 }), seed: fc.option(fc.integer({ min: 0, max: 2 ** 31 })),
});
// model ids come from file names: some name a property of every object
const modelId = fc.oneof(fc.constantFrom("constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"), fc.string({ minLength: 1, maxLength: 20 }));
const settingsPatch: fc.Arbitrary<SettingsPatch> = fc.record({
    theme: fc.constantFrom("system", "light", "dark"), threads: fc.integer({ min: 0, max: 1024 }), gpuLayers: fc.integer({ min: -1, max: 1024 }),
    defaultRun: runSettings, memoryBudgetPercent: fc.integer({ min: 1, max: 100 }), defaultSystemPrompt: text(100_000), defaultSampling: sampling,
    modelDefaults: fc.dictionary(modelId, fc.option(runSettings), { maxKeys: 4 }),
}, { requiredKeys: [] });

// What the engine can return: any text (far past a saved message's length too), finite speeds.
const replyResult: fc.Arbitrary<ReplyResult> = fc.record({
    text: fc.oneof(fc.string({ unit: "binary" }), fc.constantFrom(100_001, maxMessageLength, maxMessageLength + 7).map((length) => "x".repeat(length))),
    promptTokens: fc.nat(), tokens: fc.nat(), tokensPerSecond: fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }), stopped: fc.boolean(), contextShifted: fc.boolean(),
});

type Action =
    | { kind: "settings"; patch: SettingsPatch }
    | { kind: "create" }
    | { kind: "update"; chat: number; change: { title?: string; systemPrompt?: string; sampling?: SamplingSettings; runOverride?: RunSettings | null } }
    | { kind: "turn"; chat: number; question: string; reply: ReplyResult };

const action: fc.Arbitrary<Action> = fc.oneof(
    settingsPatch.map((patch) => ({ kind: "settings" as const, patch })),
    fc.constant({ kind: "create" as const }),
    fc.record({
        kind: fc.constant("update" as const), chat: fc.nat(),
        change: fc.record({ title: nonEmptyText(200), systemPrompt: text(100_000), sampling, runOverride: fc.option(runSettings) }, { requiredKeys: [] }),
    }),
    fc.record({ kind: fc.constant("turn" as const), chat: fc.nat(), question: nonEmptyText(100_000), reply: replyResult }),
);

// Applies one action the way the services do it: through their requests, and a turn as
// sendMessage saves the question and the session saves the finished reply.
async function apply(services: Services, step: Action): Promise<void> {
    if (step.kind === "settings") return void await call(services, "updateSettings", step.patch);
    if (step.kind === "create") return void await call(services, "createChat", {});
    const chats = services.chats.list();
    if (chats.length === 0) return;
    const chatId = chats[step.chat % chats.length]!.id;
    if (step.kind === "update") return void await call(services, "updateChat", { chatId, ...step.change });
    const chat = services.chats.get(chatId);
    const question = { id: newId(), role: "user" as const, text: step.question, createdAt: Date.now(), stats: null };
    services.chats.save({ ...chat, messages: [...chat.messages, question, replyMessage(newId(), step.reply, Date.now())] });
}

describe("what the services save reads again after a restart", () => {
    it("chats and settings", async () => {
        await fc.assert(fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 8 }), async (steps) => {
            const appDir = tempDir();
            const services = new Services({ appDir, maxThreads: 2 });
            for (const step of steps) await apply(services, step);
            const restarted = new Services({ appDir, maxThreads: 2 });
            expect(damagedFiles(appDir)).toEqual([]);
            expect(restarted.settings.get()).toEqual(services.settings.get());
            expect(restarted.chats.list()).toEqual(services.chats.list());
            for (const { id } of services.chats.list()) expect(restarted.chats.get(id)).toEqual(services.chats.get(id));
            fs.rmSync(appDir, { recursive: true, force: true });
        }), { numRuns: 40 });
    });

    const anyFile = async (filePath: string): Promise<ModelMetadata> => ({
        name: path.basename(filePath), architecture: "llama", nLayer: 2, nEmbd: 64, nHead: 2, nHeadKv: 2, headDimK: 32, headDimV: 32,
        contextLength: 256, sizeBytes: fs.statSync(filePath).size,
    });
    const libraryIn = (modelsDir: string) => new ModelLibrary(() => modelsDir, new EventBus(), anyFile);
    // a name a file can have here (no "/" or NUL, at most 255 bytes)
    const fileName = fc.string({ minLength: 1, maxLength: 60, unit: "grapheme" })
        .filter((name) => !/[/\0]/.test(name) && name !== "." && name !== ".." && Buffer.byteLength(name) <= 250);

    it("the model index, from imports and rebuilt from the folder", async () => {
        await fc.assert(fc.asyncProperty(fc.uniqueArray(fileName, { minLength: 1, maxLength: 5 }), fc.boolean(), async (names, rebuild) => {
            const root = tempDir();
            const modelsDir = path.join(root, "models");
            fs.mkdirSync(modelsDir);
            const library = libraryIn(modelsDir);
            for (const [n, name] of names.entries()) {
                if (rebuild) {
                    fs.writeFileSync(path.join(modelsDir, `${name}.gguf`), `model ${n}`);
                } else {
                    const source = path.join(root, `source-${n}`, name);
                    fs.mkdirSync(path.dirname(source));
                    fs.writeFileSync(source, `model ${n}`);
                    await library.importFile(source);
                }
            }
            // a damaged index is rebuilt from the .gguf files in the folder
            if (rebuild) fs.writeFileSync(path.join(modelsDir, "index.json"), "[{");
            const listed = await library.list();
            expect(listed).toHaveLength(names.length);
            expect(await libraryIn(modelsDir).list()).toEqual(listed);
            expect(damagedFiles(root)).toEqual(rebuild ? ["models/index.json.damaged-1"] : []);
            fs.rmSync(root, { recursive: true, force: true });
        }), { numRuns: 40 });
    });

    const servers: TestFileServer[] = [];
    afterAll(async () => {
        for (const server of servers) await server.close();
    });

    it("the unfinished downloads, whatever their URLs are named", async () => {
        const files: Record<string, Buffer> = {};
        const server = await startTestFileServer(files, { bytesPerTick: 1000 });
        servers.push(server);
        await fc.assert(fc.asyncProperty(fc.array(fileName, { minLength: 1, maxLength: 3 }), async (names) => {
            const modelsDir = tempDir();
            const library = libraryIn(modelsDir);
            for (const name of names) {
                files[name] = Buffer.alloc(100_000);
                const started = await library.startDownload({ url: server.url(encodeURIComponent(name)) });
                library.pause(started.id);
            }
            const restored = libraryIn(modelsDir).listDownloads();
            expect(restored).toEqual(library.listDownloads().map((download) => expect.objectContaining({ ...download, downloadedBytes: expect.any(Number) })));
            expect(damagedFiles(modelsDir)).toEqual([]);
            for (const download of library.listDownloads()) await library.cancel(download.id);
            fs.rmSync(modelsDir, { recursive: true, force: true });
        }), { numRuns: 25 });
    });
});
