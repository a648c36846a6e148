// The services behind the contract. They know neither the transport (IPC or
// HTTP) nor the UI; every front door calls handleRequest (or, for one-off
// completions, planCompletion and complete) and subscribes to events.
import os from "node:os";
import path from "node:path";
import { estimateCacheBytes, fitsInMemory, type CacheMode } from "../api/cache-modes.ts";
import { chatSummary } from "../api/chat-summary.ts";
import type { ApiMethod, ApiRequest, ApiResponse, ApiResult, Chat, ModeAdvice, ModeEstimate, ModelMetadata, StartedReply } from "../api/contract.ts";
import { apiMethodTable, completionRequestSchema, isApiMethod, samplingSettingsSchema } from "../api/contract.ts";
import { adviseModes, withBudget, type ModelCheck } from "../api/mode-advice.ts";
import { resolveRunSettings } from "../api/run-settings.ts";
import type { ReplyResult } from "../engine/chat.ts";
import { defaultThreads } from "../engine/engine.ts";
import type { EngineTimeouts } from "../engine/operations.ts";
import { RemoteEngine, type SpawnEngine } from "../engine/remote.ts";
import { EngineError } from "../engine/errors.ts";
import { catalog, knownModels } from "./catalog.ts";
import { ChatStore, newId } from "./chats.ts";
import { CompareService } from "./compare.ts";
import { CheckService, defaultCheckPlan, ModelCheckStore, type CheckSize } from "./model-check.ts";
import { RequestError, toRequestError } from "./errors.ts";
import { EventBus, type EventListener } from "./events.ts";
import { ModelLibrary } from "./library.ts";
import { GenerationQueue } from "./queue.ts";
import { SessionService, type CompletionPlan } from "./session.ts";
import { SettingsStore } from "./settings.ts";
import { checked } from "./validate.ts";

type Handlers = { [M in ApiMethod]: (request: ApiRequest<M>) => Promise<ApiResponse<M>> };

export interface ServicesOptions {
    // settings, chats and compare runs live here; models under settings.dataDir
    appDir?: string;
    maxThreads?: number;
    // generation requests held at once (the running one included); past it, requests are refused as busy
    generationQueueCapacity?: number;
    // models kept loaded at once; the least recently used is unloaded first
    maxLoadedModels?: number;
    // how the engine process starts: a Node child process unless given (Electron passes a utility process)
    spawnEngine?: SpawnEngine;
    // the watchdog's limits on engine calls (defaultEngineTimeouts unless given)
    engineTimeouts?: Partial<EngineTimeouts>;
    // how much a model check measures (defaultCheckPlan unless given)
    checkPlan?: Partial<CheckSize>;
}

// Where the app keeps its data outside Electron (Electron passes its userData folder).
export function defaultAppDir(): string {
    return process.env.XQ_APP_DIR ?? path.join(process.env.XDG_DATA_HOME ?? path.join(os.homedir(), ".local", "share"), "xquant-desktop");
}

export class Services {
    readonly events = new EventBus();
    readonly settings: SettingsStore;
    readonly chats: ChatStore;
    readonly library: ModelLibrary;
    readonly session: SessionService;
    readonly compare: CompareService;
    readonly checks: ModelCheckStore;
    readonly check: CheckService;
    private enginePromise: Promise<RemoteEngine> | null = null;
    private readonly spawnEngine: SpawnEngine | undefined;
    private readonly engineTimeouts: Partial<EngineTimeouts> | undefined;
    private readonly maxThreads: number;
    readonly appDir: string;

    constructor(options: ServicesOptions = {}) {
        const appDir = options.appDir ?? defaultAppDir();
        this.appDir = appDir;
        this.maxThreads = options.maxThreads ?? defaultThreads();
        this.spawnEngine = options.spawnEngine;
        this.engineTimeouts = options.engineTimeouts;
        this.settings = new SettingsStore(appDir, this.maxThreads);
        this.chats = new ChatStore(appDir);
        this.checks = new ModelCheckStore(appDir);
        this.library = new ModelLibrary(() => path.join(this.settings.get().dataDir, "models"), this.events,
            async (filePath) => (await this.engine()).readGgufMetadata(filePath), () => knownModels(appDir),
            (modelId, metadata, sha256) => this.modeAdvice(modelId, metadata, sha256));
        const engine = () => this.engine();
        const queue = new GenerationQueue(options.generationQueueCapacity ?? 4);
        const modelCheck = async (modelId: string) => this.savedCheck((await this.library.get(modelId)).sha256);
        this.session = new SessionService(engine, this.chats, this.library, this.settings, this.events, queue, options.maxLoadedModels ?? 1, modelCheck);
        this.compare = new CompareService(appDir, this.session, this.events, queue);
        this.check = new CheckService({ store: this.checks, library: this.library, session: this.session, engine, queue, events: this.events,
            budgetBytes: () => this.memoryBudgetBytes(), plan: { ...defaultCheckPlan, ...options.checkPlan } });
    }

