// The engine: the only code that talks to node-llama-cpp. It runs on our own
// patched llama.cpp build (npm run build:native) and refuses any other binary.
// The layers above hold its own handles (Engine, EngineModel, EngineContext,
// EngineChat), never a node-llama-cpp object.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { getLlama, LlamaCompletion, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from "node-llama-cpp";
import { cacheDir, installedBinDir } from "../../native/paths.ts";
import { cacheModeSpecs, crossLayerOnSlidingWindow, estimateCacheBytes, fitsInMemory, isLatent, xqBaseBits, xquantVariantIds, type CacheMode, type ModelShape } from "../api/cache-modes.ts";
import type { SpeedAtDepth } from "../api/mode-advice.ts";
import type { EngineInfo } from "../api/contract.ts";
import { EngineChat, type GenerateInOneLoop, type GenerationOptions, type GenerationResult } from "./chat.ts";
import { physicalCores } from "./cpu-cores.ts";
import { EngineError } from "./errors.ts";
import { Lock } from "./lock.ts";
import { ggufModelFacts, sha256File } from "./models.ts";

export const XQUANT_MARKER = "XQUANT = 1";

export interface EngineOptions {
    // Threads for llama.cpp. Oversubscribing a small CPU is 20-100x slower, so
    // the default is the number of physical cores, never more.
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
    // XQuant: attention as one fused op over the cache, whose scratch does not grow with the context
    // (default on; off: rebuild K, and V unless absorbed, for every cell in view, as GEMMs)
    fusedAttention?: boolean;
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

// What a context takes besides the weights, as the engine allocated it.
export interface ContextMemory {
    cacheBytes: number;
    computeBytes: number;
}

interface XQuantContextOptions {
    bits: number; baseLayers: number; baseBits: number; variant: number; factorsPath?: string; absorbV: boolean; exactUbatch: boolean; fusedAttention: boolean;
}

interface XQuantCacheInfo {
    bits: number; variant: number; bytes: number; bitsPerElement: number; cells: number; cellsUsed: number;
    factorBytes: number; factorSeconds: number; factorsFromDisk: boolean; computeBytes: number;
}

// The addon functions our patch series adds (native/src/addon/AddonXQuant.cpp).
interface XQuantAddon {
    // the XQuant options for the next context the addon creates (one-shot)
    setNextContext(options: XQuantContextOptions | null): void;
    // the cache of a context, or null once it is disposed
    cacheInfo(context: LlamaContext): XQuantCacheInfo | null;
    // the architectures the X-cache modes support (the native list, xquant-cache.cpp)
    architectures(): string[];
    // generates on the sequence in one native loop (AddonGenerationLoop.cpp)
    generate: GenerateInOneLoop;
}

interface NativeGeneration {
    done: Promise<GenerationResult>;
    stop(): void;
}

type NativeGenerate = (addonContext: unknown, options: GenerationOptions & { sequenceId: number; position: number; token: Token }, onTokens: (tokens: Token[]) => void) => NativeGeneration;

// Decodes `firstToken` at the sequence's next index, then samples and decodes until a stop: the
// sampled tokens reach onTokens in batches as they come. Afterwards node-llama-cpp's record of the
// sequence (its tokens, its next index, its token meter) holds what the loop decoded.
function generateInOneLoop(generate: NativeGenerate): GenerateInOneLoop {
    return async (sequence, firstToken, options, onTokens, signal) => {
        const addonContext = (sequence.context as unknown as { _ctx: unknown })._ctx;
        const record = sequence as unknown as { _sequenceId: number; _contextTokens: Token[]; _nextTokenIndex: number };
        let delivered = 0;
        let finished = false;
        const deliver = (tokens: Token[]) => {
            delivered += tokens.length;
            sequence.tokenMeter.useTokens(tokens.length, "output");
            onTokens(tokens);
        };
        const run = generate(addonContext, { ...options, sequenceId: record._sequenceId, position: sequence.nextTokenIndex, token: firstToken }, (tokens) => {
            if (!finished) deliver(tokens);
        });
        const stop = () => run.stop();
        signal.addEventListener("abort", stop);
        if (signal.aborted) stop();
        try {
            const result = await run.done;
            // the last calls to onToken may come after the result
            finished = true;
            if (result.tokens.length > delivered) deliver(result.tokens.slice(delivered));
            record._contextTokens = record._contextTokens.concat([firstToken, ...result.tokens].slice(0, result.decoded));
            record._nextTokenIndex += result.decoded;
            return result;
        } finally {
            signal.removeEventListener("abort", stop);
        }
    };
}

// The one place that reads node-llama-cpp's private fields. Pinned to
// node-llama-cpp 3.21.1 (package.json): there Llama keeps the loaded addon in
// `_bindings`, LlamaContext its native context in `_ctx`, and LlamaContextSequence its
// id and tokens in `_sequenceId`, `_contextTokens` and `_nextTokenIndex`; none is reachable through a
// public API. Our addon functions need them. Check these names again on any
// upgrade; a missing function fails here, by name.
function xquantAddon(llama: Llama): XQuantAddon {
    const bindings = (llama as unknown as { _bindings?: Record<string, unknown> })._bindings;
    if (typeof bindings?.setXQuantNextContext !== "function" || typeof bindings.getXQuantCacheInfo !== "function" || typeof bindings.getXQuantArchitectures !== "function"
        || typeof bindings.xquantGenerate !== "function") {
        throw new EngineError("stock-binary", "The loaded addon lacks the XQuant functions (or node-llama-cpp's Llama._bindings moved). Run `npm run build:native`.");
    }
    const setNext = bindings.setXQuantNextContext as (options: XQuantContextOptions | null) => void;
    const info = bindings.getXQuantCacheInfo as (addonContext: unknown) => XQuantCacheInfo | null;
    return {
        setNextContext: (options) => setNext(options),
        cacheInfo: (context) => info((context as unknown as { _ctx: unknown })._ctx),
        architectures: () => (bindings.getXQuantArchitectures as () => string)().split(", "),
        generate: generateInOneLoop(bindings.xquantGenerate as NativeGenerate),
    };
}

// A GPU's memory, as the backend reports it.
export interface DeviceMemory {
    totalBytes: number;
    usedBytes: number;
    freeBytes: number;
}

// What the models of one engine share.
interface EngineRuntime {
    readonly addon: XQuantAddon;
    readonly xquantArchitectures: readonly string[];
    readonly threads: number;
    readonly factorsDir: string;
    // Context creation is serialised: the XQuant options travel to the addon through a one-shot pending slot.
    readonly contextCreation: Lock;
    vram(): Promise<DeviceMemory | null>;
}

interface SavedStateRecord {
    format: "xquant-desktop-state";
    mode: CacheMode;
}

// A context in one cache mode, with its first sequence.
export class EngineContext {
    readonly mode: CacheMode;
    private readonly context: LlamaContext;
    private readonly addon: XQuantAddon;
    private firstSequence: LlamaContextSequence | null = null;

