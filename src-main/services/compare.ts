// The compare view's runs: the same text under several cache modes, one after
// another, each against kv-f16 measured in the same run. Saved as JSON.
import fs from "node:fs";
import path from "node:path";
import type { CacheMode } from "../api/cache-modes.ts";
import { compareRunSchema, type CompareModeResult, type CompareRequest, type CompareRun } from "../api/contract.ts";
import { meanKlDivergence, perplexity } from "../engine/score.ts";
import { newId } from "./chats.ts";
import { RequestError, toRequestError } from "./errors.ts";
import type { EventBus } from "./events.ts";
import { readJson, writeJsonAtomic } from "./json-file.ts";
import { fileIn } from "./paths.ts";
import type { GenerationQueue } from "./queue.ts";
import type { SessionService } from "./session.ts";

export class CompareService {
    private readonly dir: string;
    // the runs waiting or running, by id
    private readonly running = new Map<string, AbortController>();

    constructor(appDir: string, private readonly session: SessionService, private readonly events: EventBus, private readonly queue: GenerationQueue) {
        this.dir = path.join(appDir, "compare");
        fs.mkdirSync(this.dir, { recursive: true });
    }

    list(): CompareRun[] {
        return fs.readdirSync(this.dir)
            .filter((file) => file.endsWith(".json"))
            .map((file) => readJson(path.join(this.dir, file), compareRunSchema))
            .filter((run): run is CompareRun => run !== null)
            .sort((a, b) => b.createdAt - a.createdAt);
    }

    // Runs in the app's generation queue; nothing is saved unless the queue admits it.
    // A run that cannot be saved (a full disk) is refused before it starts.
    start(request: CompareRequest): CompareRun {
        const abort = new AbortController();
        return this.queue.start(() => {
            const run: CompareRun = { id: newId(), createdAt: Date.now(), request, state: "running", results: [] };
            this.write(run);
            this.running.set(run.id, abort);
            this.events.emit({ type: "compare", run });
            return run;
        }, (run, leave) => this.execute(run, abort.signal, () => {
            this.running.delete(run.id);
            leave();
        }), abort.signal);
    }

    // Stops a run that waits or runs: it ends as "stopped", with the modes it finished.
    stop(runId: string): void {
        const abort = this.running.get(runId);
        if (abort === undefined) throw new RequestError("not-found", `No compare run ${runId} is waiting or running; it may have ended.`);
        abort.abort();
    }

    // Stops every run (the app is quitting).
    dispose(): void {
        for (const abort of this.running.values()) abort.abort();
    }

    private write(run: CompareRun): void {
        writeJsonAtomic(fileIn(this.dir, `${run.id}.json`), compareRunSchema, run);
    }

    // A started run's progress: announced, then saved. It runs unawaited, so a save that
    // fails (a full disk) is logged and never thrown; the run goes on and its end is announced.
    private save(run: CompareRun): void {
        this.events.emit({ type: "compare", run });
        try {
            this.write(run);
        } catch (error) {
            console.error(`The compare run ${run.id} could not be saved: ${(error as Error).message}`);
        }
    }

    // `leave` gives the queue's place back before the last save announces the end. A stop ends
    // the run between steps, and a generation at its next token; the mode it cut is not recorded.
    private async execute(run: CompareRun, signal: AbortSignal, leave: () => void): Promise<void> {
        const { request } = run;
        try {
            // stopped while it waited: nothing is loaded
            if (signal.aborted) throw signal.reason;
            const model = await this.session.model(request.modelId);
            const prompt = (await model.tokenize(request.text, true)).slice(0, Math.max(2, request.contextSize - request.maxTokens));
            // kv-f16 goes first: its distributions are the reference, and for a prompt its greedy continuation is the scored text
            const modes: CacheMode[] = [...new Set<CacheMode>(["kv-f16", ...request.modes])];
            let reference: Map<number, number>[] = [];
            let scored: number[] = prompt;
            for (const mode of modes) {
                if (signal.aborted) break;
                const result: CompareModeResult = { mode, cacheBytes: 0, tokensPerSecond: 0, kldVsF16: 0, perplexity: null, output: null, error: null };
                try {
                    // every K/V is read back from the cache, as in the paper's protocol: with exact ubatches a
                    // text scored in one ubatch would never touch the quantized cells
                    const context = await model.createContext({ cacheMode: mode, contextSize: request.contextSize, exactUbatch: false });
                    try {
                        const started = performance.now();
                        if (request.kind === "prompt") {
                            const output = await context.complete(request.text, { maxTokens: request.maxTokens }, signal);
                            if (signal.aborted) break;
                            const outputTokens = await model.tokenize(output);
                            result.output = output;
                            // the whole reply's rate, prompt evaluation included
                            result.tokensPerSecond = outputTokens.length / ((performance.now() - started) / 1000);
                            if (mode === "kv-f16") scored = [...prompt, ...outputTokens].slice(0, request.contextSize);
                        }
                        const firstScored = request.kind === "prompt" ? prompt.length : 1;
                        const scoreStarted = performance.now();
                        const distributions = await context.nextTokenDistributions(scored, firstScored);
                        if (request.kind === "perplexity") result.tokensPerSecond = scored.length / ((performance.now() - scoreStarted) / 1000);
                        if (mode === "kv-f16") reference = distributions;
                        result.kldVsF16 = meanKlDivergence(reference, distributions);
                        result.perplexity = perplexity(distributions, scored, firstScored);
                        result.cacheBytes = (await context.cacheStats()).bytes;
                    } finally {
                        await context.dispose();
                    }
                } catch (error) {
                    // node-llama-cpp throws for an abort that comes before the first token
                    if (signal.aborted) break;
                    result.error = toRequestError(error).error.message;
                }
                if (mode !== "kv-f16" || request.modes.includes("kv-f16")) run.results.push(result);
                this.save(run);
            }
            run.state = signal.aborted ? "stopped" : "done";
        } catch (error) {
            run.state = signal.aborted ? "stopped" : "failed";
            if (!signal.aborted) run.results.push({ mode: request.modes[0]!, cacheBytes: 0, tokensPerSecond: 0, kldVsF16: 0, perplexity: null, output: null, error: toRequestError(error).error.message });
        }
        leave();
        this.save(run);
    }
}
