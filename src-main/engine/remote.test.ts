// The engine process's watchdog: a call to an engine that stops answering (here it is
// stopped with SIGSTOP, as a hung read or a native deadlock would leave it) ends with a
// typed engine-timeout error within its limit, and the hung process is killed.
import fs from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { fixturePath, heldOutTextPath, type FixtureName } from "../../fixtures/fixtures.ts";
import { EngineError } from "./errors.ts";
import { forkEngine, RemoteEngine, type SpawnEngine } from "./remote.ts";

const limitMs = 1500;
// the calls under test; the engine's start keeps its own limit (a loaded machine may take longer to start it)
const timeouts = { callMs: limitMs, progressMs: limitMs, heavyMs: limitMs };
const sampling = { temperature: 0, topP: 1, topK: 1, maxTokens: 4000, seed: 1 };

const isRunning = (pid: number): boolean => {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
};

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!condition() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
}

// How a promise ends, and after how many milliseconds.
async function timed(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
    const started = performance.now();
    const error = await promise.then(() => null, (caught: unknown) => caught);
    return { error, ms: performance.now() - started };
}

describe("the engine watchdog", () => {
    let engine: RemoteEngine | null = null;
    afterEach(() => engine?.kill());

    it("fails a plain call to a stopped engine with engine-timeout within its limit, and kills the process", async () => {
        engine = await RemoteEngine.start({ maxThreads: 2, timeouts });
        const model = await engine.loadModel(fixturePath("mha-random-f16"));
        const pid = engine.pid!;
        const stopReasons: string[] = [];
        engine.onStop((reason) => stopReasons.push(reason));
        process.kill(pid, "SIGSTOP");
        const { error, ms } = await timed(model.tokenize("In the beginning"));
        expect(error).toBeInstanceOf(EngineError);
        expect(error).toMatchObject({ code: "engine-timeout", message: expect.stringContaining("(tokenize) for 1.5 s") });
        expect(ms).toBeGreaterThanOrEqual(limitMs - 50);
        expect(ms).toBeLessThan(limitMs + 1000);
        expect(engine.alive).toBe(false);
        expect(stopReasons).toEqual(["tokenize hung for 1.5 s"]);
        await until(() => !isRunning(pid));
        expect(isRunning(pid)).toBe(false);
        await expect(model.tokenize("x")).rejects.toMatchObject({ code: "engine-stopped" });
    });

    it("lets a generation run past the limit while it makes progress, and ends it once progress stops", async () => {
        engine = await RemoteEngine.start({ maxThreads: 2, timeouts });
        const model = await engine.loadModel(fixturePath("mha-random-f16"));
        const context = await model.createContext({ cacheMode: "kv-f16", contextSize: 4096 });
        const chat = await context.chat();
        const pid = engine.pid!;
        let chunks = 0;
        const started = performance.now();
        const reply = timed(chat.reply("", [], "In the beginning", sampling, () => void chunks++, new AbortController().signal));
        // well past the limit in total, then the process stops answering
        await until(() => performance.now() - started > 2 * limitMs, 3 * limitMs);
        const chunksBeforeStop = chunks;
        process.kill(pid, "SIGSTOP");
        const stoppedAt = performance.now();
        const { error } = await reply;
        expect(chunksBeforeStop).toBeGreaterThan(0);
        expect(error).toMatchObject({ code: "engine-timeout", message: expect.stringContaining("(reply)") });
        expect(performance.now() - stoppedAt).toBeLessThan(limitMs + 1000);
        await until(() => !isRunning(pid));
        expect(isRunning(pid)).toBe(false);
    });

    it("evaluates a long history for longer than the limit: the prompt reports progress batch by batch", async () => {
        // about 2,000 tokens in four turns: four 512-token batches
        const text = fs.readFileSync(heldOutTextPath, "utf8");
        const turns = Array.from({ length: 4 }, (_, index) => ({ role: index % 2 === 0 ? "user" as const : "assistant" as const, text: text.slice(index * 2000, (index + 1) * 2000) }));
        const evaluateHistory = async (model: FixtureName, timeoutsOfRun: typeof timeouts) => {
            engine?.kill();
            engine = await RemoteEngine.start({ maxThreads: 2, timeouts: timeoutsOfRun });
            const loaded = await engine.loadModel(fixturePath(model));
            const chat = await (await loaded.createContext({ cacheMode: "kv-f16", contextSize: 4096 })).chat();
            return { chat, ...await timed(chat.evaluate("", turns, () => {})) };
        };
        // A history that takes seconds here, so that a busy machine's stalls stay well inside the
        // limit: the small random fixture under a slow CPU variant, else SmolLM2.
        const untimedLimits = { callMs: 600_000, progressMs: 600_000, heavyMs: 600_000 };
        let model: FixtureName = "mha-random-f16";
        let untimed = await evaluateHistory(model, untimedLimits);
        if (untimed.ms < 3000) {
            model = "smollm2-135m-instruct-q4_1";
            untimed = await evaluateHistory(model, untimedLimits);
        }
        expect(untimed.error).toBeNull();
        // the limit is half the whole history's time on this machine, twice one batch (a quarter)
        const batchLimitMs = untimed.ms / 2;
        const { chat, error, ms } = await evaluateHistory(model, { ...timeouts, progressMs: batchLimitMs });
        expect(error).toBeNull();
        expect(ms).toBeGreaterThan(batchLimitMs);
        expect(await chat.contextTokens()).toBeGreaterThan(1000);
    });

    it("fails a start that gets no answer with engine-timeout, and kills that process", async () => {
        let pid = 0;
        const stoppedAtOnce: SpawnEngine = (module, env) => {
            const channel = forkEngine(module, env);
            pid = channel.pid!;
            process.kill(pid, "SIGSTOP");
            return channel;
        };
        const { error, ms } = await timed(RemoteEngine.start({ maxThreads: 2, timeouts: { ...timeouts, startMs: limitMs }, spawn: stoppedAtOnce }));
        expect(error).toMatchObject({ code: "engine-timeout", message: expect.stringContaining("(start)") });
        expect(ms).toBeLessThan(limitMs + 1000);
        await until(() => !isRunning(pid));
        expect(isRunning(pid)).toBe(false);
    });
});
