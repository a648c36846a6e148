// Cache modes and their exact memory formulas. Part of the api layer, so that the
// engine, the services' "will it fit" check and the renderer's charts use the same numbers.

export const cacheModes = [
    "kv-f16", "kv-q8_0", "kv-q4_0",
    "xq-f16", "xq-8", "xq-4", "xq-3", "xq-2",
    "xqcl-4", "xqcl-3", "xqcl-2",
    "xql-8", "xql-4", "xql-3", "xql-2",
    "xqlcl-4", "xqlcl-3", "xqlcl-2",
] as const;
export type CacheMode = (typeof cacheModes)[number];

export type KvCacheType = "F16" | "Q8_0" | "Q4_0";

// "x" caches X; "cl" (XQuant-CL) the residual stream as cross-layer deltas;
// "latent" (GQA) X's coordinates in Wk's and Wv's row spaces; "latent-cl" cross-layer
// deltas of X in the joint [Wk; Wv] row space.
export type XQuantVariant = "x" | "cl" | "latent" | "latent-cl";

export type CacheModeSpec =
    | { kind: "kv"; type: KvCacheType }
    | { kind: "xq"; bits: 16 | 8 | 4 | 3 | 2; variant: XQuantVariant };

export const cacheModeSpecs: Record<CacheMode, CacheModeSpec> = {
    "kv-f16": { kind: "kv", type: "F16" },
    "kv-q8_0": { kind: "kv", type: "Q8_0" },
    "kv-q4_0": { kind: "kv", type: "Q4_0" },
    "xq-f16": { kind: "xq", bits: 16, variant: "x" },
    "xq-8": { kind: "xq", bits: 8, variant: "x" },
    "xq-4": { kind: "xq", bits: 4, variant: "x" },
    "xq-3": { kind: "xq", bits: 3, variant: "x" },
    "xq-2": { kind: "xq", bits: 2, variant: "x" },
    "xqcl-4": { kind: "xq", bits: 4, variant: "cl" },
    "xqcl-3": { kind: "xq", bits: 3, variant: "cl" },
    "xqcl-2": { kind: "xq", bits: 2, variant: "cl" },
    "xql-8": { kind: "xq", bits: 8, variant: "latent" },
    "xql-4": { kind: "xq", bits: 4, variant: "latent" },
    "xql-3": { kind: "xq", bits: 3, variant: "latent" },
    "xql-2": { kind: "xq", bits: 2, variant: "latent" },
    "xqlcl-4": { kind: "xq", bits: 4, variant: "latent-cl" },
    "xqlcl-3": { kind: "xq", bits: 3, variant: "latent-cl" },
    "xqlcl-2": { kind: "xq", bits: 2, variant: "latent-cl" },
};

// The variant's number in llama_context_params.xquant_variant.
export const xquantVariantIds: Record<XQuantVariant, number> = { x: 0, cl: 1, latent: 2, "latent-cl": 3 };

function isCrossLayer(spec: CacheModeSpec): boolean {
    return spec.kind === "xq" && (spec.variant === "cl" || spec.variant === "latent-cl");
}

export function isLatent(spec: CacheModeSpec): boolean {
    return spec.kind === "xq" && (spec.variant === "latent" || spec.variant === "latent-cl");
}

export function isCacheMode(value: unknown): value is CacheMode {
    return typeof value === "string" && (cacheModes as readonly string[]).includes(value);
}

// The shape facts the formulas need, read from the GGUF header.
export interface ModelShape {
    architecture: string;
    nLayer: number;
    nEmbd: number;
    nHead: number;
    nHeadKv: number;
    headDimK: number;
    headDimV: number;
    // the window of sliding-window attention layers (gemma3); 0 or absent: none
    slidingWindow?: number;
}

// Base layers keep 4 bits; by default 3 of every 32 layers, as in the paper.
// XQuant-CL needs at least one: layer 0 has no previous layer to take a delta against.
export const xqBaseBits = 4;

