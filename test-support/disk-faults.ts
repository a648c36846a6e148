// Fault injection at the fs level, for tests: a disk that takes only part of each
// write, and one that fills up. Spies on node:fs; vi.restoreAllMocks() undoes them.
import fs from "node:fs";
import { vi } from "vitest";

const enospc = (): NodeJS.ErrnoException => Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });

type WriteSyncArgs = [fd: number, data: string | NodeJS.ArrayBufferView, offset?: number | null, length?: number];

// fs.writeSync through `write`, with the buffer and string forms reduced to bytes.
function interceptWriteSync(write: (fd: number, bytes: Buffer) => number): void {
    vi.spyOn(fs, "writeSync").mockImplementation(((...[fd, data, offset, length]: WriteSyncArgs) => {
        if (typeof data === "string") return write(fd, Buffer.from(data));
        const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        const start = offset ?? 0;
        return write(fd, view.subarray(start, start + (length ?? view.length - start)));
    }) as typeof fs.writeSync);
}

// Each fs.writeSync writes at most `maxBytes` and says so, as a busy or nearly full disk may.
export function shortWrites(maxBytes: number): void {
    const { writeSync } = fs;
    interceptWriteSync((fd, bytes) => writeSync(fd, bytes, 0, Math.min(maxBytes, bytes.length)));
}

// The disk holds `bytesLeft` more bytes: fs.writeSync writes what fits (a short write),
// then fails with ENOSPC; writes through a FileHandle (fs.promises, as the model
// downloader writes) fail with ENOSPC at once.
export function fillDisk(bytesLeft = 0): void {
    const { writeSync } = fs;
    let left = bytesLeft;
    interceptWriteSync((fd, bytes) => {
        if (left === 0 && bytes.length > 0) throw enospc();
        const written = writeSync(fd, bytes, 0, Math.min(left, bytes.length));
        left -= written;
        return written;
    });
    const open = fs.promises.open;
    vi.spyOn(fs.promises, "open").mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
        const handle = await open(...args);
        handle.write = (async () => {
            throw enospc();
        }) as typeof handle.write;
        return handle;
    });
}
