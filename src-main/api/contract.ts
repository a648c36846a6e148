// The API contract: the single source of truth for what the UI may ask of the
// main process, over Electron IPC or the local HTTP server. Zod schemas for
// every request and every saved state, the types inferred from them, and the
// method table that pairs each request schema with its response type. The api
// layer imports nothing outside itself but zod.
import { z } from "zod";
import { cacheModes, type CacheMode, type ModelShape } from "./cache-modes.ts";
import type { ModeAdvice, ModeCheck, ModelCheck } from "./mode-advice.ts";
import type { ApiMethod } from "./methods.ts";

export { apiMethods, ipcChannel, ipcEventChannel, isApiMethod, type ApiMethod } from "./methods.ts";

export type { CacheMode, ModeAdvice, ModeCheck, ModelCheck, ModelShape };

// ---- building blocks ----

const text = (maxLength = 100_000) => z.string().max(maxLength, `is longer than ${maxLength} characters`);
const nonEmptyText = (maxLength = 100_000) => text(maxLength).refine((value) => value.trim() !== "", "must not be empty");
const idSchema = nonEmptyText(200);
// The id of what is saved as <id>.json or staged as <id>.gguf (a chat, a download, a
// compare run): no folder part and no leading dot, so an id read from disk stays in its folder.
export const fileIdSchema = z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/, "must be letters, digits, '.', '_' or '-', not starting with '.'");
// A model's file name in the models folder: a plain name ending in .gguf, never a path.
export const ggufFileNameSchema = nonEmptyText(255).regex(/^[^/\\\0]+\.gguf$/i, "must be a file name ending in .gguf, without a folder");
// A saved message's text. A reply may be far longer than anything typed (max tokens go up
// to 2^20); the session ends a reply at this length, so every saved reply reads back.
export const maxMessageLength = 1 << 22;
const integer = (min: number, max: number) => z.number().int().min(min).max(max);
const timestamp = z.number().int().nonnegative();
export const cacheModeSchema = z.enum(cacheModes);

export interface EngineInfo {
    // Whether the loaded llama.cpp binary's system info carries the XQuant marker.
    xquant: boolean;
    patchSeriesVersion: string;
    systemInfo: string;
    threads: number;
    // where the model's layers run: "cpu", or the GPU backend (cuda, metal, vulkan)
    backend: string;
    // the model architectures the X-cache modes support, as the native build reports them
    xquantArchitectures: string[];
}

export interface SystemMemory {
    totalRamBytes: number;
    freeRamBytes: number;
    // null where the engine runs without a GPU
    totalVramBytes: number | null;
    freeVramBytes: number | null;
    cpuCores: number;
}

// ---- models ----

// Facts read from a GGUF header: the shape the cache formulas need, and more.
export interface ModelMetadata extends ModelShape {
    name: string;
    // the context length the model was trained for
    contextLength: number;
    sizeBytes: number;
}

export interface ModelEntry {
    id: string;
    fileName: string;
    path: string;
    metadata: ModelMetadata;
    // the engine's view of every cache mode for this model
    modes: ModeAdvice[];
    sha256: string | null;
    source: "download" | "import";
}

export interface CatalogEntry {
    id: string;
    name: string;
    // a https URL or an hf: URI
    url: string;
    fileName: string;
    sizeBytes: number;
    sha256: string | null;
    architecture: string;
    nLayer: number;
    attention: "MHA" | "GQA";
    // the cache modes the engine can run on this model's shape (none is measured before a download)
    availableModes: CacheMode[];
    description: string;
}

export const downloadStateSchema = z.enum(["downloading", "paused", "verifying", "done", "failed", "cancelled"]);
export type DownloadState = z.infer<typeof downloadStateSchema>;

export const downloadInfoSchema = z.object({
    id: fileIdSchema,
    url: nonEmptyText(4096),
    fileName: ggufFileNameSchema,
    state: downloadStateSchema,
    downloadedBytes: z.number().nonnegative(),
    totalBytes: z.number().nonnegative(),
    // set when state is "failed"
    error: z.string().nullable(),
    // set when state is "done"
    modelId: z.string().nullable(),
});
export type DownloadInfo = z.infer<typeof downloadInfoSchema>;