    constructor(mode: CacheMode, context: LlamaContext, addon: XQuantAddon) {
        this.mode = mode;
        this.context = context;
        this.addon = addon;
    }

    cacheStats(): CacheStats {
        const info = this.cacheInfo();
        return {
            mode: this.mode, bytes: info.bytes, bitsPerElement: info.bitsPerElement, cellsUsed: info.cellsUsed, contextSize: info.cells,
            factorBytes: info.factorBytes, factorSeconds: info.factorSeconds, factorsFromDisk: info.factorsFromDisk, computeBytes: info.computeBytes,
        };
    }

    private cacheInfo(): XQuantCacheInfo {
        const info = this.addon.cacheInfo(this.context);
        if (info === null) throw new EngineError("handle-disposed", "The context has been disposed");
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

    // The context's first sequence, claimed once.
    private sequence(): LlamaContextSequence {
        this.firstSequence ??= this.context.getSequence();
        return this.firstSequence;
    }

    // Chat turns on this context.
    chat(): EngineChat {
        return new EngineChat(this.sequence(), this.addon.generate);
    }

    // The tokens held in the context now.
    contextTokens(): number[] {
        return this.sequence().contextTokens;
    }

    // Empties the context.
    async clear(): Promise<void> {
        await this.sequence().clearHistory();
    }

    // Tokens evaluated or generated so far, counted as each batch starts: progress through a long prompt too.
    processedTokens(): number {
        const meter = this.sequence().tokenMeter;
        return meter.usedInputTokens + meter.usedOutputTokens;
    }

    // Evaluates tokens into the context without generating.
    async prefill(tokens: readonly number[]): Promise<void> {
        await this.sequence().evaluateWithoutGeneratingNewTokens(tokens as Token[]);
    }

    // Evaluates tokens, then yields greedily decoded tokens, one per step, until the caller stops.
    async *decodeGreedy(tokens: readonly number[]): AsyncGenerator<number> {
        yield* this.sequence().evaluate(tokens as Token[], { temperature: 0 });
    }

    // Speed at each depth (ascending): fills the context with `text` (repeated as needed) up to
    // one cell short of the depth, timing the prefill, then decodes `decodeTokens` greedily from
    // the depth's token in the native generation loop, as a chat does. The decode clock starts
    // after the first token, which also builds and allocates the one-token graph. A 32-token
    // warm-up first pages in the weights, as llama-bench's does.
    async measureSpeed(text: readonly number[], depths: readonly number[], decodeTokens: number): Promise<SpeedAtDepth[]> {
        const token = (index: number) => text[index % text.length]!;
        await this.prefill(text.slice(0, 32));
        await this.clear();
        const results: SpeedAtDepth[] = [];
        for (const depth of depths) {
            const held = this.contextTokens().length;
            const fill = Array.from({ length: Math.max(0, depth - 1 - held) }, (_, i) => token(held + i));
            const started = performance.now();
            await this.prefill(fill);
            const prefillSeconds = (performance.now() - started) / 1000;
            const greedy = { maxTokens: decodeTokens, temperature: 0, topK: 1, topP: 1, stopTokens: [], ignoreEndOfGeneration: true };
            const decode = await this.addon.generate(this.sequence(), token(depth - 1) as Token, greedy, () => {}, new AbortController().signal);
            results.push({ depth, prefillTokensPerSecond: fill.length / prefillSeconds, decodeTokensPerSecond: (decode.decoded - 1) / decode.decodeSeconds });
        }
        return results;
    }

    // Continues raw text (no chat template); greedy unless a temperature is given; onTokens hears
    // how many tokens each step generated; an abort ends it early with the text so far.
    complete(prompt: string, options: { maxTokens: number; temperature?: number; seed?: number; onTokens?: (count: number) => void; signal?: AbortSignal }): Promise<string> {
        const completion = new LlamaCompletion({ contextSequence: this.sequence() });
        const onToken = options.onTokens ? (tokens: Token[]) => options.onTokens!(tokens.length) : undefined;
        return completion.generateCompletion(prompt, { maxTokens: options.maxTokens, temperature: options.temperature ?? 0, seed: options.seed, onToken, signal: options.signal, stopOnAbortSignal: true });
    }

    // The full softmax (temperature 1, no truncation) after each token from
    // `firstScored - 1` on, so that result[i] predicts tokens[firstScored + i].
    async nextTokenDistributions(tokens: readonly number[], firstScored: number): Promise<Map<number, number>[]> {
        const sequence = this.sequence();
        await this.clear();
        const scoreFrom = Math.max(0, firstScored - 1);
        const input = tokens.slice(0, -1).map((token, index) => index >= scoreFrom
            ? [token as Token, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }] as const
            : token as Token);
        const output = await sequence.controlledEvaluate(input as Parameters<typeof sequence.controlledEvaluate>[0]);
        const distributions: Map<number, number>[] = [];
        for (let index = scoreFrom; index < tokens.length - 1; index++) distributions.push(new Map(output[index]?.next.probabilities ?? []));
        return distributions;
    }