    // Starts the engine process once; a failed start is retried on the next request.
    // An engine process that stops (a crash, an abort, an out-of-memory kill) is
    // replaced by the next request, and the session reloads its chat in the new one.
    engine(): Promise<RemoteEngine> {
        this.enginePromise ??= RemoteEngine.start({ maxThreads: this.maxThreads, spawn: this.spawnEngine, timeouts: this.engineTimeouts }).then((engine) => {
            engine.onStop((reason) => {
                this.enginePromise = null;
                this.session.engineStopped(reason);
            });
            return engine;
        }, (error: unknown) => {
            this.enginePromise = null;
            throw error instanceof EngineError ? toRequestError(error) : new RequestError("engine-unavailable", `The engine could not start: ${(error as Error).message}`);
        });
        return this.enginePromise;
    }

    private readonly handlers: Handlers = {
        getEngineInfo: async () => (await this.engine()).info,
        getSystemMemory: async () => {
            const vram = await (await this.engine()).vram();
            return { totalRamBytes: os.totalmem(), freeRamBytes: os.freemem(), totalVramBytes: vram?.totalBytes ?? null, freeVramBytes: vram?.freeBytes ?? null, cpuCores: os.availableParallelism() };
        },

        listModels: () => this.library.list(),
        getCatalog: async () => catalog(this.appDir, (await this.engine()).info.xquantArchitectures),
        listDownloads: async () => this.library.listDownloads(),
        startDownload: (request) => this.library.startDownload(request),
        pauseDownload: async ({ downloadId }) => this.library.pause(downloadId),
        resumeDownload: async ({ downloadId }) => this.library.resume(downloadId),
        cancelDownload: ({ downloadId }) => this.library.cancel(downloadId),
        importModel: ({ path: filePath }) => this.library.importFile(filePath),
        deleteModel: async ({ modelId }) => {
            await this.session.forgetModel(modelId);
            return this.library.delete(modelId);
        },

        getSettings: async () => this.settings.get(),
        updateSettings: async (patch) => {
            const settings = this.settings.update(patch);
            // each model's advice judges its check against the memory budget
            if (patch.memoryBudgetMiB !== undefined || patch.memoryBudgetPercent !== undefined || patch.gpuLayers !== undefined) {
                this.events.emit({ type: "models", models: await this.library.list() });
            }
            return settings;
        },
        estimateModes: async ({ modelId, contextSize, baseLayers }) => this.estimateModes(modelId, contextSize, baseLayers),

        listChats: async () => this.chats.list(),
        getChat: async ({ chatId }) => this.chats.get(chatId),
        createChat: async ({ modelId }) => this.createChat(modelId),
        deleteChat: async ({ chatId }) => {
            this.session.stop(chatId);
            if (this.session.info()?.chatId === chatId) await this.session.close();
            this.chats.delete(chatId);
            return this.chats.list();
        },
        updateChat: async ({ chatId, ...change }) => {
            if (change.modelId !== undefined) await this.library.get(change.modelId);
            return this.saveChat({ ...this.chats.get(chatId), ...change });
        },
        sendMessage: async ({ chatId, text }) => {
            const chat = this.chatWithModel(chatId);
            const title = chat.messages.length === 0 ? text.trim().split("\n")[0]!.slice(0, 60) : chat.title;
            return this.reply({ ...chat, title, messages: [...chat.messages, { id: newId(), role: "user", text, createdAt: Date.now(), stats: null }] });
        },
        regenerate: async ({ chatId }) => {
            const chat = this.chatWithModel(chatId);
            const lastUser = chat.messages.findLastIndex((message) => message.role === "user");
            if (lastUser < 0) throw new RequestError("bad-request", "There is no message to answer yet.");
            return this.reply({ ...chat, messages: chat.messages.slice(0, lastUser + 1) });
        },
        editMessage: async ({ chatId, messageId, text }) => {
            const chat = this.chatWithModel(chatId);
            const index = chat.messages.findIndex((message) => message.id === messageId);
            if (index < 0 || chat.messages[index]!.role !== "user") throw new RequestError("not-found", "Only your own messages can be edited, and this one is gone.");
            return this.reply({ ...chat, messages: [...chat.messages.slice(0, index), { ...chat.messages[index]!, text, createdAt: Date.now() }] });
        },
        stopGeneration: async ({ chatId }) => {
            this.session.stop(chatId);
            return {};
        },

        openSession: async ({ chatId }) => this.session.open(chatId),
        getSession: async () => this.session.info(),
        closeSession: async () => {
            await this.session.close();
            return {};
        },
        getMetrics: async () => this.session.metrics(),

        startCompare: async (request) => {
            await this.library.get(request.modelId);
            return this.compare.start(request);
        },
        stopCompare: async ({ runId }) => {
            this.compare.stop(runId);
            return {};
        },
        listCompareRuns: async () => this.compare.list(),

        startCheck: ({ modelId }) => this.check.start(modelId),
        stopCheck: async ({ modelId }) => {
            this.check.stop(modelId);
            return {};
        },
        listChecks: async () => this.check.list(),
    };

