// Model files: read and validate a GGUF header, and download through
// node-llama-cpp's downloader (ipull: ranged, resumable, retried).
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createModelDownloader, readGgufFileInfo, type GgufMetadata, type ModelDownloader } from "node-llama-cpp";
import type { ModelMetadata } from "../api/contract.ts";
import { EngineError } from "./errors.ts";

const scalar = (value: unknown, fallback: number): number => Array.isArray(value) ? Number(value[0]) : value === undefined ? fallback : Number(value);

// The model's facts from a GGUF header's key-value tree (as node-llama-cpp parses it).
export function ggufModelFacts(gguf: GgufMetadata, fileName: string): Omit<ModelMetadata, "sizeBytes"> {
    const metadata = gguf as unknown as { general: { architecture: string; name?: string } } & Record<string, Record<string, unknown>>;
    const architecture = metadata.general.architecture;
    const arch = metadata[architecture] ?? {};
    const attention = (arch.attention ?? {}) as Record<string, unknown>;
    const nEmbd = scalar(arch.embedding_length, 0);
    const nHead = scalar(attention.head_count, 1);
    return {
        architecture,
        name: metadata.general.name ?? fileName.replace(/\.gguf$/i, ""),
        nLayer: scalar(arch.block_count, 0),
        nEmbd,
        nHead,
        nHeadKv: scalar(attention.head_count_kv, nHead),
        headDimK: scalar(attention.key_length, nEmbd / nHead),
        headDimV: scalar(attention.value_length, nEmbd / nHead),
        contextLength: scalar(arch.context_length, 0),
        // llama.cpp gives gemma3 sliding-window layers only when the key is set and positive
        slidingWindow: architecture === "gemma3" ? scalar(attention.sliding_window, 0) : 0,
    };
}

export async function sha256File(filePath: string): Promise<string> {
    const digest = crypto.createHash("sha256");
    for await (const chunk of fs.createReadStream(filePath)) digest.update(chunk as Buffer);
    return digest.digest("hex");
}

// Bytes per element of the common ggml types, by type id (block bytes / block size).
const ggmlTypeBytes: Record<number, number> = {
    0: 4, 1: 2, 2: 18 / 32, 3: 20 / 32, 6: 22 / 32, 7: 24 / 32, 8: 34 / 32,
    10: 84 / 256, 11: 110 / 256, 12: 144 / 256, 13: 176 / 256, 14: 210 / 256, 30: 2,
};

// Where the last tensor's data ends: the aligned start of the data section plus
// the furthest tensor's offset and size (at least a byte for unknown types).
function tensorDataEnd(info: Awaited<ReturnType<typeof readGgufFileInfo>>): number {
    const alignment = Number((info.metadata.general as { alignment?: number }).alignment ?? 32);
    const dataStart = Math.ceil((info.infoEndOffset ?? 0) / alignment) * alignment;
    let end = dataStart;
    for (const tensor of info.fullTensorInfo ?? []) {
        const elements = tensor.dimensions.reduce<number>((product, dimension) => product * Number(dimension), 1);
        const bytes = Math.max(1, Math.ceil(elements * (ggmlTypeBytes[tensor.ggmlType] ?? 0)));
        end = Math.max(end, dataStart + Number(tensor.offset) + bytes);
    }
    return end;
}

// The GGUF versions node-llama-cpp reads. It reads a file of any other version as version 3,
// and on a short such file it never returns (a 12-byte file: still reading after minutes).
const ggufVersions = [1, 2, 3];

// The magic and version, read before node-llama-cpp's reader sees the file.
function checkGgufStart(filePath: string, fileName: string): void {
    const start = Buffer.alloc(8);
    const fd = fs.openSync(filePath, "r");
    let read: number;
    try {
        read = fs.readSync(fd, start, 0, 8, 0);
    } finally {
        fs.closeSync(fd);
    }
    if (read < 8 || start.toString("latin1", 0, 4) !== "GGUF") throw new EngineError("model-invalid", `${fileName} is not a valid GGUF file: it does not start with the GGUF magic and version`);
    const version = start.readUInt32LE(4);
    if (!ggufVersions.includes(version)) throw new EngineError("model-invalid", `${fileName} is not a valid GGUF file: its version ${version} is not one of ${ggufVersions.join(", ")}`);
}

