// The library with files from disk that point outside their folder.
// No model is ever read here: the metadata reader stands in for the engine's and
// accepts any file, so these tests need neither the native engine nor the fixtures.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ModelMetadata } from "../api/contract.ts";
import { EventBus } from "./events.ts";
import { ModelLibrary } from "./library.ts";

const anyFile = async (filePath: string): Promise<ModelMetadata> => ({
    name: path.basename(filePath), architecture: "llama", nLayer: 2, nEmbd: 64, nHead: 2, nHeadKv: 2, headDimK: 32, headDimV: 32,
    contextLength: 256, sizeBytes: fs.statSync(filePath).size,
});

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "xq-library-faults-"));

function libraryIn(dir: string): { library: ModelLibrary; events: EventBus } {
    const events = new EventBus();
    return { library: new ModelLibrary(() => dir, events, anyFile), events };
}

describe("names read from disk stay inside their folder", () => {
    it("an index whose file name leads outside the models folder is kept aside, and delete never reaches that file", async () => {
        const root = tempDir();
        const modelsDir = path.join(root, "models");
        fs.mkdirSync(modelsDir);
        const victim = path.join(root, "victim.gguf");
        fs.writeFileSync(victim, "not yours to delete");
        const index = JSON.stringify([{ id: "victim", fileName: "../victim.gguf", sha256: null, source: "import" }]);
        fs.writeFileSync(path.join(modelsDir, "index.json"), index);
        const { library } = libraryIn(modelsDir);
        expect(await library.list()).toEqual([]);
        await expect(library.delete("victim")).rejects.toMatchObject({ error: { code: "not-found" } });
        expect(fs.readFileSync(victim, "utf8")).toBe("not yours to delete");
        expect(fs.readFileSync(path.join(modelsDir, "index.json.damaged-1"), "utf8")).toBe(index);
    });

    it("a saved download whose id or file name leads outside the staging folder is not restored", () => {
        for (const info of [{ id: "../../escape", fileName: "m.gguf" }, { id: "d1", fileName: "../../m.gguf" }]) {
            const modelsDir = tempDir();
            const downloadsFile = path.join(modelsDir, ".downloads", "downloads.json");
            fs.mkdirSync(path.dirname(downloadsFile));
            const saved = [{ info: { ...info, url: "https://example.com/m.gguf", state: "paused", downloadedBytes: 0, totalBytes: 10, error: null, modelId: null }, sha256: null }];
            fs.writeFileSync(downloadsFile, JSON.stringify(saved));
            expect(libraryIn(modelsDir).library.listDownloads()).toEqual([]);
            expect(fs.existsSync(`${downloadsFile}.damaged-1`)).toBe(true);
        }
    });
});
