// The API contract: the single source of truth for what the UI may ask of the
// main process, over Electron IPC or the local HTTP server. Types, plus the
// method table they are read from. The api layer imports nothing outside itself.
import type { CacheMode, ModeAdvice, ModelShape } from "./cache-modes.ts";

export type { CacheMode, ModeAdvice, ModelShape };

export interface EngineInfo {
    // Whether the loaded llama.cpp binary's system info carries the XQuant marker.
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

// One message of a conversation, as the engine evaluates it.
export interface ChatTurn {
    role: "user" | "assistant";
    text: string;
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

// ---- one-off completions (the door of the OpenAI-compatible routes) ----

// A conversation answered once, in a context of its own, in the model's run
// settings with the cache mode (if given) changed; sampling fields left out take the settings' defaults.
export interface CompletionRequest {
    modelId: string;
    systemPrompt: string;
    // the last one is the user's
    messages: ChatTurn[];
    cacheMode?: CacheMode;
    sampling?: Partial<SamplingSettings>;
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

// A method's argument and response types, carried by the type alone (the value is empty).
interface Method<Request, Response> {
    readonly signature?: (request: Request) => Response;
}

const method = <Request, Response>(): Method<Request, Response> => ({});

// Every request the UI can make: method name -> argument and response. The
// method list and every handler, validator and transport are derived from it.
export const apiMethodTable = {
    getEngineInfo: method<Empty, EngineInfo>(),
    getSystemMemory: method<Empty, SystemMemory>(),

    listModels: method<Empty, ModelEntry[]>(),
    getCatalog: method<Empty, CatalogEntry[]>(),
    listDownloads: method<Empty, DownloadInfo[]>(),
    // one of catalogId or url (https or hf:); sha256 optional for a url
    startDownload: method<{ catalogId?: string; url?: string; sha256?: string }, DownloadInfo>(),
    pauseDownload: method<{ downloadId: string }, DownloadInfo>(),
    resumeDownload: method<{ downloadId: string }, DownloadInfo>(),
    cancelDownload: method<{ downloadId: string }, DownloadInfo>(),
    importModel: method<{ path: string }, ModelEntry>(),
    deleteModel: method<{ modelId: string }, ModelEntry[]>(),

    getSettings: method<Empty, Settings>(),
    updateSettings: method<SettingsPatch, Settings>(),
    estimateModes: method<{ modelId: string; contextSize: number; baseLayers?: number }, ModeEstimate[]>(),

    listChats: method<Empty, ChatSummary[]>(),
    getChat: method<{ chatId: string }, Chat>(),
    createChat: method<{ modelId?: string }, Chat>(),
    deleteChat: method<{ chatId: string }, ChatSummary[]>(),
    updateChat: method<{ chatId: string; title?: string; modelId?: string; systemPrompt?: string; sampling?: SamplingSettings; runOverride?: RunSettings | null }, Chat>(),
    // streams "token" events, then "generation-done"; resolves when generation starts
    sendMessage: method<{ chatId: string; text: string }, StartedReply>(),
    regenerate: method<{ chatId: string }, StartedReply>(),
    // replaces a user message's text, drops what followed it, and answers again
    editMessage: method<{ chatId: string; messageId: string; text: string }, StartedReply>(),
    stopGeneration: method<{ chatId: string }, Empty>(),

    // loads the chat's model in its run settings and evaluates its history
    openSession: method<{ chatId: string }, SessionInfo>(),
    getSession: method<Empty, SessionInfo | null>(),
    closeSession: method<Empty, Empty>(),
    getMetrics: method<Empty, MetricsSample[]>(),

    startCompare: method<CompareRequest, CompareRun>(),
    listCompareRuns: method<Empty, CompareRun[]>(),
};

export type ApiMethods = typeof apiMethodTable;
export type ApiMethod = keyof ApiMethods;
type Signature<M extends ApiMethod> = NonNullable<ApiMethods[M]["signature"]>;
export type ApiRequest<M extends ApiMethod> = Parameters<Signature<M>>[0];
export type ApiResponse<M extends ApiMethod> = ReturnType<Signature<M>>;

// What the Electron app menu and the keyboard shortcuts can ask of the UI.
export type AppCommand = "new-chat" | "settings" | "focus-input" | "stop";

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
    | { type: "command"; command: AppCommand };

// The object the preload exposes as window.xq, and the HTTP client implements.
export interface XQuantApi {
    call<M extends ApiMethod>(method: M, request: ApiRequest<M>): Promise<ApiResult<ApiResponse<M>>>;
    // returns an unsubscribe function
    onEvent(listener: (event: ApiEvent) => void): () => void;
}

export function isApiMethod(name: string): name is ApiMethod {
    return Object.hasOwn(apiMethodTable, name);
}

export const apiMethods: readonly ApiMethod[] = Object.keys(apiMethodTable).filter(isApiMethod);

export const ipcChannel = (method: ApiMethod): string => `xq:${method}`;
export const ipcEventChannel = "xq:event";
