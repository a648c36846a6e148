// The model library: models under <dataDir>/models, listed in an index file.
// Downloads and imports land there only after GGUF validation (and a sha256
// check where the checksum is known).
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { CatalogEntry, DownloadInfo, ModelEntry, ModelMetadata } from "../api/contract.ts";
import { throttle } from "../api/throttle.ts";
import { recommendedModes } from "../engine/engine.ts";
import { EngineError } from "../engine/errors.ts";
import { ModelDownload, readGgufMetadata, sha256File } from "../engine/models.ts";
import { newId } from "./chats.ts";
import { RequestError } from "./errors.ts";
import type { EventBus } from "./events.ts";
import { readJson, writeJsonAtomic } from "./json-file.ts";

interface IndexedModel {
    id: string;
    fileName: string;
    sha256: string | null;
    source: ModelEntry["source"];
}

interface ActiveDownload {
    info: DownloadInfo;
    download: ModelDownload;
    sha256: string | null;
}

function freeDiskBytes(dir: string): number {
    const stats = fs.statfsSync(dir);
    return stats.bavail * stats.bsize;
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

// A file name safe on every platform, ending in .gguf.
function safeFileName(name: string): string {
    const base = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "").slice(0, 200) || "model";
    return base.toLowerCase().endsWith(".gguf") ? base : `${base}.gguf`;
}

function modelIdFor(fileName: string): string {
    return fileName.replace(/\.gguf$/i, "").toLowerCase().replace(/[^a-z0-9._-]+/g, "-");
}

export class ModelLibrary {
    private readonly metadataCache = new Map<string, ModelMetadata>();
    private readonly downloads = new Map<string, ActiveDownload>();

    constructor(private readonly modelsDir: () => string, private readonly events: EventBus, private readonly catalog: () => CatalogEntry[] = () => []) {}

    private get indexFile(): string {
        return path.join(this.modelsDir(), "index.json");
    }

    private readIndex(): IndexedModel[] {
        return readJson<IndexedModel[]>(this.indexFile) ?? [];
    }

    async list(): Promise<ModelEntry[]> {
        const entries: ModelEntry[] = [];
        for (const model of this.readIndex()) {
            const filePath = path.join(this.modelsDir(), model.fileName);
            if (!fs.existsSync(filePath)) continue;
            let metadata = this.metadataCache.get(filePath);
            if (metadata === undefined) {
                metadata = await readGgufMetadata(filePath).catch(() => undefined);
                if (metadata === undefined) continue;
                this.metadataCache.set(filePath, metadata);
            }
            entries.push({ id: model.id, fileName: model.fileName, path: filePath, metadata, modes: recommendedModes(metadata), sha256: model.sha256, source: model.source });
        }
        return entries;
    }

    async get(modelId: string): Promise<ModelEntry> {
        const model = (await this.list()).find((entry) => entry.id === modelId);
        if (model === undefined) throw new RequestError("not-found", `The model ${modelId} is not in the library. Download or import it first.`);
        return model;
    }

