import { describe, expect, it } from "vitest";
import { estimateCacheBytes, fitsInMemory } from "./cache-modes.ts";

describe("the memory check", () => {
    it("counts every part it is given: cache, compute buffers, factors", () => {
        expect(fitsInMemory([600, 300, 100], 1000)).toBe(true);
        expect(fitsInMemory([600, 300, 101], 1000)).toBe(false);
    });

    it("refuses a size that is not a finite count, as a damaged header gives", () => {
        const damaged = { architecture: "llama", nLayer: 2, nEmbd: Number("n/a"), nHead: 2, nHeadKv: 2, headDimK: Number("n/a"), headDimV: 32 };
        const cacheBytes = estimateCacheBytes(damaged, "kv-f16", 512);
        expect(cacheBytes).toBeNaN();
        expect(fitsInMemory([cacheBytes], 2 ** 40)).toBe(false);
        for (const bytes of [Infinity, -1, NaN]) expect(fitsInMemory([bytes], 2 ** 40)).toBe(false);
        expect(fitsInMemory([1], NaN)).toBe(false);
    });
});
