// The engine: the only code that talks to node-llama-cpp. It runs on our own
// patched llama.cpp build (npm run build:native) and refuses any other binary.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { getLlama, LlamaCompletion, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel } from "node-llama-cpp";
import { cacheDir, installedBinDir } from "../../native/paths.ts";
import { adviseModes, cacheModeSpecs, isLatent, xqBaseBits, xquantVariantIds, type CacheMode, type ModeAdvice, type ModelShape } from "./cache-modes.ts";

export const XQUANT_MARKER = "XQUANT = 1";

// A loaded model, as the layers above the engine hold it (they never import node-llama-cpp).
export type EngineModel = LlamaModel;

export type EngineErrorCode = "native-not-built" | "stock-binary" | "model-not-found" | "model-invalid"
    | "unsupported-architecture" | "context-failed" | "state-mode-mismatch";

// Architectures whose graphs the X-cache supports (see native/src/llama.cpp/src/xquant-cache.cpp).
export const xquantArchitectures = ["llama", "qwen2", "qwen3"];

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
    // Where the GQA latent factors are kept, one file per model file hash and variant.
    factorsDir?: string;
}

export interface ContextOptions {
    cacheMode: CacheMode;
    contextSize: number;
    sequences?: number;
    // kv-q8_0/kv-q4_0 always use flash attention, as llama.cpp requires for a quantized V cache
    flashAttention?: boolean;
    // XQuant: leading layers kept at 4 bits (default: 3 of every 32 layers; XQuant-CL at least 1)
    baseLayers?: number;
    // at most the engine's thread count; 0 or absent: the engine's count
    threads?: number;
    // XQuant: weight X̂ by attention and project through Wv once instead of rebuilding V (default on;
    // exact up to float rounding; used while decoding without flash attention, see xquant-graph.cpp)
    absorbV?: boolean;
    // XQuant: each ubatch's own K/V come from its unquantized X; only older cells are rebuilt (default on)
    exactUbatch?: boolean;
}

// Measured from the cache buffers as ggml allocated them.
export interface CacheStats {
    mode: CacheMode;
    bytes: number;
    bitsPerElement: number;
    cellsUsed: number;
    contextSize: number;
    // GQA latent modes: the per-model factors, and how long computing them took (0 when read from disk)
    factorBytes: number;
    factorSeconds: number;
    factorsFromDisk: boolean;
    // the context's compute buffers as reserved for its largest graph
    computeBytes: number;
}

// The addon functions our patch series adds (native/src/addon/AddonXQuant.cpp).
interface XQuantBindings {
    setXQuantNextContext(options: {
        bits: number; baseLayers: number; baseBits: number; variant: number; factorsPath?: string; absorbV: boolean; exactUbatch: boolean;
    } | null): void;
    getXQuantCacheInfo(addonContext: unknown): {
        bits: number; variant: number; bytes: number; bitsPerElement: number; cells: number; cellsUsed: number;
        factorBytes: number; factorSeconds: number; factorsFromDisk: boolean; computeBytes: number;
    } | null;
}

export class EngineContext {
    readonly mode: CacheMode;
    readonly context: LlamaContext;
    private readonly bindings: XQuantBindings;
    private firstSequence: LlamaContextSequence | null = null;

    constructor(mode: CacheMode, context: LlamaContext, bindings: XQuantBindings) {
        this.mode = mode;
        this.context = context;
        this.bindings = bindings;
    }

    cacheStats(): CacheStats {
        const info = this.cacheInfo();
        return {
            mode: this.mode, bytes: info.bytes, bitsPerElement: info.bitsPerElement, cellsUsed: info.cellsUsed, contextSize: info.cells,
            factorBytes: info.factorBytes, factorSeconds: info.factorSeconds, factorsFromDisk: info.factorsFromDisk, computeBytes: info.computeBytes,
        };
    }

    private cacheInfo(): NonNullable<ReturnType<XQuantBindings["getXQuantCacheInfo"]>> {
        const info = this.bindings.getXQuantCacheInfo((this.context as unknown as { _ctx: unknown })._ctx);
        if (info === null) throw new EngineError("context-failed", "The context has been disposed");
        return info;
    }

    // Throws unless the native cache is the one the mode asks for: no silent fallback to another cache.
    verifyMode(): void {
        const spec = cacheModeSpecs[this.mode];
        const info = this.cacheInfo();
        const expected = spec.kind === "xq" ? { bits: spec.bits, variant: xquantVariantIds[spec.variant] } : { bits: 0, variant: 0 };
        if (info.bits !== expected.bits || (spec.kind === "xq" && info.variant !== expected.variant)) {
            throw new EngineError("context-failed", `The context was created with another cache than ${this.mode} (bits ${info.bits}, variant ${info.variant})`);
        }
    }

