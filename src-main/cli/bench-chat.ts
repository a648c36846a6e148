// The app's own path, end to end: one chat through the services and the engine process,
// as the UI sends it (chat template, sampling, streaming), in kv-f16. The decode speed its
// reply reports stands against llama-bench's decode of as many tokens at the same context
// depth, threads and KV type (with and without flash attention: the faster), measured right after it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ApiEvent } from "../api/contract.ts";
import { Services } from "../services/services.ts";
import { llamaCppDecode } from "./bench-llama-cpp.ts";
import { nextEvent, ok } from "../services/service-calls.ts";

export interface ChatBenchResult {
    replyTokens: number;
    // the context's tokens when the reply ended
    contextTokens: number;
    // as the chat reports it (message stats)
    chatDecodeTokensPerSecond: number;
    llamaCppDecodeTokensPerSecond: number;
    chatVsLlamaCpp: number;
}

const question = "Write a long story about a lighthouse keeper and a storm.";

// One greedy reply in a new chat: its tokens, its reported speed and the context it ended at.
async function chatReply(appDir: string, model: string, threads: number, maxTokens: number): Promise<{ tokens: number; tokensPerSecond: number; contextTokens: number }> {
    const services = new Services({ appDir, maxThreads: threads });
    try {
        const modelId = (await ok(services.handleRequest("importModel", { path: model }))).id;
        const chat = await ok(services.handleRequest("createChat", { modelId }));
        await ok(services.handleRequest("updateChat", {
            chatId: chat.id, runOverride: { cacheMode: "kv-f16", contextSize: 2048, baseLayers: -1 },
            sampling: { temperature: 0, topP: 1, topK: 1, maxTokens, seed: null },
        }));
        const finished = nextEvent(services, (event): event is Extract<ApiEvent, { type: "generation-done" | "generation-error" }> =>
            (event.type === "generation-done" || event.type === "generation-error") && event.chatId === chat.id);
        // after the reply, the session reports the tokens its context holds
        let contextTokens = 0;
        services.subscribe((event) => {
            if (event.type === "session" && event.session?.chatId === chat.id) contextTokens = event.session.contextTokens;
        });
        await ok(services.handleRequest("sendMessage", { chatId: chat.id, text: question }));
        const end = await finished;
        if (end.type === "generation-error") throw new Error(`the chat failed: ${end.error.message}`);
        const { tokens, tokensPerSecond } = end.message.stats!;
        for (let waited = 0; contextTokens <= tokens; waited += 50) {
            if (waited > 10_000) throw new Error("the session did not report its context after the reply");
            await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return { tokens, tokensPerSecond, contextTokens };
    } finally {
        await services.dispose();
    }
}

export async function benchChat(model: string, threads: number, maxTokens: number): Promise<ChatBenchResult> {
    const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-bench-chat-"));
    try {
        const reply = await chatReply(appDir, model, threads, maxTokens);
        // llama.cpp at its best: the faster of f16 without and with flash attention
        const llamaCpp = Math.max(...(["f16", "f16+fa"] as const).map((kvType) => llamaCppDecode({ model, kvType, threads, gpu: false }, reply.tokens, reply.contextTokens - reply.tokens)));
        return {
            replyTokens: reply.tokens, contextTokens: reply.contextTokens,
            chatDecodeTokensPerSecond: reply.tokensPerSecond, llamaCppDecodeTokensPerSecond: llamaCpp,
            chatVsLlamaCpp: reply.tokensPerSecond / llamaCpp,
        };
    } finally {
        fs.rmSync(appDir, { recursive: true, force: true });
    }
}
