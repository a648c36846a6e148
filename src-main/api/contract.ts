// The API contract: the single source of truth for what the UI may ask of the
// main process, over Electron IPC or the local HTTP server. Types only, plus the
// method list; nothing here imports node or electron (engine types only, erased at build).
import type { CacheMode, ModeAdvice } from "../engine/cache-modes.ts";
import type { GgufMetadata } from "../engine/models.ts";

export type { CacheMode, ModeAdvice };

export interface EngineInfo {
    // Whether the loaded llama.cpp binary carries the XQuant marker.
    xquant: boolean;
    patchSeriesVersion: string;
    systemInfo: string;
    threads: number;
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

// Facts read from a GGUF header.
export type ModelMetadata = GgufMetadata;

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
    // the cache modes the engine recommends for this model's shape
    recommendedModes: CacheMode[];
    description: string;
}

export type DownloadState = "downloading" | "paused" | "verifying" | "done" | "failed" | "cancelled";

export interface DownloadInfo {
    id: string;
    url: string;
    fileName: string;
    state: DownloadState;
    downloadedBytes: number;
    totalBytes: number;
    // set when state is "failed"
    error: string | null;
    // set when state is "done"
    modelId: string | null;
}

// ---- settings ----

export type Theme = "system" | "light" | "dark";

export interface SamplingSettings {
    temperature: number;
    topP: number;
    topK: number;
    maxTokens: number;
    seed: number | null;
}

// How a model is run: a default per model, overridable per chat.
export interface RunSettings {
    cacheMode: CacheMode;
    contextSize: number;
    // XQuant base layers kept at 4 bits; -1 = the engine's default
    baseLayers: number;
}

export interface Settings {
    theme: Theme;
    // 0: the engine's choice (all cores, never more)
    threads: number;
    // -1: as many layers as fit in VRAM
    gpuLayers: number;
    dataDir: string;
    defaultRun: RunSettings;
    modelDefaults: Record<string, RunSettings>;
    defaultSystemPrompt: string;
    defaultSampling: SamplingSettings;
}

export type SettingsPatch = Partial<Omit<Settings, "modelDefaults">> & { modelDefaults?: Record<string, RunSettings | null> };

export interface ModeEstimate {
    mode: CacheMode;
    available: boolean;
    recommended: boolean;
    explanation: string;
    cacheBytes: number;
    // model weights + cache + a fixed runtime allowance
    totalBytes: number;
    fits: boolean;
}

// ---- chats ----

export interface ChatMessageStats {
    tokens: number;
    tokensPerSecond: number;
    stopped: boolean;
    // the engine shifted the context during this reply to keep going
    contextShifted: boolean;
}

export interface ChatMessage {
    id: string;
    role: "user" | "assistant";
    text: string;
    createdAt: number;
    stats: ChatMessageStats | null;
}

export interface Chat {
    id: string;
    title: string;
    createdAt: number;
    updatedAt: number;
    modelId: string | null;
    systemPrompt: string;
    sampling: SamplingSettings;
    // null: the model's default run settings
    runOverride: RunSettings | null;
    messages: ChatMessage[];
}

export type ChatSummary = Pick<Chat, "id" | "title" | "updatedAt" | "modelId">;

// ---- the loaded session and its memory ----

export interface SessionInfo {
    chatId: string;
    modelId: string;
    run: RunSettings;
    state: "loading" | "evaluating" | "ready" | "generating" | "failed";
    // 0..1 while loading or re-evaluating the chat history
    progress: number;
    contextTokens: number;
    contextSize: number;
    error: string | null;
}

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
    rssBytes: number;
    vramUsedBytes: number | null;
}

// ---- compare ----

export interface CompareRequest {
    modelId: string;
    modes: CacheMode[];
    // "prompt": generate from the prompt; "perplexity": score the probe text
    kind: "prompt" | "perplexity";
    text: string;
    maxTokens: number;
    contextSize: number;
}

export interface CompareModeResult {
    mode: CacheMode;
    cacheBytes: number;
    tokensPerSecond: number;
    // KL divergence of next-token distributions against kv-f16, mean over scored tokens
    kldVsF16: number;
    perplexity: number | null;
    output: string | null;
    error: string | null;
}

export interface CompareRun {
    id: string;
    createdAt: number;
    request: CompareRequest;
    state: "running" | "done" | "failed";
    results: CompareModeResult[];
}

// ---- the method table ----

export type ApiErrorCode =
    | "bad-request" | "unknown-method" | "not-found" | "engine-unavailable" | "model-invalid"
    | "unsupported-architecture" | "disk-full" | "download-failed" | "busy" | "internal";