    // Saves sequence 0 with a sidecar naming the cache mode, which loadState checks first.
    async saveState(filePath: string): Promise<void> {
        await this.sequence().saveStateToFile(filePath);
        const record: SavedStateRecord = { format: "xquant-desktop-state", mode: this.mode };
        fs.writeFileSync(`${filePath}.json`, JSON.stringify(record));
    }

    async loadState(filePath: string): Promise<void> {
        let record: SavedStateRecord | null = null;
        try {
            record = JSON.parse(fs.readFileSync(`${filePath}.json`, "utf8")) as SavedStateRecord;
        } catch {
            // a state without its sidecar still meets the native check below
        }
        if (record !== null && record.mode !== this.mode) {
            throw new EngineError("state-mode-mismatch", `This state was saved in cache mode ${record.mode}; this context uses ${this.mode}. Load it into a ${record.mode} context.`);
        }
        try {
            await this.sequence().loadStateFromFile(filePath, { acceptRisk: true });
        } catch (error) {
            throw new EngineError("state-mode-mismatch", `Could not load the state into a ${this.mode} context (saved in another cache mode, or damaged): ${(error as Error).message}`);
        }
    }

    // The context's first sequence, claimed once.
    sequence(): LlamaContextSequence {
        this.firstSequence ??= this.context.getSequence();
        return this.firstSequence;
    }

    async dispose(): Promise<void> {
        await this.context.dispose();
    }
}

interface SavedStateRecord {
    format: "xquant-desktop-state";
    mode: CacheMode;
}

export function modelShape(model: LlamaModel): ModelShape {
    const metadata = model.fileInfo.metadata as unknown as Record<string, Record<string, unknown>> & { general: { architecture: string } };
    const architecture = metadata.general.architecture;
    const arch = metadata[architecture] ?? {};
    const attention = (arch.attention ?? {}) as Record<string, unknown>;
    const scalar = (value: unknown, fallback: number): number => Array.isArray(value) ? Number(value[0]) : value === undefined ? fallback : Number(value);
    const nEmbd = scalar(arch.embedding_length, 0);
    const nHead = scalar(attention.head_count, 1);
    return {
        architecture,
        nLayer: scalar(arch.block_count, 0),
        nEmbd,
        nHead,
        nHeadKv: scalar(attention.head_count_kv, nHead),
        headDimK: scalar(attention.key_length, nEmbd / nHead),
        headDimV: scalar(attention.value_length, nEmbd / nHead),
    };
}

// Which cache modes make sense for this model, and why (see adviseModes).
export function recommendedModes(model: LlamaModel): ModeAdvice[] {
    return adviseModes(modelShape(model), xquantArchitectures);
}

export interface GenerateOptions {
    maxTokens: number;
    // an existing context to generate in; otherwise a kv-f16 context of contextSize is made for the call
    context?: EngineContext;
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
    private readonly factorsDir: string;
    private readonly modelFiles = new WeakMap<LlamaModel, string>();
    private readonly fileHashes = new Map<string, string>();
    private contextCreation: Promise<unknown> = Promise.resolve();

