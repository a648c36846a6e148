// "Check this model": every cache mode the model can run, measured on this machine. Quality
// against kv-f16 (KLD, ΔPPL, same top token) comes from xquant-eval on a text shipped with the
// app (assets/check-text.txt, the KJV's Acts 1-6: KLD needs no reference answers); speed at a
// few context depths and the memory a context takes come from the engine process. A check is
// saved per model sha256, engine build and backend, and advice is made from it (mode-advice.ts).
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { repoRoot } from "../../native/paths.ts";
import type { CacheMode } from "../api/cache-modes.ts";
import type { CheckStatus, EngineInfo, ModelMetadata } from "../api/contract.ts";
import { adviseModes, modelCheckSchema, modesToCheck, withBudget, type ModeCheck, type ModelCheck, type SpeedAtDepth } from "../api/mode-advice.ts";
import { throttle } from "../api/throttle.ts";
import { sha256File } from "../engine/models.ts";
import { evaluateModes } from "../engine/quality.ts";
import type { RemoteEngine, RemoteModel } from "../engine/remote.ts";
import { chatContextOptions } from "./context-memory.ts";
import { RequestError, toRequestError } from "./errors.ts";
import type { EventBus } from "./events.ts";
import { readJson, writeJsonAtomic } from "./json-file.ts";
import type { ModelLibrary } from "./library.ts";
import { fileIn } from "./paths.ts";
import type { GenerationQueue } from "./queue.ts";
import type { SessionService } from "./session.ts";

export const checkTextPath = path.join(repoRoot, "assets", "check-text.txt");

export interface CheckPlan {
    modelPath: string;
    modelSha256: string;
    metadata: ModelMetadata;
    engine: EngineInfo;
    // what the memory fit is judged against
    budgetBytes: number;
    // quality: `chunks` chunks of `contextSize` tokens of the check text
    contextSize: number;
    chunks: number;
    // speed: decode `decodeTokens` (at least 2) at each depth, ascending; depths past the
    // model's trained context are left out
    depths: number[];
    decodeTokens: number;
    // default: every mode worth checking (modesToCheck); kv-f16, the reference, is always measured first
    modes?: CacheMode[];
}

// How much a check measures: the quality text's chunks, the depths and decoded tokens timed.
export type CheckSize = Pick<CheckPlan, "contextSize" | "chunks" | "depths" | "decodeTokens" | "modes">;

export const defaultCheckPlan: CheckSize = { contextSize: 512, chunks: 3, depths: [256, 1024], decodeTokens: 8 };

// `estimatedSeconds`: the whole check's time, as estimated before it measures anything
export type CheckProgress = (fraction: number, step: string, estimatedSeconds: number | null) => void;

// What one chunk of the quality pass costs beyond prefilling its tokens (a context made per mode
// and chunk, every scored token's softmax over the vocabulary), as a share of that prefill: 1.5 on
// SmolLM2 (2.7 s a chunk against 1.8 s of prefill).
const qualityOverhead = 1.5;

// The check's time, from kv-f16's prefill and decode rates on this model and machine: every mode's
// quality chunks, then every mode's fill to each depth and decode there. The other modes run at
// kv-f16's rates here, so the estimate is low where they decode far slower.
export function estimateCheckSeconds(plan: Pick<CheckPlan, "contextSize" | "chunks" | "decodeTokens">, modes: number, depths: readonly number[], rates: SpeedAtDepth): number {
    const quality = modes * plan.chunks * plan.contextSize * (1 + qualityOverhead) / rates.prefillTokensPerSecond;
    const speed = modes * (Math.max(...depths) / rates.prefillTokensPerSecond + depths.length * plan.decodeTokens / rates.decodeTokensPerSecond);
    return quality + speed;
}

// The engine that measured, as a check is keyed: its system info names the patch series and the
// CPU variant's features, and its backend where the layers run.
export function engineBuild(info: EngineInfo): string {
    return crypto.createHash("sha256").update(info.systemInfo).digest("hex").slice(0, 16);
}

