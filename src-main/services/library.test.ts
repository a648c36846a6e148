import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixturePath } from "../../fixtures/fixtures.ts";
import { readGgufMetadata } from "../engine/models.ts";
import { huggingFaceFileUrl } from "./library.ts";
import { libraryIn, settled } from "../../test-support/downloads.ts";
import { fileServerPool } from "../../test-support/file-server.ts";

const model = fs.readFileSync(fixturePath("mha-random-f16"));
const modelSha256 = crypto.createHash("sha256").update(model).digest("hex");

describe("model downloads from a local HTTP server", () => {
    const { serve, closeAll } = fileServerPool();
    afterAll(closeAll);
    const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "xq-library-"));

    it("resumes after the connection is cut part-way, verifies sha256, and lists the model", async () => {
        const server = await serve({ "model.gguf": model }, { cutAfterBytes: 3_000_000 });
        const dir = tempDir();
        const { library, events } = libraryIn(dir, readGgufMetadata);
        const started = await library.startDownload({ url: server.url("model.gguf"), sha256: modelSha256 });
        expect(started).toMatchObject({ state: "downloading", totalBytes: model.length });
        const finished = await settled(events, started.id, ["done", "failed"]);
        expect(finished).toMatchObject({ state: "done", modelId: "model", error: null });
        // the transfer after the cut asked only for what was missing
        expect(server.ranges.filter((range) => range !== "").length).toBeGreaterThan(1);
        const [entry] = await library.list();
        expect(entry).toMatchObject({ id: "model", sha256: modelSha256, source: "download", metadata: { nLayer: 4 } });
        expect(crypto.createHash("sha256").update(fs.readFileSync(entry!.path)).digest("hex")).toBe(modelSha256);
    });

    it("pauses and resumes a slow download, continuing from the partial file", async () => {
        const server = await serve({ "slow.gguf": model }, { bytesPerTick: 500_000 });
        const { library, events } = libraryIn(tempDir(), readGgufMetadata);
        const started = await library.startDownload({ url: server.url("slow.gguf"), sha256: modelSha256 });
        await new Promise((resolve) => setTimeout(resolve, 600));
        expect(library.pause(started.id).state).toBe("paused");
        const requestsBeforeResume = server.ranges.length;
        library.resume(started.id);
        const finished = await settled(events, started.id, ["done", "failed"]);
        expect(finished.state).toBe("done");
        const resumedRanges = server.ranges.slice(requestsBeforeResume).filter((range) => !/^bytes=0-/.test(range) && range !== "");
        expect(resumedRanges.length).toBeGreaterThan(0);
    });

    it("deletes a download whose sha256 does not match, with a readable error", async () => {
        const server = await serve({ "model.gguf": model });
        const dir = tempDir();
        const { library, events } = libraryIn(dir, readGgufMetadata);
        const started = await library.startDownload({ url: server.url("model.gguf"), sha256: "0".repeat(64) });
        const failed = await settled(events, started.id, ["done", "failed"]);
        expect(failed).toMatchObject({ state: "failed", error: expect.stringContaining("sha256") });
        expect(await library.list()).toEqual([]);
    });

    it("refuses a download larger than the free disk before transferring anything", async () => {
        const server = await serve({ "huge.gguf": model }, { claimedSize: 2 ** 40 });
        const { library } = libraryIn(tempDir(), readGgufMetadata);
        await expect(library.startDownload({ url: server.url("huge.gguf") })).rejects.toMatchObject({ error: { code: "disk-full", message: expect.stringContaining("free") } });
    });

    it("does not list a download that is not a GGUF file", async () => {
        const server = await serve({ "fake.gguf": Buffer.from("this is an HTML error page, not a model".repeat(100)) });
        const { library, events } = libraryIn(tempDir(), readGgufMetadata);
        const started = await library.startDownload({ url: server.url("fake.gguf") });
        const failed = await settled(events, started.id, ["done", "failed"]);
        expect(failed).toMatchObject({ state: "failed", error: expect.stringContaining("not a valid GGUF") });
        expect(await library.list()).toEqual([]);
    });

    it("refuses plain http to other hosts, judged on the parsed host, and unknown catalog ids", async () => {
        const { library } = libraryIn(tempDir(), readGgufMetadata);
        await expect(library.startDownload({ url: "http://example.com/model.gguf" })).rejects.toMatchObject({ error: { code: "bad-request" } });
        await expect(library.startDownload({ url: "http://localhost:x@evil.example/m.gguf" })).rejects.toMatchObject({ error: { code: "bad-request", message: expect.stringContaining("use https") } });
        await expect(library.startDownload({ url: "http://127.0.0.1.evil.example/m.gguf" })).rejects.toMatchObject({ error: { code: "bad-request" } });
        await expect(library.startDownload({ url: "ftp://127.0.0.1/m.gguf" })).rejects.toMatchObject({ error: { code: "bad-request" } });
        await expect(library.startDownload({ catalogId: "no-such-model" })).rejects.toMatchObject({ error: { code: "not-found" } });
    });

    it("checks every redirect against the same rules as the first address", async () => {
        const server = await serve({ "model.gguf": model }, {
            redirects: { "moved.gguf": "/model.gguf", "to-lan.gguf": "http://10.1.2.3/model.gguf", "to-file.gguf": "file:///etc/passwd", "loop.gguf": "/loop.gguf" },
        });
        const dir = tempDir();
        const { library, events } = libraryIn(dir, readGgufMetadata);
        // plain http to another host, another scheme, or no end: refused before anything is sent there
        await expect(library.startDownload({ url: server.url("to-lan.gguf") })).rejects.toMatchObject({
            error: { code: "download-failed", message: `${server.url("to-lan.gguf")} redirects to http://10.1.2.3/model.gguf, which a download may not fetch: Plain http is only allowed from this machine (127.0.0.1); use https.` },
        });
        await expect(library.startDownload({ url: server.url("to-file.gguf") })).rejects.toMatchObject({ error: { code: "download-failed", message: expect.stringContaining("redirects to file:///etc/passwd, which a download may not fetch") } });
        await expect(library.startDownload({ url: server.url("loop.gguf") })).rejects.toMatchObject({ error: { code: "download-failed", message: expect.stringContaining("redirects more than 10 times") } });
        expect(library.listDownloads()).toEqual([]);
        // a redirect the rules allow is followed
        const moved = await library.startDownload({ url: server.url("moved.gguf"), sha256: modelSha256 });
        expect(await settled(events, moved.id, ["done", "failed"])).toMatchObject({ state: "done", modelId: "moved" });
    });

    // node-llama-cpp's downloader would resolve an hf: URI and follow Hugging Face's redirects
    // unchecked; the library hands it Hugging Face's https address, with every hop checked
    it("downloads an hf: URI from Hugging Face's https address, through the same redirect checks", async () => {
        expect(huggingFaceFileUrl("hf:owner/repo/sub dir/model.Q4_K_M.gguf#dev")).toBe("https://huggingface.co/owner/repo/resolve/dev/sub%20dir/model.Q4_K_M.gguf?download=true");
        expect(huggingFaceFileUrl("hf:owner/repo/model.gguf")).toBe("https://huggingface.co/owner/repo/resolve/main/model.gguf?download=true");
        const { library } = libraryIn(tempDir(), readGgufMetadata);
        for (const uri of ["hf:owner/repo", "hf:owner/repo:Q4_K_M", "hf:owner//model.gguf"]) {
            await expect(library.startDownload({ url: uri }), uri).rejects.toMatchObject({ error: { code: "bad-request", message: expect.stringContaining("does not name a file") } });
        }
        // with no network here the first hop fails, by the library's own check (with one, Hugging Face answers 404)
        const started = library.startDownload({ url: "hf:xquant-desktop-test/no-such-repo/none.gguf" });
        await expect(started).rejects.toMatchObject({ error: { code: expect.stringMatching(/^download-failed$|^model-not-found$/) } });
        await expect(started).rejects.toMatchObject({ error: { message: expect.stringContaining("https://huggingface.co/xquant-desktop-test/no-such-repo/resolve/main/none.gguf") } });
    });

    it("never overwrites a model: a bad download of the same name leaves it, a good one gets a name of its own", async () => {
        const server = await serve({ "model.gguf": model, "broken/model.gguf": Buffer.from("not a model".repeat(1000)) });
        const dir = tempDir();
        const { library, events } = libraryIn(dir, readGgufMetadata);
        const first = await library.startDownload({ url: server.url("model.gguf") });
        expect(await settled(events, first.id, ["done", "failed"])).toMatchObject({ state: "done", modelId: "model" });
        const broken = await library.startDownload({ url: server.url("broken/model.gguf") });
        expect(await settled(events, broken.id, ["done", "failed"])).toMatchObject({ state: "failed", error: expect.stringContaining("model.gguf is not a valid GGUF") });
        expect(crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, "model.gguf"))).digest("hex")).toBe(modelSha256);
        const second = await library.startDownload({ url: server.url("model.gguf") });
        expect(await settled(events, second.id, ["done", "failed"])).toMatchObject({ state: "done" });
        expect((await library.list()).map((entry) => entry.fileName)).toEqual(["model.gguf", "model-2.gguf"]);
    });

    it("stages two downloads of one file name apart, and lists both", async () => {
        const server = await serve({ "twin.gguf": model }, { bytesPerTick: 2_000_000 });
        const { library, events } = libraryIn(tempDir(), readGgufMetadata);
        const downloads = await Promise.all([library.startDownload({ url: server.url("twin.gguf") }), library.startDownload({ url: server.url("twin.gguf") })]);
        const finished = await Promise.all(downloads.map((download) => settled(events, download.id, ["done", "failed"])));
        expect(finished.map((download) => download.state)).toEqual(["done", "done"]);
        expect((await library.list()).map((entry) => entry.fileName).sort()).toEqual(["twin-2.gguf", "twin.gguf"]);
    });

    it("keeps a paused download across a restart and resumes it from the partial file", async () => {
        const server = await serve({ "slow.gguf": model }, { bytesPerTick: 500_000 });
        const dir = tempDir();
        const before = libraryIn(dir, readGgufMetadata);
        const started = await before.library.startDownload({ url: server.url("slow.gguf"), sha256: modelSha256 });
        await new Promise((resolve) => setTimeout(resolve, 600));
        before.library.pause(started.id);
        const after = libraryIn(dir, readGgufMetadata);
        expect(after.library.listDownloads()).toEqual([expect.objectContaining({ id: started.id, state: "paused", fileName: "slow.gguf" })]);
        const requestsBeforeResume = server.ranges.length;
        after.library.resume(started.id);
        expect(await settled(after.events, started.id, ["done", "failed"])).toMatchObject({ state: "done", modelId: "slow" });
        expect(server.ranges.slice(requestsBeforeResume).filter((range) => range !== "" && !/^bytes=0-/.test(range)).length).toBeGreaterThan(0);
        expect(libraryIn(dir, readGgufMetadata).library.listDownloads()).toEqual([]);
    });

    it("rebuilds a damaged index from the models folder, keeping the damaged copy", async () => {
        const dir = tempDir();
        fs.copyFileSync(fixturePath("mha-random-f16"), path.join(dir, "kept.gguf"));
        fs.writeFileSync(path.join(dir, "index.json"), "[{\"id\": \"kept\", \"fileNa");
        const { library } = libraryIn(dir, readGgufMetadata);
        expect(await library.list()).toEqual([expect.objectContaining({ id: "kept", fileName: "kept.gguf", metadata: expect.objectContaining({ nLayer: 4 }) })]);
        expect(fs.readFileSync(path.join(dir, "index.json.damaged-1"), "utf8")).toBe("[{\"id\": \"kept\", \"fileNa");
    });
});
