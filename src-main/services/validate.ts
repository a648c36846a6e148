// Validation of every request at the boundary: a typed error for bad input,
// never a crash. One validator per contract method.
import { cacheModes, isCacheMode, type CacheMode } from "../api/cache-modes.ts";
import type { ApiMethod, ApiRequest, ChatTurn, CompareRequest, CompletionRequest, RunSettings, SamplingSettings, SettingsPatch, Theme } from "../api/contract.ts";
import { RequestError } from "./errors.ts";

type Fields = Record<string, unknown>;

const bad = (message: string): RequestError => new RequestError("bad-request", message);

function string(fields: Fields, key: string, options: { maxLength?: number; allowEmpty?: boolean } = {}): string {
    const value = fields[key];
    if (typeof value !== "string") throw bad(`"${key}" must be a string`);
    if (!options.allowEmpty && value.trim() === "") throw bad(`"${key}" must not be empty`);
    if (value.length > (options.maxLength ?? 100_000)) throw bad(`"${key}" is too long`);
    return value;
}

function optional<T>(fields: Fields, key: string, read: (fields: Fields, key: string) => T): T | undefined {
    return fields[key] === undefined ? undefined : read(fields, key);
}

function number(fields: Fields, key: string, min: number, max: number, integer = true): number {
    const value = fields[key];
    if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
        throw bad(`"${key}" must be ${integer ? "an integer" : "a number"} from ${min} to ${max}`);
    }
    return value;
}

function object(fields: Fields, key: string): Fields {
    const value = fields[key];
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad(`"${key}" must be an object`);
    return value as Fields;
}

function cacheMode(fields: Fields, key: string): CacheMode {
    const value = fields[key];
    if (!isCacheMode(value)) throw bad(`"${key}" must be one of ${cacheModes.join(", ")}`);
    return value;
}

export function runSettings(fields: Fields, key: string): RunSettings {
    const run = object(fields, key);
    return { cacheMode: cacheMode(run, "cacheMode"), contextSize: number(run, "contextSize", 64, 1 << 20), baseLayers: number(run, "baseLayers", -1, 1024) };
}

function sampling(fields: Fields, key: string): SamplingSettings {
    return samplingSettings(object(fields, key));
}

function samplingSettings(value: Fields): SamplingSettings {
    return {
        temperature: number(value, "temperature", 0, 5, false),
        topP: number(value, "topP", 0, 1, false),
        topK: number(value, "topK", 0, 100_000),
        maxTokens: number(value, "maxTokens", 1, 1 << 20),
        seed: value.seed === null ? null : number(value, "seed", 0, 2 ** 31),
    };
}

function turn(fields: Fields, key: string): ChatTurn {
    const value = object(fields, key);
    if (value.role !== "user" && value.role !== "assistant") throw bad(`each of "messages" needs the role "user" or "assistant"`);
    return { role: value.role, text: string(value, "text", { allowEmpty: true }) };
}

// A one-off completion. Sampling fields left out take `defaultSampling`; the merged
// settings then meet the same ranges as a chat's.
export function completionRequest(fields: Fields, defaultSampling: SamplingSettings): CompletionRequest & { sampling: SamplingSettings } {
    const messages = fields.messages;
    if (!Array.isArray(messages) || messages.length === 0) throw bad(`"messages" must be a non-empty list`);
    const turns = messages.map((message: unknown) => turn({ message }, "message"));
    if (turns.at(-1)!.role !== "user") throw bad("The last message must come from the user.");
    const overrides = fields.sampling === undefined ? {} : object(fields, "sampling");
    return {
        modelId: string(fields, "modelId", { maxLength: 200 }),
        systemPrompt: string(fields, "systemPrompt", { allowEmpty: true }),
        messages: turns,
        ...(fields.cacheMode === undefined ? {} : { cacheMode: cacheMode(fields, "cacheMode") }),
        sampling: samplingSettings({ ...defaultSampling, ...overrides }),
    };
}

const themes: readonly Theme[] = ["system", "light", "dark"];

