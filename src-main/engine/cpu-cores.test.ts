import fs from "node:fs";
import os from "node:os";
import { describe, expect, it } from "vitest";
import { parseCpuList, physicalCores } from "./cpu-cores.ts";

describe("the engine's thread count", () => {
    it("reads the kernel's CPU list format", () => {
        expect(parseCpuList("0-3,8,10-11\n")).toEqual([0, 1, 2, 3, 8, 10, 11]);
        expect(parseCpuList("5")).toEqual([5]);
        expect(() => parseCpuList("3-1")).toThrow(/not a CPU list/);
    });

    it("is one per physical core this process may run on, never more than its logical CPUs", () => {
        const threads = physicalCores();
        expect(threads).toBeGreaterThanOrEqual(1);
        expect(threads).toBeLessThanOrEqual(os.availableParallelism());
        if (process.platform === "linux") {
            // SMT siblings share a core: count the cores the kernel lists for this machine
            const siblings = new Set(os.cpus().map((_, cpu) => fs.readFileSync(`/sys/devices/system/cpu/cpu${cpu}/topology/thread_siblings_list`, "utf8").trim()));
            expect(threads).toBe(Math.min(os.availableParallelism(), siblings.size));
        }
    });
});
