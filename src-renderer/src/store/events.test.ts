import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Chat, ChatMessage, DownloadInfo, MetricsSample } from "../../../src-main/api/contract.ts";
import { useChats } from "./chats.ts";
import { applyEvent } from "./events.ts";
import { metricsIntervalMs } from "../../../src-main/api/contract.ts";
import { appendSamples, useMetrics } from "./metrics.ts";
import { useModels } from "./models.ts";
import { useStreaming } from "./streaming.ts";
import { useUi } from "./ui.ts";

const sampling = { temperature: 0.7, topP: 0.9, topK: 40, maxTokens: 256, seed: null };
const chat: Chat = { id: "c1", title: "t", createdAt: 1, updatedAt: 1, modelId: "m", systemPrompt: "", sampling, runOverride: null, messages: [], modeSwitches: [] };
const reply: ChatMessage = { id: "a1", role: "assistant", text: "Hello world", createdAt: 2, stats: { tokens: 2, tokensPerSecond: 10, stopped: false, contextShifted: false, interrupted: null } };

function sample(contextTokens: number): MetricsSample {
    return { time: contextTokens, chatId: "c1", mode: "xq-4", contextTokens, contextSize: 512, cacheBytesUsed: contextTokens * 100, cacheBytesAllocated: 51200, computeBytes: 4096, rssBytes: 1, vramUsedBytes: null };
}

describe("event reduction", () => {
    beforeEach(() => {
        useChats.setState({ summaries: [], current: chat, shiftedChatId: null });
        useStreaming.setState({ reply: null });
        useUi.setState({ error: null });
    });

    it("streams tokens into the streaming slice without touching the chat", () => {
        applyEvent({ type: "token", chatId: "c1", messageId: "a1", text: "Hello" });
        applyEvent({ type: "token", chatId: "c1", messageId: "a1", text: " world" });
        expect(useStreaming.getState().reply).toEqual({ chatId: "c1", messageId: "a1", text: "Hello world" });
        expect(useChats.getState().current).toBe(chat);
    });

    it("a placeholder reply (no message id yet) takes the first token's id", () => {
        useStreaming.setState({ reply: { chatId: "c1", messageId: null, text: "" } });
        applyEvent({ type: "token", chatId: "c1", messageId: "a1", text: "Hi" });
        expect(useStreaming.getState().reply).toEqual({ chatId: "c1", messageId: "a1", text: "Hi" });
    });

    it("a new message id starts a new reply", () => {
        applyEvent({ type: "token", chatId: "c1", messageId: "a1", text: "old" });
        applyEvent({ type: "token", chatId: "c1", messageId: "a2", text: "new" });
        expect(useStreaming.getState().reply?.text).toBe("new");
    });

    it("generation-done moves the reply into the chat, once, and clears the stream", () => {
        applyEvent({ type: "token", chatId: "c1", messageId: "a1", text: "Hello" });
        applyEvent({ type: "generation-done", chatId: "c1", message: reply });
        applyEvent({ type: "generation-done", chatId: "c1", message: reply });
        expect(useChats.getState().current?.messages).toEqual([reply]);
        expect(useStreaming.getState().reply).toBeNull();
    });

    it("generation-done for another chat leaves the open chat alone", () => {
        applyEvent({ type: "generation-done", chatId: "other", message: reply });
        expect(useChats.getState().current).toBe(chat);
    });

    it("generation-error clears the stream and shows the message", () => {
        applyEvent({ type: "token", chatId: "c1", messageId: "a1", text: "Hel" });
        applyEvent({ type: "generation-error", chatId: "c1", error: { code: "internal", message: "boom" } });
        expect(useStreaming.getState().reply).toBeNull();
        expect(useUi.getState().error?.message).toBe("boom");
    });

    it("context-shift marks the chat for a notice", () => {
        applyEvent({ type: "context-shift", chatId: "c1" });
        expect(useChats.getState().shiftedChatId).toBe("c1");
    });

    it("chat summaries are upserted newest first", () => {
        applyEvent({ type: "chat", chat: { id: "x", title: "x", updatedAt: 1, modelId: null } });
        applyEvent({ type: "chat", chat: { id: "y", title: "y", updatedAt: 2, modelId: null } });
        applyEvent({ type: "chat", chat: { id: "x", title: "x2", updatedAt: 3, modelId: null } });
        expect(useChats.getState().summaries.map((summary) => summary.title)).toEqual(["x2", "y"]);
    });

    it("download events update the download in place", () => {
        const download: DownloadInfo = { id: "d", url: "https://h/m.gguf", fileName: "m.gguf", state: "downloading", downloadedBytes: 1, totalBytes: 10, error: null, modelId: null };
        useModels.setState({ downloads: [] });
        applyEvent({ type: "download", download });
        applyEvent({ type: "download", download: { ...download, downloadedBytes: 5 } });
        expect(useModels.getState().downloads).toEqual([{ ...download, downloadedBytes: 5 }]);
    });
});

describe("metrics throttling", () => {
    beforeEach(() => {
        vi.useFakeTimers();
        useMetrics.setState({ samples: [] });
    });
    afterEach(() => vi.useRealTimers());

    it("batches a burst of samples into at most 4 store updates a second", () => {
        let updates = 0;
        const unsubscribe = useMetrics.subscribe(() => updates++);
        for (let i = 0; i < 100; i++) {
            applyEvent({ type: "metrics", sample: sample(i) });
            vi.advanceTimersByTime(10);
        }
        vi.advanceTimersByTime(metricsIntervalMs);
        unsubscribe();
        expect(useMetrics.getState().samples.map((entry) => entry.contextTokens)).toEqual([...Array(100).keys()]);
        // 100 samples over 1 s (+ one trailing interval)
        expect(updates).toBeLessThanOrEqual(5);
        expect(updates).toBeGreaterThanOrEqual(4);
    });

    it("caps the history, dropping the oldest", () => {
        const kept = appendSamples([sample(1), sample(2)], [sample(3), sample(4)], 3);
        expect(kept.map((entry) => entry.contextTokens)).toEqual([2, 3, 4]);
    });
});
