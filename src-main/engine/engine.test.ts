import os from "node:os";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { fixturePath } from "../../fixtures/fixtures.ts";
import { cacheBytesPerCell, estimateCacheBytes } from "../api/cache-modes.ts";
import { Engine, XQUANT_MARKER, verifyXQuantBinary } from "./engine.ts";
import { EngineError } from "./errors.ts";

describe("engine on our patched llama.cpp", () => {
    let engine: Engine;

    beforeAll(async () => {
        engine = await Engine.start({ maxThreads: 2 });
    });

    afterAll(async () => {
        await engine.dispose();
    });

    it("runs the binary that carries the XQuant marker and patch series version", () => {
        expect(engine.info.systemInfo).toContain(XQUANT_MARKER);
        expect(engine.info.xquant).toBe(true);
        expect(engine.info.patchSeriesVersion).toMatch(/^\d+\.\d+\.\d+$/);
        expect(engine.info.threads).toBe(2);
        expect(engine.info.backend).toBe("cpu");
    });

    it("times prefill and decode at each depth, filling the context to that depth first", async () => {
        const model = await engine.loadModel(fixturePath("mha-trained"));
        const context = await model.createContext({ cacheMode: "xq-4", contextSize: 512 });
        try {
            const text = model.tokenize("In the beginning God created the heaven and the earth.");
            const speed = await context.measureSpeed(text, [64, 200], 4);
            expect(speed.map((step) => step.depth)).toEqual([64, 200]);
            for (const step of speed) {
                expect(Number.isFinite(step.prefillTokensPerSecond) && step.prefillTokensPerSecond > 0).toBe(true);
                expect(Number.isFinite(step.decodeTokensPerSecond) && step.decodeTokensPerSecond > 0).toBe(true);
            }
            // filled to 199 cells, then the depth's token and the 3 decoded after it (the 4th is sampled, not yet evaluated)
            expect(context.contextTokens().length).toBe(200 + 3);
        } finally {
            await context.dispose();
            await model.dispose();
        }
    });

    it("refuses a context whose cache will not fit in free memory, naming the mode and the bytes", async () => {
        const model = await engine.loadModel(fixturePath("mha-random-f16"));
        try {
            // twice the machine's memory at xq-4's exact bytes per cell
            const contextSize = Math.ceil((2 * os.totalmem()) / cacheBytesPerCell(model.shape, "xq-4") / 256) * 256;
            await expect(model.createContext({ cacheMode: "xq-4", contextSize })).rejects.toMatchObject({
                code: "context-too-large",
                message: expect.stringMatching(new RegExp(`^A xq-4 context of ${contextSize} tokens needs \\d+ MiB of cache, but only \\d+ MiB of memory is free`)),
            });
        } finally {
            await model.dispose();
        }
    });

    it("counts the compute buffers an earlier context of the same options allocated, not only the cache", async () => {
        const model = await engine.loadModel(fixturePath("mha-random-f16"));
        const options = { cacheMode: "xq-4", contextSize: 512 } as const;
        try {
            const first = await model.createContext(options);
            const { computeBytes } = first.cacheStats();
            await first.dispose();
            expect(computeBytes).toBeGreaterThan(0);
            // room for the cache and half the compute buffers
            vi.spyOn(os, "freemem").mockReturnValue(estimateCacheBytes(model.shape, "xq-4", 512) + computeBytes / 2);
            await expect(model.createContext(options)).rejects.toMatchObject({ code: "context-too-large", message: expect.stringContaining("of compute buffers and factors") });
        } finally {
            vi.restoreAllMocks();
            await model.dispose();
        }
    });

    it("ends a reply whose Stop came before generation as stopped, not as an error", async () => {
        const model = await engine.loadModel(fixturePath("mha-random-f16"));
        const context = await model.createContext({ cacheMode: "kv-f16", contextSize: 512 });
        const chat = context.chat();
        try {
            const sampling = { temperature: 0, topP: 1, topK: 1, maxTokens: 8, seed: 1 };
            expect(await chat.reply("", [], "In the beginning", sampling, () => {}, AbortSignal.abort())).toMatchObject({ text: "", tokens: 0, stopped: true });
        } finally {
            chat.dispose();
            await context.dispose();
            await model.dispose();
        }
    });

    it("loads a fixture model and generates text greedily, deterministically", async () => {
        const model = await engine.loadModel(fixturePath("mha-random-f16"));
        const generate = async () => {
            const context = await model.createContext({ cacheMode: "kv-f16", contextSize: 512 });
            try {
                return await context.complete("In the beginning", { maxTokens: 16 });
            } finally {
                await context.dispose();
            }
        };
        try {
            const first = await generate();
            const second = await generate();
            expect(model.tokenize(first).length).toBeGreaterThan(0);
            expect(second).toBe(first);
        } finally {
            await model.dispose();
        }
    });

    it("runs a gemma3 model in the X and latent modes, and refuses its cross-layer modes with a typed error", async () => {
        const model = await engine.loadModel(fixturePath("gqa-random-f32-gemma3"));
        try {
            expect(model.shape).toMatchObject({ architecture: "gemma3", slidingWindow: 128 });
            for (const cacheMode of ["xq-4", "xql-4"] as const) {
                const context = await model.createContext({ cacheMode, contextSize: 512 });
                try {
                    expect(model.tokenize(await context.complete("In the beginning", { maxTokens: 8 })).length).toBeGreaterThan(0);
                } finally {
                    await context.dispose();
                }
            }
            await expect(model.createContext({ cacheMode: "xqlcl-2", contextSize: 512 })).rejects.toMatchObject({
                code: "unsupported-architecture", message: expect.stringMatching(/sliding-window layers keep only the last 128 tokens/),
            });
        } finally {
            await model.dispose();
        }
    });

    it("measures a context's cache and compute buffers as creating that context reports them", async () => {
        const model = await engine.loadModel(fixturePath("mha-random-f16"));
        try {
            for (const cacheMode of ["kv-f16", "xq-4"] as const) {
                const options = { cacheMode, contextSize: 512 };
                const measured = await model.measureContext(options);
                const context = await model.createContext(options);
                try {
                    const stats = context.cacheStats();
                    expect(measured).toEqual({ cacheBytes: stats.bytes, computeBytes: stats.computeBytes });
                    expect(measured.computeBytes).toBeGreaterThan(0);
                } finally {
                    await context.dispose();
                }
            }
        } finally {
            await model.dispose();
        }
    });

    it("refuses a missing model file with a typed error", async () => {
        await expect(engine.loadModel("/nonexistent/model.gguf")).rejects.toMatchObject({ code: "model-not-found" });
    });
});

describe("verifyXQuantBinary", () => {
    it("rejects system info without the marker", () => {
        expect(() => verifyXQuantBinary("CPU : SSE3 = 1 | AVX2 = 1 | ")).toThrow(EngineError);
    });
});
