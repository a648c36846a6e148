import { describe, expect, it } from "vitest";
import { cacheBytesPerCell, type CacheMode, type ModelShape } from "./cache-modes.ts";
import { adviseModes, maxContextInBudget, modesToCheck, pickAutoMode, withBudget, type ModeCheck, type ModelCheck } from "./mode-advice.ts";

// SmolLM2-135M's shape (GQA: 3 of 9 heads), and its figures: KLD and ΔPPL from docs/results.md
// (KJV, context 512), decode speeds as measured in a chat at under 100 tokens of context.
const smollm2: ModelShape = { architecture: "llama", nLayer: 30, nEmbd: 576, nHead: 9, nHeadKv: 3, headDimK: 64, headDimV: 64 };
const supported = ["llama"];
const measured: [CacheMode, number, number, number][] = [
    ["kv-f16", 0, 0, 30.7],
    ["kv-q8_0", 5.02e-3, 0.24, 27.0],
    ["xq-8", 4.94e-3, -0.05, 20.0],
    ["xql-8", 5.27e-3, 0.02, 18.0],
    ["xql-4", 4.44e-2, 3.10, 17.0],
    ["xqlcl-2", 2.31e-1, 21.49, 4.4],
];
const weightsBytes = 92 * 2 ** 20;
const computeBytes = 20 * 2 ** 20;

function check(budgetBytes: number): ModelCheck {
    const modes: ModeCheck[] = measured.map(([mode, kld, deltaPplPct, tokensPerSecond]) => ({
        mode, kld, deltaPplPct, sameTopToken: 1 - kld, bytesPerToken: cacheBytesPerCell(smollm2, mode),
        prefillTokensPerSecond: { 256: 10 * tokensPerSecond }, decodeTokensPerSecond: { 256: tokensPerSecond, 1024: tokensPerSecond / 2 },
        computeBytes, factorBytes: 0, maxContextInBudget: 0,
    }));
    return withBudget({
        modelSha256: "0".repeat(64), engineBuild: "build", backend: "cpu", threads: 2, measuredAt: 0, seconds: 1, text: "check-text.txt",
        contextSize: 512, chunks: 4, weightsBytes, trainedContext: 8192, budgetBytes, modes,
    }, budgetBytes);
}

const byMode = (advice: ReturnType<typeof adviseModes>) => Object.fromEntries(advice.map((entry) => [entry.mode, entry]));