    // Saves the sequence with a sidecar naming the cache mode, which loadState checks first.
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

    async dispose(): Promise<void> {
        await this.context.dispose();
    }
}

// A loaded model: its shape, its tokenizer, and contexts in any cache mode.
export class EngineModel {
    readonly filePath: string;
    readonly shape: ModelShape & { contextLength: number };
    private readonly model: LlamaModel;
    private readonly runtime: EngineRuntime;
    private fileHash: Promise<string> | null = null;
    // what the contexts made so far allocated besides their cache, by their options: the
    // memory check counts it for the next context of the same options
    private readonly allocated = new Map<string, { computeBytes: number; factorBytes: number }>();

    constructor(model: LlamaModel, filePath: string, runtime: EngineRuntime) {
        this.model = model;
        this.filePath = filePath;
        this.runtime = runtime;
        this.shape = ggufModelFacts(model.fileInfo.metadata, path.basename(filePath));
    }

    tokenize(text: string, specialTokens = false): number[] {
        return this.model.tokenize(text, specialTokens);
    }

    // Creates a context in the given cache mode, one creation at a time across the engine.
    async createContext(options: ContextOptions): Promise<EngineContext> {
        const spec = cacheModeSpecs[options.cacheMode];
        const shape = this.shape;
        const { xquantArchitectures } = this.runtime;
        if (spec.kind === "xq" && !xquantArchitectures.includes(shape.architecture)) {
            throw new EngineError("unsupported-architecture",
                `The ${options.cacheMode} cache mode does not support the "${shape.architecture}" architecture (supported: ${xquantArchitectures.join(", ")})`);
        }
        if (crossLayerOnSlidingWindow(shape, spec)) {
            throw new EngineError("unsupported-architecture",
                `The ${options.cacheMode} cache mode chains every layer's cells to the previous layer's; this model's sliding-window layers keep only the last ${shape.slidingWindow} tokens. Use an xq or xql mode.`);
        }
        if (isLatent(spec) && shape.nHeadKv * shape.headDimK * 2 > shape.nEmbd) {
            throw new EngineError("unsupported-architecture",
                `The ${options.cacheMode} cache mode is for GQA models; this model caches ${shape.nHeadKv} KV heads of ${shape.nHead}, so its latent would not be smaller than X`);
        }
        await this.checkCacheFits(options);
        const { addon, threads } = this.runtime;
        const factorsPath = isLatent(spec) && spec.kind === "xq" ? await this.factorsPath(spec.variant) : undefined;
        return this.runtime.contextCreation.run(async () => {
            addon.setNextContext(spec.kind === "xq"
                ? {
                    bits: spec.bits, baseLayers: options.baseLayers ?? -1, baseBits: xqBaseBits, variant: xquantVariantIds[spec.variant], factorsPath,
                    absorbV: options.absorbV ?? true, exactUbatch: options.exactUbatch ?? true, fusedAttention: options.fusedAttention ?? true,
                }
                : null);
            try {
                const context = await this.model.createContext({
                    contextSize: options.contextSize,
                    sequences: options.sequences ?? 1,
                    threads: Math.min(options.threads || threads, threads),
                    flashAttention: spec.kind === "kv" && spec.type !== "F16" ? true : options.flashAttention ?? false,
                    experimentalKvCacheKeyType: spec.kind === "kv" ? spec.type : undefined,
                    experimentalKvCacheValueType: spec.kind === "kv" ? spec.type : undefined,
                    ignoreMemorySafetyChecks: true,
                    failedCreationRemedy: false,
                });
                const engineContext = new EngineContext(options.cacheMode, context, addon);
                try {
                    engineContext.verifyMode();
                    const { computeBytes, factorBytes } = engineContext.cacheStats();
                    this.allocated.set(JSON.stringify(options), { computeBytes, factorBytes });
                } catch (error) {
                    await engineContext.dispose();
                    throw error;
                }
                return engineContext;
            } catch (error) {
                if (error instanceof EngineError) throw error;
                throw new EngineError("context-failed", `Could not create a ${options.cacheMode} context: ${(error as Error).message}`);
            } finally {
                addon.setNextContext(null);
            }
        });
    }

