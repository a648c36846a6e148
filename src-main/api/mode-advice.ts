// Advice on cache modes: a model's check (each cache mode measured on the user's own model
// and machine: quality against kv-f16, speed by context depth, memory), and the rules that
// turn it into advice. Nothing is called good unless a check measured it so.
import { z } from "zod";
import { cacheBytesPerCell, cacheModes, cacheModeSpecs, crossLayerOnSlidingWindow, isLatent, type CacheMode, type CacheModeSpec, type ModelShape } from "./cache-modes.ts";

const count = z.number().nonnegative();

// Speed measured at one context depth (cells in the context when the decode started).
export interface SpeedAtDepth {
    depth: number;
    prefillTokensPerSecond: number;
    decodeTokensPerSecond: number;
}

export const modeCheckSchema = z.object({
    mode: z.enum(cacheModes),
    // mean KL divergence of the next-token distributions against kv-f16's, on the check's text
    kld: count,
    // perplexity's change against kv-f16's, in percent
    deltaPplPct: z.number(),
    // the share of tokens whose most likely next token is kv-f16's
    sameTopToken: z.number().min(0).max(1),
    bytesPerToken: count,
    // measured speed by context depth (cells in the context when the step ran)
    prefillTokensPerSecond: z.record(z.string().regex(/^[1-9]\d*$/), count),
    decodeTokensPerSecond: z.record(z.string().regex(/^[1-9]\d*$/), count),
    // what a context takes besides its cache, as the engine allocated it at the check's deepest context
    computeBytes: count,
    factorBytes: count,
    // the largest context (multiple of 256, at most the trained context) that fits the check's memory budget
    maxContextInBudget: z.number().int().nonnegative(),
});
export type ModeCheck = z.infer<typeof modeCheckSchema>;

export const modelCheckSchema = z.object({
    modelSha256: z.string().regex(/^[0-9a-f]{64}$/),
    // the engine that measured: a hash of its system info (patch series and CPU variant's features)
    engineBuild: z.string().min(1),
    // "cpu", or the GPU backend (cuda, metal, vulkan)
    backend: z.string().min(1),
    threads: z.number().int().positive(),
    measuredAt: z.number().int().nonnegative(),
    seconds: count,
    // the quality text's name, its context per chunk and how many chunks were scored
    text: z.string(),
    contextSize: z.number().int().positive(),
    chunks: z.number().int().nonnegative(),
    weightsBytes: count,
    trainedContext: z.number().int().nonnegative(),
    budgetBytes: count,
    modes: z.array(modeCheckSchema),
});
export type ModelCheck = z.infer<typeof modelCheckSchema>;

// The quality budget: a mode may be recommended only if, on the check's text, its KLD against
// kv-f16 is at most this many times kv-q8_0's (llama.cpp's own 8-bit cache), and its perplexity
// rises by at most this many percent.
export const qualityBudget = { kldTimesKvQ8: 10, deltaPplPct: 1 } as const;
export const qualityBudgetText = `KLD ≤ ${qualityBudget.kldTimesKvQ8} × kv-q8_0's and ΔPPL ≤ ${qualityBudget.deltaPplPct}%`;

// Whether a measured mode is within the quality budget (kv-f16 always is: it is the reference).
export function withinQualityBudget(check: ModelCheck, measured: ModeCheck): boolean {
    const kvQ8 = check.modes.find((mode) => mode.mode === "kv-q8_0");
    if (measured.mode === "kv-f16") return true;
    if (kvQ8 === undefined) return false;
    return measured.kld <= qualityBudget.kldTimesKvQ8 * kvQ8.kld && measured.deltaPplPct <= qualityBudget.deltaPplPct;
}

// The measured decode speed that stands for a context of `contextSize`: at the deepest depth
// measured within it, else at the shallowest.
export function speedAt(measured: ModeCheck, contextSize: number): { depth: number; tokensPerSecond: number } | undefined {
    const depths = Object.keys(measured.decodeTokensPerSecond).map(Number).sort((a, b) => a - b);
    const depth = depths.findLast((measuredDepth) => measuredDepth <= contextSize) ?? depths[0];
    return depth === undefined ? undefined : { depth, tokensPerSecond: measured.decodeTokensPerSecond[depth]! };
}

// The largest context, in whole 256-cell steps as llama.cpp allocates them and at most the
// trained context, whose cache fits in `budgetBytes` beside the weights, compute buffers and factors.
export function maxContextInBudget(budgetBytes: number, fixedBytes: number, bytesPerToken: number, trainedContext: number): number {
    if (bytesPerToken <= 0 || budgetBytes <= fixedBytes) return 0;
    const cells = Math.floor((budgetBytes - fixedBytes) / bytesPerToken / 256) * 256;
    return trainedContext > 0 ? Math.min(cells, trainedContext) : cells;
}

