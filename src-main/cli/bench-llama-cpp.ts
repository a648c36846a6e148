// The bench's standing anchor: stock llama.cpp's own `llama-bench`, built from the same
// patched tree (npm run build:native), on the same model, depth, threads and KV cache type.
// It measures what the engine path measures: prefill of the same number of tokens into an
// empty context, and decode of the same number of tokens at the same depth.
import { spawnSync } from "node:child_process";
import { toolPath } from "../../native/paths.ts";

// llama.cpp's KV cache types the bench compares against (quantized V needs flash attention there)
export type LlamaCppKvType = "f16" | "q8_0" | "q4_0";

export interface LlamaCppJob {
    model: string;
    kvType: LlamaCppKvType;
    prefillTokens: number;
    decodeTokens: number;
    decodeDepth: number;
    threads: number;
    gpu: boolean;
}

export interface LlamaCppResult {
    prefillTokensPerSecond: number;
    decodeTokensPerSecond: number;
}

interface LlamaBenchRecord {
    n_prompt: number;
    n_gen: number;
    avg_ts: number;
}

function llamaBench(job: LlamaCppJob, test: string[]): number {
    const args = [
        "-m", job.model, "-t", String(job.threads), "-ngl", job.gpu ? "99" : "0",
        "-ctk", job.kvType, "-ctv", job.kvType, "-fa", job.kvType === "f16" ? "0" : "1",
        "-r", "1", "-o", "json", ...test,
    ];
    const result = spawnSync(toolPath("llama-bench"), args, { encoding: "utf8", maxBuffer: 16 * 2 ** 20 });
    if (result.status !== 0) throw new Error(`llama-bench ${args.join(" ")} failed (${result.status}): ${result.stderr.trim().split("\n").slice(-3).join(" ")}`);
    const records = JSON.parse(result.stdout) as LlamaBenchRecord[];
    if (records.length !== 1) throw new Error(`llama-bench ${args.join(" ")} gave ${records.length} results, expected 1`);
    return records[0]!.avg_ts;
}

export function runLlamaCpp(job: LlamaCppJob): LlamaCppResult {
    return {
        prefillTokensPerSecond: llamaBench(job, ["-p", String(job.prefillTokens), "-n", "0", "-d", "0"]),
        decodeTokensPerSecond: llamaBench(job, ["-p", "0", "-n", String(job.decodeTokens), "-d", String(job.decodeDepth)]),
    };
}