// ---- settings ----

export const themeSchema = z.enum(["system", "light", "dark"]);
export type Theme = z.infer<typeof themeSchema>;

export const samplingSettingsSchema = z.object({
    temperature: z.number().min(0).max(5),
    topP: z.number().min(0).max(1),
    topK: integer(0, 100_000),
    maxTokens: integer(1, 1 << 20),
    seed: integer(0, 2 ** 31).nullable(),
});
export type SamplingSettings = z.infer<typeof samplingSettingsSchema>;

// A chat's cache mode: one mode, or "auto": the fastest mode its model's check measured within
// the quality budget whose context fits the memory budget, changed as the chat grows.
export const runCacheModeSchema = z.union([cacheModeSchema, z.literal("auto")]);
export type RunCacheMode = z.infer<typeof runCacheModeSchema>;

// How a model is run: a default per model, overridable per chat.
export const runSettingsSchema = z.object({
    cacheMode: runCacheModeSchema,
    contextSize: integer(64, 1 << 20),
    // XQuant base layers kept at 4 bits; -1 = the engine's default
    baseLayers: integer(-1, 1024),
});
export type RunSettings = z.infer<typeof runSettingsSchema>;
// Run settings with "auto" resolved: what a context is created with.
export type ModeRun = RunSettings & { cacheMode: CacheMode };

export const settingsSchema = z.object({
    theme: themeSchema,
    // 0: the engine's choice (all cores, never more)
    threads: integer(0, 1024),
    // -1: as many layers as fit in VRAM
    gpuLayers: integer(-1, 1024),
    dataDir: nonEmptyText(4096),
    defaultRun: runSettingsSchema,
    // the share of free memory (VRAM where layers are offloaded, else RAM) a model and its
    // context may take: what "fits" means in a check's advice
    memoryBudgetPercent: integer(1, 100),
    // a fixed memory budget in MiB instead of the share above; 0: the share
    memoryBudgetMiB: integer(0, 1 << 30),
    modelDefaults: z.record(z.string(), runSettingsSchema),
    defaultSystemPrompt: text(),
    defaultSampling: samplingSettingsSchema,
});
export type Settings = z.infer<typeof settingsSchema>;

// a model's default set to null is removed
export const settingsPatchSchema = settingsSchema.omit({ modelDefaults: true }).partial()
    .extend({ modelDefaults: z.record(z.string(), runSettingsSchema.nullable()).optional() });
export type SettingsPatch = z.infer<typeof settingsPatchSchema>;

export interface ModeEstimate {
    mode: CacheMode;
    available: boolean;
    recommended: boolean;
    explanation: string;
    // the mode's exact formula
    cacheBytes: number;
    // the context's compute buffers, measured by creating the context as a chat would;
    // null where it was not measured (an unavailable mode, or one whose context failed: see explanation)
    computeBytes: number | null;
    // model weights + cache + compute buffers (weights + cache where they were not measured)
    totalBytes: number;
    // false where computeBytes could not be measured
    fits: boolean;
    // what the model's check measured for this mode; null before a check
    measured: ModeCheck | null;
}

// ---- chats ----

export const chatMessageStatsSchema = z.object({
    tokens: z.number().int().nonnegative(),
    tokensPerSecond: z.number().nonnegative(),
    stopped: z.boolean(),
    // the engine shifted the context during this reply to keep going
    contextShifted: z.boolean(),
    // a reply cut short by something else than Stop, and saved as far as it came: the app
    // quit, or the engine process stopped (its token counts are then unknown, and 0)
    interrupted: z.enum(["app-quit", "engine-stopped"]).nullable().default(null),
});
export type ChatMessageStats = z.infer<typeof chatMessageStatsSchema>;

const roleSchema = z.enum(["user", "assistant"]);

// One message of a conversation, as the engine evaluates it.
export const chatTurnSchema = z.object({ role: roleSchema, text: text() });
export type ChatTurn = z.infer<typeof chatTurnSchema>;

