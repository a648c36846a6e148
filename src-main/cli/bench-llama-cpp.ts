// The bench's standing anchor: stock llama.cpp's own `llama-bench`, built from the same
// patched tree (npm run build:native), on the same model, threads and KV cache type. It
// measures what the engine path measures: prefill of the same number of tokens into an
// empty context, and decode of the same number of tokens at the same depth.
import { spawnSync } from "node:child_process";
import { toolPath } from "../../native/paths.ts";

// llama.cpp's KV cache types the bench compares against: f16 without and with flash attention
// ("f16+fa"), and the quantized ones (whose V needs flash attention there)
export type LlamaCppKvType = "f16" | "f16+fa" | "q8_0" | "q4_0";

export interface LlamaCppSetup {
    model: string;
    kvType: LlamaCppKvType;
    threads: number;
    gpu: boolean;
}

interface LlamaBenchRecord {
    avg_ts: number;
}

// tokens/s of the one test the arguments ask for
function llamaBench(setup: LlamaCppSetup, test: string[]): number {
    const type = setup.kvType.replace("+fa", "");
    const args = [
        "-m", setup.model, "-t", String(setup.threads), "-ngl", setup.gpu ? "99" : "0",
        "-ctk", type, "-ctv", type, "-fa", setup.kvType === "f16" ? "0" : "1",
        "-r", "1", "-o", "json", ...test,
    ];
    const result = spawnSync(toolPath("llama-bench"), args, { encoding: "utf8", maxBuffer: 16 * 2 ** 20 });
    if (result.status !== 0) throw new Error(`llama-bench ${args.join(" ")} failed (${result.status}): ${result.stderr.trim().split("\n").slice(-3).join(" ")}`);
    const records = JSON.parse(result.stdout) as LlamaBenchRecord[];
    if (records.length !== 1) throw new Error(`llama-bench ${args.join(" ")} gave ${records.length} results, expected 1`);
    return records[0]!.avg_ts;
}

export function llamaCppPrefill(setup: LlamaCppSetup, tokens: number): number {
    return llamaBench(setup, ["-p", String(tokens), "-n", "0", "-d", "0"]);
}

export function llamaCppDecode(setup: LlamaCppSetup, tokens: number, depth: number): number {
    return llamaBench(setup, ["-p", "0", "-n", String(tokens), "-d", String(depth)]);
}