    private constructor(llama: Llama, info: EngineInfo, factorsDir: string) {
        this.llama = llama;
        this.info = info;
        this.factorsDir = factorsDir;
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
            return new Engine(llama, { systemInfo: llama.systemInfo, patchSeriesVersion, threads }, options.factorsDir ?? path.join(cacheDir, "factors"));
        } catch (error) {
            await llama.dispose();
            throw error;
        }
    }

    // gpuLayers -1 lets node-llama-cpp offload as many layers as fit
    async loadModel(modelPath: string, options: { vocabOnly?: boolean; gpuLayers?: number } = {}): Promise<LlamaModel> {
        if (!fs.existsSync(modelPath)) throw new EngineError("model-not-found", `Model file not found: ${modelPath}`);
        try {
            const model = await this.llama.loadModel({ modelPath, vocabOnly: options.vocabOnly ?? false, gpuLayers: options.gpuLayers === -1 ? "auto" : options.gpuLayers ?? 0 });
            this.modelFiles.set(model, modelPath);
            return model;
        } catch (error) {
            throw new EngineError("model-invalid", `Could not load ${path.basename(modelPath)}: ${(error as Error).message}`);
        }
    }

    // Creates a context in the given cache mode. Creation is serialised: the
    // XQuant options travel to the addon through a one-shot pending slot.
    async createContext(model: LlamaModel, options: ContextOptions): Promise<EngineContext> {
        const spec = cacheModeSpecs[options.cacheMode];
        const shape = modelShape(model);
        if (spec.kind === "xq" && !xquantArchitectures.includes(shape.architecture)) {
            throw new EngineError("unsupported-architecture",
                `The ${options.cacheMode} cache mode does not support the "${shape.architecture}" architecture (supported: ${xquantArchitectures.join(", ")})`);
        }
        if (isLatent(spec) && shape.nHeadKv * shape.headDimK * 2 > shape.nEmbd) {
            throw new EngineError("unsupported-architecture",
                `The ${options.cacheMode} cache mode is for GQA models; this model caches ${shape.nHeadKv} KV heads of ${shape.nHead}, so its latent would not be smaller than X`);
        }
        const bindings = this.xquantBindings();
        const factorsPath = isLatent(spec) && spec.kind === "xq" ? await this.factorsPath(model, spec.variant) : undefined;
        const create = async (): Promise<EngineContext> => {
            bindings.setXQuantNextContext(spec.kind === "xq"
                ? {
                    bits: spec.bits, baseLayers: options.baseLayers ?? -1, baseBits: xqBaseBits, variant: xquantVariantIds[spec.variant], factorsPath,
                    absorbV: options.absorbV ?? true, exactUbatch: options.exactUbatch ?? true,
                }
                : null);
            try {
                const context = await model.createContext({
                    contextSize: options.contextSize,
                    sequences: options.sequences ?? 1,
                    threads: Math.min(options.threads || this.info.threads, this.info.threads),
                    flashAttention: spec.kind === "kv" && spec.type !== "F16" ? true : options.flashAttention ?? false,
                    experimentalKvCacheKeyType: spec.kind === "kv" ? spec.type : undefined,
                    experimentalKvCacheValueType: spec.kind === "kv" ? spec.type : undefined,
                    ignoreMemorySafetyChecks: true,
                    failedCreationRemedy: false,
                });
                const engineContext = new EngineContext(options.cacheMode, context, bindings);
                try {
                    engineContext.verifyMode();
                } catch (error) {
                    await engineContext.dispose();
                    throw error;
                }
                return engineContext;
            } catch (error) {
                if (error instanceof EngineError) throw error;
                throw new EngineError("context-failed", `Could not create a ${options.cacheMode} context: ${(error as Error).message}`);
            } finally {
                bindings.setXQuantNextContext(null);
            }
        };
        const result = this.contextCreation.then(create, create);
        this.contextCreation = result.catch(() => undefined);
        return result;
    }

    // The factors file of a model, keyed by a hash of the model file (hashed once per process).
    private async factorsPath(model: LlamaModel, variant: string): Promise<string> {
        const file = this.modelFiles.get(model);
        if (file === undefined) throw new EngineError("model-invalid", "The model was not loaded by this engine");
        let hash = this.fileHashes.get(file);
        if (hash === undefined) {
            const digest = crypto.createHash("sha256");
            for await (const chunk of fs.createReadStream(file)) digest.update(chunk as Buffer);
            hash = digest.digest("hex");
            this.fileHashes.set(file, hash);
        }
        fs.mkdirSync(this.factorsDir, { recursive: true });
        return path.join(this.factorsDir, `${hash.slice(0, 32)}-${variant}.bin`);
    }

    private xquantBindings(): XQuantBindings {
        return (this.llama as unknown as { _bindings: XQuantBindings })._bindings;
    }

    // Greedy completion of raw text (no chat template).
    async completeGreedy(model: LlamaModel, prompt: string, options: GenerateOptions): Promise<string> {
        const context = options.context ?? await this.createContext(model, { cacheMode: "kv-f16", contextSize: options.contextSize ?? 512 });
        try {
            const completion = new LlamaCompletion({ contextSequence: context.sequence() });
            return await completion.generateCompletion(prompt, { maxTokens: options.maxTokens, temperature: 0 });
        } finally {
            if (options.context === undefined) await context.dispose();
        }
    }

    // GPU memory, or null when the engine runs on the CPU only.
    async vram(): Promise<{ totalBytes: number; usedBytes: number; freeBytes: number } | null> {
        if (this.llama.gpu === false) return null;
        const state = await this.llama.getVramState();
        return { totalBytes: state.total, usedBytes: state.used, freeBytes: state.free };
    }

    async dispose(): Promise<void> {
        await this.llama.dispose();
    }
}
