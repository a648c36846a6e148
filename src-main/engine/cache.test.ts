// Cache modes through node-llama-cpp: measured bytes against the exact formula,
// honest bits per element, and typed errors for what a mode cannot do.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath, heldOutTextPath, quantizedFixtures } from "../../fixtures/fixtures.ts";
import { cacheModes, cachedElementsPerCell, estimateCacheBytes, type CacheMode } from "../api/cache-modes.ts";
import { adviseModes, modesToCheck } from "../api/mode-advice.ts";
import { Engine, type EngineModel } from "./engine.ts";
import { EngineError } from "./errors.ts";

// Generates tokens into 256 cells (the smallest context llama.cpp makes) after a prompt that
// nearly fills them, so node-llama-cpp shifts the context within the first few dozen tokens
// (the prompt's prefill is batched: cheap even on the baseline x64 CPU variant). Every token
// must come out (counted as generated: the text may re-tokenize into fewer, longer ones) and the
// cells stay within the context. A random model may sample an end of text before the context
// fills, depending on which way the float sums (and so the samples) go on this CPU, so up to
// five seeds are tried for a run that goes the full length.
const contextCells = 256;
const generatedPastFullContext = 64;
async function expectGenerationPastFullContext(model: EngineModel, mode: CacheMode): Promise<void> {
    // longer than the context: node-llama-cpp keeps the part that fits, less its shift size (a tenth)
    const prompt = fs.readFileSync(heldOutTextPath, "utf8").slice(0, contextCells * 16);
    const promptTokens = model.tokenize(prompt).length;
    expect(promptTokens).toBeGreaterThan(contextCells);
    let generated = 0;
    for (let seed = 1; seed <= 5 && generated < generatedPastFullContext; seed++) {
        const context = await model.createContext({ cacheMode: mode, contextSize: contextCells });
        try {
            generated = 0;
            await context.complete(prompt, { maxTokens: generatedPastFullContext, temperature: 0.8, seed, onTokens: (count) => { generated += count; } });
            expect(context.cacheStats().cellsUsed).toBeLessThanOrEqual(contextCells);
            // more tokens went through the sequence than it has cells: the shift erased some
            if (generated === generatedPastFullContext) expect(context.processedTokens()).toBeGreaterThan(contextCells + generatedPastFullContext / 2);
        } finally {
            await context.dispose();
        }
    }
    expect(generated).toBe(generatedPastFullContext);
}