function settingsPatch(fields: Fields): SettingsPatch {
    const patch: SettingsPatch = {};
    if (fields.theme !== undefined) {
        if (!themes.includes(fields.theme as Theme)) throw bad(`"theme" must be one of ${themes.join(", ")}`);
        patch.theme = fields.theme as Theme;
    }
    // threads 0 = the engine's own choice; gpuLayers -1 = as many as fit
    patch.threads = optional(fields, "threads", (f, k) => number(f, k, 0, 1024));
    patch.gpuLayers = optional(fields, "gpuLayers", (f, k) => number(f, k, -1, 1024));
    patch.dataDir = optional(fields, "dataDir", (f, k) => string(f, k, { maxLength: 4096 }));
    patch.defaultRun = optional(fields, "defaultRun", runSettings);
    patch.defaultSystemPrompt = optional(fields, "defaultSystemPrompt", (f, k) => string(f, k, { allowEmpty: true }));
    patch.defaultSampling = optional(fields, "defaultSampling", sampling);
    if (fields.modelDefaults !== undefined) {
        const defaults = object(fields, "modelDefaults");
        patch.modelDefaults = Object.fromEntries(Object.keys(defaults).map((modelId) => [modelId, defaults[modelId] === null ? null : runSettings(defaults, modelId)]));
    }
    for (const key of Object.keys(patch) as (keyof SettingsPatch)[]) if (patch[key] === undefined) delete patch[key];
    return patch;
}

function compareRequest(fields: Fields): CompareRequest {
    const modes = fields.modes;
    if (!Array.isArray(modes) || modes.length === 0 || modes.length > cacheModes.length || !modes.every(isCacheMode)) {
        throw bad(`"modes" must be a non-empty list of cache modes`);
    }
    if (fields.kind !== "prompt" && fields.kind !== "perplexity") throw bad(`"kind" must be "prompt" or "perplexity"`);
    return {
        modelId: string(fields, "modelId"),
        modes: [...new Set(modes)],
        kind: fields.kind,
        text: string(fields, "text"),
        maxTokens: number(fields, "maxTokens", 1, 4096),
        contextSize: number(fields, "contextSize", 64, 1 << 20),
    };
}

const id = <K extends string>(key: K) => (fields: Fields) => ({ [key]: string(fields, key, { maxLength: 200 }) }) as Record<K, string>;
const empty = () => ({});

type Validators = { [M in ApiMethod]: (fields: Fields) => ApiRequest<M> };

export const validators: Validators = {
    getEngineInfo: empty,
    getSystemMemory: empty,
    listModels: empty,
    getCatalog: empty,
    listDownloads: empty,
    startDownload: (fields) => {
        const request = {
            catalogId: optional(fields, "catalogId", (f, k) => string(f, k, { maxLength: 200 })),
            url: optional(fields, "url", (f, k) => string(f, k, { maxLength: 4096 })),
            sha256: optional(fields, "sha256", (f, k) => string(f, k, { maxLength: 64 })),
        };
        if ((request.catalogId === undefined) === (request.url === undefined)) throw bad(`Give either "catalogId" or "url"`);
        if (request.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(request.sha256)) throw bad(`"sha256" must be 64 hex digits`);
        return Object.fromEntries(Object.entries(request).filter(([, value]) => value !== undefined));
    },
    pauseDownload: id("downloadId"),
    resumeDownload: id("downloadId"),
    cancelDownload: id("downloadId"),
    importModel: (fields) => ({ path: string(fields, "path", { maxLength: 4096 }) }),
    deleteModel: id("modelId"),
    getSettings: empty,
    updateSettings: settingsPatch,
    estimateModes: (fields) => ({
        modelId: string(fields, "modelId"),
        contextSize: number(fields, "contextSize", 64, 1 << 20),
        ...(fields.baseLayers === undefined ? {} : { baseLayers: number(fields, "baseLayers", -1, 1024) }),
    }),
    listChats: empty,
    getChat: id("chatId"),
    createChat: (fields) => (fields.modelId === undefined ? {} : { modelId: string(fields, "modelId") }),
    deleteChat: id("chatId"),
    updateChat: (fields) => {
        const request = {
            chatId: string(fields, "chatId"),
            title: optional(fields, "title", (f, k) => string(f, k, { maxLength: 200 })),
            modelId: optional(fields, "modelId", (f, k) => string(f, k)),
            systemPrompt: optional(fields, "systemPrompt", (f, k) => string(f, k, { allowEmpty: true })),
            sampling: optional(fields, "sampling", sampling),
            runOverride: fields.runOverride === null ? null : optional(fields, "runOverride", runSettings),
        };
        return Object.fromEntries(Object.entries(request).filter(([, value]) => value !== undefined)) as typeof request;
    },
    sendMessage: (fields) => ({ chatId: string(fields, "chatId"), text: string(fields, "text") }),
    regenerate: id("chatId"),
    editMessage: (fields) => ({ chatId: string(fields, "chatId"), messageId: string(fields, "messageId"), text: string(fields, "text") }),
    stopGeneration: id("chatId"),
    openSession: id("chatId"),
    getSession: empty,
    closeSession: empty,
    getMetrics: empty,
    startCompare: compareRequest,
    listCompareRuns: empty,
};
