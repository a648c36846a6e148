// Chat turns on an EngineContext: evaluate a history, stream a reply, stop it,
// and notice when node-llama-cpp's context shift drops old tokens to go on.
import { LlamaChatSession, type ChatHistoryItem } from "node-llama-cpp";
import type { EngineContext } from "./engine.ts";

export interface ChatTurn {
    role: "user" | "assistant";
    text: string;
}

export interface Sampling {
    temperature: number;
    topP: number;
    topK: number;
    maxTokens: number;
    seed: number | null;
}

export interface ReplyResult {
    text: string;
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
    readonly context: EngineContext;
    private readonly session: LlamaChatSession;

    constructor(context: EngineContext) {
        this.context = context;
        this.session = new LlamaChatSession({ contextSequence: context.sequence(), autoDisposeSequence: false });
    }

    // Tokens held in the context now.
    contextTokens(): number {
        return this.context.sequence().contextTokens.length;
    }

    // Evaluates a whole history into the context, reporting 0..1 as it goes.
    async evaluate(systemPrompt: string, turns: readonly ChatTurn[], onProgress: (fraction: number) => void): Promise<void> {
        const history = toHistory(systemPrompt, turns);
        this.session.setChatHistory(history);
        const expectedTokens = Math.max(1, this.context.context.model.tokenize(turns.map((turn) => turn.text).join("\n") + systemPrompt).length);
        const poll = setInterval(() => onProgress(Math.min(0.99, this.contextTokens() / expectedTokens)), 100);
        try {
            await this.session.preloadPrompt("");
        } finally {
            clearInterval(poll);
        }
        onProgress(1);
    }

    // Answers `userText` after `turns` (the history before it), streaming text chunks.
    async reply(systemPrompt: string, turns: readonly ChatTurn[], userText: string, sampling: Sampling, onText: (text: string) => void, signal: AbortSignal): Promise<ReplyResult> {
        this.session.setChatHistory(toHistory(systemPrompt, turns));
        const sequence = this.context.sequence();
        let tokens = 0;
        let firstTokenAt = 0;
        let lastTokenIndex = sequence.nextTokenIndex;
        let contextShifted = false;
        const result = await this.session.promptWithMeta(userText, {
            maxTokens: sampling.maxTokens,
            temperature: sampling.temperature,
            topP: sampling.topP,
            topK: sampling.topK,
            seed: sampling.seed ?? undefined,
            signal,
            stopOnAbortSignal: true,
            onTextChunk: onText,
            onToken: (chunk) => {
                if (tokens === 0) firstTokenAt = performance.now();
                tokens += chunk.length;
                // a shift erases the oldest cells, so the next index falls back
                if (sequence.nextTokenIndex < lastTokenIndex) contextShifted = true;
                lastTokenIndex = sequence.nextTokenIndex;
            },
        });
        const seconds = tokens > 1 ? (performance.now() - firstTokenAt) / 1000 : 0;
        return {
            text: result.responseText,
            tokens,
            tokensPerSecond: seconds > 0 ? (tokens - 1) / seconds : 0,
            stopped: result.stopReason === "abort",
            contextShifted,
        };
    }

    dispose(): void {
        this.session.dispose({ disposeSequence: false });
    }
}