describe("cache modes on the MHA fixture", () => {
    let engine: Engine;
    let model: EngineModel;

    beforeAll(async () => {
        engine = await Engine.start({ maxThreads: 2 });
        model = await engine.loadModel(fixturePath("mha-random-f16"));
    });

    afterAll(async () => {
        await model.dispose();
        await engine.dispose();
    });

    it.each(cacheModes.filter((mode) => !mode.startsWith("xql")))("%s: reported bytes equal estimateCacheBytes, and bits per element are honest", async (mode) => {
        const context = await model.createContext({ cacheMode: mode, contextSize: 512 });
        try {
            const stats = context.cacheStats();
            const shape = model.shape;
            expect(stats.mode).toBe(mode);
            expect(stats.contextSize).toBe(512);
            expect(stats.bytes).toBe(estimateCacheBytes(shape, mode, 512));
            expect(stats.bitsPerElement).toBeCloseTo((stats.bytes * 8) / (512 * cachedElementsPerCell(shape, mode)), 6);
            expect(stats.computeBytes).toBeGreaterThan(0);
            await context.prefill(model.tokenize("In the beginning God created"));
            expect(context.cacheStats().cellsUsed).toBeGreaterThan(0);
        } finally {
            await context.dispose();
        }
    });

    it("xq-4 stores 4.25 bits per X element and is 7.5x smaller than kv-f16 on an MHA model", async () => {
        const shape = model.shape;
        expect(estimateCacheBytes(shape, "kv-f16", 512) / estimateCacheBytes(shape, "xq-4", 512)).toBeCloseTo(32 / 4.25, 6);
    });

    it("generates text in an XQuant mode", async () => {
        const context = await model.createContext({ cacheMode: "xq-4", contextSize: 512 });
        try {
            const text = await context.complete("In the beginning", { maxTokens: 8 });
            expect(model.tokenize(text).length).toBeGreaterThan(0);
        } finally {
            await context.dispose();
        }
    });

    it("keeps the first N layers at 4 bits when asked, and reports the blended bits honestly", async () => {
        const context = await model.createContext({ cacheMode: "xq-2", contextSize: 512, baseLayers: 2 });
        try {
            const shape = model.shape;
            const stats = context.cacheStats();
            expect(stats.bytes).toBe(estimateCacheBytes(shape, "xq-2", 512, 2));
            expect(stats.bitsPerElement).toBeCloseTo((2 * 4.25 + (shape.nLayer - 2) * 2.25) / shape.nLayer, 6);
        } finally {
            await context.dispose();
        }
    });

    it("saves and restores a state in its own mode, and refuses it in another mode with a typed error", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-state-"));
        const file = path.join(dir, "state.bin");
        const prompt = "And God said, Let there be light";
        const source = await model.createContext({ cacheMode: "xq-4", contextSize: 512 });
        const restored = await model.createContext({ cacheMode: "xq-4", contextSize: 512 });
        const other = await model.createContext({ cacheMode: "xq-8", contextSize: 512 });
        try {
            await source.prefill(model.tokenize(prompt));
            await source.saveState(file);
            await restored.loadState(file);
            expect(restored.contextTokens()).toEqual(source.contextTokens());
            const continued = await source.complete(prompt, { maxTokens: 8 });
            const afterLoad = await restored.complete(prompt, { maxTokens: 8 });
            expect(afterLoad).toBe(continued);

            await expect(other.loadState(file)).rejects.toMatchObject({ code: "state-mode-mismatch", message: expect.stringContaining("saved in cache mode xq-4") });
            // without the sidecar the native X-cache check refuses it too
            fs.rmSync(`${file}.json`);
            await expect(other.loadState(file)).rejects.toBeInstanceOf(EngineError);
        } finally {
            await Promise.all([source.dispose(), restored.dispose(), other.dispose()]);
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it.each(["xq-4", "xqcl-2"] as const)("%s: generation goes on past a full context through node-llama-cpp's context shift", async (mode) => {
        await expectGenerationPastFullContext(model, mode);
    });
});

// Real GGUFs are quantized, and a check measures these modes on them: on the llama-quantize
// copies of the trained fixtures, whose wk/wv an AVX2 CPU (repack) or an AMX one would otherwise
// rearrange. npm test runs this on the best CPU variant and again on the baseline x64 one.
describe.each(quantizedFixtures)("the modes a check measures, on quantized weights: %s", (name) => {
    let engine: Engine;
    let model: EngineModel;

    beforeAll(async () => {
        engine = await Engine.start({ maxThreads: 2 });
        model = await engine.loadModel(fixturePath(name));
    });

    afterAll(async () => {
        await model.dispose();
        await engine.dispose();
    });

    it("every X mode a check measures reports its exact bytes and generates", async () => {
        const modes = modesToCheck(adviseModes(model.shape, engine.info.xquantArchitectures)).filter((mode) => mode.startsWith("xq"));
        expect(modes.length).toBeGreaterThan(0);
        for (const mode of modes) {
            const context = await model.createContext({ cacheMode: mode, contextSize: 256 });
            try {
                expect(context.cacheStats().bytes, mode).toBe(estimateCacheBytes(model.shape, mode, 256));
                const text = await context.complete("And God said", { maxTokens: 8 });
                expect(model.tokenize(text).length, mode).toBeGreaterThan(0);
            } finally {
                await context.dispose();
            }
        }
    });

    it.each(name.startsWith("gqa") ? ["xql-4", "xqlcl-2"] as const : ["xq-4", "xqcl-2"] as const)("%s: generation goes on past a full context through node-llama-cpp's context shift", async (mode) => {
        await expectGenerationPastFullContext(model, mode);
    });
});
