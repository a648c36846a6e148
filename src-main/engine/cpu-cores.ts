// How many threads the engine runs: one per physical core this process may use.
// ggml's threads spin at each barrier, so two threads on the SMT siblings of one core
// (or more threads than cores) wait on each other instead of working; llama.cpp's own
// tools count the same way (cpu_get_num_math). Measured in docs/performance.md, "Threads".
import fs from "node:fs";
import os from "node:os";

// "0-3,8,10-11" (the kernel's CPU list format) as CPU numbers
export function parseCpuList(list: string): number[] {
    return list.trim().split(",").filter((part) => part !== "").flatMap((part) => {
        const [first, last = first] = part.split("-").map(Number) as [number, number?];
        if (!Number.isInteger(first) || !Number.isInteger(last) || last < first) throw new Error(`not a CPU list: ${list}`);
        return Array.from({ length: last - first + 1 }, (_, i) => first + i);
    });
}

// Linux: the distinct (package, core) pairs among the CPUs in this process's affinity mask;
// null where the kernel does not say.
function linuxPhysicalCores(): number | null {
    try {
        const allowed = /^Cpus_allowed_list:\s*(.+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1];
        if (allowed === undefined) return null;
        const cores = new Set(parseCpuList(allowed).map((cpu) => {
            const topology = `/sys/devices/system/cpu/cpu${cpu}/topology`;
            return `${fs.readFileSync(`${topology}/physical_package_id`, "utf8").trim()}:${fs.readFileSync(`${topology}/core_id`, "utf8").trim()}`;
        }));
        return cores.size;
    } catch {
        return null;
    }
}

export function physicalCores(): number {
    const logical = os.availableParallelism();
    const physical = process.platform === "linux" ? linuxPhysicalCores() : null;
    return Math.max(1, Math.min(logical, physical ?? logical));
}
