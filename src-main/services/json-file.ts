// Crash-safe JSON files: write a temp file, fsync it, rename it over the old
// one, fsync the folder. A crash leaves either the old file or the new one.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { z } from "zod";

const tempFile = /^\..+\.[0-9a-f]{12}\.tmp$/;

export function writeJsonAtomic(filePath: string, value: unknown): void {
    const dir = path.dirname(filePath);
    fs.mkdirSync(dir, { recursive: true });
    const temp = path.join(dir, `.${path.basename(filePath)}.${crypto.randomBytes(6).toString("hex")}.tmp`);
    const fd = fs.openSync(temp, "w");
    try {
        fs.writeSync(fd, JSON.stringify(value, null, 1));
        fs.fsyncSync(fd);
    } finally {
        fs.closeSync(fd);
    }
    try {
        fs.renameSync(temp, filePath);
    } catch (error) {
        fs.rmSync(temp, { force: true });
        throw error;
    }
    syncFolder(dir);
}

// Removes the temp files that a process killed mid-write left in `dir` (never read: the
// file they were for is whole, old or new). Only for a folder no other process writes to.
export function removeLeftoverTempFiles(dir: string): void {
    for (const file of fs.readdirSync(dir)) if (tempFile.test(file)) fs.rmSync(path.join(dir, file), { force: true });
}

// Windows refuses to open or fsync a folder (NTFS makes the rename durable
// without it); everywhere else a refusal is a real error.
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
