// The engine as the services use it: the same operations as Engine and its
// handles, run in the engine process (host.ts). If that process dies, every
// pending call fails with a typed `engine-stopped` error, onStop listeners
// hear why, and the handles of that process are dead; a new RemoteEngine is a
// fresh process. A watchdog guards every call: one that does not answer in
// time (or, if it reports progress, makes none for that long) fails with a
// typed `engine-timeout` error, and the process, hung, is killed.
import { fork } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { ChatTurn, EngineInfo, ModelMetadata, SamplingSettings } from "../api/contract.ts";
import type { ContextOptions, EngineModel, EngineOptions } from "./engine.ts";
import { EngineError } from "./errors.ts";
import { defaultEngineTimeouts, engineOperations, type EngineTimeouts, type OperationArgs, type OperationName, type OperationResult } from "./operations.ts";
import { engineProcessMarker, type HostReply, type HostRequest } from "./protocol.ts";

// A way to talk to a started engine process.
export interface EngineChannel {
    send(request: HostRequest): void;
    onMessage(listener: (reply: HostReply) => void): void;
    // why the process ended: an exit code or a signal
    onExit(listener: (reason: string) => void): void;
    kill(): void;
    readonly pid: number | undefined;
}

// Starts the engine process from its module; the Electron shell passes one made with utilityProcess.
export type SpawnEngine = (hostModule: string, env: NodeJS.ProcessEnv) => EngineChannel;

// The host module: the TypeScript source when running from source (through
// tsx), else the bundled dist-main/engine-host.js beside the bundled main.
export const engineHostModule = (): string => {
    const source = path.join(import.meta.dirname, "host.ts");
    return fs.existsSync(source) ? source : path.join(import.meta.dirname, "engine-host.js");
};

