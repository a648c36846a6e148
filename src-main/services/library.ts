// The model library: models under <dataDir>/models, listed in an index file
// (rebuilt from the folder's .gguf files if it is damaged). Downloads and
// imports are staged under models/.downloads, each under a name of its own,
// validated there (GGUF, and sha256 where the checksum is known), and only then
// moved in, never over an existing model. Unfinished downloads are saved, so a
// paused one can resume after a restart.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { downloadInfoSchema, ggufFileNameSchema, type DownloadInfo, type ModeAdvice, type ModelEntry, type ModelMetadata } from "../api/contract.ts";
import { throttle } from "../api/throttle.ts";
import { adviseModes } from "../api/mode-advice.ts";
import type { KnownModel } from "./catalog.ts";
import { EngineError } from "../engine/errors.ts";
import { ModelDownload, sha256File } from "../engine/models.ts";
import { newId } from "./chats.ts";
import { RequestError, toRequestError } from "./errors.ts";
import type { EventBus } from "./events.ts";
import { readJson, readJsonFile, writeJsonAtomic } from "./json-file.ts";
import { fileIn } from "./paths.ts";

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/);

const indexSchema = z.array(z.object({
    id: z.string().min(1),
    // checked when read: a fileName of "../x.gguf" would have "delete model" remove a file outside the folder
    fileName: ggufFileNameSchema,
    sha256: sha256Schema.nullable(),
    source: z.enum(["download", "import"]),
}));
type IndexedModel = z.infer<typeof indexSchema>[number];

// What is saved of each unfinished download: enough to resume it after a restart.
const savedDownloadsSchema = z.array(z.object({ info: downloadInfoSchema, sha256: sha256Schema.nullable() }));

interface ActiveDownload {
    info: DownloadInfo;
    download: ModelDownload;
    sha256: string | null;
}

function freeDiskBytes(dir: string): number {
    const stats = fs.statfsSync(dir);
    return stats.bavail * stats.bsize;
}

// Finished and cancelled downloads are not resumed; every other one may still write its rest.
const isUnfinished = (info: DownloadInfo): boolean => info.state !== "done" && info.state !== "cancelled";

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

// A file name safe on every platform, ending in .gguf.
function safeFileName(name: string): string {
    const base = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "").slice(0, 200) || "model";
    return base.toLowerCase().endsWith(".gguf") ? base : `${base}.gguf`;
}

// An id for a model file that no model in the index has yet. "__proto__" counts as taken:
// the settings' record of model defaults (zod, JSON) cannot keep that key.
function uniqueModelId(index: readonly IndexedModel[], fileName: string): string {
    let id = fileName.replace(/\.gguf$/i, "").toLowerCase().replace(/[^a-z0-9._-]+/g, "-");
    while (id === "__proto__" || index.some((model) => model.id === id)) id = `${id}-${crypto.randomBytes(2).toString("hex")}`;
    return id;
}

const isLoopback = (hostname: string): boolean => hostname === "127.0.0.1" || hostname === "localhost" || hostname === "[::1]";

// Why a download may not fetch from this address, or null if it may: https anywhere, plain
// http only from this machine. The same rules hold for the first address and every redirect.
function refusedAddress(parsed: URL): string | null {
    // judged on the parsed host: http://localhost:x@evil.example/ is evil.example
    if (parsed.protocol === "http:" && !isLoopback(parsed.hostname)) return "Plain http is only allowed from this machine (127.0.0.1); use https.";
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return "Give an https:// URL or an hf: URI (hf:owner/repo/file.gguf).";
    return null;
}

// hf:owner/repo/path/file.gguf[#branch]: the address Hugging Face serves that file from (as
// node-llama-cpp resolves it). The download then follows its redirects checked, like any URL's.
export function huggingFaceFileUrl(uri: string): string {
    const [filePath = "", branch = "main"] = uri.slice("hf:".length).split("#");
    const [owner, repo, ...file] = filePath.split("/");
    if (!owner || !repo || file.length === 0 || file.includes("")) {
        throw new RequestError("bad-request", `${uri} does not name a file. Give an hf: URI of the form hf:owner/repo/file.gguf.`);
    }
    const segments = [owner, repo, "resolve", branch || "main", ...file].map((segment) => encodeURIComponent(segment));
    return `https://huggingface.co/${segments.join("/")}?download=true`;
}

