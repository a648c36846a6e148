// npm run eval -- --model M --text T --modes kv-f16,kv-q8_0,xq-4 --ctx 512 [--chunks K] [--base-layers N] [--json out.json] [--plot out.png]
//                 [--ubatch U] [--exact-ubatch]
//
// For each cache mode: perplexity on T, mean KLD against kv-f16, measured cache
// bytes per token, saving against kv-f16 and bits per element. The numbers come
// from native/tools/xquant-eval.cpp running our patched llama.cpp.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { parseArgs } from "node:util";
import path from "node:path";
import { toolPath } from "../../native/paths.ts";
import { defaultThreads } from "../engine/engine.ts";
import { cacheModes, isCacheMode, type CacheMode } from "../api/cache-modes.ts";
import { paretoSvg } from "./pareto.ts";
import { svgToPng } from "./render-png.ts";

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

class UsageError extends Error {}

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
}

function parseOptions(argv: string[]): EvalOptions & { json?: string; plot?: string } {
    const { values } = parseArgs({
        args: argv,
        options: {
            model: { type: "string" },
            text: { type: "string" },
            modes: { type: "string", default: "kv-f16,kv-q8_0,kv-q4_0,xq-8,xq-4,xq-3,xq-2" },
            ctx: { type: "string", default: "512" },
            chunks: { type: "string", default: "0" },
            "base-layers": { type: "string", default: "-1" },
            threads: { type: "string", default: String(defaultThreads()) },
            json: { type: "string" },
            plot: { type: "string" },
            ubatch: { type: "string" },
            "exact-ubatch": { type: "boolean", default: false },
        },
    });
    if (!values.model || !fs.existsSync(values.model)) throw new UsageError(`--model must name a GGUF file (got ${values.model ?? "nothing"})`);
    if (!values.text || !fs.existsSync(values.text)) throw new UsageError(`--text must name a text file (got ${values.text ?? "nothing"})`);
    const modes = values.modes.split(",").map((mode) => mode.trim());
    const unknown = modes.filter((mode) => !isCacheMode(mode));
    if (unknown.length > 0) throw new UsageError(`unknown modes: ${unknown.join(", ")} (known: ${cacheModes.join(", ")})`);
    // kv-f16 is the reference for KLD and savings, so it always runs first
    const ordered = ["kv-f16", ...modes.filter((mode) => mode !== "kv-f16")] as CacheMode[];
    return {
        model: values.model, text: values.text, modes: ordered, json: values.json, plot: values.plot,
        contextSize: Number(values.ctx), chunks: Number(values.chunks), baseLayers: Number(values["base-layers"]), threads: Number(values.threads),
        ubatch: values.ubatch === undefined ? undefined : Number(values.ubatch), exactUbatch: values["exact-ubatch"],
    };
}

export function evaluateModes(options: EvalOptions, onProgress: (line: string) => void = () => {}): Promise<EvalRow[]> {
    const args = [options.model, options.text, String(options.contextSize), String(options.chunks), String(options.baseLayers), String(options.threads),
        String(options.ubatch ?? options.contextSize), options.exactUbatch ? "1" : "0", ...options.modes];
    return new Promise((resolve, reject) => {
        const child = spawn(toolPath("xquant-eval"), args, { stdio: ["ignore", "pipe", "pipe"] });
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

export function formatTable(rows: EvalRow[]): string {
    const header = ["mode", "PPL", "ΔPPL %", "KLD", "same top", "bytes/token", "saving", "bits/elem"];
    const lines = rows.map((row) => [
        row.mode, row.ppl.toFixed(3), row.deltaPplPct.toFixed(3), row.kld.toExponential(2), `${(row.sameTopToken * 100).toFixed(2)}%`,
        row.bytesPerToken.toFixed(0), `${row.savingVsF16.toFixed(2)}x`, row.bitsPerElement.toFixed(3),
    ]);
    const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)));
    const format = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
    return [format(header), `|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`, ...lines.map(format)].join("\n");
}

async function main(): Promise<void> {
    const options = parseOptions(process.argv.slice(2));
    // one line per chunk: redrawn in place on a terminal, appended otherwise
    const lastMode = options.modes[options.modes.length - 1]!;
    const rows = await evaluateModes(options, (line) => {
        if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(60)}`);
        else if (line.endsWith(` ${lastMode}`)) process.stderr.write(`${line.replace(` ${lastMode}`, " done")}\n`);
    });
    if (process.stderr.isTTY) process.stderr.write("\n");
    console.log(formatTable(rows));
    if (options.json) {
        fs.writeFileSync(options.json, JSON.stringify(rows.map(({ sameTopToken: _, ...row }) => row), null, 2) + "\n");
        console.log(`wrote ${options.json}`);
    }
    if (options.plot) {
        await svgToPng(paretoSvg(rows, `Cache modes on ${path.basename(options.model)}, n_ctx ${options.contextSize}`), options.plot);
        console.log(`wrote ${options.plot}`);
    }
}

if (process.argv[1] === import.meta.filename) {
    main().catch((error: Error) => {
        console.error(error instanceof UsageError ? `usage error: ${error.message}` : `eval failed: ${error.message}`);
        process.exit(error instanceof UsageError ? 2 : 1);
    });
}
