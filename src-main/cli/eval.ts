// npm run eval -- --model M --text T --modes kv-f16,kv-q8_0,xq-4 --ctx 512 [--chunks K] [--base-layers N] [--json out.json] [--plot out.png]
//                 [--ubatch U] [--exact-ubatch]
// npm run eval -- --check M [--budget-mib N] [--fresh] [--threads N] [--json out.json]
//
// For each cache mode: perplexity on T, mean KLD against kv-f16, measured cache
// bytes per token, saving against kv-f16 and bits per element. The numbers come
// from native/tools/xquant-eval.cpp running our patched llama.cpp.
// --check runs the app's "Check this model" (services/model-check.ts) on M: every mode the model
// can run, its quality on the app's check text, its speed at a few depths in the engine process
// and the largest context that fits the memory budget (default: the settings' share of free RAM).
// The check is saved in the app's data folder, as the app saves it, and read back from there
// unless --fresh.
import fs from "node:fs";
import { parseArgs } from "node:util";
import path from "node:path";
import os from "node:os";
import { defaultThreads } from "../engine/engine.ts";
import { sha256File } from "../engine/models.ts";
import { evaluateModes, type EvalOptions, type EvalRow } from "../engine/quality.ts";
import { RemoteEngine } from "../engine/remote.ts";
import { cacheModes, isCacheMode, type CacheMode } from "../api/cache-modes.ts";
import { adviseModes, qualityBudgetText, type ModeAdvice, type ModelCheck } from "../api/mode-advice.ts";
import { checkModel, defaultCheckPlan, ModelCheckStore } from "../services/model-check.ts";
import { defaultAppDir } from "../services/services.ts";
import { defaultSettings } from "../services/settings.ts";
import { paretoSvg } from "./pareto.ts";
import { markdownTable } from "./markdown-table.ts";
import { svgToPng } from "./render-png.ts";

class UsageError extends Error {}

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

export function formatTable(rows: EvalRow[]): string {
    return markdownTable(["mode", "PPL", "ΔPPL %", "KLD", "same top", "bytes/token", "saving", "bits/elem"], rows.map((row) => [
        row.mode, row.ppl.toFixed(3), row.deltaPplPct.toFixed(3), row.kld.toExponential(2), `${(row.sameTopToken * 100).toFixed(2)}%`,
        row.bytesPerToken.toFixed(0), `${row.savingVsF16.toFixed(2)}x`, row.bitsPerElement.toFixed(3),
    ]));
}

// A check's figures and the advice made from them, one row per mode.
function formatCheck(check: ModelCheck, advice: readonly ModeAdvice[]): string {
    const depths = Object.keys(check.modes[0]?.decodeTokensPerSecond ?? {});
    return markdownTable(["mode", "KLD", "ΔPPL %", "bytes/token", ...depths.map((depth) => `decode tok/s @${depth}`), "max context in budget", "quality budget", "recommended"],
        check.modes.map((mode) => {
            const modeAdvice = advice.find((entry) => entry.mode === mode.mode)!;
            return [
                mode.mode, mode.kld.toExponential(2), mode.deltaPplPct.toFixed(2), mode.bytesPerToken.toFixed(0),
                ...depths.map((depth) => mode.decodeTokensPerSecond[depth]?.toFixed(1) ?? "–"), String(mode.maxContextInBudget),
                modeAdvice.withinQualityBudget ? "within" : "outside", modeAdvice.recommended ? "★" : "",
            ];
        }));
}

async function runCheck(argv: string[]): Promise<void> {
    const { values } = parseArgs({
        args: argv,
        options: {
            check: { type: "string" },
            "budget-mib": { type: "string" },
            fresh: { type: "boolean", default: false },
            threads: { type: "string", default: String(defaultThreads()) },
            json: { type: "string" },
        },
    });
    const modelPath = values.check;
    if (!modelPath || !fs.existsSync(modelPath)) throw new UsageError(`--check must name a GGUF file (got ${modelPath ?? "nothing"})`);
    const budgetBytes = values["budget-mib"] === undefined
        ? (defaultSettings(defaultAppDir(), 1).memoryBudgetPercent / 100) * os.freemem()
        : Number(values["budget-mib"]) * 2 ** 20;
    if (!(budgetBytes > 0)) throw new UsageError(`--budget-mib must be a positive number (got ${values["budget-mib"]})`);
    const engine = await RemoteEngine.start({ maxThreads: Number(values.threads) });
    try {
        const metadata = await engine.readGgufMetadata(modelPath);
        const modelSha256 = await sha256File(modelPath);
        const store = new ModelCheckStore(defaultAppDir());
        let check = values.fresh ? null : store.get(modelSha256, engine.info);
        if (check === null) {
            const model = await engine.loadModel(modelPath);
            let estimate: number | null = null;
            const measured = await checkModel(model, { ...defaultCheckPlan, modelPath, modelSha256, metadata, engine: engine.info, budgetBytes }, (fraction, step, estimatedSeconds) => {
                if (estimate === null && estimatedSeconds !== null) console.error(`the check will take about ${(estimate = estimatedSeconds).toFixed(0)} s`);
                process.stderr.write(process.stderr.isTTY ? `\r${`${(fraction * 100).toFixed(0)}% ${step}`.padEnd(70)}` : `${(fraction * 100).toFixed(0)}% ${step}\n`);
            });
            if (process.stderr.isTTY) process.stderr.write("\n");
            check = store.save(measured, engine.info);
        } else {
            console.log(`(the saved check of ${new Date(check.measuredAt).toISOString()}; --fresh measures again)`);
        }
        const advice = adviseModes(metadata, engine.info.xquantArchitectures, check, metadata.contextLength > 0 ? Math.min(2048, metadata.contextLength) : 2048);
        console.log(formatCheck(check, advice));
        console.log(`${check.modes.length} modes in ${check.seconds.toFixed(0)} s; quality budget: ${qualityBudgetText}; memory budget ${(check.budgetBytes / 2 ** 20).toFixed(0)} MiB; recommended at 2048 tokens: ${advice.filter((entry) => entry.recommended).map((entry) => entry.mode).join(", ") || "none"}`);
        if (values.json) {
            fs.writeFileSync(values.json, JSON.stringify(check, null, 2) + "\n");
            console.log(`wrote ${values.json}`);
        }
    } finally {
        engine.kill();
    }
}

async function main(): Promise<void> {
    if (process.argv.slice(2).includes("--check")) return runCheck(process.argv.slice(2));
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
