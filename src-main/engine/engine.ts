// The engine: the only code that talks to node-llama-cpp. It runs on our own
// patched llama.cpp build (npm run build:native) and refuses any other binary.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { getLlama, LlamaCompletion, LlamaLogLevel, type Llama, type LlamaModel } from "node-llama-cpp";
import { installedBinDir } from "../../native/paths.ts";

export const XQUANT_MARKER = "XQUANT = 1";

export type EngineErrorCode = "native-not-built" | "stock-binary" | "model-not-found" | "model-invalid";

export class EngineError extends Error {
    readonly code: EngineErrorCode;
    constructor(code: EngineErrorCode, message: string) {
        super(message);
        this.name = "EngineError";
        this.code = code;
    }
}

export interface EngineInfo {
    systemInfo: string;
    patchSeriesVersion: string;
    threads: number;
}

export interface EngineOptions {
    // Threads for llama.cpp. Oversubscribing a small CPU is 20-100x slower, so
    // the default is the number of cores, never more.
    maxThreads?: number;
}

export interface GenerateOptions {
    maxTokens: number;
    contextSize?: number;
}

// Throws unless systemInfo comes from our patch series: a silent fallback to
// node-llama-cpp's stock prebuilt binary must be impossible.
export function verifyXQuantBinary(systemInfo: string): string {
    if (!systemInfo.includes(XQUANT_MARKER)) {
        throw new EngineError("stock-binary",
            "The loaded llama.cpp binary is not the XQuant build (its system info lacks \"XQUANT = 1\"). Run `npm run build:native`.");
    }
    return /XQUANT_PATCHES = ([^\s|]+)/.exec(systemInfo)?.[1] ?? "unknown";
}

export function defaultThreads(): number {
    return Math.max(1, os.availableParallelism());
}

export class Engine {
    readonly info: EngineInfo;
    private readonly llama: Llama;

    private constructor(llama: Llama, info: EngineInfo) {
        this.llama = llama;
        this.info = info;
    }

    static async start(options: EngineOptions = {}): Promise<Engine> {
        if (!fs.existsSync(path.join(installedBinDir, "llama-addon.node"))) {
            throw new EngineError("native-not-built", "The XQuant native build is missing. Run `npm run build:native`.");
        }
        const threads = options.maxThreads ?? defaultThreads();
        const llama = await getLlama("lastBuild", {
            maxThreads: threads,
            usePrebuiltBinaries: false,
            skipDownload: true,
            logLevel: LlamaLogLevel.error,
            progressLogs: false,
        });
        try {
            const patchSeriesVersion = verifyXQuantBinary(llama.systemInfo);
            return new Engine(llama, { systemInfo: llama.systemInfo, patchSeriesVersion, threads });
        } catch (error) {
            await llama.dispose();
            throw error;
        }
    }

    async loadModel(modelPath: string, options: { vocabOnly?: boolean } = {}): Promise<LlamaModel> {
        if (!fs.existsSync(modelPath)) throw new EngineError("model-not-found", `Model file not found: ${modelPath}`);
        try {
            return await this.llama.loadModel({ modelPath, vocabOnly: options.vocabOnly ?? false, gpuLayers: 0 });
        } catch (error) {
            throw new EngineError("model-invalid", `Could not load ${path.basename(modelPath)}: ${(error as Error).message}`);
        }
    }

    // Greedy completion of raw text (no chat template).
    async completeGreedy(model: LlamaModel, prompt: string, options: GenerateOptions): Promise<string> {
        const context = await model.createContext({ contextSize: options.contextSize ?? 512, threads: this.info.threads });
        try {
            const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
            return await completion.generateCompletion(prompt, { maxTokens: options.maxTokens, temperature: 0 });
        } finally {
            await context.dispose();
        }
    }

    async dispose(): Promise<void> {
        await this.llama.dispose();
    }
}