// The address a download transfers from: an hf: URI's is Hugging Face's https one.
const downloadAddress = (url: string): string => url.startsWith("hf:") ? huggingFaceFileUrl(url) : url;

// The download's file name, from the path of its address.
function checkedDownloadUrl(request: string): { url: string; fileName: string } {
    const url = downloadAddress(request);
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        throw new RequestError("bad-request", `${url} is not a valid URL. Give an https:// URL or an hf: URI (hf:owner/repo/file.gguf).`);
    }
    const refused = refusedAddress(parsed);
    if (refused !== null) throw new RequestError("bad-request", refused);
    const lastSegment = parsed.pathname.split("/").at(-1) ?? "";
    let fileName: string;
    try {
        fileName = decodeURIComponent(lastSegment);
    } catch {
        fileName = lastSegment;
    }
    return { url: request, fileName: safeFileName(fileName) };
}

const maxRedirects = 10;

// The address a download's transfer starts from: its redirects followed one at a time, each
// checked against the same rules as the first address before anything is sent to it. The
// downloader then fetches the checked address, so no redirect of its own is left to follow.
async function checkedRedirects(url: string): Promise<string> {
    let current = url;
    for (let hop = 0; hop <= maxRedirects; hop++) {
        // only the status and the headers matter: HEAD, or a one-byte GET where HEAD is not served
        const probe = (method: string) => fetch(current, { method, redirect: "manual", headers: { range: "bytes=0-0" } });
        let response: Response;
        try {
            response = await probe("HEAD");
            if (response.status === 405 || response.status === 501) response = await probe("GET");
        } catch (error) {
            throw new RequestError("download-failed", `Could not reach ${current}: ${(error as Error).message}`);
        }
        await response.body?.cancel();
        const location = response.headers.get("location");
        if (response.status < 300 || response.status >= 400 || location === null) return current;
        let next: URL;
        try {
            next = new URL(location, current);
        } catch {
            throw new RequestError("download-failed", `${current} redirects to ${location}, which is not a valid URL.`);
        }
        const refused = refusedAddress(next);
        if (refused !== null) throw new RequestError("download-failed", `${current} redirects to ${next.href}, which a download may not fetch: ${refused}`);
        current = next.href;
    }
    throw new RequestError("download-failed", `${url} redirects more than ${maxRedirects} times.`);
}

// A header read, remembered with the size and mtime of the file it read: a file that failed
// (damaged, or one whose reading crashed or hung the engine process) is not read again until it changes.
interface HeaderRead {
    sizeBytes: number;
    mtimeMs: number;
    metadata: Promise<{ ok: true; value: ModelMetadata } | { ok: false; error: RequestError }>;
}

export class ModelLibrary {
    private readonly headers = new Map<string, HeaderRead>();
    private readonly downloads = new Map<string, ActiveDownload>();

    // readMetadata reads and checks a GGUF header (the services read it in the engine process)
    constructor(
        private readonly modelsDir: () => string,
        private readonly events: EventBus,
        private readonly readMetadata: (filePath: string) => Promise<ModelMetadata>,
        // the catalog's models, to download one by its id
        private readonly knownModels: () => KnownModel[] = () => [],
        // every cache mode's advice for a model (the services ask the engine, and add what its
        // check measured); without an engine to ask, only the KV modes are offered
        private readonly advise: (modelId: string, metadata: ModelMetadata, sha256: string | null) => Promise<ModeAdvice[]> = async (_id, metadata) => adviseModes(metadata, []),
    ) {
        this.restoreDownloads();
    }

    private get indexFile(): string {
        return path.join(this.modelsDir(), "index.json");
    }

    private get stagingDir(): string {
        return path.join(this.modelsDir(), ".downloads");
    }

    private get downloadsFile(): string {
        return path.join(this.stagingDir, "downloads.json");
    }

