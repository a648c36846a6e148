// The library on a full disk and with files from disk that point outside their folder.
// No model is ever read here: the metadata reader stands in for the engine's and
// accepts any file, so these tests need neither the native engine nor the fixtures.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { fillDisk } from "../../test-support/disk-faults.ts";
import { fileServerPool } from "../../test-support/file-server.ts";
import { libraryIn, settled } from "../../test-support/downloads.ts";
import { unhandledRejectionsDuring } from "../../test-support/unhandled-rejections.ts";
import type { ModelMetadata } from "../api/contract.ts";

const anyFile = async (filePath: string): Promise<ModelMetadata> => ({
    name: path.basename(filePath), architecture: "llama", nLayer: 2, nEmbd: 64, nHead: 2, nHeadKv: 2, headDimK: 32, headDimV: 32,
    contextLength: 256, sizeBytes: fs.statSync(filePath).size,
});

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "xq-library-faults-"));

// ipull 3.9.5, node-llama-cpp's downloader, leaves a `.then()` of every chunk write
// unhandled, so each write that fails is an unhandled rejection of its own: that is
// what the process guard (process-guard.ts) is for. Every other one is a bug here.
const notIpulls = (reasons: Error[]): Error[] => reasons.filter((reason) => !reason.stack?.includes(`${path.sep}ipull${path.sep}`));

describe("an import on a full disk", () => {
    afterEach(() => vi.restoreAllMocks());

    it("leaves no unlisted file when the index cannot be saved, and imports under the same name once there is room", async () => {
        const dir = tempDir();
        const source = path.join(tempDir(), "model.gguf");
        fs.writeFileSync(source, Buffer.alloc(1000, 7));
        const { library } = libraryIn(dir, anyFile);
        // the copy goes through the kernel; the index is the first write that fails
        fillDisk(0);
        await expect(library.importFile(source)).rejects.toMatchObject({ code: "ENOSPC" });
        vi.restoreAllMocks();
        expect(fs.readdirSync(dir).filter((name) => name.endsWith(".gguf"))).toEqual([]);
        expect(fs.readdirSync(path.join(dir, ".downloads"))).toEqual([]);
        expect(await library.list()).toEqual([]);
        expect(await library.importFile(source)).toMatchObject({ fileName: "model.gguf" });
    });
});

describe("downloads on a full disk", () => {
    const { serve, closeAll } = fileServerPool();
    afterEach(() => vi.restoreAllMocks());
    afterAll(closeAll);
    const file = Buffer.alloc(1_000_000, 7);

    it("fails with the disk-full message and its event, even when the list of downloads cannot be saved either", async () => {
        const server = await serve({ "model.gguf": file }, { bytesPerTick: 100_000 });
        const { library, events } = libraryIn(tempDir(), anyFile);
        const logged = vi.spyOn(console, "error").mockImplementation(() => {});
        const unhandled = await unhandledRejectionsDuring(async () => {
            const started = await library.startDownload({ url: server.url("model.gguf") });
            const failed = settled(events, started.id, ["failed", "done"]);
            fillDisk();
            expect(await failed).toMatchObject({ state: "failed", error: "The disk is full. Free some space, then resume." });
            expect(library.listDownloads()).toEqual([expect.objectContaining({ id: started.id, state: "failed" })]);
        });
        expect(notIpulls(unhandled)).toEqual([]);
        expect(logged).toHaveBeenCalledWith(expect.stringMatching(/^The list of downloads could not be saved: ENOSPC/));
    });

    it("counts what the downloads in progress still need before starting another", async () => {
        const server = await serve({ "slow.gguf": file }, { bytesPerTick: 10_000 });
        const dir = tempDir();
        const { library } = libraryIn(dir, anyFile);
        // room for one of these files and a half
        vi.spyOn(fs, "statfsSync").mockReturnValue({ ...fs.statfsSync(dir), bavail: 1_500_000, bsize: 1 });
        const first = await library.startDownload({ url: server.url("slow.gguf") });
        await expect(library.startDownload({ url: server.url("slow.gguf") })).rejects.toMatchObject({
            error: { code: "disk-full", message: expect.stringContaining("once the downloads in progress have the") },
        });
        await library.cancel(first.id);
        const second = await library.startDownload({ url: server.url("slow.gguf") });
        expect(second.state).toBe("downloading");
        await library.cancel(second.id);
    });
});

describe("names read from disk stay inside their folder", () => {
    it("an index whose file name leads outside the models folder is kept aside, and delete never reaches that file", async () => {
        const root = tempDir();
        const modelsDir = path.join(root, "models");
        fs.mkdirSync(modelsDir);
        const victim = path.join(root, "victim.gguf");
        fs.writeFileSync(victim, "not yours to delete");
        const index = JSON.stringify([{ id: "victim", fileName: "../victim.gguf", sha256: null, source: "import" }]);
        fs.writeFileSync(path.join(modelsDir, "index.json"), index);
        const { library } = libraryIn(modelsDir, anyFile);
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
            expect(libraryIn(modelsDir, anyFile).library.listDownloads()).toEqual([]);
            expect(fs.existsSync(`${downloadsFile}.damaged-1`)).toBe(true);
        }
    });
});
