// Chat turns on one context sequence: evaluate a history, stream a reply, stop
// it, and notice when node-llama-cpp's context shift drops old tokens to go on.
// Made by EngineContext.chat(); the sequence never leaves the engine.
import { LlamaChatSession, type ChatHistoryItem, type LlamaContextSequence, type Token } from "node-llama-cpp";
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

export interface GenerationOptions {
    maxTokens: number;
    temperature: number;
    topK: number;
    topP: number;
    seed?: number;
    // tokens that end the reply besides the vocabulary's end-of-generation ones
    stopTokens: Token[];
    // a speed measurement decodes maxTokens tokens whatever they are
    ignoreEndOfGeneration?: boolean;
}

export interface GenerationResult {
    // every sampled token, a final stop token included
    tokens: Token[];
    decoded: number;
    // from the first sampled token to the last, as the loop timed it
    decodeSeconds: number;
    stopReason: "eog" | "maxTokens" | "contextFull" | "stopped";
}

// Generation in one native loop on the evaluation thread (engine.ts, AddonGenerationLoop.cpp).
export type GenerateInOneLoop = (sequence: LlamaContextSequence, firstToken: Token, options: GenerationOptions,
    onTokens: (tokens: Token[]) => void, signal: AbortSignal) => Promise<GenerationResult>;

// How many characters at the end of `text` could begin one of the stop texts.
function heldForTriggers(text: string, stopTexts: readonly string[]): number {
    let held = 0;
    for (const stopText of stopTexts) {
        for (let length = Math.min(stopText.length - 1, text.length); length > held; length--) {
            if (text.endsWith(stopText.slice(0, length))) held = length;
        }
    }
    return held;
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
    private readonly generate: GenerateInOneLoop;

    constructor(sequence: LlamaContextSequence, generate: GenerateInOneLoop) {
        this.sequence = sequence;
        this.generate = generate;
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
        const inOneLoop = await this.replyInOneLoop([...history, { type: "user", text: userText }], sampling, onText, signal);
        if (inOneLoop !== null) return inOneLoop;
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

    // The reply in one native loop: node-llama-cpp's own loop costs about 1 ms a token in round
    // trips between threads (docs/performance.md, "The generation loop"). The chat template's
    // stop triggers end it as in LlamaChat: a one-token trigger in the loop, a longer one when its
    // text appears (the loop may have decoded a few tokens past it; node-llama-cpp's record of
    // the sequence says so, and the next prompt erases them). Taken when the prompt and the
    // longest reply fit the context; otherwise null, and LlamaChatSession answers (it shifts the
    // context when full).
    private async replyInOneLoop(history: readonly ChatHistoryItem[], sampling: SamplingSettings, onText: (text: string) => void, signal: AbortSignal): Promise<ReplyResult | null> {
        const { sequence } = this;
        const { model } = sequence;
        const state = this.session.chatWrapper.generateContextState({ chatHistory: [...history, { type: "model", response: [] }] });
        const prompt = state.contextText.tokenize(model.tokenizer);
        if (prompt.length + sampling.maxTokens > sequence.contextSize - 1) return null;
        const triggers = state.stopGenerationTriggers.map((trigger) => trigger.tokenize(model.tokenizer));
        const stopTokens = triggers.filter((tokens) => tokens.length === 1).map((tokens) => tokens[0]!);
        const stopTexts = triggers.filter((tokens) => tokens.length > 1).map((tokens) => model.detokenize(tokens, true));

        // keep the cells the prompt shares with the context; evaluate the rest as LlamaChat does (one
        // batch, the first token sampled by node-llama-cpp), so that greedy replies are the same
        const kept = Math.min(sequence.compareContextTokens(prompt).firstDifferentIndex, prompt.length - 1);
        if (kept < sequence.nextTokenIndex) await sequence.eraseContextTokenRanges([{ start: kept, end: sequence.nextTokenIndex }]);
        const samplingOptions = { temperature: sampling.temperature, topK: sampling.topK, topP: sampling.topP, seed: sampling.seed ?? undefined };
        let firstToken: Token | undefined;
        for await (const token of sequence.evaluate(prompt.slice(kept), samplingOptions)) {
            firstToken = token;
            break;
        }

        // a stop trigger's text stops the loop as a Stop does
        const triggered = new AbortController();
        const stop = AbortSignal.any([signal, triggered.signal]);
        const replyTokens: Token[] = [];
        let text = "";
        let streamed = 0;
        let firstTokenAt = 0;
        let lastTokenAt = 0;
        const onTokens = (tokens: Token[]) => {
            if (stop.aborted) return;
            const now = performance.now();
            for (const token of tokens) {
                if (stopTokens.includes(token) || model.isEogToken(token)) break;
                if (replyTokens.length === 0) firstTokenAt = now;
                replyTokens.push(token);
            }
            lastTokenAt = now;
            const detokenized = model.detokenize(replyTokens);
            // a character split across tokens waits for its last byte
            if (detokenized.endsWith("\uFFFD")) return;
            const stopAt = Math.min(...stopTexts.map((stopText) => detokenized.indexOf(stopText)).filter((index) => index >= 0));
            if (stopAt < Infinity) triggered.abort();
            text = detokenized.slice(0, stopAt);
            // what could still become a stop trigger waits
            const safe = stop.aborted ? text.length : text.length - heldForTriggers(text, stopTexts);
            if (safe > streamed) onText(text.slice(streamed, safe));
            streamed = Math.max(streamed, safe);
        };
        // node-llama-cpp's evaluate ends without a token at the end of generation; a Stop during
        // the prompt's evaluation ends the reply before its first token
        if (firstToken !== undefined) onTokens([firstToken]);
        if (firstToken !== undefined && replyTokens.length > 0 && sampling.maxTokens > 1 && !stop.aborted) {
            await this.generate(sequence, firstToken, { ...samplingOptions, maxTokens: sampling.maxTokens - 1, stopTokens }, onTokens, stop);
        }
        if (text.length > streamed) onText(text.slice(streamed));
        const seconds = replyTokens.length > 1 ? (lastTokenAt - firstTokenAt) / 1000 : 0;
        return {
            text,
            promptTokens: prompt.length,
            tokens: replyTokens.length,
            tokensPerSecond: seconds > 0 ? (replyTokens.length - 1) / seconds : 0,
            stopped: signal.aborted,
            contextShifted: false,
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