    // The index; a damaged one (kept aside) is rebuilt from the .gguf files in the folder.
    private readIndex(): IndexedModel[] {
        const read = readJsonFile(this.indexFile, indexSchema);
        if (read.state === "ok") return read.value;
        if (read.state === "missing") return [];
        const index: IndexedModel[] = [];
        for (const fileName of fs.readdirSync(this.modelsDir()).filter((name) => ggufFileNameSchema.safeParse(name).success).sort()) {
            // how the file came is not known any more; its checksum is not computed until asked
            index.push({ id: uniqueModelId(index, fileName), fileName, sha256: null, source: "import" });
        }
        return writeJsonAtomic(this.indexFile, indexSchema, index);
    }

    async list(): Promise<ModelEntry[]> {
        const entries: ModelEntry[] = [];
        for (const model of this.readIndex()) {
            const entry = await this.entry(model);
            if (entry?.ok) entries.push(entry.value);
        }
        return entries;
    }

    // Reads only this model's header (remembered), never the other models'.
    async get(modelId: string): Promise<ModelEntry> {
        const model = this.readIndex().find((indexed) => indexed.id === modelId);
        const entry = model === undefined ? null : await this.entry(model);
        if (entry === null) throw new RequestError("not-found", `The model ${modelId} is not in the library. Download or import it first.`);
        if (!entry.ok) throw entry.error;
        return entry.value;
    }

    // An indexed model with its header, or null when its file is gone.
    private async entry(model: IndexedModel): Promise<{ ok: true; value: ModelEntry } | { ok: false; error: RequestError } | null> {
        const filePath = fileIn(this.modelsDir(), model.fileName);
        let stats: fs.Stats;
        try {
            stats = fs.statSync(filePath);
        } catch {
            return null;
        }
        let read = this.headers.get(filePath);
        if (read === undefined || read.sizeBytes !== stats.size || read.mtimeMs !== stats.mtimeMs) {
            const metadata = this.readMetadata(filePath).then((value) => ({ ok: true as const, value }), (error: unknown) => {
                const refused = toRequestError(error);
                return { ok: false as const, error: new RequestError(refused.error.code, `${model.fileName} cannot be used: ${refused.error.message}`) };
            });
            read = { sizeBytes: stats.size, mtimeMs: stats.mtimeMs, metadata };
            this.headers.set(filePath, read);
        }
        const header = await read.metadata;
        if (!header.ok) return header;
        const metadata = header.value;
        const modes = await this.advise(model.id, metadata, model.sha256);
        return { ok: true, value: { id: model.id, fileName: model.fileName, path: filePath, metadata, modes, sha256: model.sha256, source: model.source } };
    }

    // Validates a staged file, moves it into the models folder under a name no
    // file there has (`fileName`, else name-2.gguf, name-3.gguf, …) and lists it under a unique id.
    private async addToLibrary(stagedPath: string, fileName: string, sha256: string | null, source: ModelEntry["source"]): Promise<ModelEntry> {
        try {
            await this.readMetadata(stagedPath);
        } catch (error) {
            fs.rmSync(stagedPath, { force: true });
            const message = error instanceof EngineError ? error.message.replace(path.basename(stagedPath), fileName) : (error as Error).message;
            throw new RequestError("model-invalid", `${message}. The file was not added.`);
        }
        const stem = fileName.replace(/\.gguf$/i, "");
        let target = fileIn(this.modelsDir(), fileName);
        // no await between the check and the rename: nothing in this process can take the name meanwhile
        for (let n = 2; fs.existsSync(target); n++) target = fileIn(this.modelsDir(), `${stem}-${n}.gguf`);
        // read before the move: an index rebuilt from the folder must not list the new file already
        const index = this.readIndex();
        const id = uniqueModelId(index, path.basename(target));
        index.push({ id, fileName: path.basename(target), sha256, source });
        fs.renameSync(stagedPath, target);
        try {
            writeJsonAtomic(this.indexFile, indexSchema, index);
        } catch (error) {
            // an index that cannot be saved (a full disk) would leave the file in the folder unlisted: it goes back
            fs.renameSync(target, stagedPath);
            throw error;
        }
        const models = await this.list();
        this.events.emit({ type: "models", models });
        return models.find((model) => model.id === id)!;
    }