describe("advice on cache modes", () => {
    it("before a check recommends kv-f16 alone and claims nothing about any mode's quality", () => {
        const advice = adviseModes(smollm2, supported);
        expect(advice.filter((entry) => entry.recommended).map((entry) => entry.mode)).toEqual(["kv-f16"]);
        for (const entry of advice) {
            expect(entry.reason).not.toMatch(/lossless/i);
            expect(entry.measured).toBeNull();
            if (entry.available && entry.mode !== "kv-f16") expect(entry.reason).toContain("not measured");
        }
    });

    it("after a check on SmolLM2's figures, does not recommend xqlcl-2 and says what was measured", () => {
        const advice = byMode(adviseModes(smollm2, supported, check(2 ** 34), 2048));
        expect(advice["xqlcl-2"]).toMatchObject({ recommended: false, withinQualityBudget: false, reason: expect.stringContaining("ΔPPL +21.49%") });
        expect(advice["xql-4"]).toMatchObject({ recommended: false, withinQualityBudget: false });
        expect(advice["xql-8"]).toMatchObject({ withinQualityBudget: true });
        // a mode the check did not measure is not judged
        expect(advice["xqcl-4"]).toMatchObject({ recommended: false, measured: null, withinQualityBudget: null, reason: expect.stringContaining("not measured") });
        // with memory to spare the fastest mode within the quality budget is the reference itself
        expect(Object.values(advice).filter((entry) => entry.recommended).map((entry) => entry.mode)).toEqual(["kv-f16"]);
    });

    it("recommends the fastest mode within the quality budget whose context fits the memory budget", () => {
        // room for 8k tokens of kv-q8_0 (12,240 bytes/token) but not of kv-f16 (23,040)
        const budget = weightsBytes + computeBytes + 8192 * cacheBytesPerCell(smollm2, "kv-q8_0") + 2 ** 20;
        const measuredCheck = check(budget);
        expect(measuredCheck.modes.find((mode) => mode.mode === "kv-f16")!.maxContextInBudget).toBeLessThan(8192);
        expect(measuredCheck.modes.find((mode) => mode.mode === "kv-q8_0")!.maxContextInBudget).toBe(8192);
        const advice = adviseModes(smollm2, supported, measuredCheck, 8192);
        expect(advice.filter((entry) => entry.recommended).map((entry) => entry.mode)).toEqual(["kv-q8_0"]);
        // a caller that measured the fit itself decides it
        const onlyXql8 = adviseModes(smollm2, supported, measuredCheck, 8192, (mode) => mode === "xql-8");
        expect(onlyXql8.filter((entry) => entry.recommended).map((entry) => entry.mode)).toEqual(["xql-8"]);
        // kv-q8_0 measured 3% faster than kv-f16 is a tie, which goes to the better quality
        const tied = check(2 ** 34);
        tied.modes.find((mode) => mode.mode === "kv-q8_0")!.decodeTokensPerSecond = { 256: 31.6, 1024: 15.8 };
        expect(adviseModes(smollm2, supported, tied, 2048).filter((entry) => entry.recommended).map((entry) => entry.mode)).toEqual(["kv-f16"]);
        expect(pickAutoMode(tied, 2048, 100).mode).toBe("kv-f16");
        // nothing within the quality budget fits: nothing is recommended
        expect(adviseModes(smollm2, supported, check(weightsBytes), 8192).some((entry) => entry.recommended)).toBe(false);
    });

    it("counts the largest context in whole 256-cell steps, at most the trained context", () => {
        expect(maxContextInBudget(1000 + 300 * 100, 1000, 100, 0)).toBe(256);
        expect(maxContextInBudget(1000 + 512 * 100, 1000, 100, 0)).toBe(512);
        expect(maxContextInBudget(2 ** 40, 1000, 100, 4096)).toBe(4096);
        expect(maxContextInBudget(500, 1000, 100, 4096)).toBe(0);
    });

    it("checks every mode the model can run that caches less than kv-f16, kv-f16 first", () => {
        const modes = modesToCheck(adviseModes(smollm2, supported));
        expect(modes[0]).toBe("kv-f16");
        expect(modes).toContain("xqlcl-2");
        // X in f16 (576 wide) is more than f16 K+V (2 × 192): never worth checking
        expect(modes).not.toContain("xq-f16");
        expect(modesToCheck(adviseModes({ ...smollm2, architecture: "mistral3" }, supported))).toEqual(["kv-f16", "kv-q8_0", "kv-q4_0"]);
    });

    it("auto runs the fastest mode within the quality budget that holds the chat, and the one that holds most when none does", () => {
        expect(pickAutoMode(null, 2048, 100)).toMatchObject({ mode: "kv-f16", contextSize: 2048, reason: expect.stringContaining("no check yet") });
        // beside the weights and compute buffers, kv-f16 (23,040 bytes/token) holds 768 tokens, xq-8
        // (18,360) 768, kv-q8_0 (12,240) 1280 and xql-8 (11,880) 1536
        const measuredCheck = check(weightsBytes + computeBytes + 800 * cacheBytesPerCell(smollm2, "kv-f16"));
        expect(pickAutoMode(measuredCheck, 2048, 700)).toMatchObject({ mode: "kv-f16", contextSize: 768 });
        // past kv-f16's room: the fastest within the quality budget that holds it (never xql-4 or xqlcl-2)
        expect(pickAutoMode(measuredCheck, 2048, 1000)).toMatchObject({ mode: "kv-q8_0", contextSize: 1280 });
        expect(pickAutoMode(measuredCheck, 2048, 1400)).toMatchObject({ mode: "xql-8", contextSize: 1536 });
        // nothing holds it: the mode that holds the most, and the context shifts there
        expect(pickAutoMode(measuredCheck, 2048, 1600)).toMatchObject({ mode: "xql-8", contextSize: 1536, reason: expect.stringContaining("shifts") });
        // the chat's own context bounds every mode's
        expect(pickAutoMode(check(2 ** 34), 2048, 1500)).toMatchObject({ mode: "kv-f16", contextSize: 2048 });
        // nothing within the quality budget fits at all: kv-f16, and the reason says so
        expect(pickAutoMode(check(weightsBytes), 2048, 100).reason).toContain("no measured mode within the quality budget fits");
    });
});