// The check with each mode's largest context judged against another memory budget.
export function withBudget(check: ModelCheck, budgetBytes: number): ModelCheck {
    return {
        ...check, budgetBytes, modes: check.modes.map((mode) => ({
            ...mode, maxContextInBudget: maxContextInBudget(budgetBytes, check.weightsBytes + mode.computeBytes + mode.factorBytes, mode.bytesPerToken, check.trainedContext),
        })),
    };
}

// Decode speeds within this factor of the fastest count as a tie: one check's timings of a mode
// move by about 10% on a quiet machine (kv-f16 and kv-q8_0 at 1024 tokens on SmolLM2 measured
// 56.9 and 57.3 tok/s). A tie goes to the mode closest to kv-f16 (the smallest KLD).
export const speedTie = 1.1;

// The fastest of some measured modes, ties to the better quality; undefined for none.
function fastestOf<T extends { tokensPerSecond: number; kld: number }>(candidates: readonly T[]): T | undefined {
    const top = Math.max(...candidates.map((candidate) => candidate.tokensPerSecond));
    return candidates.filter((candidate) => candidate.tokensPerSecond * speedTie >= top).sort((a, b) => a.kld - b.kld)[0];
}

// The fastest measured mode at `contextSize` among those within the quality budget that fit
// (`fits`), or null when none does.
export function fastestWithinBudget(check: ModelCheck, contextSize: number, fits: (mode: CacheMode) => boolean): CacheMode | null {
    const candidates = check.modes.filter((measured) => withinQualityBudget(check, measured) && fits(measured.mode))
        .map((measured) => ({ mode: measured.mode, kld: measured.kld, tokensPerSecond: speedAt(measured, contextSize)?.tokensPerSecond ?? 0 }));
    return fastestOf(candidates)?.mode ?? null;
}

export interface ModeAdvice {
    mode: CacheMode;
    available: boolean;
    // measured within the quality budget, and the fastest such mode that fits; before a
    // check only kv-f16, the reference, is
    recommended: boolean;
    // one line for the settings screen: shape facts, and measured figures only where a check measured them
    reason: string;
    bytesPerToken: number;
    savingVsF16: number;
    // what the model's check measured for this mode; null where nothing was measured
    measured: ModeCheck | null;
    // null where nothing was measured
    withinQualityBudget: boolean | null;
}

// Why a mode cannot run on this model, or null if it can. XQuant caches X (n_embd wide) where a
// KV cache holds K and V (2·d_kv); the latent modes (2·d_kv wide) are for GQA models.
function unavailableReason(shape: ModelShape, spec: CacheModeSpec, supportedArchitectures: readonly string[]): string | null {
    if (spec.kind === "kv") return null;
    if (!supportedArchitectures.includes(shape.architecture)) return `XQuant does not support the ${shape.architecture} architecture`;
    if (crossLayerOnSlidingWindow(shape, spec)) return "cross-layer modes need every layer to keep the same cells; this model's sliding-window layers keep only their window";
    if (isLatent(spec) && 2 * shape.nHeadKv * shape.headDimK >= shape.nEmbd) return "latent modes are for GQA models; here X is already no wider than K+V";
    return null;
}

// What the mode stores, from the model's shape alone: no claim about quality or speed.
function describeStorage(shape: ModelShape, spec: CacheModeSpec, bytesPerToken: number, f16Bytes: number): string {
    if (spec.kind === "kv") return `llama.cpp's own KV cache (${spec.type})`;
    const what = isLatent(spec) ? "X in Wk/Wv's row spaces" : spec.variant === "cl" ? "cross-layer deltas of X" : "X";
    if (bytesPerToken >= f16Bytes) return `caches ${what} (${bytesPerToken} bytes/token), more than f16 K+V (${f16Bytes})`;
    return `${(f16Bytes / bytesPerToken).toFixed(1)}x less than f16 KV; caches ${what}`;
}

const percent = (value: number) => `${value >= 0 ? "+" : ""}${value.toFixed(2)}%`;

// The check's figures for one mode, in words.
function describeMeasured(check: ModelCheck, measured: ModeCheck, contextSize: number, within: boolean): string {
    const speed = speedAt(measured, contextSize);
    const speedText = speed === undefined ? "" : `, ${speed.tokensPerSecond.toFixed(1)} tok/s at ${speed.depth} tokens`;
    const budget = within ? "within" : "outside";
    return `measured: KLD ${measured.kld.toExponential(2)}, ΔPPL ${percent(measured.deltaPplPct)}${speedText}, fits up to ${measured.maxContextInBudget} tokens in ${Math.round(check.budgetBytes / 2 ** 20)} MiB; ${budget} the quality budget (${qualityBudgetText})`;
}