    // Creates the context as a chat would, reads what it allocated, and disposes it:
    // the compute buffers have no formula, only llama.cpp's graph reservation knows them.
    async measureContext(options: ContextOptions): Promise<ContextMemory> {
        const context = await this.createContext(options);
        try {
            const { bytes, computeBytes } = context.cacheStats();
            return { cacheBytes: bytes, computeBytes };
        } finally {
            await context.dispose();
        }
    }

    // node-llama-cpp's own memory check assumes a KV cache, so it would refuse X-cache
    // contexts that fit (ignoreMemorySafetyChecks stays on); this one uses the mode's exact
    // cache formula (an upper bound for sliding-window layers), plus the compute buffers and
    // latent factors that an earlier context of the same options allocated, against the
    // memory they will live in: VRAM where layers are offloaded, else RAM.
    private async checkCacheFits(options: ContextOptions): Promise<void> {
        const cacheBytes = estimateCacheBytes(this.shape, options.cacheMode, options.contextSize, options.baseLayers);
        const { computeBytes, factorBytes } = this.allocated.get(JSON.stringify(options)) ?? { computeBytes: 0, factorBytes: 0 };
        const freeBytes = this.model.gpuLayers > 0 ? (await this.runtime.vram())?.freeBytes ?? os.freemem() : os.freemem();
        if (fitsInMemory([cacheBytes, computeBytes, factorBytes], freeBytes)) return;
        if (!Number.isFinite(cacheBytes)) {
            throw new EngineError("context-too-large", `This model's header gives no usable size for a ${options.cacheMode} cache (${cacheBytes} bytes); the file may be damaged.`);
        }
        const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
        const measured = computeBytes + factorBytes > 0 ? ` and ${mib(computeBytes + factorBytes)} of compute buffers and factors` : "";
        throw new EngineError("context-too-large",
            `A ${options.cacheMode} context of ${options.contextSize} tokens needs ${mib(cacheBytes)} of cache${measured}, but only ${mib(freeBytes)} of memory is free. Choose a smaller context or a cache mode that needs less.`);
    }