    private createChat(modelId: string | undefined): Chat {
        const settings = this.settings.get();
        const now = Date.now();
        return this.saveChat({
            id: newId(), title: "New chat", createdAt: now, updatedAt: now, modelId: modelId ?? null,
            systemPrompt: settings.defaultSystemPrompt, sampling: settings.defaultSampling, runOverride: null, messages: [], modeSwitches: [],
        });
    }

    private saveChat(chat: Chat): Chat {
        const saved = this.chats.save(chat);
        this.events.emit({ type: "chat", chat: chatSummary(saved) });
        return saved;
    }

    private chatWithModel(chatId: string): Chat {
        const chat = this.chats.get(chatId);
        if (chat.modelId === null) throw new RequestError("bad-request", "Pick a model for this chat first (Models, then choose it in the chat).");
        return chat;
    }

    // Once the generation queue admits it, saves the chat and answers its last
    // (user) message with streamed tokens.
    private async reply(chat: Chat): Promise<StartedReply> {
        return this.session.startReply(chat, (admitted) => this.saveChat(admitted));
    }

    // Every cache mode's advice for a model: from its check by this engine where one was saved
    // (the fastest mode within the quality budget that fits is recommended), else shape facts
    // and "not measured". By default at the model's run context, fitting as the check measured.
    private async modeAdvice(modelId: string, metadata: ModelMetadata, sha256: string | null, contextSize?: number, fits?: (mode: CacheMode) => boolean): Promise<ModeAdvice[]> {
        const { info } = await this.engine();
        const check = await this.savedCheck(sha256);
        const run = resolveRunSettings(this.settings.get(), modelId, null, metadata.contextLength);
        return adviseModes(metadata, info.xquantArchitectures, check, contextSize ?? run.contextSize, fits);
    }

    // The model's check by this engine, judged against today's memory budget; null if it has none.
    private async savedCheck(sha256: string | null): Promise<ModelCheck | null> {
        const saved = sha256 === null ? null : this.checks.get(sha256, (await this.engine()).info);
        return saved === null ? null : withBudget(saved, await this.memoryBudgetBytes());
    }

    // The memory a model and its context may take: the settings' fixed budget, else their share
    // of the free memory the model's layers live in (VRAM where they are offloaded, else RAM).
    private async memoryBudgetBytes(): Promise<number> {
        const { gpuLayers, memoryBudgetPercent, memoryBudgetMiB } = this.settings.get();
        if (memoryBudgetMiB > 0) return memoryBudgetMiB * 2 ** 20;
        const vram = gpuLayers !== 0 ? await (await this.engine()).vram() : null;
        return (memoryBudgetPercent / 100) * (vram?.freeBytes ?? os.freemem());
    }