export const chatMessageSchema = z.object({
    id: idSchema,
    role: roleSchema,
    text: text(maxMessageLength),
    createdAt: timestamp,
    stats: chatMessageStatsSchema.nullable(),
});
export type ChatMessage = z.infer<typeof chatMessageSchema>;

// A chat in "auto" moved to another cache mode: when, where in the chat, from what to what, why,
// and how long re-evaluating its history took.
export const modeSwitchSchema = z.object({
    at: timestamp,
    // how many of the chat's messages came before the switch
    afterMessages: z.number().int().nonnegative(),
    from: cacheModeSchema,
    to: cacheModeSchema,
    contextTokens: z.number().int().nonnegative(),
    reason: text(1000),
    seconds: z.number().nonnegative(),
});
export type ModeSwitch = z.infer<typeof modeSwitchSchema>;

export const chatSchema = z.object({
    id: fileIdSchema,
    title: text(200),
    createdAt: timestamp,
    updatedAt: timestamp,
    modelId: z.string().nullable(),
    systemPrompt: text(),
    sampling: samplingSettingsSchema,
    // null: the model's default run settings
    runOverride: runSettingsSchema.nullable(),
    messages: z.array(chatMessageSchema),
    // chats saved before auto mode have none
    modeSwitches: z.array(modeSwitchSchema).default([]),
});
export type Chat = z.infer<typeof chatSchema>;

export type ChatSummary = Pick<Chat, "id" | "title" | "updatedAt" | "modelId">;

// A reply that has started: the chat as it is now, ending with the question,
// and the id that the reply's token events and finished message will carry.
export interface StartedReply {
    chat: Chat;
    replyId: string;
}

// ---- the loaded session and its memory ----

export interface SessionInfo {
    chatId: string;
    modelId: string;
    run: RunSettings;
    // the mode the context runs in (run.cacheMode, or auto's pick); null until it is created
    mode: CacheMode | null;
    // why auto picked that mode; null for a chat in one fixed mode
    autoReason: string | null;
    state: "loading" | "evaluating" | "ready" | "generating" | "failed";
    // 0..1 while loading or re-evaluating the chat history
    progress: number;
    contextTokens: number;
    contextSize: number;
    // how long evaluating the chat's history took when it was last loaded; null until then
    evaluationSeconds: number | null;
    error: string | null;
}

// A metrics sample every 250 ms; the services and the UI each keep the last 10 minutes.
export const metricsIntervalMs = 250;
export const metricsHistory = 2400;

export interface MetricsSample {
    time: number;
    chatId: string | null;
    mode: CacheMode | null;
    contextTokens: number;
    contextSize: number;
    // measured: bytes per cell of the allocated cache × cells in use
    cacheBytesUsed: number;
    // measured: the whole allocated cache
    cacheBytesAllocated: number;
    // measured: the context's compute buffers as reserved for its largest graph
    computeBytes: number;
    // the engine process's resident memory (models, caches and compute buffers live there)
    rssBytes: number;
    vramUsedBytes: number | null;
}

// ---- compare ----

export const compareRequestSchema = z.object({
    modelId: idSchema,
    modes: z.array(cacheModeSchema).min(1).max(cacheModes.length),
    // "prompt": generate from the prompt; "perplexity": score the probe text
    kind: z.enum(["prompt", "perplexity"]),
    text: nonEmptyText(),
    maxTokens: integer(1, 4096),
    contextSize: integer(64, 1 << 20),
});
export type CompareRequest = z.infer<typeof compareRequestSchema>;

export const compareModeResultSchema = z.object({
    mode: cacheModeSchema,
    cacheBytes: z.number().nonnegative(),
    tokensPerSecond: z.number().nonnegative(),
    // KL divergence of next-token distributions against kv-f16, mean over scored tokens
    kldVsF16: z.number(),
    perplexity: z.number().nullable(),
    output: z.string().nullable(),
    error: z.string().nullable(),
});
export type CompareModeResult = z.infer<typeof compareModeResultSchema>;

export const compareRunSchema = z.object({
    id: fileIdSchema,
    createdAt: timestamp,
    request: compareRequestSchema,
    // "stopped": stopped by the user (or the app's quit), with the modes it had finished
    state: z.enum(["running", "done", "failed", "stopped"]),
    results: z.array(compareModeResultSchema),
});
export type CompareRun = z.infer<typeof compareRunSchema>;