// Reads the header; throws model-invalid for anything that is not a complete GGUF file.
export async function readGgufMetadata(filePath: string): Promise<ModelMetadata> {
    if (!fs.existsSync(filePath)) throw new EngineError("model-not-found", `Model file not found: ${filePath}`);
    const fileName = path.basename(filePath);
    const sizeBytes = fs.statSync(filePath).size;
    checkGgufStart(filePath, fileName);
    let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
    let facts: Omit<ModelMetadata, "sizeBytes">;
    let dataEnd: number;
    try {
        info = await readGgufFileInfo(filePath, { readTensorInfo: true });
        // a header cut short parses without its general.* keys
        facts = ggufModelFacts(info.metadata, fileName);
        dataEnd = tensorDataEnd(info);
    } catch (error) {
        throw new EngineError("model-invalid", `${fileName} is not a valid GGUF file: ${(error as Error).message}`);
    }
    // the header can be whole while the tensor data is cut short (an interrupted copy or download)
    if (sizeBytes < dataEnd) {
        throw new EngineError("model-invalid", `${fileName} is truncated: it has ${sizeBytes} bytes, but its tensors need ${dataEnd}`);
    }
    return { ...facts, sizeBytes };
}

export interface DownloadProgress {
    downloadedBytes: number;
    totalBytes: number;
}

// One model download. Pausing aborts the transfer and keeps the partial file;
// resuming starts a new transfer that continues from it.
export class ModelDownload {
    private downloader: ModelDownloader | null = null;
    private abort: AbortController | null = null;

    // url: an http(s) address. resolveUrl: the address to transfer from, learnt anew at every
    // (re)start; the caller's redirect checks live there, since the downloader itself follows
    // redirects unchecked
    constructor(
        readonly url: string, readonly dirPath: string, readonly fileName: string,
        private readonly onProgress: (progress: DownloadProgress) => void,
        private readonly resolveUrl: (url: string) => Promise<string> = async (url) => url,
    ) {}

    // Connects and learns the total size, without transferring the body.
    async prepare(): Promise<number> {
        const url = await this.resolveUrl(this.url);
        try {
            this.downloader = await createModelDownloader({
                modelUrl: url,
                dirPath: this.dirPath,
                fileName: this.fileName,
                skipExisting: false,
                deleteTempFileOnCancel: true,
                parallelDownloads: 1,
                onProgress: (status) => this.onProgress({ downloadedBytes: status.downloadedSize, totalBytes: status.totalSize }),
            });
        } catch (error) {
            throw new EngineError("model-not-found", `Could not reach ${this.url}: ${(error as Error).message}`);
        }
        return this.downloader.totalSize;
    }

    get filePath(): string {
        return path.join(this.dirPath, this.fileName);
    }

    // Transfers until done or paused; resolves true when the file is complete.
    async run(): Promise<boolean> {
        if (this.downloader === null) await this.prepare();
        const abort = new AbortController();
        this.abort = abort;
        try {
            await this.downloader!.download({ signal: abort.signal });
            return !abort.signal.aborted;
        } catch (error) {
            if (abort.signal.aborted) return false;
            if ((error as NodeJS.ErrnoException).code === "ENOSPC") throw new EngineError("disk-full", `The disk filled up during the download of ${this.fileName}. Free some space, then resume.`);
            throw new EngineError("model-not-found", `The download of ${this.fileName} failed: ${(error as Error).message}`);
        }
    }

    pause(): void {
        this.abort?.abort();
        this.abort = null;
        // the next run() makes a fresh downloader, which resumes from the partial file
        this.downloader = null;
    }

    async cancel(): Promise<void> {
        this.abort?.abort();
        this.abort = null;
        await this.downloader?.cancel({ deleteTempFile: true }).catch(() => undefined);
        this.downloader = null;
    }
}
