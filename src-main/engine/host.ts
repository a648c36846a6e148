// The engine process: the Engine (node-llama-cpp and our addon) runs here, away
// from the app's main process, so that a native abort or an out-of-memory kill
// ends only this process. It answers the operations of operations.ts, sent by
// RemoteEngine (remote.ts) over IPC: a Node child process (npm run serve, tests)
// or an Electron utility process (the app). Models, contexts and chats stay
// here; the other side holds their numbers.
import { EngineChat } from "./chat.ts";
import { Engine, EngineContext, EngineModel } from "./engine.ts";
import { EngineError } from "./errors.ts";
import { readGgufMetadata } from "./models.ts";
import type { OperationImplementations } from "./operations.ts";
import { engineProcessMarker, type CallIo, type HostReply, type HostRequest } from "./protocol.ts";

let engine: Engine | null = null;
const handles = new Map<number, EngineModel | EngineContext | EngineChat>();
let lastHandle = 0;

function keep(object: EngineModel | EngineContext | EngineChat): number {
    handles.set(++lastHandle, object);
    return lastHandle;
}

function handle<T extends EngineModel | EngineContext | EngineChat>(id: number, kind: abstract new (...args: never[]) => T): T {
    const object = handles.get(id);
    if (!(object instanceof kind)) throw new EngineError("handle-disposed", `The engine has no ${kind.name} ${id}; it was disposed`);
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

// Each operation of the table in operations.ts, as this process runs it.
export const engineImplementations: OperationImplementations = {
    // node-llama-cpp's GGUF reader can take down its process on a damaged file (a
    // corrupt length reaches a native assertion), so files are read here, too
    readGgufMetadata: async (_io, filePath) => readGgufMetadata(filePath),
    start: async (_io, options) => {
        engine ??= await Engine.start(options);
        return engine.info;
    },
    vram: async () => started().vram(),
    processMemory: async () => ({ rssBytes: process.memoryUsage.rss() }),
    loadModel: async (io, modelPath, options) => {
        const model = await started().loadModel(modelPath, { ...options, onProgress: io.progress });
        return { id: keep(model), shape: model.shape };
    },
    tokenize: async (_io, model, text, specialTokens) => handle(model, EngineModel).tokenize(text, specialTokens),
    createContext: async (_io, model, options) => keep(await handle(model, EngineModel).createContext(options)),
    measureContext: async (_io, model, options) => handle(model, EngineModel).measureContext(options),
    cacheStats: async (_io, context) => handle(context, EngineContext).cacheStats(),
    complete: async (io, context, prompt, options) => {
        const engineContext = handle(context, EngineContext);
        return reportingTokens(io, () => engineContext.processedTokens(), () => engineContext.complete(prompt, { ...options, signal: io.signal }));
    },
    measureSpeed: async (io, context, text, depths, decodeTokens) => {
        const engineContext = handle(context, EngineContext);
        return reportingTokens(io, () => engineContext.processedTokens(), () => engineContext.measureSpeed(text, depths, decodeTokens));
    },
    nextTokenDistributions: async (io, context, tokens, firstScored) => {
        const engineContext = handle(context, EngineContext);
        return reportingTokens(io, () => engineContext.processedTokens(), () => engineContext.nextTokenDistributions(tokens, firstScored));
    },
    chat: async (_io, context) => keep(handle(context, EngineContext).chat()),
    evaluate: async (io, chat, systemPrompt, turns) => {
        const engineChat = handle(chat, EngineChat);
        return reportingTokens(io, () => engineChat.processedTokens(), () => engineChat.evaluate(systemPrompt, turns, io.emit, io.signal));
    },
    // the prompt's evaluation reports progress too: a long history takes a while before the first token
    reply: async (io, chat, systemPrompt, turns, userText, sampling) => {
        const engineChat = handle(chat, EngineChat);
        return reportingTokens(io, () => engineChat.processedTokens(), () => engineChat.reply(systemPrompt, turns, userText, sampling, io.emit, io.signal));
    },
    contextTokens: async (_io, chat) => handle(chat, EngineChat).contextTokens(),
    dispose: async (_io, id) => {
        const object = handles.get(id);
        handles.delete(id);
        await object?.dispose();
    },
};

// Electron's utility process talks through process.parentPort, a Node child through process.send.
interface ParentPort {
    on(event: "message", listener: (event: { data: HostRequest }) => void): void;
    postMessage(message: HostReply): void;
}

// Errors keep their code; one of no known kind (a bug, a TypeError) is engine-internal, with its message.
const typed = (error: unknown): EngineError => error instanceof EngineError ? error : new EngineError("engine-internal", `The engine failed: ${(error as Error).message}`);

// Answers the requests of the process that started this one.
export function serve(implementations: OperationImplementations): void {
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
        const operation = implementations[request.operation as keyof OperationImplementations] as (io: CallIo, ...args: unknown[]) => Promise<unknown>;
        void Promise.resolve()
            .then(() => operation(io, ...request.args))
            .then(
                (value) => send({ kind: "result", callId: request.callId, value }),
                (error: unknown) => {
                    const { code, message } = typed(error);
                    send({ kind: "error", callId: request.callId, code, message });
                },
            )
            .finally(() => aborts.delete(request.callId));
    };
    if (parentPort) parentPort.on("message", (event) => receive(event.data));
    else process.on("message", (request) => receive(request as HostRequest));
    // the app went away: so does the engine
    process.on("disconnect", () => process.exit(0));
}

if (process.env[engineProcessMarker] === "1") serve(engineImplementations);
