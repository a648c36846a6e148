import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath, realModels } from "../../fixtures/fixtures.ts";
import type { CatalogEntry } from "../api/contract.ts";
import { adviseModes } from "../api/mode-advice.ts";
import { Engine } from "../engine/engine.ts";
import { readGgufMetadata } from "../engine/models.ts";
import { catalog } from "./catalog.ts";

describe("the catalog", () => {
    const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-catalog-"));
    // the architectures the native build supports, as the engine reports them
    let architectures: string[];
    let entries: CatalogEntry[];
    beforeAll(async () => {
        const engine = await Engine.start({ maxThreads: 1 });
        architectures = engine.info.xquantArchitectures;
        await engine.dispose();
        entries = catalog(appDir, architectures);
    });
    afterAll(() => fs.rmSync(appDir, { recursive: true, force: true }));

    it("offers the two real models the tests run first, with their sha256 and size", () => {
        expect(entries.slice(0, 2).map((entry) => entry.id)).toEqual(realModels.map((model) => model.name));
        for (const model of realModels) {
            const entry = entries.find((candidate) => candidate.id === model.name)!;
            expect(entry.sha256).toBe(model.sha256);
            expect(entry.sizeBytes).toBe(model.bytes);
        }
    });

    // the catalog's shapes are typed in by hand; the files are the judge
    it.each(realModels)("describes $name as its GGUF does, and lists the modes the engine can run on it", async (model) => {
        const metadata = await readGgufMetadata(fixturePath(model.name));
        const entry = entries.find((candidate) => candidate.id === model.name)!;
        expect(entry).toMatchObject({ architecture: metadata.architecture, nLayer: metadata.nLayer, attention: metadata.nHeadKv < metadata.nHead ? "GQA" : "MHA" });
        expect(entry.availableModes).toEqual(adviseModes(metadata, architectures).filter((advice) => advice.available).map((advice) => advice.mode));
    });

    it("offers a user's entry without a sha256 as unverified, and keeps the sha256 of one that has it", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-catalog-user-"));
        const shape = { architecture: "llama", nLayer: 2, nEmbd: 64, nHead: 4, nHeadKv: 4, headDimK: 16, headDimV: 16 };
        fs.writeFileSync(path.join(dir, "catalog.json"), JSON.stringify([
            { id: "mine", name: "Mine", url: "https://example.com/mine.gguf", sizeBytes: 1, shape },
            { id: "checked", name: "Checked", url: "https://example.com/checked.gguf", sizeBytes: 1, sha256: "a".repeat(64), shape },
        ]));
        const user = catalog(dir, architectures).slice(entries.length);
        fs.rmSync(dir, { recursive: true, force: true });
        expect(user.map((entry) => [entry.id, entry.sha256])).toEqual([["mine", null], ["checked", "a".repeat(64)]]);
    });

    it("does not offer the cross-layer modes for Gemma 3's sliding-window layers", () => {
        const gemma = entries.find((entry) => entry.id === "gemma3-270m-q4_k_m")!;
        expect(gemma.availableModes.some((mode) => mode.startsWith("xql-"))).toBe(true);
        expect(gemma.availableModes.some((mode) => mode.includes("cl-"))).toBe(false);
    });
});