export interface ApiError {
    code: ApiErrorCode;
    message: string;
}

export type ApiResult<T> = { ok: true; value: T } | { ok: false; error: ApiError };

type Empty = Record<string, never>;

// Every request the UI can make: method name -> [argument, response].
export interface ApiMethods {
    getEngineInfo: [Empty, EngineInfo];
    getSystemMemory: [Empty, SystemMemory];

    listModels: [Empty, ModelEntry[]];
    getCatalog: [Empty, CatalogEntry[]];
    listDownloads: [Empty, DownloadInfo[]];
    // one of catalogId or url (https or hf:); sha256 optional for a url
    startDownload: [{ catalogId?: string; url?: string; sha256?: string }, DownloadInfo];
    pauseDownload: [{ downloadId: string }, DownloadInfo];
    resumeDownload: [{ downloadId: string }, DownloadInfo];
    cancelDownload: [{ downloadId: string }, DownloadInfo];
    importModel: [{ path: string }, ModelEntry];
    deleteModel: [{ modelId: string }, ModelEntry[]];

    getSettings: [Empty, Settings];
    updateSettings: [SettingsPatch, Settings];
    estimateModes: [{ modelId: string; contextSize: number; baseLayers?: number }, ModeEstimate[]];

    listChats: [Empty, ChatSummary[]];
    getChat: [{ chatId: string }, Chat];
    createChat: [{ modelId?: string }, Chat];
    deleteChat: [{ chatId: string }, ChatSummary[]];
    updateChat: [{ chatId: string; title?: string; modelId?: string; systemPrompt?: string; sampling?: SamplingSettings; runOverride?: RunSettings | null }, Chat];
    // streams "token" events, then "generation-done"; resolves when generation starts
    sendMessage: [{ chatId: string; text: string }, Chat];
    regenerate: [{ chatId: string }, Chat];
    // replaces a user message's text, drops what followed it, and answers again
    editMessage: [{ chatId: string; messageId: string; text: string }, Chat];
    stopGeneration: [{ chatId: string }, Empty];

    // loads the chat's model in its run settings and evaluates its history
    openSession: [{ chatId: string }, SessionInfo];
    getSession: [Empty, SessionInfo | null];
    closeSession: [Empty, Empty];
    getMetrics: [Empty, MetricsSample[]];

    startCompare: [CompareRequest, CompareRun];
    listCompareRuns: [Empty, CompareRun[]];
}

export type ApiMethod = keyof ApiMethods;
export type ApiRequest<M extends ApiMethod> = ApiMethods[M][0];
export type ApiResponse<M extends ApiMethod> = ApiMethods[M][1];

// Pushed from main to every open window (IPC) or event stream (HTTP).
export type ApiEvent =
    | { type: "token"; chatId: string; messageId: string; text: string }
    | { type: "generation-done"; chatId: string; message: ChatMessage }
    | { type: "generation-error"; chatId: string; error: ApiError }
    | { type: "context-shift"; chatId: string }
    | { type: "chat"; chat: ChatSummary }
    | { type: "session"; session: SessionInfo | null }
    | { type: "download"; download: DownloadInfo }
    | { type: "models"; models: ModelEntry[] }
    | { type: "metrics"; sample: MetricsSample }
    | { type: "compare"; run: CompareRun }
    // from the Electron app menu
    | { type: "command"; command: "new-chat" | "settings" | "focus-input" | "stop" };

// The object the preload exposes as window.xq, and the HTTP client implements.
export type XQuantApi = { [M in ApiMethod]: (request: ApiRequest<M>) => Promise<ApiResult<ApiResponse<M>>> } & {
    // returns an unsubscribe function
    onEvent(listener: (event: ApiEvent) => void): () => void;
};

export const apiMethods: readonly ApiMethod[] = [
    "getEngineInfo", "getSystemMemory",
    "listModels", "getCatalog", "listDownloads", "startDownload", "pauseDownload", "resumeDownload", "cancelDownload", "importModel", "deleteModel",
    "getSettings", "updateSettings", "estimateModes",
    "listChats", "getChat", "createChat", "deleteChat", "updateChat", "sendMessage", "regenerate", "editMessage", "stopGeneration",
    "openSession", "getSession", "closeSession", "getMetrics",
    "startCompare", "listCompareRuns",
];

export const ipcChannel = (method: ApiMethod): string => `xq:${method}`;
export const ipcEventChannel = "xq:event";

export function isApiMethod(name: string): name is ApiMethod {
    return (apiMethods as readonly string[]).includes(name);
}
