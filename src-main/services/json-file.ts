// Crash-safe JSON files: write a temp file, fsync it, rename it over the old
// one, fsync the folder. A crash leaves either the old file or the new one.
// What is saved is checked against the schema it will be read with, so that a
// save never writes a file that the next start would keep aside as damaged.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { z } from "zod";
import { describeIssues } from "../api/contract.ts";
import { RequestError } from "./errors.ts";

const tempFile = /^\..+\.[0-9a-f]{12}\.tmp$/;

// Saves `value` as its schema reads it and returns that (what the next start will read).
// Throws, leaving the old file in place, if the value does not fit or the file cannot be
// replaced. Once the new file is in place the save has happened: a folder fsync refused
// after the rename is only logged, so the caller's memory never differs from the disk.
export function writeJsonAtomic<S extends z.ZodType>(filePath: string, schema: S, value: z.input<S>): z.output<S> {
    const checked = schema.safeParse(value);
    if (!checked.success) throw new RequestError("internal", `${path.basename(filePath)} was not saved: ${describeIssues(checked.error)}`);
    const dir = path.dirname(filePath);
    fs.mkdirSync(dir, { recursive: true });
    const temp = path.join(dir, `.${path.basename(filePath)}.${crypto.randomBytes(6).toString("hex")}.tmp`);
    try {
        const fd = fs.openSync(temp, "w");
        try {
            writeAll(fd, Buffer.from(JSON.stringify(checked.data, null, 1)));
            fs.fsyncSync(fd);
        } finally {
            fs.closeSync(fd);
        }
        renameRetried(temp, filePath);
    } catch (error) {
        fs.rmSync(temp, { force: true });
        throw error;
    }
    try {
        syncFolder(dir);
    } catch (error) {
        console.warn(`${filePath} was saved, but its folder could not be synced (${(error as Error).message}); a power cut may bring back the previous version.`);
    }
    return checked.data;
}

// fs.writeSync may write less than it was given (a nearly full disk): write the rest,
// and fail rather than leave a short file to be renamed over a whole one.
function writeAll(fd: number, bytes: Buffer): void {
    for (let offset = 0; offset < bytes.length;) {
        const written = fs.writeSync(fd, bytes, offset, bytes.length - offset);
        if (written <= 0) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        offset += written;
    }
}

// Windows refuses a rename for a moment while a virus scanner or the search indexer
// holds the target open (EPERM, EBUSY): try again a few times before giving up.
const renameRetryDelaysMs = [10, 50, 100, 250, 500];
const retriedRenameErrors = new Set(["EPERM", "EBUSY"]);

function renameRetried(from: string, to: string): void {
    for (const delayMs of [...renameRetryDelaysMs, null]) {
        try {
            fs.renameSync(from, to);
            return;
        } catch (error) {
            if (delayMs === null || !retriedRenameErrors.has((error as NodeJS.ErrnoException).code ?? "")) throw error;
            // the save is synchronous, so it waits synchronously
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs);
        }
    }
}

// Removes the temp files that a process killed mid-write left in `dir` (never read: the
// file they were for is whole, old or new). Only for a folder no other process writes to.
export function removeLeftoverTempFiles(dir: string): void {
    for (const file of fs.readdirSync(dir)) if (tempFile.test(file)) fs.rmSync(path.join(dir, file), { force: true });
}

// Windows refuses to open or fsync a folder (NTFS makes the rename durable
// without it); everywhere else a refusal is worth the warning above.
const windowsFolderSyncRefusals = new Set(["EPERM", "EISDIR", "EINVAL"]);

function syncFolder(dir: string): void {
    try {
        const dirFd = fs.openSync(dir, "r");
        try {
            fs.fsyncSync(dirFd);
        } finally {
            fs.closeSync(dirFd);
        }
    } catch (error) {
        if (process.platform === "win32" && windowsFolderSyncRefusals.has((error as NodeJS.ErrnoException).code ?? "")) return;
        throw error;
    }
}

export type JsonRead<T> = { state: "ok"; value: T } | { state: "missing" } | { state: "damaged"; keptAs: string };

// Reads a JSON file and checks it against its schema. A file that is not valid
// JSON or does not fit is damaged: it is kept aside as <file>.damaged-N (never
// over an earlier copy) so that nothing is silently lost, and reads as damaged.
export function readJsonFile<S extends z.ZodType>(filePath: string, schema: S): JsonRead<z.infer<S>> {
    let text: string;
    try {
        text = fs.readFileSync(filePath, "utf8");
    } catch {
        return { state: "missing" };
    }
    let parsed: unknown;
    try {
        parsed = JSON.parse(text);
    } catch {
        return { state: "damaged", keptAs: keepAside(filePath) };
    }
    const checked = schema.safeParse(parsed);
    return checked.success ? { state: "ok", value: checked.data } : { state: "damaged", keptAs: keepAside(filePath) };
}

// The checked file, or null when it is missing or damaged (and kept aside).
export function readJson<S extends z.ZodType>(filePath: string, schema: S): z.infer<S> | null {
    const read = readJsonFile(filePath, schema);
    return read.state === "ok" ? read.value : null;
}

// Moves a damaged file to the first free <file>.damaged-N; returns that path.
function keepAside(filePath: string): string {
    for (let n = 1; ; n++) {
        const target = `${filePath}.damaged-${n}`;
        try {
            // COPYFILE_EXCL: an earlier damaged copy is never overwritten
            fs.copyFileSync(filePath, target, fs.constants.COPYFILE_EXCL);
        } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "EEXIST") continue;
            throw error;
        }
        fs.rmSync(filePath, { force: true });
        return target;
    }
}
