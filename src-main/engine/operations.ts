// The operations the engine process answers, declared once: each one's arguments, its
// result, and its watchdog (how long the caller waits for an answer, see EngineTimeouts).
// host.ts implements each one (the compiler checks it against this table), and
// RemoteEngine.call takes its arguments and result types and its watchdog from here.
// Models, contexts and chats travel as numbered handles.
import type { ChatTurn, EngineInfo, ModelMetadata, SamplingSettings } from "../api/contract.ts";
import type { SpeedAtDepth } from "../api/mode-advice.ts";
import type { ReplyResult } from "./chat.ts";
import type { CacheStats, ContextMemory, ContextOptions, DeviceMemory, EngineModel, EngineOptions } from "./engine.ts";
import type { CallIo } from "./protocol.ts";

// How long an engine call may go without an answer before its process counts as hung.
export interface EngineTimeouts {
    // the engine's start: a new process loads the addon and its CPU or GPU backends
    startMs: number;
    // a plain call
    callMs: number;
    // a call that reports progress (a model load, an evaluation, a generation): the time without progress
    progressMs: number;
    // a call that computes for long without progress: creating a large context, computing latent factors
    heavyMs: number;
}

export const defaultEngineTimeouts: EngineTimeouts = { startMs: 60_000, callMs: 60_000, progressMs: 60_000, heavyMs: 600_000 };

// The types live in the signature alone (as in the API's method table); the watchdog is a value.
interface Operation<Args extends unknown[], Result> {
    readonly watchdog: keyof EngineTimeouts;
    readonly signature?: (...args: Args) => Result;
}

const operation = <Args extends unknown[], Result>(watchdog: keyof EngineTimeouts): Operation<Args, Result> => ({ watchdog });

type Handle = number;

export const engineOperations = {
    readGgufMetadata: operation<[filePath: string], ModelMetadata>("callMs"),
    start: operation<[options: EngineOptions], EngineInfo>("startMs"),
    vram: operation<[], DeviceMemory | null>("callMs"),
    // the engine process's own resident memory (the services run in another process)
    processMemory: operation<[], { rssBytes: number }>("callMs"),
    loadModel: operation<[modelPath: string, options: { gpuLayers?: number }], { id: Handle; shape: EngineModel["shape"] }>("progressMs"),
    tokenize: operation<[model: Handle, text: string, specialTokens: boolean], number[]>("callMs"),
    createContext: operation<[model: Handle, options: ContextOptions], Handle>("heavyMs"),
    measureContext: operation<[model: Handle, options: ContextOptions], ContextMemory>("heavyMs"),
    cacheStats: operation<[context: Handle], CacheStats>("callMs"),
    // emits nothing; an abort ends it early with the text so far
    complete: operation<[context: Handle, prompt: string, options: { maxTokens: number }], string>("progressMs"),
    // fills the context to each depth, timing prefill and decode (EngineContext.measureSpeed)
    measureSpeed: operation<[context: Handle, text: number[], depths: number[], decodeTokens: number], SpeedAtDepth[]>("progressMs"),
    nextTokenDistributions: operation<[context: Handle, tokens: number[], firstScored: number], Map<number, number>[]>("progressMs"),
    chat: operation<[context: Handle], Handle>("callMs"),
    // emits the evaluation's progress (0..1)
    evaluate: operation<[chat: Handle, systemPrompt: string, turns: ChatTurn[]], void>("progressMs"),
    // emits the reply's text as it is generated
    reply: operation<[chat: Handle, systemPrompt: string, turns: ChatTurn[], userText: string, sampling: SamplingSettings], ReplyResult>("progressMs"),
    contextTokens: operation<[chat: Handle], number>("callMs"),
    dispose: operation<[handle: Handle], void>("callMs"),
};

export type OperationName = keyof typeof engineOperations;
type SignatureOf<K extends OperationName> = NonNullable<(typeof engineOperations)[K]["signature"]>;
export type OperationArgs<K extends OperationName> = Parameters<SignatureOf<K>>;
export type OperationResult<K extends OperationName> = ReturnType<SignatureOf<K>>;

// What the engine process runs for each operation.
export type OperationImplementations = { [K in OperationName]: (io: CallIo, ...args: OperationArgs<K>) => Promise<OperationResult<K>> };