// Every cache mode for a model: whether it can run, what it stores, and, once the model's check
// has measured it, its quality, speed and memory. "Recommended" comes only from a check: the
// fastest measured mode at `contextSize` within the quality budget that fits (by default: its
// largest context in the check's budget holds `contextSize`). Before a check, kv-f16 is
// recommended, as the reference every other mode is measured against.
export function adviseModes(shape: ModelShape, supportedArchitectures: readonly string[], check: ModelCheck | null = null, contextSize = 0,
    fits?: (mode: CacheMode) => boolean): ModeAdvice[] {
    const f16Bytes = cacheBytesPerCell(shape, "kv-f16");
    const fitsBudget = (mode: CacheMode) => (check?.modes.find((measured) => measured.mode === mode)?.maxContextInBudget ?? 0) >= contextSize;
    const pick = check === null ? "kv-f16" : fastestWithinBudget(check, contextSize, fits ?? fitsBudget);
    return cacheModes.map((mode) => {
        const spec = cacheModeSpecs[mode];
        const bytesPerToken = cacheBytesPerCell(shape, mode);
        const advice = { mode, bytesPerToken, savingVsF16: f16Bytes / bytesPerToken, measured: null, withinQualityBudget: null };
        const unavailable = unavailableReason(shape, spec, supportedArchitectures);
        if (unavailable !== null) return { ...advice, available: false, recommended: false, reason: unavailable };
        const storage = describeStorage(shape, spec, bytesPerToken, f16Bytes);
        if (check === null) {
            const reason = mode === "kv-f16"
                ? `${storage}, the reference; recommended until a check of this model measures the other modes`
                : `${storage}; quality and speed not measured on this model`;
            return { ...advice, available: true, recommended: mode === "kv-f16", reason };
        }
        const measured = check.modes.find((entry) => entry.mode === mode) ?? null;
        if (measured === null) return { ...advice, available: true, recommended: false, reason: `${storage}; not measured by this model's check` };
        const within = withinQualityBudget(check, measured);
        const recommended = mode === pick;
        const why = recommended ? "; the fastest mode within the quality budget that fits" : "";
        return { ...advice, available: true, recommended, measured, withinQualityBudget: within, reason: `${storage}; ${describeMeasured(check, measured, contextSize, within)}${why}` };
    });
}

// The modes a check measures: those the model can run whose cache is smaller than kv-f16's (one
// that stores more than kv-f16 is never worth its rebuild), kv-f16 first as the reference.
export function modesToCheck(advice: readonly ModeAdvice[]): CacheMode[] {
    const f16Bytes = advice.find((entry) => entry.mode === "kv-f16")!.bytesPerToken;
    return advice.filter((entry) => entry.available && (entry.mode === "kv-f16" || entry.bytesPerToken < f16Bytes)).map((entry) => entry.mode);
}

// What "auto" runs a chat in: a mode, and the context it gets (what the mode holds in the memory
// budget, at most the chat's own context size).
export interface AutoChoice {
    mode: CacheMode;
    contextSize: number;
    // in words, for the session bar and the chat's line when it changes
    reason: string;
}

const mibText = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

// The modes auto may run a chat in: measured within the quality budget, with room for at least
// one 256-cell context in the memory budget; each with the context it holds and its speed there.
function autoCandidates(check: ModelCheck, contextSize: number): { mode: CacheMode; holds: number; kld: number; tokensPerSecond: number }[] {
    return check.modes
        .filter((measured) => withinQualityBudget(check, measured) && measured.maxContextInBudget >= 256)
        .map((measured) => ({
            mode: measured.mode, holds: Math.min(measured.maxContextInBudget, contextSize), kld: measured.kld, tokensPerSecond: speedAt(measured, contextSize)?.tokensPerSecond ?? 0,
        }));
}

// Auto's pick for a chat that needs `neededTokens` of a `contextSize` context: the fastest
// candidate that holds them, else the one that holds the most (only there does the chat shift
// its context). Without a check, or with no candidate, kv-f16: nothing else is measured.
export function pickAutoMode(check: ModelCheck | null, contextSize: number, neededTokens: number): AutoChoice {
    const candidates = check === null ? [] : autoCandidates(check, contextSize);
    if (check === null || candidates.length === 0) {
        const why = check === null ? "this model has no check yet" : `no measured mode within the quality budget fits ${mibText(check.budgetBytes)}`;
        return { mode: "kv-f16", contextSize, reason: `auto: kv-f16, the reference (${why})` };
    }
    const holding = fastestOf(candidates.filter((candidate) => candidate.holds >= neededTokens));
    const chosen = holding ?? candidates.reduce((most, candidate) => (candidate.holds > most.holds ? candidate : most));
    const speed = `${chosen.tokensPerSecond.toFixed(1)} tok/s measured`;
    const reason = holding === undefined
        ? `auto: ${chosen.mode}, which holds the most of the ${neededTokens} tokens needed in the ${mibText(check.budgetBytes)} budget (${chosen.holds}; the context shifts past that)`
        : `auto: ${chosen.mode}, the fastest mode within the quality budget (${speed}) that holds the ${neededTokens} tokens needed in the ${mibText(check.budgetBytes)} budget (up to ${chosen.holds})`;
    return { mode: chosen.mode, contextSize: chosen.holds, reason };
}
