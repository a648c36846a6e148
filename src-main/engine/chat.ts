// Chat turns on one context sequence: evaluate a history, stream a reply, stop
// it, and notice when node-llama-cpp's context shift drops old tokens to go on.
// Made by EngineContext.chat(); the sequence never leaves the engine.
import { LlamaChatSession, type ChatHistoryItem, type LlamaContextSequence } from "node-llama-cpp";
import type { ChatTurn, SamplingSettings } from "../api/contract.ts";

export interface ReplyResult {
    text: string;
    // the prompt as the model read it: the chat template over the history and the question
    promptTokens: number;
    tokens: number;
    // decode speed, from the first generated token to the last
    tokensPerSecond: number;
    stopped: boolean;
    contextShifted: boolean;
}

function toHistory(systemPrompt: string, turns: readonly ChatTurn[]): ChatHistoryItem[] {
    const history: ChatHistoryItem[] = systemPrompt === "" ? [] : [{ type: "system", text: systemPrompt }];
    for (const turn of turns) {
        history.push(turn.role === "user" ? { type: "user", text: turn.text } : { type: "model", response: [turn.text] });
    }
    return history;
}

export class EngineChat {
    private readonly sequence: LlamaContextSequence;
    private readonly session: LlamaChatSession;

    constructor(sequence: LlamaContextSequence) {
        this.sequence = sequence;
        this.session = new LlamaChatSession({ contextSequence: sequence, autoDisposeSequence: false });
    }

    // Tokens held in the context now.
    contextTokens(): number {
        return this.sequence.contextTokens.length;
    }

    // Tokens evaluated or generated so far, counted as each batch starts: progress through a long prompt too.
    processedTokens(): number {
        const meter = this.sequence.tokenMeter;
        return meter.usedInputTokens + meter.usedOutputTokens;
    }

    // Evaluates a whole history into the context, reporting 0..1 as it goes (only when it
    // changes: a report is progress to the engine's watchdog). An abort stops it with an error.
    async evaluate(systemPrompt: string, turns: readonly ChatTurn[], onProgress: (fraction: number) => void, signal?: AbortSignal): Promise<void> {
        const history = toHistory(systemPrompt, turns);
        this.session.setChatHistory(history);
        const expectedTokens = Math.max(1, this.sequence.model.tokenize(turns.map((turn) => turn.text).join("\n") + systemPrompt).length);
        let reported = -1;
        const poll = setInterval(() => {
            const fraction = Math.min(0.99, this.contextTokens() / expectedTokens);
            if (fraction !== reported) onProgress(fraction);
            reported = fraction;
        }, 100);
        try {
            await this.session.preloadPrompt("", { signal });
        } finally {
            clearInterval(poll);
        }
        onProgress(1);
    }

    // Answers `userText` after `turns` (the history before it), streaming text chunks.
    // An abort always ends the reply as stopped, with what it had generated: node-llama-cpp
    // throws instead of stopping when the abort comes before generation (a Stop pressed at once).
    async reply(systemPrompt: string, turns: readonly ChatTurn[], userText: string, sampling: SamplingSettings, onText: (text: string) => void, signal: AbortSignal): Promise<ReplyResult> {
        const history = toHistory(systemPrompt, turns);
        this.session.setChatHistory(history);
        const { sequence } = this;
        let tokens = 0;
        // the decode rate counts from the first token to the last: the prompt's evaluation and
        // node-llama-cpp's bookkeeping after the last token are not decoding
        let firstTokenAt = 0;
        let lastTokenAt = 0;
        let lastTokenIndex = sequence.nextTokenIndex;
        let contextShifted = false;
        let text = "";
        const result = await this.session.promptWithMeta(userText, {
            maxTokens: sampling.maxTokens,
            temperature: sampling.temperature,
            topP: sampling.topP,
            topK: sampling.topK,
            seed: sampling.seed ?? undefined,
            signal,
            stopOnAbortSignal: true,
            onTextChunk: (chunk) => {
                text += chunk;
                onText(chunk);
            },
            onToken: (chunk) => {
                lastTokenAt = performance.now();
                if (tokens === 0) firstTokenAt = lastTokenAt;
                tokens += chunk.length;
                // a shift erases the oldest cells, so the next index falls back
                if (sequence.nextTokenIndex < lastTokenIndex) contextShifted = true;
                lastTokenIndex = sequence.nextTokenIndex;
            },
        }).catch((error: unknown) => {
            if (!signal.aborted) throw error;
            return { responseText: text, stopReason: "abort" as const };
        });
        const seconds = tokens > 1 ? (lastTokenAt - firstTokenAt) / 1000 : 0;
        return {
            text: result.responseText,
            promptTokens: this.promptTokens([...history, { type: "user", text: userText }]),
            tokens,
            tokensPerSecond: seconds > 0 ? (tokens - 1) / seconds : 0,
            stopped: result.stopReason === "abort",
            contextShifted,
        };
    }

    // The tokens of the history as the chat template lays it out for the next answer, as
    // node-llama-cpp's LlamaChat tokenizes it (an empty model turn opens the answer).
    private promptTokens(history: readonly ChatHistoryItem[]): number {
        const { contextText } = this.session.chatWrapper.generateContextState({ chatHistory: [...history, { type: "model", response: [] }] });
        return contextText.tokenize(this.sequence.model.tokenizer).length;
    }

    dispose(): void {
        this.session.dispose({ disposeSequence: false });
    }
}