// Runs a check: quality first (xquant-eval loads the model in a process of its own), then speed
// and memory in the engine process on `model`. An abort ends the quality pass at once and the
// speed pass after the mode being timed; the check then fails with the abort's reason.
export async function checkModel(model: RemoteModel, plan: CheckPlan, onProgress: CheckProgress = () => {}, signal?: AbortSignal): Promise<ModelCheck> {
    const started = performance.now();
    const modes = [...new Set<CacheMode>(["kv-f16", ...plan.modes ?? modesToCheck(adviseModes(plan.metadata, plan.engine.xquantArchitectures))])];
    const trainedContext = plan.metadata.contextLength;
    const fitting = plan.depths.filter((depth) => trainedContext <= 0 || depth + plan.decodeTokens <= trainedContext);
    // a model trained on a context shorter than every depth is timed at half of it
    const depths = fitting.length > 0 ? fitting : [Math.max(2, Math.floor(trainedContext / 2))];
    const text = await model.tokenize(fs.readFileSync(checkTextPath, "utf8"));
    const contextSize = Math.max(...depths) + plan.decodeTokens;
    // the context a chat gets, on the engine's threads
    const timeMode = async (mode: CacheMode, timedDepths: readonly number[]) => {
        const context = await model.createContext(chatContextOptions({ cacheMode: mode, contextSize, baseLayers: -1 }, 0));
        try {
            return { speed: await context.measureSpeed(text, timedDepths, plan.decodeTokens), memory: await context.cacheStats() };
        } finally {
            await context.dispose();
        }
    };

    onProgress(0, "estimating how long the check takes", null);
    const probe = (await timeMode("kv-f16", [depths[0]!])).speed[0]!;
    const estimatedSeconds = estimateCheckSeconds(plan, modes.length, depths, probe);
    const report = (fraction: number, step: string) => onProgress(fraction, step, estimatedSeconds);
    const qualitySteps = plan.chunks * modes.length;
    let qualityDone = 0;
    const rows = await evaluateModes({
        model: plan.modelPath, text: checkTextPath, modes, contextSize: plan.contextSize, chunks: plan.chunks, baseLayers: -1, threads: plan.engine.threads, signal,
    }, (line) => report(0.5 * (qualityDone++ / qualitySteps), `quality: ${line.replace("[eval] ", "")}`));
    const measured: ModeCheck[] = [];
    for (const [index, row] of rows.entries()) {
        signal?.throwIfAborted();
        report(0.5 + 0.5 * (index / rows.length), `speed: ${row.mode}`);
        const { speed, memory: { computeBytes, factorBytes } } = await timeMode(row.mode, depths);
        measured.push({
            mode: row.mode, kld: row.kld, deltaPplPct: row.deltaPplPct, sameTopToken: row.sameTopToken, bytesPerToken: row.bytesPerToken,
            prefillTokensPerSecond: Object.fromEntries(speed.map((step) => [step.depth, step.prefillTokensPerSecond])),
            decodeTokensPerSecond: Object.fromEntries(speed.map((step) => [step.depth, step.decodeTokensPerSecond])),
            computeBytes, factorBytes, maxContextInBudget: 0,
        });
    }
    report(1, "done");
    return withBudget({
        modelSha256: plan.modelSha256, engineBuild: engineBuild(plan.engine), backend: plan.engine.backend, threads: plan.engine.threads,
        measuredAt: Date.now(), seconds: (performance.now() - started) / 1000, text: path.basename(checkTextPath), contextSize: plan.contextSize,
        chunks: plan.chunks, weightsBytes: plan.metadata.sizeBytes, trainedContext, budgetBytes: plan.budgetBytes, modes: measured,
    }, plan.budgetBytes);
}

// The saved checks in <appDir>/checks, one file per model sha256, engine build and backend.
export class ModelCheckStore {
    private readonly dir: string;

