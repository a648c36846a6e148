// Crash-safe JSON files: write a temp file, fsync it, rename it over the old
// one, fsync the folder. A crash leaves either the old file or the new one.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

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

// The parsed file, or null when it is missing or unreadable (a damaged file is
// kept aside as .damaged so that nothing is silently lost).
export function readJson<T>(filePath: string): T | null {
    let text: string;
    try {
        text = fs.readFileSync(filePath, "utf8");
    } catch {
        return null;
    }
    try {
        return JSON.parse(text) as T;
    } catch {
        fs.renameSync(filePath, `${filePath}.damaged`);
        return null;
    }
}
