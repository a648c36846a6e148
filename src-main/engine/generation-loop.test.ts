// Replies through the native generation loop (AddonGenerationLoop.cpp), against the same
// replies through node-llama-cpp's LlamaChatSession, which the chat takes when the longest
// reply does not fit the context (here: maxTokens larger than the context).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath, quantizedFixtures, type FixtureName } from "../../fixtures/fixtures.ts";
import type { ChatTurn, SamplingSettings } from "../api/contract.ts";
import type { CacheMode } from "../api/cache-modes.ts";
import { Engine, type EngineModel } from "./engine.ts";

const contextSize = 512;
const greedy: SamplingSettings = { temperature: 0, topP: 1, topK: 1, maxTokens: 100, seed: 1 };
const throughLlamaChat: SamplingSettings = { ...greedy, maxTokens: contextSize };
// each question after the same fixed history, so that both paths see the same prompts
const script: ChatTurn[] = [
    { role: "user", text: "What is the capital of France?" }, { role: "assistant", text: "The capital of France is Paris." },
    { role: "user", text: "Name three colors." }, { role: "assistant", text: "Red, green and blue." },
    { role: "user", text: "What is the largest planet?" },
];

interface Turn {
    text: string;
    streamed: string;
    tokens: number;
    promptTokens: number;
    tokensPerSecond: number;
    contextTokens: number;
}

// The script's questions (the first `questions`) on one context (each reuses the cells the last one left).
async function chat(model: EngineModel, cacheMode: CacheMode, sampling: SamplingSettings, { questions = 3, cells = contextSize } = {}): Promise<Turn[]> {
    const context = await model.createContext({ cacheMode, contextSize: cells });
    try {
        const engineChat = context.chat();
        const results: Turn[] = [];
        for (let question = 0; question < 2 * questions; question += 2) {
            let streamed = "";
            const reply = await engineChat.reply("", script.slice(0, question), script[question]!.text, sampling, (text) => void (streamed += text), new AbortController().signal);
            results.push({ ...reply, streamed, contextTokens: engineChat.contextTokens() });
        }
        return results;
    } finally {
        await context.dispose();
    }
}

describe("the native generation loop", () => {
    let engine: Engine;

    beforeAll(async () => {
        engine = await Engine.start({ maxThreads: 2 });
    });

    afterAll(async () => {
        await engine.dispose();
    });

    const cases: { model: FixtureName; mode: CacheMode }[] = [
        { model: "smollm2-135m-instruct-q4_1", mode: "kv-f16" },
        { model: "smollm2-135m-instruct-q4_1", mode: "xql-4" },
    ];
    for (const { model: name, mode } of cases) {
        it(`gives LlamaChatSession's greedy replies and context, turn after turn: ${name}, ${mode}`, async () => {
            const model = await engine.loadModel(fixturePath(name));
            try {
                const inOneLoop = await chat(model, mode, greedy);
                const llamaChat = await chat(model, mode, throughLlamaChat);
                inOneLoop.forEach((turn, index) => {
                    const reference = llamaChat[index]!;
                    expect(turn.promptTokens).toBe(reference.promptTokens);
                    expect(turn.text.length).toBeGreaterThan(0);
                    expect(turn.streamed).toBe(turn.text);
                    if (turn.tokens > 1) expect(turn.tokensPerSecond).toBeGreaterThan(0);
                    if (reference.tokens < greedy.maxTokens) {
                        // the answer ended by itself: the same answer, and the same cells
                        expect({ text: turn.text, tokens: turn.tokens, contextTokens: turn.contextTokens }).toEqual({ text: reference.text, tokens: reference.tokens, contextTokens: reference.contextTokens });
                    } else {
                        expect(turn.tokens).toBe(greedy.maxTokens);
                        expect(reference.text.startsWith(turn.text)).toBe(true);
                    }
                });
            } finally {
                await model.dispose();
            }
        });
    }

    // The fixtures' greedy answers run to maxTokens, and LlamaChatSession may cut the history to
    // make room for a reply as long as the context, so only the first question compares. A small
    // context keeps LlamaChatSession's reply short (under the x64 CPU variant too).
    for (const name of quantizedFixtures) {
        it(`starts LlamaChatSession's greedy reply on quantized weights: ${name}, xq-4`, async () => {
            const model = await engine.loadModel(fixturePath(name));
            try {
                const cells = 96;
                const [inOneLoop] = await chat(model, "xq-4", { ...greedy, maxTokens: 40 }, { questions: 1, cells });
                const [llamaChat] = await chat(model, "xq-4", { ...greedy, maxTokens: cells }, { questions: 1, cells });
                expect(inOneLoop!.tokens).toBe(Math.min(40, llamaChat!.tokens));
                expect(inOneLoop!.text.length).toBeGreaterThan(0);
                expect(llamaChat!.text.startsWith(inOneLoop!.text)).toBe(true);
            } finally {
                await model.dispose();
            }
        });
    }

    it("repeats a sampled reply with the same seed, and stops where it is told, keeping the context usable", async () => {
        const model = await engine.loadModel(fixturePath("smollm2-135m-instruct-q4_1"));
        try {
            const sampled: SamplingSettings = { temperature: 0.8, topP: 0.95, topK: 40, maxTokens: 60, seed: 7 };
            const first = await chat(model, "kv-f16", sampled);
            const again = await chat(model, "kv-f16", sampled);
            expect(again.map((turn) => turn.text)).toEqual(first.map((turn) => turn.text));

            const context = await model.createContext({ cacheMode: "kv-f16", contextSize });
            const engineChat = context.chat();
            const stop = new AbortController();
            const long = { ...greedy, maxTokens: 400 };
            const stopped = await engineChat.reply("", [], "Write a long story about a lighthouse keeper and a storm.", long, () => stop.abort(), stop.signal);
            // stopped at the first text it streamed: one batch of tokens at most (the loop sends one every 50 ms)
            expect(stopped.stopped).toBe(true);
            expect(stopped.text.length).toBeGreaterThan(0);
            expect(stopped.tokens).toBeLessThan(long.maxTokens);
            const turns: ChatTurn[] = [{ role: "user", text: "Write a long story about a lighthouse keeper and a storm." }, { role: "assistant", text: stopped.text }];
            const next = await engineChat.reply("", turns, "What is the capital of France?", greedy, () => {}, new AbortController().signal);
            expect(next.stopped).toBe(false);
            expect(next.text).toContain("Paris");
            await context.dispose();
        } finally {
            await model.dispose();
        }
    });
});
