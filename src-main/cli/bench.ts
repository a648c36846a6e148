// npm run bench [-- --quick] [--reps R] [--threads N] [--decode-tokens N] [--out DIR]
//                [--model FILE --depths 1024,4096 --modes kv-f16,xq-4,xqcl-2 --gpu --json FILE]
//                [--memory --model FILE ...]: whole-process memory instead (bench-memory.ts)
//
// Speed and memory of cache modes against kv-f16 at context depths 512, 2k and 8k.
// --model runs one model at the given depths and modes instead of the fixtures
// (--gpu offloads every layer; the GEMM profile is CPU-only and is then skipped).
// Each measurement runs in its own process (so that peak RSS is its own): after a
// 32-token warm-up, fill a context of `depth` cells, timing the prefill, then decode a
// few tokens. The runs are interleaved (every mode at a depth, then the next depth, then the next
// repetition), and each figure is the median over repetitions of its ratio to the
// kv-f16 run of the same repetition and depth (for speed, the faster of kv-f16 and kv-f16+fa). Then xquant-bench (native/tools)
// times the rebuild's GEMMs inside a decode step against a plain ggml GEMM of the
// same shape. Every row also stands against stock llama.cpp: its own llama-bench, built
// from the same tree, on the same model, depth, threads and KV type (bench-llama-cpp.ts),
// run in the same interleaved loop. Writes a table to stdout, and bench.json plus two PNG
// charts to --out.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { fixturePath, heldOutTextPath, type FixtureName } from "../../fixtures/fixtures.ts";
import { toolPath } from "../../native/paths.ts";
import { cacheModeSpecs, isCacheMode, type CacheMode } from "../api/cache-modes.ts";
import { defaultThreads, Engine } from "../engine/engine.ts";
import { benchChat } from "./bench-chat.ts";
import { llamaCppDecode, llamaCppPrefill, type LlamaCppKvType } from "./bench-llama-cpp.ts";
import { lineChartSvg, type ChartSeries } from "./line-chart.ts";
import { runMemoryBench } from "./bench-memory.ts";
import { markdownTable } from "./markdown-table.ts";
import { svgToPng } from "./render-png.ts";

// A mode as benchmarked: "+plain" rebuilds V instead of absorbing it; "+gemm" runs attention
// through a rebuilt K of every cell in view instead of the fused XQ_ATTN op; "+fa" runs kv-f16
// with flash attention (llama.cpp's quantized caches always have it).
interface Variant {
    label: string;
    mode: CacheMode;
    absorbV: boolean;
    fusedAttention: boolean;
    flashAttention: boolean;
    color: string;
}

// kv-f16 both ways: the speed ratios are taken against the faster of the two
const f16Variants: Variant[] = [
    { label: "kv-f16", mode: "kv-f16", absorbV: true, fusedAttention: true, flashAttention: false, color: "#000000" },
    { label: "kv-f16+fa", mode: "kv-f16", absorbV: true, fusedAttention: true, flashAttention: true, color: "#757575" },
];

const defaultVariants: Variant[] = [
    ...f16Variants,
    { label: "kv-q4_0", mode: "kv-q4_0", absorbV: true, fusedAttention: true, flashAttention: true, color: "#c62828" },
    { label: "xq-4+plain", mode: "xq-4", absorbV: false, fusedAttention: true, flashAttention: false, color: "#90caf9" },
    { label: "xq-4+gemm", mode: "xq-4", absorbV: true, fusedAttention: false, flashAttention: false, color: "#ffb300" },
    { label: "xq-4", mode: "xq-4", absorbV: true, fusedAttention: true, flashAttention: false, color: "#1565c0" },
    { label: "xq-2", mode: "xq-2", absorbV: true, fusedAttention: true, flashAttention: false, color: "#2e7d32" },
    { label: "xqcl-3", mode: "xqcl-3", absorbV: true, fusedAttention: true, flashAttention: false, color: "#6a1b9a" },
];

const extraColors = ["#ef6c00", "#00838f", "#ad1457", "#4e342e", "#558b2f"];

