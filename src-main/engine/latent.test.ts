// GQA latent modes and mode guidance, on the GQA and MHA fixtures.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath, renamedArchitectureModel } from "../../fixtures/fixtures.ts";
import { estimateCacheBytes } from "../api/cache-modes.ts";
import { adviseModes } from "../api/mode-advice.ts";
import { Engine, type EngineModel } from "./engine.ts";

describe("GQA latent modes", () => {
    const factorsDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-factors-"));
    let engine: Engine;
    let gqa: EngineModel;
    let mha: EngineModel;

    beforeAll(async () => {
        engine = await Engine.start({ maxThreads: 2, factorsDir });
        gqa = await engine.loadModel(fixturePath("gqa-trained"));
        mha = await engine.loadModel(fixturePath("mha-random-f16"));
    });

    afterAll(async () => {
        await gqa.dispose();
        await mha.dispose();
        await engine.dispose();
        fs.rmSync(factorsDir, { recursive: true, force: true });
    });

    it("computes the factors once, reports the time, and reuses them from disk on the next load", async () => {
        const first = await gqa.createContext({ cacheMode: "xql-4", contextSize: 512 });
        const firstStats = first.cacheStats();
        await first.dispose();
        expect(firstStats.factorsFromDisk).toBe(false);
        expect(firstStats.factorSeconds).toBeGreaterThan(0);
        expect(firstStats.factorBytes).toBeGreaterThan(0);
        expect(fs.readdirSync(factorsDir)).toHaveLength(1);

        const second = await gqa.createContext({ cacheMode: "xql-2", contextSize: 512 });
        const secondStats = second.cacheStats();
        await second.dispose();
        expect(secondStats.factorsFromDisk).toBe(true);
        expect(secondStats.factorSeconds).toBe(0);
    });

    it.each(["xql-8", "xql-4", "xql-2", "xqlcl-3"] as const)("%s: measured bytes equal estimateCacheBytes", async (mode) => {
        const context = await gqa.createContext({ cacheMode: mode, contextSize: 512 });
        try {
            expect(context.cacheStats().bytes).toBe(estimateCacheBytes(gqa.shape, mode, 512));
        } finally {
            await context.dispose();
        }
    });

    it("xql-4 uses no more bytes than kv-q4_0 on the GQA fixture", () => {
        const shape = gqa.shape;
        expect(estimateCacheBytes(shape, "xql-4", 512)).toBeLessThanOrEqual(estimateCacheBytes(shape, "kv-q4_0", 512) * 1.05);
    });

    it("refuses latent modes on an MHA model with a typed error", async () => {
        await expect(mha.createContext({ cacheMode: "xql-4", contextSize: 512 })).rejects.toMatchObject({ code: "unsupported-architecture" });
    });

    it("before a check, recommends only kv-f16, claims nothing about quality, and says which modes run and why", () => {
        const mhaAdvice = Object.fromEntries(adviseModes(mha.shape, engine.info.xquantArchitectures).map((advice) => [advice.mode, advice]));
        expect(mhaAdvice["xqcl-2"]).toMatchObject({ available: true, recommended: false, measured: null, reason: expect.stringContaining("not measured") });
        expect(mhaAdvice["xql-4"]).toMatchObject({ available: false, reason: expect.stringContaining("GQA") });
        const gqaAdvice = adviseModes(gqa.shape, engine.info.xquantArchitectures);
        expect(gqaAdvice.filter((advice) => advice.recommended).map((advice) => advice.mode)).toEqual(["kv-f16"]);
        expect(gqaAdvice.find((advice) => advice.mode === "xql-4")).toMatchObject({ available: true, recommended: false });
        for (const advice of [...gqaAdvice, ...Object.values(mhaAdvice)]) {
            expect(advice.reason.length).toBeGreaterThan(10);
            expect(advice.reason).not.toMatch(/lossless/);
        }
    });

    it("refuses every XQuant mode on an unsupported architecture with a typed error naming it, and keeps KV modes", async () => {
        const other = await engine.loadModel(renamedArchitectureModel("mha-random-f16", "mistral3", factorsDir));
        try {
            await expect(other.createContext({ cacheMode: "xqcl-2", contextSize: 512 }))
                .rejects.toMatchObject({ code: "unsupported-architecture", message: expect.stringContaining('"mistral3" architecture') });
            const kv = await other.createContext({ cacheMode: "kv-q8_0", contextSize: 512 });
            expect(kv.cacheStats().mode).toBe("kv-q8_0");
            await kv.dispose();
            expect(adviseModes(other.shape, engine.info.xquantArchitectures).filter((advice) => advice.mode.startsWith("xq")).every((advice) => !advice.available)).toBe(true);
        } finally {
            await other.dispose();
        }
    });
});