export function baseLayersFor(mode: CacheMode, nLayer: number, requested = -1): number {
    const spec = cacheModeSpecs[mode];
    const layers = requested >= 0 ? Math.min(requested, nLayer) : Math.floor((3 * nLayer) / 32);
    return isCrossLayer(spec) ? Math.max(layers, 1) : layers;
}

// ggml block layouts: [elements per block, bytes per block].
const kvBlocks: Record<KvCacheType, [number, number]> = {
    F16: [1, 2],
    Q8_0: [32, 34],
    Q4_0: [32, 18],
};

function kvRowBytes(type: KvCacheType, elements: number): number {
    const [perBlock, blockBytes] = kvBlocks[type];
    return (elements / perBlock) * blockBytes;
}

// Mirrors xq_group_size / xq_row_bytes in native/src/llama.cpp/src/xquant-quant.cpp.
export function xqGroupSize(nEmbd: number): number {
    for (let group = 128; group >= 32; group /= 2) if (nEmbd % group === 0) return group;
    return 0;
}

export function xqRowBytes(nEmbd: number, bits: number): number {
    if (bits === 16) return nEmbd * 2;
    const group = xqGroupSize(nEmbd);
    return (nEmbd / group) * (4 + (group * bits) / 8);
}

export function xqLayerBits(bits: number, layer: number, baseLayers: number): number {
    return layer < baseLayers && xqBaseBits > bits ? xqBaseBits : bits;
}

// llama.cpp rounds a context up to a multiple of 256 cells.
export function cacheCells(contextSize: number): number {
    return Math.ceil(contextSize / 256) * 256;
}

// Bytes of one cell (one token) across all layers; baseLayers -1 is the default.
export function cacheBytesPerCell(shape: ModelShape, mode: CacheMode, requestedBaseLayers = -1): number {
    const spec = cacheModeSpecs[mode];
    const baseLayers = baseLayersFor(mode, shape.nLayer, requestedBaseLayers);
    let bytes = 0;
    for (let layer = 0; layer < shape.nLayer; layer++) {
        bytes += spec.kind === "kv"
            ? kvRowBytes(spec.type, shape.headDimK * shape.nHeadKv) + kvRowBytes(spec.type, shape.headDimV * shape.nHeadKv)
            : xqRowBytes(xqRowWidth(shape, spec), xqLayerBits(spec.bits, layer, baseLayers));
    }
    return bytes;
}

export function estimateCacheBytes(shape: ModelShape, mode: CacheMode, contextSize: number, baseLayers?: number): number {
    return cacheCells(contextSize) * cacheBytesPerCell(shape, mode, baseLayers);
}

// Whether the parts of what a context needs (its cache, and its compute buffers and latent
// factors where they are known; the weights too for an estimate before loading) fit in
// `freeBytes`. A part that is not a finite count never fits: a damaged model header gives
// NaN, and `NaN > free` is false. The one rule for the engine's check and the estimate.
export function fitsInMemory(parts: readonly number[], freeBytes: number): boolean {
    const isCount = (bytes: number) => Number.isFinite(bytes) && bytes >= 0;
    return parts.every(isCount) && isCount(freeBytes) && parts.reduce((sum, bytes) => sum + bytes, 0) <= freeBytes;
}

// The values one cell stores per layer: X (n_embd), or the two latents (2·d_kv).
function xqRowWidth(shape: ModelShape, spec: CacheModeSpec): number {
    return isLatent(spec) ? 2 * shape.nHeadKv * shape.headDimK : shape.nEmbd;
}

// Elements cached per cell: X or its latents for XQuant modes, K and V for KV modes.
export function cachedElementsPerCell(shape: ModelShape, mode: CacheMode): number {
    const spec = cacheModeSpecs[mode];
    return spec.kind === "xq" ? shape.nLayer * xqRowWidth(shape, spec) : shape.nLayer * shape.nHeadKv * (shape.headDimK + shape.headDimV);
}

// XQuant-CL chains each layer's cells to the previous layer's, which sliding-window layers break
export function crossLayerOnSlidingWindow(shape: ModelShape, spec: CacheModeSpec): boolean {
    return (shape.slidingWindow ?? 0) > 0 && isCrossLayer(spec);
}