    // Weights + the mode's exact cache + its compute buffers as the engine measured them
    // (see SessionService.measureContexts), against free VRAM where layers are offloaded, else RAM.
    // A mode whose context could not be made says why, as not available or as not fitting.
    // The recommendation is made at this context, among the modes that fit here.
    private async estimateModes(modelId: string, contextSize: number, baseLayers = -1): Promise<ModeEstimate[]> {
        const model = await this.library.get(modelId);
        const modes = model.modes.filter((advice) => advice.available).map((advice) => advice.mode);
        const measured = await this.session.measureContexts(modelId, modes.map((cacheMode) => ({ cacheMode, contextSize, baseLayers })));
        const gpu = this.settings.get().gpuLayers !== 0 ? await (await this.engine()).vram() : null;
        const freeBytes = gpu?.freeBytes ?? os.freemem();
        const estimates = model.modes.map((advice) => {
            const cacheBytes = estimateCacheBytes(model.metadata, advice.mode, contextSize, baseLayers);
            const weightsAndCache = model.metadata.sizeBytes + cacheBytes;
            const estimate = { mode: advice.mode, cacheBytes };
            const memory = measured[modes.indexOf(advice.mode)];
            if (memory?.ok) {
                const { computeBytes } = memory.value;
                const fits = fitsInMemory([model.metadata.sizeBytes, cacheBytes, computeBytes], freeBytes);
                return { ...estimate, available: true, error: null, computeBytes, totalBytes: weightsAndCache + computeBytes, fits };
            }
            // not measured: an unavailable mode, or one whose context could not be made
            const available = advice.available && memory?.error.code !== "unsupported-architecture";
            return { ...estimate, available, error: memory?.error.message ?? null, computeBytes: null, totalBytes: weightsAndCache, fits: false };
        });
        const fits = (mode: CacheMode) => estimates.find((estimate) => estimate.mode === mode)?.fits ?? false;
        const advice = await this.modeAdvice(modelId, model.metadata, model.sha256, contextSize, fits);
        return estimates.map(({ error, ...estimate }, index) => {
            const { recommended, reason, measured } = advice[index]!;
            return { ...estimate, recommended: estimate.available && recommended, explanation: error ?? reason, measured };
        });
    }

    subscribe(listener: EventListener): () => void {
        return this.events.subscribe(listener);
    }

    // Validates the method and argument at the boundary; never throws.
    handleRequest<M extends ApiMethod>(method: M, request: unknown): Promise<ApiResult<ApiResponse<M>>>;
    handleRequest(method: string, request: unknown): Promise<ApiResult<unknown>>;
    async handleRequest(method: string, request: unknown): Promise<ApiResult<unknown>> {
        if (!isApiMethod(method)) return { ok: false, error: { code: "unknown-method", message: `Unknown method: ${method}` } };
        return answer(async () => {
            const argument = checked(apiMethodTable[method].request, request);
            const handler = this.handlers[method] as (request: unknown) => Promise<unknown>;
            return handler(argument);
        });
    }

    // A one-off completion, validated like every request and resolved to the
    // model's run settings (with the request's cache mode, if any) and the default sampling.
    planCompletion(request: unknown): Promise<ApiResult<CompletionPlan>> {
        return answer(async () => {
            const settings = this.settings.get();
            const { modelId, systemPrompt, messages, cacheMode, sampling: overrides } = checked(completionRequestSchema, request);
            // the merged settings meet the same ranges as a chat's
            const sampling = checked(samplingSettingsSchema, { ...settings.defaultSampling, ...overrides });
            const model = await this.library.get(modelId);
            const run = resolveRunSettings(settings, modelId, null, model.metadata.contextLength);
            return { modelId, systemPrompt, messages, sampling, run: { ...run, cacheMode: cacheMode ?? run.cacheMode } };
        });
    }

    // Generates a planned completion, streaming its text, once the generation queue
    // admits it (refused as busy when the queue is full).
    complete(plan: CompletionPlan, onText: (text: string) => void, signal: AbortSignal): Promise<ApiResult<ReplyResult>> {
        return answer(() => this.session.complete(plan, onText, signal));
    }

    // Stops every compare run and reply, and saves what the replies had generated, before the engine goes.
    async dispose(): Promise<void> {
        this.compare.dispose();
        this.check.stopAll();
        await this.session.dispose();
        const engine = await this.enginePromise?.catch(() => null);
        await engine?.dispose();
    }
}

// Runs one request: its value, or the typed error it threw (engine errors keep
// their kind: invalid model, unsupported architecture, …).
async function answer<T>(run: () => Promise<T>): Promise<ApiResult<T>> {
    try {
        return { ok: true, value: await run() };
    } catch (error) {
        return { ok: false, error: toRequestError(error).error };
    }
}
