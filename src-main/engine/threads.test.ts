import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath, heldOutTextPath } from "../../fixtures/fixtures.ts";
import { Engine, type EngineContext, type EngineModel } from "./engine.ts";

// Every thread of this process has slept this many times (Linux: /proc/self/task/*/status).
function voluntarySwitches(): number {
    let total = 0;
    for (const task of fs.readdirSync("/proc/self/task")) {
        try {
            total += Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/task/${task}/status`, "utf8"))![1]);
        } catch {
            // the thread ended meanwhile
        }
    }
    return total;
}

// ggml's CPU threads wait for each other at every graph node. When they all belong to one
// OpenMP team they spin there; when node-llama-cpp's libuv threads had grown several teams
// (more OpenMP threads than cores), libgomp slept in the kernel at each barrier: SmolLM2
// decoded with about 880 voluntary context switches per token, and 2 threads were slower
// than 1. Counting the sleeps checks the cause without timing anything.
describe.skipIf(process.platform !== "linux")("decoding with 2 threads keeps ggml's threads in one team", () => {
    let engine: Engine;
    let model: EngineModel;
    let context: EngineContext;

    beforeAll(async () => {
        engine = await Engine.start({ maxThreads: 2 });
        // quantized weights: on a CPU with AMX their load runs an OpenMP loop too
        model = await engine.loadModel(fixturePath("smollm2-135m-instruct-q4_1"));
        context = await model.createContext({ cacheMode: "kv-f16", contextSize: 512 });
    });

    afterAll(async () => {
        await context?.dispose();
        await model?.dispose();
        await engine?.dispose();
    });

    it("sleeps a few times per decoded token, not at every graph node", async () => {
        const prompt = model.tokenize(fs.readFileSync(heldOutTextPath, "utf8")).slice(0, 200);
        // prefill and decode in separate calls, so that node-llama-cpp's work lands on several libuv threads
        await context.prefill(prompt.slice(0, -1));
        const before = voluntarySwitches();
        const decodeTokens = 24;
        let decoded = 0;
        for await (const _ of context.decodeGreedy(prompt.slice(-1))) {
            if (++decoded === decodeTokens) break;
        }
        const perToken = (voluntarySwitches() - before) / decodeTokens;
        // SmolLM2's one-token graph has about 900 nodes that end in a barrier
        expect(perToken).toBeLessThan(100);
    });
});