    constructor(appDir: string) {
        this.dir = path.join(appDir, "checks");
    }

    private file(modelSha256: string, engine: EngineInfo): string {
        return fileIn(this.dir, `${modelSha256}-${engineBuild(engine)}-${engine.backend}.json`);
    }

    // The check of this model by this engine, or null if there is none.
    get(modelSha256: string, engine: EngineInfo): ModelCheck | null {
        return readJson(this.file(modelSha256, engine), modelCheckSchema);
    }

    save(check: ModelCheck, engine: EngineInfo): ModelCheck {
        fs.mkdirSync(this.dir, { recursive: true });
        return writeJsonAtomic(this.file(check.modelSha256, engine), modelCheckSchema, check);
    }
}

interface CheckServiceParts {
    store: ModelCheckStore;
    library: ModelLibrary;
    session: SessionService;
    engine: () => Promise<RemoteEngine>;
    queue: GenerationQueue;
    events: EventBus;
    // the memory a model and its context may take, as the settings say now
    budgetBytes: () => Promise<number>;
    plan: CheckSize;
}

// The app's checks: one per model at a time, each waiting its turn in the generation queue (so it
// never runs beside a reply), announced as "check" events, and stoppable while it waits or runs.
export class CheckService {
    private readonly running = new Map<string, { status: CheckStatus; abort: AbortController }>();

    constructor(private readonly parts: CheckServiceParts) {}

    list(): CheckStatus[] {
        return [...this.running.values()].map((run) => run.status);
    }

    // Admitted by the queue (refused as busy when it is full), then run in turn.
    async start(modelId: string): Promise<CheckStatus> {
        const entry = await this.parts.library.get(modelId);
        const abort = new AbortController();
        const run = { status: { modelId, state: "waiting", progress: 0, step: "waiting for the generation queue", estimatedSeconds: null, error: null } as CheckStatus, abort };
        const update = (change: Partial<CheckStatus>) => {
            run.status = { ...run.status, ...change };
            this.parts.events.emit({ type: "check", check: run.status });
        };
        // a late progress report never follows the end
        const progress = throttle<[number, string, number | null]>(250, ([fraction, step, estimatedSeconds]) => {
            if (run.status.state === "running") update({ progress: fraction, step, estimatedSeconds });
        });
        return this.parts.queue.start(() => {
            if (this.running.has(modelId)) throw new RequestError("busy", "This model's check is already waiting or running.");
            this.running.set(modelId, run);
            update({});
            return run.status;
        }, async (_status, leave) => {
            try {
                abort.signal.throwIfAborted();
                update({ state: "running", step: "loading the model" });
                const engine = await this.parts.engine();
                const model = await this.parts.session.model(modelId);
                const modelSha256 = entry.sha256 ?? await sha256File(entry.path);
                const check = await checkModel(model, {
                    ...this.parts.plan, modelPath: entry.path, modelSha256, metadata: entry.metadata, engine: engine.info, budgetBytes: await this.parts.budgetBytes(),
                }, (fraction, step, estimatedSeconds) => progress([fraction, step, estimatedSeconds]), abort.signal);
                this.parts.store.save(check, engine.info);
                this.running.delete(modelId);
                leave();
                update({ state: "done", progress: 1, step: `${check.modes.length} modes measured in ${Math.round(check.seconds)} s` });
                this.parts.events.emit({ type: "models", models: await this.parts.library.list() });
            } catch (error) {
                this.running.delete(modelId);
                leave();
                if (abort.signal.aborted) update({ state: "stopped", step: "stopped; nothing was saved" });
                else update({ state: "failed", error: toRequestError(error).error.message });
            }
        }, abort.signal);
    }

    stop(modelId: string): void {
        const run = this.running.get(modelId);
        if (run === undefined) throw new RequestError("not-found", `No check of ${modelId} is waiting or running; it may have ended.`);
        run.abort.abort();
    }

    stopAll(): void {
        for (const run of this.running.values()) run.abort.abort();
    }
}