    // Copies a local .gguf into the library after checking it and the free space.
    async importFile(sourcePath: string): Promise<ModelEntry> {
        if (!fs.existsSync(sourcePath) || !fs.statSync(sourcePath).isFile()) {
            throw new RequestError("not-found", `There is no file at ${sourcePath}. Check the path and try again.`);
        }
        try {
            await this.readMetadata(sourcePath);
        } catch (error) {
            throw new RequestError("model-invalid", `${(error as Error).message}. Nothing was imported; the library is unchanged.`);
        }
        fs.mkdirSync(this.stagingDir, { recursive: true });
        const size = fs.statSync(sourcePath).size;
        const free = this.freeBytesForNew();
        if (size > free) {
            throw new RequestError("disk-full", `Importing needs ${mib(size)}, but only ${mib(Math.max(0, free))} are free${this.reservedNote()}. Free some disk space or choose another models folder in Settings.`);
        }
        const staged = path.join(this.stagingDir, `${newId()}.importing`);
        try {
            fs.copyFileSync(sourcePath, staged);
        } catch (error) {
            fs.rmSync(staged, { force: true });
            const full = (error as NodeJS.ErrnoException).code === "ENOSPC";
            throw new RequestError(full ? "disk-full" : "internal", full ? "The disk filled up during the import; nothing was imported." : `The import failed: ${(error as Error).message}`);
        }
        try {
            return await this.addToLibrary(staged, safeFileName(path.basename(sourcePath)), await sha256File(staged), "import");
        } catch (error) {
            fs.rmSync(staged, { force: true });
            throw error;
        }
    }

    // Deletes any model in the index, one whose file cannot be read too.
    async delete(modelId: string): Promise<ModelEntry[]> {
        const model = this.readIndex().find((indexed) => indexed.id === modelId);
        if (model === undefined) throw new RequestError("not-found", `The model ${modelId} is not in the library.`);
        const filePath = fileIn(this.modelsDir(), model.fileName);
        fs.rmSync(filePath, { force: true });
        this.headers.delete(filePath);
        writeJsonAtomic(this.indexFile, indexSchema, this.readIndex().filter((entry) => entry.id !== modelId));
        const models = await this.list();
        this.events.emit({ type: "models", models });
        return models;
    }

    listDownloads(): DownloadInfo[] {
        return [...this.downloads.values()].map((active) => active.info);
    }

    private activeDownload(downloadId: string): ActiveDownload {
        const active = this.downloads.get(downloadId);
        if (active === undefined) throw new RequestError("not-found", `There is no download ${downloadId}.`);
        return active;
    }

    // Changes a download's state and tells the UI, then saves the list. Never throws: the state
    // in memory is the download's, and the list only lets a restart resume it. A list that
    // cannot be saved (a full disk) is logged; after a restart it may show an older state.
    private update(active: ActiveDownload, change: Partial<DownloadInfo>): DownloadInfo {
        active.info = { ...active.info, ...change };
        this.events.emit({ type: "download", download: active.info });
        if (change.state === undefined) return active.info;
        try {
            this.saveDownloads();
        } catch (error) {
            console.error(`The list of downloads could not be saved: ${(error as Error).message}`);
        }
        return active.info;
    }

    private saveDownloads(): void {
        const unfinished = [...this.downloads.values()].filter((active) => isUnfinished(active.info));
        writeJsonAtomic(this.downloadsFile, savedDownloadsSchema, unfinished.map(({ info, sha256 }) => ({ info, sha256 })));
    }

    // The disk's free bytes less what the unfinished downloads still have to write.
    private freeBytesForNew(): number {
        return freeDiskBytes(this.stagingDir) - this.reservedBytes();
    }

    private reservedBytes(): number {
        let reserved = 0;
        for (const { info } of this.downloads.values()) if (isUnfinished(info)) reserved += Math.max(0, info.totalBytes - info.downloadedBytes);
        return reserved;
    }

    private reservedNote(): string {
        const reserved = this.reservedBytes();
        return reserved > 0 ? ` once the downloads in progress have the ${mib(reserved)} they still need` : "";
    }

    // The downloads saved before a restart, paused where they were (or failed, as they were).
    private restoreDownloads(): void {
        for (const { info, sha256 } of readJson(this.downloadsFile, savedDownloadsSchema) ?? []) {
            const state = info.state === "failed" ? "failed" : "paused";
            this.downloads.set(info.id, { info: { ...info, state }, download: this.modelDownload(info.id, info.url), sha256 });
        }
    }

