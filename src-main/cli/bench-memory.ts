// npm run bench -- --memory --model FILE [--depths 4096,16384,32768] [--modes kv-f16,xq-4] [--threads N] [--json FILE]
//
// Whole-process memory of each cache mode at each context length: native/tools/xquant-memory
// runs one process per (depth, mode), fills every cell, decodes a token that attends to all
// of them, and reports its peak RSS with the weights read into it (no mmap). The table puts
// peak RSS minus the weights, the cache and the compute buffers beside kv-f16's at the same depth.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { toolPath } from "../../native/paths.ts";

export interface MemoryRun {
    mode: string;
    nCtx: number;
    threads: number;
    peakRssBytes: number;
    weightBytes: number;
    cacheBytes: number;
    computeBytes: number;
}

interface MemoryRow extends MemoryRun {
    // peak RSS minus the weights: the cache, the compute buffers and everything else the process holds
    overWeightsBytes: number;
    // kv-f16's overWeightsBytes at the same depth over this mode's
    savingVsF16: number;
}

export interface MemoryBenchOptions {
    model: string;
    depths: number[];
    modes: string[];
    threads: number;
    json: string;
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

function runMemory(model: string, mode: string, nCtx: number, threads: number): MemoryRun {
    const result = spawnSync(toolPath("xquant-memory"), [model, mode, String(nCtx), String(threads)], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`xquant-memory ${mode} ${nCtx} failed (${result.status}): ${result.stderr.trim()}`);
    return JSON.parse(result.stdout.trim().split("\n").pop()!) as MemoryRun;
}

export function runMemoryBench(options: MemoryBenchOptions): void {
    const modes = ["kv-f16", ...options.modes.filter((mode) => mode !== "kv-f16")];
    const started = Date.now();
    const rows: MemoryRow[] = [];
    for (const depth of options.depths) {
        const runs = modes.map((mode) => {
            process.stderr.write(`[bench] memory ${path.basename(options.model)} ${mode} at ${depth} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
            return runMemory(options.model, mode, depth, options.threads);
        });
        const reference = runs[0]!.peakRssBytes - runs[0]!.weightBytes;
        for (const run of runs) {
            const overWeightsBytes = run.peakRssBytes - run.weightBytes;
            rows.push({ ...run, overWeightsBytes, savingVsF16: reference / overWeightsBytes });
        }
    }
    console.log(`\nWhole-process memory (${path.basename(options.model)}, ${options.threads} thread(s), one process per row)\n`);
    const header = ["depth", "mode", "peak RSS MiB", "weights MiB", "RSS − weights MiB", "kv-f16 ÷ this", "cache MiB", "compute buf MiB"];
    const lines = rows.map((row) => [String(row.nCtx), row.mode, mib(row.peakRssBytes), mib(row.weightBytes), mib(row.overWeightsBytes),
        `${row.savingVsF16.toFixed(2)}x`, mib(row.cacheBytes), mib(row.computeBytes)]);
    console.log([header, header.map(() => "---"), ...lines].map((cells) => `| ${cells.join(" | ")} |`).join("\n"));
    fs.mkdirSync(path.dirname(options.json), { recursive: true });
    fs.writeFileSync(options.json, JSON.stringify({ model: path.basename(options.model), threads: options.threads, seconds: (Date.now() - started) / 1000, rows }, null, 2) + "\n");
}
