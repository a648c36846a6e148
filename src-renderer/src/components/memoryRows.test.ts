import { describe, expect, it } from "vitest";
import type { MetricsSample } from "../../../src-main/api/contract.ts";
import { cacheBytesPerCell, estimateCacheBytes, type ModelShape } from "../../../src-main/api/cache-modes.ts";
import { mib } from "./format.ts";
import { chartRows, defaultComparedModes, maxComparedModes, toggleCompared } from "./memoryRows.ts";

const shape: ModelShape = { architecture: "llama", nLayer: 10, nEmbd: 256, nHead: 4, nHeadKv: 1, headDimK: 64, headDimV: 64 };

function sample(contextTokens: number, cacheBytesUsed: number): MetricsSample {
    return { time: contextTokens, chatId: "c", mode: "xql-4", contextTokens, contextSize: 512, cacheBytesUsed, cacheBytesAllocated: 0, computeBytes: 5 * 2 ** 20, rssBytes: 2 ** 30, vramUsedBytes: null };
}

describe("memory chart rows", () => {
    it("puts the measured cache, and the cache plus compute buffers, at sample points and every other mode's formula bytes at each point, from 0 to the context size", () => {
        const rows = chartRows([sample(100, 2 ** 20), sample(256, 3 * 2 ** 20)], shape, ["kv-f16", "xq-4"], -1, 512);
        expect(rows.map((row) => row.tokens)).toEqual([0, 100, 256, 512]);
        expect(rows.map((row) => row.measured)).toEqual([null, 1, 3, null]);
        expect(rows.map((row) => row.measuredWithCompute)).toEqual([null, 6, 8, null]);
        expect(rows[1]!.rss).toBe(1024);
        expect(rows[1]!.vram).toBeNull();
        expect(rows[1]!["kv-f16"]).toBeCloseTo(mib(100 * cacheBytesPerCell(shape, "kv-f16")));
        // at a whole number of 256-cell blocks, the same as the allocation formula
        expect(rows[3]!["xq-4"]).toBeCloseTo(mib(estimateCacheBytes(shape, "xq-4", 512)));
    });

    it("without samples still draws the formula lines across the context", () => {
        const rows = chartRows([], shape, ["kv-f16"], -1, 256);
        expect(rows.map((row) => [row.tokens, row.measured, row.measuredWithCompute])).toEqual([[0, null, null], [256, null, null]]);
    });

    it("compares the chat's mode with the caches users have until the user picks, and with at most three", () => {
        expect(defaultComparedModes(["kv-f16", "kv-q8_0", "kv-q4_0", "xql-4"], "xql-4")).toEqual(["kv-f16", "kv-q4_0"]);
        expect(defaultComparedModes(["kv-f16", "kv-q4_0", "xql-4"], "kv-f16")).toEqual(["kv-q4_0"]);
        expect(defaultComparedModes(["kv-f16", "xql-4"], "xql-4")).toEqual(["kv-f16"]);
        let compared = toggleCompared(["kv-f16", "kv-q4_0"], "xql-4");
        expect(compared).toEqual(["kv-f16", "kv-q4_0", "xql-4"]);
        expect(toggleCompared(compared, "xqlcl-2")).toHaveLength(maxComparedModes);
        compared = toggleCompared(compared, "kv-f16");
        expect(compared).toEqual(["kv-q4_0", "xql-4"]);
    });
});