    // Each download is staged under its own id, so two of one file never share a staging file.
    private modelDownload(downloadId: string, url: string): ModelDownload {
        const sendProgress = throttle<{ downloadedBytes: number; totalBytes: number }>(250, (progress) => {
            const active = this.downloads.get(downloadId);
            if (active?.info.state === "downloading") this.update(active, progress);
        });
        return new ModelDownload(downloadAddress(url), this.stagingDir, `${downloadId}.gguf`, sendProgress, checkedRedirects);
    }

    async startDownload(request: { catalogId?: string; url?: string; sha256?: string }): Promise<DownloadInfo> {
        const entry = request.catalogId === undefined ? undefined : this.knownModels().find((model) => model.id === request.catalogId);
        if (request.catalogId !== undefined && entry === undefined) throw new RequestError("not-found", `The catalog has no model ${request.catalogId}.`);
        const { url, fileName } = checkedDownloadUrl(entry?.url ?? request.url!);
        fs.mkdirSync(this.stagingDir, { recursive: true });
        const id = newId();
        const active: ActiveDownload = {
            info: { id, url, fileName, state: "downloading", downloadedBytes: 0, totalBytes: 0, error: null, modelId: null },
            download: this.modelDownload(id, url),
            sha256: entry?.sha256 ?? request.sha256?.toLowerCase() ?? null,
        };
        let totalBytes: number;
        try {
            totalBytes = await active.download.prepare();
        } catch (error) {
            if (error instanceof RequestError) throw error;
            throw new RequestError("download-failed", `${(error as Error).message}. Check the address and your connection.`);
        }
        const free = this.freeBytesForNew();
        if (totalBytes > free) {
            throw new RequestError("disk-full", `${fileName} needs ${mib(totalBytes)}, but only ${mib(Math.max(0, free))} are free${this.reservedNote()}. Free some disk space or choose another models folder in Settings.`);
        }
        active.info.totalBytes = totalBytes;
        this.downloads.set(id, active);
        void this.run(active);
        return active.info;
    }

    // Transfers, then verifies and lists the model; failures stay visible with a message.
    // It runs unawaited, so it never rejects: every failure ends in the catch.
    private async run(active: ActiveDownload): Promise<void> {
        try {
            this.update(active, { state: "downloading", error: null });
            const complete = await active.download.run();
            if (!complete) return;
            this.update(active, { state: "verifying", downloadedBytes: active.info.totalBytes });
            const file = active.download.filePath;
            const sha256 = await sha256File(file);
            if (active.sha256 !== null && sha256 !== active.sha256) {
                fs.rmSync(file, { force: true });
                throw new RequestError("download-failed", `The downloaded file's sha256 is ${sha256}, not the expected ${active.sha256}. It was deleted; try the download again.`);
            }
            const model = await this.addToLibrary(file, active.info.fileName, sha256, "download");
            this.update(active, { state: "done", modelId: model.id });
        } catch (error) {
            if (active.info.state === "cancelled" || active.info.state === "paused") return;
            const full = toRequestError(error).error.code === "disk-full";
            this.update(active, { state: "failed", error: full ? "The disk is full. Free some space, then resume." : (error as Error).message });
        }
    }

    pause(downloadId: string): DownloadInfo {
        const active = this.activeDownload(downloadId);
        if (active.info.state !== "downloading") throw new RequestError("bad-request", `The download is ${active.info.state}, not downloading.`);
        active.download.pause();
        return this.update(active, { state: "paused" });
    }

    resume(downloadId: string): DownloadInfo {
        const active = this.activeDownload(downloadId);
        if (active.info.state !== "paused" && active.info.state !== "failed") throw new RequestError("bad-request", `The download is ${active.info.state}; only a paused or failed download can resume.`);
        void this.run(active);
        return active.info;
    }

    async cancel(downloadId: string): Promise<DownloadInfo> {
        const active = this.activeDownload(downloadId);
        if (active.info.state === "done") throw new RequestError("bad-request", "The download has finished; delete the model instead.");
        const info = this.update(active, { state: "cancelled" });
        await active.download.cancel();
        return info;
    }
}