// A mode by its bench label (a cache mode, then optionally +plain and +gemm; kv-f16+fa).
function variantFor(label: string, index: number): Variant {
    const known = defaultVariants.find((variant) => variant.label === label);
    if (known) return known;
    const [mode = "", ...modifiers] = label.split("+");
    if (!isCacheMode(mode) || modifiers.some((modifier) => modifier !== "plain" && modifier !== "gemm")) {
        throw new Error(`unknown mode ${label}; use a cache mode, optionally with +plain and +gemm, or kv-f16+fa`);
    }
    const flashAttention = cacheModeSpecs[mode].kind === "kv" && mode !== "kv-f16";
    return { label, mode, absorbV: !modifiers.includes("plain"), fusedAttention: !modifiers.includes("gemm"), flashAttention, color: extraColors[index % extraColors.length]! };
}

// The trained fixture's context is 512; longer depths use the random MHA fixture of the same width.
const depths: { depth: number; model: FixtureName }[] = [
    { depth: 512, model: "mha-trained" },
    { depth: 2048, model: "mha-random-f32" },
    { depth: 8192, model: "mha-random-f32" },
];

// V absorption removes the V GEMM, so its gain grows with the model's width: at d = 256 the
// per-cell work (dequantization, RoPE, attention) is a large share of a step; real models are
// 4-16x wider. So absorption is also measured at 2k on a random MHA model with d = 1024.
const wide = { depth: 2048, model: "mha-wide-random-f16" as FixtureName, labels: ["kv-f16", "kv-f16+fa", "xq-4+plain", "xq-4+gemm", "xq-4"] };
const wideSuffix = " (d=1024)";

interface WorkerJob {
    model: string;
    variant: Variant;
    depth: number;
    decodeTokens: number;
    threads: number;
    gpu: boolean;
}

interface WorkerResult {
    prefillTokensPerSecond: number;
    decodeTokensPerSecond: number;
    peakRssBytes: number;
    cacheBytes: number;
    computeBytes: number;
}

interface GemmResult {
    mode: string;
    depth: number;
    model: string;
    rebuildGemmGflops: number;
    plainGemmGflops: number;
    shareOfPlain: number;
    rebuildGemmMsPerStep: number;
    dequantMsPerStep: number;
    otherMsPerStep: number;
    // the rest of a step, by ggml op (the profile behind the speedups)
    otherMsPerStepByOp: Record<string, number>;
}

export interface BenchRow {
    depth: number;
    model: string;
    label: string;
    // medians of the ratio to kv-f16 in the same repetition
    prefillVsF16: number;
    decodeVsF16: number;
    peakRssVsF16: number;
    cacheBytesVsF16: number;
    // medians of the ratio to stock llama.cpp (llama-bench) in the same repetition: with the
    // row's own KV type for the KV modes, with f16 (and q4_0) for the X modes
    prefillVsLlamaCpp: number;
    decodeVsLlamaCpp: number;
    decodeVsLlamaCppQ4_0: number | null;
    // medians of the absolute figures
    prefillTokensPerSecond: number;
    decodeTokensPerSecond: number;
    peakRssBytes: number;
    cacheBytes: number;
    computeBytes: number;
}

// One measurement, in this process: prefill depth - decodeTokens tokens, then decode decodeTokens.
async function runWorker(job: WorkerJob): Promise<WorkerResult> {
    const engine = await Engine.start({ maxThreads: job.threads });
    const model = await engine.loadModel(job.model, { gpuLayers: job.gpu ? -1 : 0 });
    const { mode: cacheMode, absorbV, fusedAttention, flashAttention } = job.variant;
    const context = await model.createContext({ cacheMode, contextSize: job.depth, absorbV, fusedAttention, flashAttention });
    // held-out text, repeated as needed (speed does not depend on the text)
    const text = model.tokenize(fs.readFileSync(heldOutTextPath, "utf8"));
    const [speed] = await context.measureSpeed(text, [job.depth - job.decodeTokens], job.decodeTokens);
    const stats = context.cacheStats();
    await context.dispose();
    await model.dispose();
    await engine.dispose();
    return {
        prefillTokensPerSecond: speed!.prefillTokensPerSecond,
        decodeTokensPerSecond: speed!.decodeTokensPerSecond,
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
        cacheBytes: stats.bytes,
        computeBytes: stats.computeBytes,
    };
}

function spawnWorker(job: WorkerJob): Promise<WorkerResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, "--worker", JSON.stringify(job)], { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => { stdout += chunk.toString(); });
        child.stderr.on("data", (chunk: Buffer) => { stderr += chunk.toString(); });
        child.on("error", reject);
        child.on("close", (code) => {
            if (code !== 0) return reject(new Error(`bench worker ${job.variant.label} at ${job.depth} failed (${code}): ${stderr.trim()}`));
            resolve(JSON.parse(stdout.trim().split("\n").pop()!) as WorkerResult);
        });
    });
}