// ---- checks ----

// A model's check as it waits, runs and ends ("stopped": by stopCheck; nothing is saved).
export interface CheckStatus {
    modelId: string;
    state: "waiting" | "running" | "done" | "failed" | "stopped";
    // 0..1, and what it is measuring now
    progress: number;
    step: string;
    // the whole check's time, estimated from kv-f16's speed before the rest is measured; null until then
    estimatedSeconds: number | null;
    error: string | null;
}

// ---- one-off completions (the door of the OpenAI-compatible routes) ----

// A conversation answered once, in a context of its own, in the model's run
// settings with the cache mode (if given) changed; sampling fields left out take the settings' defaults.
export const completionRequestSchema = z.object({
    modelId: idSchema,
    systemPrompt: text(),
    // the last one is the user's
    messages: z.array(chatTurnSchema).min(1).refine((turns) => turns.at(-1)?.role === "user", "must end with a message from the user"),
    cacheMode: cacheModeSchema.optional(),
    sampling: samplingSettingsSchema.partial().optional(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

// ---- the method table ----

// Every code a request may fail with. The engine's codes (src-main/engine/errors.ts, where
// each is explained) are among them, and reach the caller unchanged.
export const apiErrorCodes = [
    "bad-request", "unknown-method", "not-found", "engine-unavailable", "download-failed", "busy", "forbidden", "internal",
    // the engine's
    "native-not-built", "stock-binary", "model-not-found", "model-invalid", "unsupported-architecture", "context-failed",
    "state-mode-mismatch", "engine-stopped", "engine-timeout", "context-too-large", "disk-full", "handle-disposed", "engine-internal",
] as const;

export type ApiErrorCode = (typeof apiErrorCodes)[number];

export interface ApiError {
    code: ApiErrorCode;
    message: string;
}

export type ApiResult<T> = { ok: true; value: T } | { ok: false; error: ApiError };

const empty = z.object({});
type Empty = Record<string, never>;
const idOf = <K extends string>(key: K) => z.object({ [key]: idSchema } as Record<K, typeof idSchema>);

// A method's request schema, and its response type carried by the type alone.
interface Method<Request extends z.ZodType, Response> {
    readonly request: Request;
    readonly signature?: (request: z.infer<Request>) => Response;
}

const method = <Response>() => <Request extends z.ZodType>(request: Request): Method<Request, Response> => ({ request });

// Every request the UI can make: method name -> request schema and response. The
// method list, the request types and every handler and transport are derived from it.
export const apiMethodTable = {
    getEngineInfo: method<EngineInfo>()(empty),
    getSystemMemory: method<SystemMemory>()(empty),

    listModels: method<ModelEntry[]>()(empty),
    getCatalog: method<CatalogEntry[]>()(empty),
    listDownloads: method<DownloadInfo[]>()(empty),
    // one of catalogId or url (https or hf:); sha256 optional for a url
    startDownload: method<DownloadInfo>()(z.object({
        catalogId: idSchema.optional(),
        url: nonEmptyText(4096).optional(),
        sha256: z.string().regex(/^[0-9a-f]{64}$/i, "must be 64 hex digits").optional(),
    }).refine((request) => (request.catalogId === undefined) !== (request.url === undefined), 'Give either "catalogId" or "url"')),
    pauseDownload: method<DownloadInfo>()(idOf("downloadId")),
    resumeDownload: method<DownloadInfo>()(idOf("downloadId")),
    cancelDownload: method<DownloadInfo>()(idOf("downloadId")),
    importModel: method<ModelEntry>()(z.object({ path: nonEmptyText(4096) })),
    deleteModel: method<ModelEntry[]>()(idOf("modelId")),

    getSettings: method<Settings>()(empty),
    updateSettings: method<Settings>()(settingsPatchSchema),
    estimateModes: method<ModeEstimate[]>()(z.object({ modelId: idSchema, contextSize: integer(64, 1 << 20), baseLayers: integer(-1, 1024).optional() })),

    listChats: method<ChatSummary[]>()(empty),
    getChat: method<Chat>()(idOf("chatId")),
    createChat: method<Chat>()(z.object({ modelId: idSchema.optional() })),
    deleteChat: method<ChatSummary[]>()(idOf("chatId")),
    updateChat: method<Chat>()(z.object({
        chatId: idSchema,
        title: nonEmptyText(200).optional(),
        modelId: idSchema.optional(),
        systemPrompt: text().optional(),
        sampling: samplingSettingsSchema.optional(),
        runOverride: runSettingsSchema.nullable().optional(),
    })),
    // streams "token" events, then "generation-done"; resolves when generation starts
    sendMessage: method<StartedReply>()(z.object({ chatId: idSchema, text: nonEmptyText() })),
    regenerate: method<StartedReply>()(idOf("chatId")),
    // replaces a user message's text, drops what followed it, and answers again
    editMessage: method<StartedReply>()(z.object({ chatId: idSchema, messageId: idSchema, text: nonEmptyText() })),
    stopGeneration: method<Empty>()(idOf("chatId")),

    // loads the chat's model in its run settings and evaluates its history
    openSession: method<SessionInfo>()(idOf("chatId")),
    getSession: method<SessionInfo | null>()(empty),
    closeSession: method<Empty>()(empty),
    getMetrics: method<MetricsSample[]>()(empty),

    startCompare: method<CompareRun>()(compareRequestSchema),
    // stops a compare run that waits or runs; it ends as "stopped"
    stopCompare: method<Empty>()(idOf("runId")),
    listCompareRuns: method<CompareRun[]>()(empty),

    // measures every cache mode of the model (quality, speed, memory) in the generation
    // queue, emitting "check" events; the models list then carries the advice made from it
    startCheck: method<CheckStatus>()(idOf("modelId")),
    // stops a check that waits or runs; it ends as "stopped"
    stopCheck: method<Empty>()(idOf("modelId")),
    // the checks waiting or running
    listChecks: method<CheckStatus[]>()(empty),
// exactly the methods of methods.ts: a missing or an extra one does not compile
} satisfies Record<ApiMethod, { readonly request: z.ZodType }>;

export type ApiMethods = typeof apiMethodTable;
export type ApiRequest<M extends ApiMethod> = z.infer<ApiMethods[M]["request"]>;
export type ApiResponse<M extends ApiMethod> = ReturnType<NonNullable<ApiMethods[M]["signature"]>>;

// Why a value does not fit its schema, in one line naming the field: the message
// of a typed bad-request error.
export function describeIssues(error: z.ZodError): string {
    return error.issues.map((issue) => {
        const field = issue.path.join(".");
        return field === "" ? issue.message : `"${field}": ${issue.message}`;
    }).join("; ");
}

// What the Electron app menu and the keyboard shortcuts can ask of the UI.
export type AppCommand = "new-chat" | "settings" | "focus-input" | "stop";

// Pushed from main to every open window (IPC) or event stream (HTTP).
export type ApiEvent =
    | { type: "token"; chatId: string; messageId: string; text: string }
    | { type: "generation-done"; chatId: string; message: ChatMessage }
    | { type: "generation-error"; chatId: string; error: ApiError }
    | { type: "context-shift"; chatId: string }
    | { type: "mode-switch"; chatId: string; modeSwitch: ModeSwitch }
    | { type: "chat"; chat: ChatSummary }
    | { type: "session"; session: SessionInfo | null }
    | { type: "download"; download: DownloadInfo }
    | { type: "models"; models: ModelEntry[] }
    | { type: "metrics"; sample: MetricsSample }
    | { type: "compare"; run: CompareRun }
    | { type: "check"; check: CheckStatus }
    // from the Electron app menu
    | { type: "command"; command: AppCommand };

// The object the preload exposes as window.xq, and the HTTP client implements.
export interface XQuantApi {
    call<M extends ApiMethod>(method: M, request: ApiRequest<M>): Promise<ApiResult<ApiResponse<M>>>;
    // returns an unsubscribe function
    onEvent(listener: (event: ApiEvent) => void): () => void;
}