    // The factors file of this model, keyed by a hash of the model file (hashed once).
    private async factorsPath(variant: string): Promise<string> {
        this.fileHash ??= sha256File(this.filePath);
        const hash = await this.fileHash;
        fs.mkdirSync(this.runtime.factorsDir, { recursive: true });
        return path.join(this.runtime.factorsDir, `${hash.slice(0, 32)}-${variant}.bin`);
    }

    async dispose(): Promise<void> {
        await this.model.dispose();
    }
}

export function hasXQuantMarker(systemInfo: string): boolean {
    return systemInfo.includes(XQUANT_MARKER);
}

// Throws unless systemInfo comes from our patch series: a silent fallback to
// node-llama-cpp's stock prebuilt binary must be impossible. Returns the patch series version.
export function verifyXQuantBinary(systemInfo: string): string {
    if (!hasXQuantMarker(systemInfo)) {
        throw new EngineError("stock-binary",
            "The loaded llama.cpp binary is not the XQuant build (its system info lacks \"XQUANT = 1\"). Run `npm run build:native`.");
    }
    return /XQUANT_PATCHES = ([^\s|]+)/.exec(systemInfo)?.[1] ?? "unknown";
}

// One thread per physical core this process may use (cpu-cores.ts).
export function defaultThreads(): number {
    return physicalCores();
}

// GPU memory, or null when the engine runs on the CPU only.
async function vramState(llama: Llama): Promise<DeviceMemory | null> {
    if (llama.gpu === false) return null;
    const state = await llama.getVramState();
    return { totalBytes: state.total, usedBytes: state.used, freeBytes: state.free };
}

export class Engine {
    readonly info: EngineInfo;
    private readonly llama: Llama;
    private readonly runtime: EngineRuntime;

    private constructor(llama: Llama, info: EngineInfo, runtime: EngineRuntime) {
        this.llama = llama;
        this.info = info;
        this.runtime = runtime;
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
            const addon = xquantAddon(llama);
            const xquantArchitectures = addon.architectures();
            const info: EngineInfo = {
                xquant: hasXQuantMarker(llama.systemInfo), systemInfo: llama.systemInfo, patchSeriesVersion, threads, backend: llama.gpu === false ? "cpu" : llama.gpu, xquantArchitectures,
            };
            const runtime: EngineRuntime = { addon, xquantArchitectures, threads, factorsDir: options.factorsDir ?? path.join(cacheDir, "factors"), contextCreation: new Lock(), vram: () => vramState(llama) };
            return new Engine(llama, info, runtime);
        } catch (error) {
            await llama.dispose();
            throw error;
        }
    }

    // gpuLayers -1 lets node-llama-cpp offload as many layers as fit
    // onProgress hears the load's progress (0..1) as the weights are read
    async loadModel(modelPath: string, options: { vocabOnly?: boolean; gpuLayers?: number; onProgress?: (fraction: number) => void } = {}): Promise<EngineModel> {
        if (!fs.existsSync(modelPath)) throw new EngineError("model-not-found", `Model file not found: ${modelPath}`);
        let model: LlamaModel;
        try {
            model = await this.llama.loadModel({ modelPath, vocabOnly: options.vocabOnly ?? false, gpuLayers: options.gpuLayers === -1 ? "auto" : options.gpuLayers ?? 0, onLoadProgress: options.onProgress });
        } catch (error) {
            throw new EngineError("model-invalid", `Could not load ${path.basename(modelPath)}: ${(error as Error).message}`);
        }
        return new EngineModel(model, modelPath, this.runtime);
    }

    vram(): Promise<DeviceMemory | null> {
        return vramState(this.llama);
    }

    async dispose(): Promise<void> {
        await this.llama.dispose();
    }
}
