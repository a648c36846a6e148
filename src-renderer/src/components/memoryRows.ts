// The memory chart's data, apart from the chart so that it can be tested.
import type { CacheMode, MetricsSample } from "../../../src-main/api/contract.ts";
import { cacheBytesPerCell, type ModelShape } from "../../../src-main/api/cache-modes.ts";
import { mib } from "./format.ts";

// Hues from orange round to magenta, leaving red to the measured line.
export function modeColor(index: number, count: number): string {
    return `hsl(${Math.round(35 + (290 * index) / Math.max(1, count))} 55% 48%)`;
}

export type Row = Record<string, number | null>;

// The chart draws formula lines for the chat's own mode and at most this many others, which
// the user picks; before a pick, the caches users already have (kv-f16 and kv-q4_0).
export const maxComparedModes = 3;

export function defaultComparedModes(available: CacheMode[], chatMode: CacheMode): CacheMode[] {
    return (["kv-f16", "kv-q4_0"] as const).filter((mode) => mode !== chatMode && available.includes(mode));
}

// The compared modes after the user ticks or unticks one, never more than maxComparedModes.
export function toggleCompared(compared: CacheMode[], mode: CacheMode): CacheMode[] {
    if (compared.includes(mode)) return compared.filter((other) => other !== mode);
    return compared.length < maxComparedModes ? [...compared, mode] : compared;
}

// One row per context length: where a sample exists, the measured cache and the
// measured cache plus the context's compute buffers; and each given mode's
// cache bytes for the same cells (bytes per cell × cells in use, the same
// quantity the engine measures).
export function chartRows(samples: MetricsSample[], shape: ModelShape, modes: CacheMode[], baseLayers: number, contextSize: number): Row[] {
    const byTokens = new Map<number, MetricsSample>(samples.map((sample) => [sample.contextTokens, sample]));
    const xs = [...new Set([0, ...byTokens.keys(), contextSize])].sort((a, b) => a - b);
    const perCell = Object.fromEntries(modes.map((mode) => [mode, cacheBytesPerCell(shape, mode, baseLayers)]));
    return xs.map((tokens) => {
        const sample = byTokens.get(tokens);
        const row: Row = {
            tokens,
            measured: sample ? mib(sample.cacheBytesUsed) : null,
            measuredWithCompute: sample ? mib(sample.cacheBytesUsed + sample.computeBytes) : null,
            rss: sample ? mib(sample.rssBytes) : null,
            vram: sample?.vramUsedBytes != null ? mib(sample.vramUsedBytes) : null,
        };
        for (const mode of modes) row[mode] = mib(perCell[mode]! * tokens);
        return row;
    });
}