    // Validates a finished file and lists it under a unique id.
    private async addToIndex(filePath: string, sha256: string | null, source: ModelEntry["source"]): Promise<ModelEntry> {
        try {
            await readGgufMetadata(filePath);
        } catch (error) {
            fs.rmSync(filePath, { force: true });
            const message = error instanceof EngineError ? error.message : (error as Error).message;
            throw new RequestError("model-invalid", `${message}. The file was not added.`);
        }
        const fileName = path.basename(filePath);
        const index = this.readIndex().filter((model) => model.fileName !== fileName);
        let id = modelIdFor(fileName);
        while (index.some((model) => model.id === id)) id = `${id}-${crypto.randomBytes(2).toString("hex")}`;
        index.push({ id, fileName, sha256, source });
        writeJsonAtomic(this.indexFile, index);
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
            await readGgufMetadata(sourcePath);
        } catch (error) {
            throw new RequestError("model-invalid", `${(error as Error).message}. Nothing was imported; the library is unchanged.`);
        }
        fs.mkdirSync(this.modelsDir(), { recursive: true });
        const size = fs.statSync(sourcePath).size;
        if (size > freeDiskBytes(this.modelsDir())) {
            throw new RequestError("disk-full", `Importing needs ${mib(size)}, but only ${mib(freeDiskBytes(this.modelsDir()))} are free. Free some disk space or choose another models folder in Settings.`);
        }
        const target = path.join(this.modelsDir(), safeFileName(path.basename(sourcePath)));
        const temp = `${target}.importing`;
        try {
            fs.copyFileSync(sourcePath, temp);
            fs.renameSync(temp, target);
        } catch (error) {
            fs.rmSync(temp, { force: true });
            const full = (error as NodeJS.ErrnoException).code === "ENOSPC";
            throw new RequestError(full ? "disk-full" : "internal", full ? "The disk filled up during the import; nothing was imported." : `The import failed: ${(error as Error).message}`);
        }
        return this.addToIndex(target, await sha256File(target), "import");
    }

    async delete(modelId: string): Promise<ModelEntry[]> {
        const model = await this.get(modelId);
        fs.rmSync(model.path, { force: true });
        this.metadataCache.delete(model.path);
        writeJsonAtomic(this.indexFile, this.readIndex().filter((entry) => entry.id !== modelId));
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

    private update(active: ActiveDownload, change: Partial<DownloadInfo>): DownloadInfo {
        active.info = { ...active.info, ...change };
        this.events.emit({ type: "download", download: active.info });
        return active.info;
    }

    async startDownload(request: { catalogId?: string; url?: string; sha256?: string }): Promise<DownloadInfo> {
        const entry = request.catalogId === undefined ? undefined : this.catalog().find((model) => model.id === request.catalogId);
        if (request.catalogId !== undefined && entry === undefined) throw new RequestError("not-found", `The catalog has no model ${request.catalogId}.`);
        const url = entry?.url ?? request.url!;
        if (!/^(https?:\/\/|hf:)/.test(url)) throw new RequestError("bad-request", "Give an https:// URL or an hf: URI (hf:owner/repo/file.gguf).");
        if (url.startsWith("http://") && !/^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(url)) {
            throw new RequestError("bad-request", "Plain http is only allowed from this machine (127.0.0.1); use https.");
        }
        const fileName = safeFileName(entry?.fileName ?? decodeURIComponent(new URL(url.replace(/^hf:/, "https://hf/")).pathname.split("/").at(-1) ?? "model"));
        const stagingDir = path.join(this.modelsDir(), ".downloads");
        fs.mkdirSync(stagingDir, { recursive: true });
        const id = newId();
        const sendProgress = throttle<{ downloadedBytes: number; totalBytes: number }>(250, (progress) => {
            const active = this.downloads.get(id);
            if (active?.info.state === "downloading") this.update(active, progress);
        });
        const active: ActiveDownload = {
            info: { id, url, fileName, state: "downloading", downloadedBytes: 0, totalBytes: 0, error: null, modelId: null },
            download: new ModelDownload(url, stagingDir, fileName, sendProgress),
            sha256: entry?.sha256 ?? request.sha256?.toLowerCase() ?? null,
        };
        let totalBytes: number;
        try {
            totalBytes = await active.download.prepare();
        } catch (error) {
            throw new RequestError("download-failed", `${(error as Error).message}. Check the address and your connection.`);
        }
        const free = freeDiskBytes(stagingDir);
        if (totalBytes > free) {
            throw new RequestError("disk-full", `${fileName} needs ${mib(totalBytes)}, but only ${mib(free)} are free. Free some disk space or choose another models folder in Settings.`);
        }
        active.info.totalBytes = totalBytes;
        this.downloads.set(id, active);
        void this.run(active);
        return active.info;
    }

    // Transfers, then verifies and lists the model; failures stay visible with a message.
    private async run(active: ActiveDownload): Promise<void> {
        this.update(active, { state: "downloading", error: null });
        try {
            const complete = await active.download.run();
            if (!complete) return;
            this.update(active, { state: "verifying", downloadedBytes: active.info.totalBytes });
            const file = active.download.filePath;
            const sha256 = await sha256File(file);
            if (active.sha256 !== null && sha256 !== active.sha256) {
                fs.rmSync(file, { force: true });
                throw new RequestError("download-failed", `The downloaded file's sha256 is ${sha256}, not the expected ${active.sha256}. It was deleted; try the download again.`);
            }
            const target = path.join(this.modelsDir(), active.info.fileName);
            fs.renameSync(file, target);
            const model = await this.addToIndex(target, sha256, "download");
            this.update(active, { state: "done", modelId: model.id });
        } catch (error) {
            if (active.info.state === "cancelled" || active.info.state === "paused") return;
            const full = (error as NodeJS.ErrnoException).code === "ENOSPC";
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
