// The engine process: the Engine (node-llama-cpp and our addon) runs here, away
// from the app's main process, so that a native abort or an out-of-memory kill
// ends only this process. It answers the operations below, sent by
// RemoteEngine (remote.ts) over IPC: a Node child process (npm run serve, tests)
// or an Electron utility process (the app). Models, contexts and chats stay
// here; the other side holds their numbers.
import type { ChatTurn, SamplingSettings } from "../api/contract.ts";
import { EngineChat } from "./chat.ts";
import { Engine, EngineContext, EngineModel, type ContextOptions, type EngineOptions } from "./engine.ts";
import { EngineError } from "./errors.ts";
import { readGgufMetadata } from "./models.ts";
import { engineProcessMarker } from "./remote.ts";

// What an operation may do besides returning: stream values back, report progress
// (which keeps the caller's watchdog from judging it hung), and notice an abort.
export interface CallIo {
    emit(value: unknown): void;
    progress(): void;
    signal: AbortSignal;
}

export type HostRequest =
    | { kind: "call"; callId: number; operation: string; args: unknown[] }
    | { kind: "abort"; callId: number };

export type HostReply =
    | { kind: "result"; callId: number; value: unknown }
    | { kind: "error"; callId: number; code: string; message: string }
    | { kind: "emit"; callId: number; value: unknown }
    | { kind: "progress"; callId: number };

let engine: Engine | null = null;
const handles = new Map<number, EngineModel | EngineContext | EngineChat>();
let lastHandle = 0;

function keep(object: EngineModel | EngineContext | EngineChat): number {
    handles.set(++lastHandle, object);
    return lastHandle;
}

function handle<T extends EngineModel | EngineContext | EngineChat>(id: number, kind: abstract new (...args: never[]) => T): T {
    const object = handles.get(id);
    if (!(object instanceof kind)) throw new EngineError("context-failed", `The engine has no ${kind.name} ${id}; it was disposed`);
    return object;
}

// Runs work on a context, reporting progress whenever it has processed more tokens (a batch of
// the prompt started, a token generated): real progress, never a timer's beat.
async function reportingTokens<T>(io: CallIo, tokenCount: () => number, work: () => Promise<T>): Promise<T> {
    let last = tokenCount();
    const poll = setInterval(() => {
        const count = tokenCount();
        if (count !== last) io.progress();
        last = count;
    }, 100);
    try {
        return await work();
    } finally {
        clearInterval(poll);
    }
}

function started(): Engine {
    if (engine === null) throw new EngineError("engine-stopped", "The engine has not started");
    return engine;
}

const operations = {
    // node-llama-cpp's GGUF reader can take down its process on a damaged file (a
    // corrupt length reaches a native assertion), so files are read here, too
    readGgufMetadata: async (_io: CallIo, filePath: string) => readGgufMetadata(filePath),
    start: async (_io: CallIo, options: EngineOptions) => {
        engine ??= await Engine.start(options);
        return engine.info;
    },
    vram: async (_io: CallIo) => started().vram(),
    loadModel: async (io: CallIo, modelPath: string, options: { gpuLayers?: number }) => {
        const model = await started().loadModel(modelPath, { ...options, onProgress: io.progress });
        return { id: keep(model), shape: model.shape };
    },
    tokenize: async (_io: CallIo, model: number, text: string, specialTokens: boolean) => handle(model, EngineModel).tokenize(text, specialTokens),
    createContext: async (_io: CallIo, model: number, options: ContextOptions) => keep(await handle(model, EngineModel).createContext(options)),
    measureContext: async (_io: CallIo, model: number, options: ContextOptions) => handle(model, EngineModel).measureContext(options),
    cacheStats: async (_io: CallIo, context: number) => handle(context, EngineContext).cacheStats(),
    complete: async (io: CallIo, context: number, prompt: string, options: { maxTokens: number }) => {
        const engineContext = handle(context, EngineContext);
        return reportingTokens(io, () => engineContext.processedTokens(), () => engineContext.complete(prompt, { ...options, signal: io.signal }));
    },
    nextTokenDistributions: async (io: CallIo, context: number, tokens: number[], firstScored: number) => {
        const engineContext = handle(context, EngineContext);
        return reportingTokens(io, () => engineContext.processedTokens(), () => engineContext.nextTokenDistributions(tokens, firstScored));
    },
    chat: async (_io: CallIo, context: number) => keep(handle(context, EngineContext).chat()),
    evaluate: async (io: CallIo, chat: number, systemPrompt: string, turns: ChatTurn[]) => {
        const engineChat = handle(chat, EngineChat);
        return reportingTokens(io, () => engineChat.processedTokens(), () => engineChat.evaluate(systemPrompt, turns, io.emit, io.signal));
    },
    // the prompt's evaluation reports progress too: a long history takes a while before the first token
    reply: async (io: CallIo, chat: number, systemPrompt: string, turns: ChatTurn[], userText: string, sampling: SamplingSettings) => {
        const engineChat = handle(chat, EngineChat);
        return reportingTokens(io, () => engineChat.processedTokens(), () => engineChat.reply(systemPrompt, turns, userText, sampling, io.emit, io.signal));
    },
    contextTokens: async (_io: CallIo, chat: number) => handle(chat, EngineChat).contextTokens(),
    dispose: async (_io: CallIo, id: number) => {
        const object = handles.get(id);
        handles.delete(id);
        await object?.dispose();
    },
};

export type EngineOperations = typeof operations;

// Electron's utility process talks through process.parentPort, a Node child through process.send.
interface ParentPort {
    on(event: "message", listener: (event: { data: HostRequest }) => void): void;
    postMessage(message: HostReply): void;
}

function serve(): void {
    const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;
    const send = (reply: HostReply) => (parentPort ? parentPort.postMessage(reply) : process.send!(reply));
    const aborts = new Map<number, AbortController>();
    const receive = (request: HostRequest) => {
        if (request.kind === "abort") return aborts.get(request.callId)?.abort();
        const abort = new AbortController();
        aborts.set(request.callId, abort);
        const io: CallIo = {
            emit: (value) => send({ kind: "emit", callId: request.callId, value }),
            progress: () => send({ kind: "progress", callId: request.callId }),
            signal: abort.signal,
        };
        const operation = operations[request.operation as keyof EngineOperations] as (io: CallIo, ...args: unknown[]) => Promise<unknown>;
        void Promise.resolve()
            .then(() => operation(io, ...request.args))
            .then(
                (value) => send({ kind: "result", callId: request.callId, value }),
                (error: unknown) => send({ kind: "error", callId: request.callId, code: error instanceof EngineError ? error.code : "context-failed", message: (error as Error).message }),
            )
            .finally(() => aborts.delete(request.callId));
    };
    if (parentPort) parentPort.on("message", (event) => receive(event.data));
    else process.on("message", (request) => receive(request as HostRequest));
    // the app went away: so does the engine
    process.on("disconnect", () => process.exit(0));
}

if (process.env[engineProcessMarker] === "1") serve();
