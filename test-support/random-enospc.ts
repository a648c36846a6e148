// A disk that is full at random moments, for npm run stress (which runs outside the test
// runner, so without vi's spies): while on, each synchronous write (chats, compare runs,
// the model index) and each write through a FileHandle (the model downloader) fails
// with ENOSPC at the given chance.
import fs from "node:fs";

const enospc = (): NodeJS.ErrnoException => Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });

export interface RandomEnospc {
    // the writes failed so far
    readonly failures: number;
    // the real fs again
    restore(): void;
}

export function enospcAtRandom(chance: number): RandomEnospc {
    const { writeSync } = fs;
    const { open } = fs.promises;
    const state = { failures: 0 };
    const full = (): boolean => {
        if (Math.random() >= chance) return false;
        state.failures++;
        return true;
    };
    fs.writeSync = ((...args: Parameters<typeof writeSync>) => {
        if (full()) throw enospc();
        return writeSync(...args);
    }) as typeof fs.writeSync;
    fs.promises.open = async (...args: Parameters<typeof open>) => {
        const handle = await open(...args);
        const write = handle.write.bind(handle) as (...writeArgs: unknown[]) => Promise<unknown>;
        handle.write = (async (...writeArgs: unknown[]) => {
            if (full()) throw enospc();
            return write(...writeArgs);
        }) as typeof handle.write;
        return handle;
    };
    return {
        get failures() {
            return state.failures;
        },
        restore() {
            fs.writeSync = writeSync;
            fs.promises.open = open;
        },
    };
}