// A Node child process (npm run serve, the tests).
export const forkEngine: SpawnEngine = (hostModule, env) => {
    const child = fork(hostModule, [], { env, serialization: "advanced", execArgv: hostModule.endsWith(".ts") ? ["--import", "tsx"] : [], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    return {
        // a process that has just died cannot be written to; its exit reports that
        send: (request) => {
            if (child.connected) child.send(request, () => undefined);
        },
        onMessage: (listener) => void child.on("message", (reply) => listener(reply as HostReply)),
        onExit: (listener) => void child.on("exit", (code, signal) => listener(signal ?? `exit code ${code}`)),
        kill: () => void child.kill("SIGKILL"),
        pid: child.pid,
    };
};

export class RemoteEngine {
    private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void; onValue?: (value: never) => void; progressed(): void; settled(): void }>();
    private lastCallId = 0;
    private stopReason: string | null = null;
    private readonly stopListeners = new Set<(reason: string) => void>();
    info!: EngineInfo;

    private constructor(private readonly channel: EngineChannel, private readonly timeouts: EngineTimeouts) {
        channel.onMessage((reply) => this.receive(reply));
        channel.onExit((reason) => this.stopped(reason));
    }

    static async start(options: EngineOptions & { spawn?: SpawnEngine; timeouts?: Partial<EngineTimeouts> } = {}): Promise<RemoteEngine> {
        const { spawn = forkEngine, timeouts, ...engineOptions } = options;
        const engine = new RemoteEngine(spawn(engineHostModule(), { ...process.env, [engineProcessMarker]: "1" }), { ...defaultEngineTimeouts, ...timeouts });
        try {
            engine.info = await engine.call("start", [engineOptions]);
        } catch (error) {
            engine.kill();
            throw error;
        }
        return engine;
    }

    get pid(): number | undefined {
        return this.channel.pid;
    }

    get alive(): boolean {
        return this.stopReason === null;
    }

    // Called once, when the engine process ends without being asked to.
    onStop(listener: (reason: string) => void): () => void {
        this.stopListeners.add(listener);
        return () => this.stopListeners.delete(listener);
    }

    call<K extends OperationName>(operation: K, args: OperationArgs<K>, io: { onValue?: (value: never) => void; signal?: AbortSignal } = {}): Promise<OperationResult<K>> {
        if (this.stopReason !== null) return Promise.reject(this.stoppedError());
        const callId = ++this.lastCallId;
        const { watchdog } = engineOperations[operation];
        const limitMs = this.timeouts[watchdog];
        const abort = () => this.channel.send({ kind: "abort", callId });
        let timer: NodeJS.Timeout | undefined;
        const watch = () => {
            clearTimeout(timer);
            timer = setTimeout(() => this.hung(callId, operation, limitMs), limitMs);
        };
        const settled = () => {
            clearTimeout(timer);
            io.signal?.removeEventListener("abort", abort);
        };
        return new Promise<OperationResult<K>>((resolve, reject) => {
            const progressed = watchdog === "progressMs" ? watch : () => undefined;
            this.pending.set(callId, { resolve: resolve as (value: unknown) => void, reject, onValue: io.onValue, progressed, settled });
            watch();
            this.channel.send({ kind: "call", callId, operation, args });
            if (io.signal?.aborted) abort();
            else io.signal?.addEventListener("abort", abort, { once: true });
        });
    }

    private receive(reply: HostReply): void {
        const call = this.pending.get(reply.callId);
        if (call === undefined) return;
        if (reply.kind === "progress") return call.progressed();
        if (reply.kind === "emit") {
            call.progressed();
            return call.onValue?.(reply.value as never);
        }
        this.pending.delete(reply.callId);
        call.settled();
        if (reply.kind === "result") call.resolve(reply.value);
        else call.reject(new EngineError(reply.code, reply.message));
    }

    // A call got no answer (or no progress) in time: the process is hung (a read from a FIFO
    // or a dead network folder, a native deadlock, a stopped process). It fails with a typed
    // error, and the process is killed: its other calls fail, and stop listeners hear it.
    private hung(callId: number, operation: string, limitMs: number): void {
        const call = this.pending.get(callId);
        if (call === undefined) return;
        this.pending.delete(callId);
        call.settled();
        const seconds = `${limitMs / 1000} s`;
        call.reject(new EngineError("engine-timeout", `The engine did not answer (${operation}) for ${seconds}, so its process was stopped. It restarts on the next request; your chats are saved.`));
        this.stopped(`${operation} hung for ${seconds}`);
        this.channel.kill();
    }

    private stoppedError(): EngineError {
        return new EngineError("engine-stopped", `The engine process stopped (${this.stopReason}). It restarts on the next request; your chats are saved.`);
    }

    private stopped(reason: string): void {
        if (this.stopReason !== null) return;
        this.stopReason = reason;
        for (const call of this.pending.values()) {
            call.settled();
            call.reject(this.stoppedError());
        }
        this.pending.clear();
        for (const listener of this.stopListeners) listener(reason);
    }

    // A damaged file that crashes the reader stops this process, not the app.
    async readGgufMetadata(filePath: string): Promise<ModelMetadata> {
        try {
            return await this.call("readGgufMetadata", [filePath]);
        } catch (error) {
            if (!(error instanceof EngineError) || error.code !== "engine-stopped") throw error;
            throw new EngineError("model-invalid", `${path.basename(filePath)} is not a valid GGUF file: reading it stopped the engine process (${this.stopReason})`);
        }
    }

    vram() {
        return this.call("vram", []);
    }

    // The engine process's resident memory, where the models and caches live.
    processMemory() {
        return this.call("processMemory", []);
    }

    async loadModel(modelPath: string, options: { gpuLayers?: number } = {}): Promise<RemoteModel> {
        const { id, shape } = await this.call("loadModel", [modelPath, options]);
        return new RemoteModel(this, id, shape);
    }

    // Ends the process (asked for: no stop listener hears it).
    kill(): void {
        this.stopListeners.clear();
        this.stopped("disposed");
        this.channel.kill();
    }

    async dispose(): Promise<void> {
        this.kill();
    }

    // Frees a handle; a no-op once the process is gone, with everything in it.
    async disposeHandle(id: number): Promise<void> {
        if (this.alive) await this.call("dispose", [id]);
    }
}

export class RemoteModel {
    constructor(private readonly engine: RemoteEngine, private readonly id: number, readonly shape: EngineModel["shape"]) {}

    tokenize(text: string, specialTokens = false) {
        return this.engine.call("tokenize", [this.id, text, specialTokens]);
    }

    async createContext(options: ContextOptions): Promise<RemoteContext> {
        return new RemoteContext(this.engine, await this.engine.call("createContext", [this.id, options]));
    }

    // Creates a context, reads its memory, and disposes it (see EngineModel.measureContext).
    measureContext(options: ContextOptions) {
        return this.engine.call("measureContext", [this.id, options]);
    }

    dispose(): Promise<void> {
        return this.engine.disposeHandle(this.id);
    }
}

export class RemoteContext {
    constructor(private readonly engine: RemoteEngine, private readonly id: number) {}

    cacheStats() {
        return this.engine.call("cacheStats", [this.id]);
    }

    // an abort ends the completion early, with the text generated so far
    complete(prompt: string, options: { maxTokens: number }, signal?: AbortSignal) {
        return this.engine.call("complete", [this.id, prompt, options], { signal });
    }

    measureSpeed(text: readonly number[], depths: readonly number[], decodeTokens: number) {
        return this.engine.call("measureSpeed", [this.id, [...text], [...depths], decodeTokens]);
    }

    nextTokenDistributions(tokens: readonly number[], firstScored: number) {
        return this.engine.call("nextTokenDistributions", [this.id, [...tokens], firstScored]);
    }

    async chat(): Promise<RemoteChat> {
        return new RemoteChat(this.engine, await this.engine.call("chat", [this.id]));
    }

    dispose(): Promise<void> {
        return this.engine.disposeHandle(this.id);
    }
}

export class RemoteChat {
    constructor(private readonly engine: RemoteEngine, private readonly id: number) {}

    evaluate(systemPrompt: string, turns: readonly ChatTurn[], onProgress: (fraction: number) => void, signal?: AbortSignal) {
        return this.engine.call("evaluate", [this.id, systemPrompt, [...turns]], { onValue: onProgress, signal });
    }

    reply(systemPrompt: string, turns: readonly ChatTurn[], userText: string, sampling: SamplingSettings, onText: (text: string) => void, signal: AbortSignal) {
        return this.engine.call("reply", [this.id, systemPrompt, [...turns], userText, sampling], { onValue: onText, signal });
    }

    contextTokens() {
        return this.engine.call("contextTokens", [this.id]);
    }

    dispose(): Promise<void> {
        return this.engine.disposeHandle(this.id);
    }
}