function runGemmProfile(model: string, mode: string, depth: number, threads: number): Omit<GemmResult, "model"> {
    const result = spawnSync(toolPath("xquant-bench"), [model, mode, String(depth), String(threads), "4"], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`xquant-bench ${mode} ${depth} failed (${result.status}): ${result.stderr}`);
    return JSON.parse(result.stdout) as Omit<GemmResult, "model">;
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

// What llama.cpp a mode stands against: `own`, the KV types whose fastest run in a repetition
// counts (a KV mode's own type, with flash attention where the row has it; for an X mode f16
// with and without it), and for an X mode q4_0 too, the 4-bit cache users have
function llamaCppBaselines(variant: Variant): { own: LlamaCppKvType[]; q4_0: boolean } {
    const spec = cacheModeSpecs[variant.mode];
    if (spec.kind !== "kv") return { own: ["f16", "f16+fa"], q4_0: true };
    return { own: [variant.mode === "kv-f16" && variant.flashAttention ? "f16+fa" : spec.type.toLowerCase() as LlamaCppKvType], q4_0: false };
}

// Per repetition, kv-f16 at its best: the faster of its runs without and with flash attention
// (memory from the plain run), or the plain run alone where the other was not measured.
function fasterF16(plain: WorkerResult[], flash: WorkerResult[] | undefined): WorkerResult[] {
    return plain.map((run, i) => {
        const other = flash?.[i];
        if (other === undefined) return run;
        return { ...run, prefillTokensPerSecond: Math.max(run.prefillTokensPerSecond, other.prefillTokensPerSecond), decodeTokensPerSecond: Math.max(run.decodeTokensPerSecond, other.decodeTokensPerSecond) };
    });
}

interface LlamaCppResult {
    prefillTokensPerSecond: number;
    decodeTokensPerSecond: number;
}

// llama.cpp's runs at one depth and model, by KV type, one per repetition
type LlamaCppRuns = Map<LlamaCppKvType, LlamaCppResult[]>;

function summarise(depth: number, model: string, variant: Variant, label: string, runs: WorkerResult[], references: WorkerResult[], llamaCpp: LlamaCppRuns): BenchRow {
    const ratio = (pick: (run: WorkerResult) => number) => median(runs.map((run, i) => pick(run) / pick(references[i]!)));
    // against the fastest of llama.cpp's runs of these KV types in the same repetition
    const llamaCppRatio = (kvTypes: LlamaCppKvType[], rate: keyof LlamaCppResult) =>
        median(runs.map((run, i) => run[rate] / Math.max(...kvTypes.map((kvType) => llamaCpp.get(kvType)![i]![rate]))));
    const { own, q4_0 } = llamaCppBaselines(variant);
    const mid = (pick: (run: WorkerResult) => number) => median(runs.map(pick));
    return {
        depth, model, label,
        prefillVsLlamaCpp: llamaCppRatio(own, "prefillTokensPerSecond"),
        decodeVsLlamaCpp: llamaCppRatio(own, "decodeTokensPerSecond"),
        decodeVsLlamaCppQ4_0: q4_0 ? llamaCppRatio(["q4_0"], "decodeTokensPerSecond") : null,
        prefillVsF16: ratio((run) => run.prefillTokensPerSecond),
        decodeVsF16: ratio((run) => run.decodeTokensPerSecond),
        peakRssVsF16: ratio((run) => run.peakRssBytes),
        cacheBytesVsF16: ratio((run) => run.cacheBytes),
        prefillTokensPerSecond: mid((run) => run.prefillTokensPerSecond),
        decodeTokensPerSecond: mid((run) => run.decodeTokensPerSecond),
        peakRssBytes: mid((run) => run.peakRssBytes),
        cacheBytes: mid((run) => run.cacheBytes),
        computeBytes: mid((run) => run.computeBytes),
    };
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

export function formatBenchTable(rows: BenchRow[]): string {
    return markdownTable(
        ["depth", "mode", "prefill ×f16", "decode ×f16", "prefill ×llama.cpp", "decode ×llama.cpp", "decode ×llama.cpp q4_0", "peak RSS ×f16", "cache ×f16", "prefill tok/s", "decode tok/s", "cache MiB", "compute buf MiB"],
        rows.map((row) => [
            String(row.depth), row.label, row.prefillVsF16.toFixed(2), row.decodeVsF16.toFixed(2),
            row.prefillVsLlamaCpp.toFixed(2), row.decodeVsLlamaCpp.toFixed(2), row.decodeVsLlamaCppQ4_0?.toFixed(2) ?? "–",
            row.peakRssVsF16.toFixed(3), row.cacheBytesVsF16.toFixed(3),
            row.prefillTokensPerSecond.toFixed(0), row.decodeTokensPerSecond.toFixed(1), mib(row.cacheBytes), mib(row.computeBytes),
        ]));
}

export function formatGemmTable(results: GemmResult[]): string {
    return markdownTable(
        ["depth", "model", "mode", "rebuild GEMM GFLOP/s", "plain GEMM GFLOP/s", "share", "GEMM ms/step", "dequant ms/step", "rest ms/step"],
        results.map((result) => [
            String(result.depth), result.model, result.mode, result.rebuildGemmGflops.toFixed(1), result.plainGemmGflops.toFixed(1), `${(result.shareOfPlain * 100).toFixed(0)}%`,
            result.rebuildGemmMsPerStep.toFixed(2), result.dequantMsPerStep.toFixed(2), result.otherMsPerStep.toFixed(2),
        ]));
}

function chartSeries(variants: Variant[], rows: BenchRow[], pick: (row: BenchRow) => number, dashed = false, suffix = ""): ChartSeries[] {
    return variants.map((variant) => ({
        name: `${variant.label}${suffix}`, color: variant.color, dashed,
        points: rows.filter((row) => row.label === variant.label).map((row) => ({ x: row.depth, y: pick(row) })),
    }));
}

async function main(): Promise<void> {
    const { values } = parseArgs({
        args: process.argv.slice(2),
        options: {
            worker: { type: "string" },
            quick: { type: "boolean", default: false },
            reps: { type: "string" },
            threads: { type: "string" },
            "decode-tokens": { type: "string" },
            out: { type: "string", default: "bench-results" },
            json: { type: "string" },
            model: { type: "string" },
            depths: { type: "string" },
            modes: { type: "string" },
            gpu: { type: "boolean", default: false },
            memory: { type: "boolean", default: false },
        },
    });
    if (values.worker !== undefined) {
        console.log(JSON.stringify(await runWorker(JSON.parse(values.worker) as WorkerJob)));
        return;
    }
    if (values.memory) {
        if (values.model === undefined) throw new Error("--memory needs --model");
        runMemoryBench({
            model: path.resolve(values.model), depths: (values.depths ?? "4096,16384,32768").split(",").map(Number),
            modes: (values.modes ?? "xq-4").split(","), threads: Number(values.threads ?? defaultThreads()),
            json: values.json ?? path.join(values.out, "bench-memory.json"),
        });
        return;
    }
    const quick = values.quick;
    const reps = Number(values.reps ?? (quick ? 1 : 3));
    // the engine's own default, so that the figures are what the app gets
    const threads = Number(values.threads ?? defaultThreads());
    const decodeTokens = Number(values["decode-tokens"] ?? (quick ? 8 : 16));
    const gpu = values.gpu;
    // a model of one's own: every depth on it, and no wide-model section
    const ownModel = values.model === undefined ? null : path.resolve(values.model);
    const chosenDepths = values.depths?.split(",").map(Number);
    const plan: { depth: number; model: FixtureName | string }[] = ownModel !== null
        ? (chosenDepths ?? depths.map((entry) => entry.depth)).map((depth) => ({ depth, model: ownModel }))
        : quick ? depths.slice(0, 2) : depths;
    const variants = values.modes === undefined ? defaultVariants
        : [...f16Variants, ...values.modes.split(",").filter((label) => !f16Variants.some((variant) => variant.label === label)).map(variantFor)];
    const modelPath = (model: string) => model === ownModel ? model : fixturePath(model as FixtureName);
    const withWide = ownModel === null;

    const runs = new Map<string, WorkerResult[]>();
    const started = Date.now();
    const wideVariants = withWide ? variants.filter((variant) => wide.labels.includes(variant.label)) : [];
    const measure = async (depth: number, model: string, variant: Variant, key: string, rep: number) => {
        process.stderr.write(`[bench] rep ${rep + 1}/${reps} depth ${depth} ${path.basename(model)} ${variant.label} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
        const result = await spawnWorker({ model: modelPath(model), variant, depth, decodeTokens, threads, gpu });
        runs.set(key, [...(runs.get(key) ?? []), result]);
    };
    // stock llama.cpp at a depth and model, in every KV type the modes there are compared against
    const llamaCppRuns = new Map<string, LlamaCppRuns>();
    const measureLlamaCpp = (depth: number, model: string, measured: Variant[], rep: number) => {
        const kvTypes = new Set(measured.flatMap((variant) => {
            const { own, q4_0 } = llamaCppBaselines(variant);
            return q4_0 ? [...own, "q4_0" as const] : own;
        }));
        const key = `${depth} ${model}`;
        const byType = llamaCppRuns.get(key) ?? new Map<LlamaCppKvType, LlamaCppResult[]>();
        llamaCppRuns.set(key, byType);
        for (const kvType of kvTypes) {
            process.stderr.write(`[bench] rep ${rep + 1}/${reps} depth ${depth} ${path.basename(model)} llama-bench ${kvType} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
            const setup = { model: modelPath(model), kvType, threads, gpu };
            const result = { prefillTokensPerSecond: llamaCppPrefill(setup, depth - decodeTokens - 1), decodeTokensPerSecond: llamaCppDecode(setup, decodeTokens, depth - decodeTokens) };
            byType.set(kvType, [...(byType.get(kvType) ?? []), result]);
        }
    };
    for (let rep = 0; rep < reps; rep++) {
        for (const { depth, model } of plan) {
            for (const variant of variants) await measure(depth, model, variant, `${depth} ${variant.label}`, rep);
            measureLlamaCpp(depth, model, variants, rep);
        }
        for (const variant of wideVariants) await measure(wide.depth, wide.model, variant, `${wide.depth} ${variant.label}${wideSuffix}`, rep);
        if (wideVariants.length > 0) measureLlamaCpp(wide.depth, wide.model, wideVariants, rep);
    }
    const rows = [
        ...plan.flatMap(({ depth, model }) => variants.map((variant) =>
            summarise(depth, path.basename(model), variant, variant.label, runs.get(`${depth} ${variant.label}`)!,
                fasterF16(runs.get(`${depth} kv-f16`)!, runs.get(`${depth} kv-f16+fa`)), llamaCppRuns.get(`${depth} ${model}`)!))),
        ...wideVariants.map((variant) => summarise(wide.depth, wide.model, variant, `${variant.label}${wideSuffix}`, runs.get(`${wide.depth} ${variant.label}${wideSuffix}`)!,
            fasterF16(runs.get(`${wide.depth} kv-f16${wideSuffix}`)!, runs.get(`${wide.depth} kv-f16+fa${wideSuffix}`)), llamaCppRuns.get(`${wide.depth} ${wide.model}`)!)),
    ];
    // llama.cpp's own figures, medians over the repetitions
    const llamaCppRows = [...plan, ...(wideVariants.length > 0 ? [wide] : [])].flatMap(({ depth, model }) => [...llamaCppRuns.get(`${depth} ${model}`)!].map(([kvType, results]) => ({
        depth, model: path.basename(model), kvType,
        prefillTokensPerSecond: median(results.map((result) => result.prefillTokensPerSecond)),
        decodeTokensPerSecond: median(results.map((result) => result.decodeTokensPerSecond)),
    })));

    // the rebuild GEMMs of xq-4's GEMM path, absorbed and plain (CPU only; the fused op has none)
    const gemm: GemmResult[] = [];
    const profiled = gpu || !variants.some((variant) => variant.label === "xq-4") ? [] : [...plan, ...(withWide ? [wide] : [])];
    for (const { depth, model } of profiled) {
        for (const mode of ["xq-4+plain+gemm", "xq-4+gemm"]) {
            process.stderr.write(`[bench] rebuild GEMMs depth ${depth} ${path.basename(model)} ${mode}\n`);
            gemm.push({ ...runGemmProfile(modelPath(model), mode, depth, threads), model: path.basename(model) });
        }
    }
    // a mode's decode speed over another variant of it, per depth, where both ran
    const speedupOver = (mode: string, baseline: string) => {
        const speedup = (depth: number, model: string, suffix: string) => {
            const base = runs.get(`${depth} ${baseline}${suffix}`);
            const measured = runs.get(`${depth} ${mode}${suffix}`);
            if (base === undefined || measured === undefined) return [];
            return [{ depth, model: path.basename(model) + suffix, mode, decodeSpeedup: median(measured.map((run, i) => run.decodeTokensPerSecond / base[i]!.decodeTokensPerSecond)) }];
        };
        return [...plan.flatMap(({ depth, model }) => speedup(depth, model, "")), ...(withWide ? speedup(wide.depth, wide.model, wideSuffix) : [])];
    };
    const absorbedSpeedup = speedupOver("xq-4", "xq-4+plain");
    // every mode benchmarked beside its "+gemm" twin
    const fusedSpeedup = variants.filter((variant) => variant.label.endsWith("+gemm"))
        .flatMap((variant) => speedupOver(variant.label.slice(0, -"+gemm".length), variant.label));

    const models = plan.map(({ depth, model }) => `${depth}: ${path.basename(model)}`).join(", ");
    console.log(`\nCache modes against kv-f16 (${reps} interleaved repetitions, medians; ${gpu ? "all layers on the GPU" : `${threads} thread(s)`}; ${decodeTokens} decode tokens; models ${models})\n`);
    console.log(formatBenchTable(rows));
    console.log(`\nStock llama.cpp (llama-bench from the same build, ${gpu ? "all layers on the GPU" : `${threads} thread(s)`}; medians)`);
    console.log(markdownTable(["depth", "model", "KV type", "prefill tok/s", "decode tok/s"], llamaCppRows.map((row) =>
        [String(row.depth), row.model, row.kvType, row.prefillTokensPerSecond.toFixed(0), row.decodeTokensPerSecond.toFixed(1)])));
    console.log("\nV absorption: xq-4 decode speed over xq-4+plain");
    console.log(markdownTable(["depth", "model", "speedup"], absorbedSpeedup.map((entry) => [String(entry.depth), entry.model, `${entry.decodeSpeedup.toFixed(2)}x`])));
    console.log("\nFused attention (XQ_ATTN): decode speed over the same mode's GEMM path (+gemm)");
    console.log(markdownTable(["depth", "model", "mode", "speedup"], fusedSpeedup.map((entry) => [String(entry.depth), entry.model, entry.mode, `${entry.decodeSpeedup.toFixed(2)}x`])));
    console.log("\nRebuild GEMMs inside a decode step against a plain ggml GEMM of the same shape (xquant-bench)\n");
    console.log(formatGemmTable(gemm));
    // on a model of one's own, the app's chat path too (the fixtures have no chat template)
    const chat = ownModel === null || gpu ? null : await benchChat(ownModel, threads, 64);
    if (chat !== null) {
        console.log(`\nA chat through the app's services and engine process (kv-f16, greedy, ${threads} thread(s)) against llama-bench's decode at the same depth\n`);
        console.log(markdownTable(["reply tokens", "context tokens", "chat decode tok/s", "llama.cpp decode tok/s", "chat ×llama.cpp"],
            [[String(chat.replyTokens), String(chat.contextTokens), chat.chatDecodeTokensPerSecond.toFixed(1), chat.llamaCppDecodeTokensPerSecond.toFixed(1), chat.chatVsLlamaCpp.toFixed(2)]]));
    }

    fs.mkdirSync(values.out, { recursive: true });
    const json = values.json ?? path.join(values.out, "bench.json");
    fs.mkdirSync(path.dirname(json), { recursive: true });
    fs.writeFileSync(json, JSON.stringify({ reps, threads, gpu, decodeTokens, seconds: (Date.now() - started) / 1000, rows, llamaCppRows, chat, absorbedSpeedup, fusedSpeedup, gemm }, null, 2) + "\n");
    const speedPng = path.join(values.out, "bench-speed.png");
    await svgToPng(lineChartSvg({
        title: "Speed against kv-f16 (solid: decode, dashed: prefill)", xLabel: "context depth (cells)", yLabel: "tokens/s ÷ kv-f16",
        series: [...chartSeries(variants, rows, (row) => row.decodeVsF16), ...chartSeries(variants, rows, (row) => row.prefillVsF16, true, " prefill")],
    }), speedPng);
    const memoryPng = path.join(values.out, "bench-memory.png");
    await svgToPng(lineChartSvg({
        title: "Memory (solid: cache, dashed: compute buffers)", xLabel: "context depth (cells)", yLabel: "MiB",
        series: [...chartSeries(variants, rows, (row) => row.cacheBytes / 2 ** 20), ...chartSeries(variants, rows, (row) => row.computeBytes / 2 ** 20, true, " compute")],
    }), memoryPng);
    console.log(`\nwrote ${json}, ${speedPng}, ${memoryPng} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

if (process.argv[1] === import.meta.filename) {
    main().catch((error: Error) => {
        console.error(`bench failed: ${error.message}`);
        process.exit(1);
    });
}
