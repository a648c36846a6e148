// Quality of cache modes against kv-f16, measured by native/tools/xquant-eval.cpp (our patched
// llama.cpp, in a process of its own): perplexity, mean KLD of the next-token distributions,
// the share of same top tokens, and the cache's measured bytes per token.
import { spawn } from "node:child_process";
import { toolPath } from "../../native/paths.ts";
import type { CacheMode } from "../api/cache-modes.ts";

export interface EvalRow {
    mode: CacheMode;
    ppl: number;
    deltaPplPct: number;
    kld: number;
    sameTopToken: number;
    bytesPerToken: number;
    savingVsF16: number;
    bitsPerElement: number;
}

interface NativeRow {
    mode: CacheMode;
    ppl: number;
    kld: number;
    sameTopToken: number;
    bytes: number;
    cells: number;
    bitsPerElement: number;
}

export interface EvalOptions {
    model: string;
    text: string;
    modes: CacheMode[];
    contextSize: number;
    chunks: number;
    baseLayers: number;
    threads: number;
    // Chunks are decoded in ubatches of this many tokens (default: the whole chunk at once).
    ubatch?: number;
    // Each ubatch sees its own tokens unquantized, as the app does. Off by default: the
    // paper's protocol reads every K/V from the cache, as decoding one token at a time does.
    exactUbatch?: boolean;
    // ends the tool's process; the evaluation then fails with an AbortError
    signal?: AbortSignal;
}

// Runs the tool; onProgress hears each "[eval] chunk c/n mode" line as that step starts.
export function evaluateModes(options: EvalOptions, onProgress: (line: string) => void = () => {}): Promise<EvalRow[]> {
    const args = [options.model, options.text, String(options.contextSize), String(options.chunks), String(options.baseLayers), String(options.threads),
        String(options.ubatch ?? options.contextSize), options.exactUbatch ? "1" : "0", ...options.modes];
    return new Promise((resolve, reject) => {
        const child = spawn(toolPath("xquant-eval"), args, { stdio: ["ignore", "pipe", "pipe"], signal: options.signal });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => { stdout += chunk.toString(); });
        child.stderr.on("data", (chunk: Buffer) => {
            stderr += chunk.toString();
            for (const line of chunk.toString().split("\n")) if (line.startsWith("[eval]")) onProgress(line);
        });
        child.on("error", reject);
        child.on("close", (code) => {
            if (code !== 0) return reject(new Error(`xquant-eval failed (${code}): ${stderr.split("\n").filter((line) => !line.startsWith("[eval]")).join("\n").trim()}`));
            const rows = JSON.parse(stdout) as NativeRow[];
            const reference = rows[0]!;
            const referenceBytesPerToken = reference.bytes / reference.cells;
            resolve(rows.map((row) => ({
                mode: row.mode,
                ppl: row.ppl,
                deltaPplPct: ((row.ppl - reference.ppl) / reference.ppl) * 100,
                kld: row.kld,
                sameTopToken: row.sameTopToken,
                bytesPerToken: row.bytes / row.cells,
                savingVsF16: referenceBytesPerToken / (row.bytes / row.cells),
                bitsPerElement: row.bitsPerElement,
            })));
        });
    });
}

