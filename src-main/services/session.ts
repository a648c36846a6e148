// The loaded session: one chat's model in one cache mode, its context, its
// generation, and the memory sampler that feeds the live chart; and the
// measured memory of contexts that the fit estimate counts. Every generation
// waits its turn in the app's one GenerationQueue, and at most `maxModels`
// models stay loaded (the least recently used is unloaded first).
import { chatSummary } from "../api/chat-summary.ts";
import { maxMessageLength, metricsHistory, metricsIntervalMs, type ApiError, type ApiResult, type Chat, type ChatMessage, type ChatMessageStats, type ChatTurn, type MetricsSample, type ModelCheck, type ModeRun, type ModeSwitch, type RunSettings, type SamplingSettings, type SessionInfo, type StartedReply } from "../api/contract.ts";
import { pickAutoMode, type AutoChoice } from "../api/mode-advice.ts";
import { resolveRunSettings } from "../api/run-settings.ts";
import { throttle } from "../api/throttle.ts";
import type { ReplyResult } from "../engine/chat.ts";
import type { ContextMemory, ContextOptions } from "../engine/engine.ts";
import type { RemoteChat, RemoteContext, RemoteEngine, RemoteModel } from "../engine/remote.ts";
import { Lock } from "../engine/lock.ts";
import type { ChatStore } from "./chats.ts";
import { newId } from "./chats.ts";
import { chatContextOptions, ContextMemoryCache } from "./context-memory.ts";
import { RequestError, toRequestError } from "./errors.ts";
import type { EventBus } from "./events.ts";
import type { ModelLibrary } from "./library.ts";
import type { GenerationQueue } from "./queue.ts";
import type { SettingsStore } from "./settings.ts";

interface Loaded {
    info: SessionInfo;
    context: RemoteContext | null;
    chat: RemoteChat | null;
    // why the load failed, with the engine's code
    failure?: ApiError;
}

// A one-off completion, validated and resolved: what the model is asked, how it runs.
export interface CompletionPlan {
    modelId: string;
    run: RunSettings;
    sampling: SamplingSettings;
    systemPrompt: string;
    // the last one is the user's
    messages: ChatTurn[];
}


// A reply stopped while it waited in the queue: nothing was generated.
const stoppedBeforeStart: ReplyResult = { text: "", promptTokens: 0, tokens: 0, tokensPerSecond: 0, stopped: true, contextShifted: false };

const turnsOf = (messages: readonly ChatMessage[]): ChatTurn[] => messages.map(({ role, text }) => ({ role, text }));

// What auto counts beyond the texts' own tokens: the chat template's per message (SmolLM2's and
// Llama 3's take 4-5), and room for the reply (its max tokens, up to this many).
const templateTokensPerMessage = 8;
const maxReplyRoom = 512;

// The run in its own mode, or in auto's pick (asked for only in "auto").
async function modeRunOf(run: RunSettings, pick: () => Promise<AutoChoice>): Promise<{ modeRun: ModeRun; auto: AutoChoice | null }> {
    const { cacheMode } = run;
    if (cacheMode !== "auto") return { modeRun: { ...run, cacheMode }, auto: null };
    const auto = await pick();
    return { modeRun: { ...run, cacheMode: auto.mode, contextSize: auto.contextSize }, auto };
}

// A finished reply as it is saved. The session stops a reply at the longest text a saved
// message holds, but its last chunk may run past: the rest is cut, and the reply reads as stopped.
export function replyMessage(messageId: string, result: ReplyResult, createdAt: number, interrupted: ChatMessageStats["interrupted"] = null): ChatMessage {
    const cut = result.text.length > maxMessageLength;
    return {
        id: messageId, role: "assistant", text: cut ? result.text.slice(0, maxMessageLength) : result.text, createdAt,
        stats: { tokens: result.tokens, tokensPerSecond: result.tokensPerSecond, stopped: result.stopped || cut, contextShifted: result.contextShifted, interrupted },
    };
}

// What a reply had streamed when the engine process stopped under it: its text, nothing measured.
const interruptedReply = (text: string): ReplyResult => ({ ...stoppedBeforeStart, text });

export class SessionService {
    private loaded: Loaded | null = null;
    // loaded models, least recently used first
    private readonly models = new Map<string, RemoteModel>();
    // each chat's reply that is waiting or generating, by chat id
    private readonly replies = new Map<string, AbortController>();
    // stops one-off completions when the services shut down
    private readonly shutdown = new AbortController();
    // the chat load in progress: a newer load, or the shutdown, stops its evaluation
    private loading: AbortController | null = null;
    // one model load, session load or unload at a time
    private readonly loads = new Lock();
    private readonly samples: MetricsSample[] = [];
    private readonly contextMemory = new ContextMemoryCache();
    private sampler: NodeJS.Timeout | null = null;

    constructor(
        private readonly engine: () => Promise<RemoteEngine>,
        private readonly chats: ChatStore,
        private readonly library: ModelLibrary,
        private readonly settings: SettingsStore,
        private readonly events: EventBus,
        private readonly queue: GenerationQueue,
        private readonly maxModels: number,
        // the model's check, judged against today's memory budget: what auto picks from
        private readonly modelCheck: (modelId: string) => Promise<ModelCheck | null>,
    ) {}

    info(): SessionInfo | null {
        return this.loaded?.info ?? null;
    }

    private setInfo(change: Partial<SessionInfo>): void {
        if (this.loaded === null) return;
        this.loaded.info = { ...this.loaded.info, ...change };
        this.events.emit({ type: "session", session: this.loaded.info });
    }

    // The model, loaded if needed; for callers outside the load lock.
    model(modelId: string): Promise<RemoteModel> {
        return this.loads.run(() => this.residentModel(modelId));
    }

    // The ids of the models loaded now, least recently used first.
    residentModels(): string[] {
        return [...this.models.keys()];
    }

    // Under the load lock: the model, loaded after unloading the least recently
    // used ones past `maxModels` (and the session, if it runs on one of them).
    private async residentModel(modelId: string): Promise<RemoteModel> {
        const cached = this.models.get(modelId);
        if (cached !== undefined) {
            this.models.delete(modelId);
            this.models.set(modelId, cached);
            return cached;
        }
        for (const oldId of this.models.keys()) {
            if (this.models.size < this.maxModels) break;
            await this.unloadModel(oldId);
        }
        const entry = await this.library.get(modelId);
        const model = await (await this.engine()).loadModel(entry.path, { gpuLayers: this.settings.get().gpuLayers });
        this.models.set(modelId, model);
        return model;
    }

    // Under the load lock: unloads the model, and first the session running on it.
    private async unloadModel(modelId: string): Promise<void> {
        if (this.loaded?.info.modelId === modelId) {
            await this.unload();
            this.events.emit({ type: "session", session: null });
        }
        const model = this.models.get(modelId);
        this.models.delete(modelId);
        await model?.dispose();
    }

    // Loads the chat's model in its run settings, then evaluates its history.
    // Returns at once; progress arrives as session events.
    open(chatId: string): SessionInfo {
        if (!this.queue.idle()) throw new RequestError("busy", "A reply is being generated. Stop it before reloading.");
        return this.startLoad(chatId);
    }

    private startLoad(chatId: string): SessionInfo {
        const chat = this.chats.get(chatId);
        if (chat.modelId === null) throw new RequestError("bad-request", "This chat has no model yet. Pick a model for it first.");
        const run = resolveRunSettings(this.settings.get(), chat.modelId, chat.runOverride);
        const info: SessionInfo = {
            chatId, modelId: chat.modelId, run, mode: null, autoReason: null, state: "loading", progress: 0, contextTokens: 0, contextSize: run.contextSize, evaluationSeconds: null, error: null,
        };
        this.loading?.abort();
        const loading = new AbortController();
        this.loading = loading;
        void this.loads.run(() => this.load(info, loading.signal)).catch(() => undefined);
        this.events.emit({ type: "session", session: info });
        return info;
    }

    // Loads the chat in its run settings; in auto, in `choice` if given, else in auto's pick for
    // the chat as it is now.
    private async load(info: SessionInfo, signal: AbortSignal, choice?: AutoChoice): Promise<void> {
        try {
            await this.unload();
            this.loaded = { info, context: null, chat: null };
            const chat = this.chats.get(info.chatId);
            const model = await this.residentModel(info.modelId);
            // the model's trained context bounds the default context, so the run is final only now
            const run = resolveRunSettings(this.settings.get(), chat.modelId, chat.runOverride, model.shape.contextLength);
            const { modeRun, auto } = await modeRunOf(run, async () => choice ?? this.autoChoice(info.modelId, run, await this.neededTokens(model, chat)));
            this.setInfo({ run, mode: modeRun.cacheMode, autoReason: auto?.reason ?? null, contextSize: modeRun.contextSize });
            const context = await this.createContext(info.modelId, model, modeRun);
            this.loaded.context = context;
            const engineChat = await context.chat();
            this.loaded.chat = engineChat;
            this.setInfo({ state: "evaluating", progress: 0, contextSize: (await context.cacheStats()).contextSize });
            const started = performance.now();
            await engineChat.evaluate(chat.systemPrompt, turnsOf(chat.messages), (progress) => this.setInfo({ progress }), signal);
            const evaluationSeconds = (performance.now() - started) / 1000;
            this.setInfo({ state: "ready", progress: 1, contextTokens: await engineChat.contextTokens(), evaluationSeconds });
            this.startSampler();
        } catch (error) {
            // a newer load replaces this one; it says how that one goes
            if (signal.aborted) return;
            // also when the old session could not be unloaded: the session never stays "loading"
            this.loaded ??= { info, context: null, chat: null };
            this.loaded.failure = toRequestError(error).error;
            this.setInfo({ state: "failed", error: `${this.loaded.failure.message} Try another cache mode or a smaller context in Settings.` });
        }
    }

    private async unload(): Promise<void> {
        this.stopSampler();
        const loaded = this.loaded;
        this.loaded = null;
        await loaded?.chat?.dispose();
        await loaded?.context?.dispose();
    }

    // How many tokens a chat's context must hold for its next reply (see templateTokensPerMessage).
    private async neededTokens(model: RemoteModel, chat: Chat): Promise<number> {
        const texts = [chat.systemPrompt, ...chat.messages.map((message) => message.text)];
        const tokens = (await model.tokenize(texts.join("\n"))).length;
        return tokens + templateTokensPerMessage * (chat.messages.length + 1) + Math.min(chat.sampling.maxTokens, maxReplyRoom);
    }

    // Auto's pick for a run of this model that needs `neededTokens`.
    private async autoChoice(modelId: string, run: RunSettings, neededTokens: number): Promise<AutoChoice> {
        return pickAutoMode(await this.modelCheck(modelId), run.contextSize, neededTokens);
    }

    // A chat in auto whose next reply would not fit its context moves to auto's pick for its new
    // length, re-evaluating its history there, and keeps a line saying when and why. Where no
    // mode holds more, it stays, and the context shifts.
    private async keepAutoFitting(chat: Chat, loaded: Loaded & { chat: RemoteChat }): Promise<Loaded & { chat: RemoteChat }> {
        const model = await this.model(loaded.info.modelId);
        const needed = await this.neededTokens(model, chat);
        const { contextSize, mode: from, run } = loaded.info;
        if (needed <= contextSize || from === null) return loaded;
        const choice = await this.autoChoice(loaded.info.modelId, run, needed);
        if (choice.contextSize <= contextSize) return loaded;
        const contextTokens = await loaded.chat.contextTokens();
        // a Stop meanwhile ends the reply, not the re-evaluation: the chat stays loaded in its new mode
        await this.loads.run(() => this.load({ ...loaded.info, state: "loading", progress: 0, error: null }, this.shutdown.signal, choice));
        const moved = await this.readySession(chat.id);
        const modeSwitch: ModeSwitch = {
            at: Date.now(), afterMessages: chat.messages.length, from, to: choice.mode, contextTokens, seconds: moved.info.evaluationSeconds ?? 0,
            reason: `${from} holds ${contextSize} tokens in the memory budget and the next reply needs about ${needed}; ${choice.reason.replace(/^auto: /, "now ")}`,
        };
        const saved = this.chats.get(chat.id);
        this.chats.save({ ...saved, modeSwitches: [...saved.modeSwitches, modeSwitch] });
        this.events.emit({ type: "mode-switch", chatId: chat.id, modeSwitch });
        return moved;
    }

    // A chat's or a completion's context; what it allocated feeds the "will it fit" estimate.
    private async createContext(modelId: string, model: RemoteModel, run: ModeRun): Promise<RemoteContext> {
        const { threads, gpuLayers } = this.settings.get();
        const options = chatContextOptions(run, threads);
        const context = await model.createContext(options);
        const stats = await context.cacheStats();
        this.contextMemory.record(modelId, gpuLayers, options, { cacheBytes: stats.bytes, computeBytes: stats.computeBytes });
        return context;
    }

    // What a context of each run on this model takes besides the weights: known from an
    // earlier context (a chat's, or one measured before), else measured by creating it.
    // Measuring waits its turn in the generation queue like a completion: it never runs
    // beside a generation, so it never unloads the model a reply is using. Like a
    // completion on another model, it does unload the loaded one (and an idle session on
    // it, which loads again on its next reply). A run that cannot be measured gets its error.
    async measureContexts(modelId: string, runs: readonly ModeRun[]): Promise<ApiResult<ContextMemory>[]> {
        const { threads, gpuLayers } = this.settings.get();
        const options = runs.map((run) => chatContextOptions(run, threads));
        const known = options.map((option) => this.contextMemory.get(modelId, gpuLayers, option));
        if (known.every((memory): memory is ContextMemory => memory !== undefined)) return known.map((value) => ({ ok: true, value }));
        return this.queue.run(async () => {
            const model = await this.model(modelId);
            const results: ApiResult<ContextMemory>[] = [];
            for (const option of options) results.push(await this.measureContext(modelId, gpuLayers, model, option));
            return results;
        });
    }

    private async measureContext(modelId: string, gpuLayers: number, model: RemoteModel, options: ContextOptions): Promise<ApiResult<ContextMemory>> {
        // a chat's context made while this measurement waited counts too
        const known = this.contextMemory.get(modelId, gpuLayers, options);
        if (known !== undefined) return { ok: true, value: known };
        try {
            const memory = await model.measureContext(options);
            this.contextMemory.record(modelId, gpuLayers, options, memory);
            return { ok: true, value: memory };
        } catch (error) {
            return { ok: false, error: toRequestError(error).error };
        }
    }

    close(): Promise<void> {
        return this.loads.run(async () => {
            await this.unload();
            this.events.emit({ type: "session", session: null });
        });
    }

    // The ready session of this chat, opening it first when another (or none) is loaded.
    private async readySession(chatId: string): Promise<Loaded & { chat: RemoteChat }> {
        if (this.loaded?.info.chatId !== chatId || this.loaded.info.state === "failed") this.startLoad(chatId);
        await this.loads.settled();
        const loaded = this.loaded;
        if (loaded === null || loaded.chat === null || loaded.info.state !== "ready") {
            throw new RequestError(loaded?.failure?.code ?? "engine-unavailable", loaded?.info.error ?? "The model could not be loaded.");
        }
        return loaded as Loaded & { chat: RemoteChat };
    }

    // Answers the chat's last user message; `chat` ends with that message.
    // The queue admits the reply first, and only then is the chat saved (by
    // `save`): a refused request leaves the chat as it was.
    startReply(chat: Chat, save: (chat: Chat) => Chat): StartedReply {
        if (this.replies.has(chat.id)) throw new RequestError("busy", "This chat's reply is still waiting or generating. Stop it first.");
        const abort = new AbortController();
        const messageId = newId();
        const saved = this.queue.start(() => save(chat), (admitted, leave) => this.generateReply(admitted, messageId, abort.signal, () => {
            leave();
            this.replies.delete(chat.id);
        }), abort.signal);
        // the job starts on a later tick, so the reply is registered before it runs
        this.replies.set(chat.id, abort);
        return { chat: saved, replyId: messageId };
    }

    // `ended` runs before the reply's last events: the chat and the queue take
    // new requests from whoever hears them. A reply ended by the app's quit is saved
    // as interrupted; so is what a reply had streamed when the engine process stopped.
    private async generateReply(chat: Chat, messageId: string, signal: AbortSignal, ended: () => void): Promise<void> {
        let streamed = "";
        try {
            let result: ReplyResult;
            try {
                // stopped while it waited: an empty stopped reply, without loading anything
                result = signal.aborted ? stoppedBeforeStart : await this.generate(chat, messageId, signal, (text) => streamed += text);
            } catch (error) {
                ended();
                if (streamed !== "") this.saveReply(chat.id, replyMessage(messageId, interruptedReply(streamed), Date.now(), "engine-stopped"), false);
                this.events.emit({ type: "generation-error", chatId: chat.id, error: toRequestError(error).error });
                return;
            }
            ended();
            this.saveReply(chat.id, replyMessage(messageId, result, Date.now(), result.stopped && this.shutdown.signal.aborted ? "app-quit" : null), result.contextShifted);
        } finally {
            const engineChat = this.loaded?.chat;
            // after an engine crash there is no chat to ask, and the session already says what happened
            const contextTokens = await engineChat?.contextTokens().catch(() => null);
            if (engineChat === this.loaded?.chat && contextTokens != null) this.setInfo({ state: "ready", contextTokens });
        }
    }

    private async generate(chat: Chat, messageId: string, signal: AbortSignal, onText: (text: string) => void): Promise<ReplyResult> {
        const ready = await this.readySession(chat.id);
        const loaded = ready.info.run.cacheMode === "auto" ? await this.keepAutoFitting(chat, ready) : ready;
        this.setInfo({ state: "generating" });
        // max tokens may be 2^20: the reply stops where a saved message must end
        const full = new AbortController();
        let length = 0;
        return loaded.chat.reply(chat.systemPrompt, turnsOf(chat.messages.slice(0, -1)), chat.messages.at(-1)!.text, chat.sampling, (text) => {
            length += text.length;
            if (length >= maxMessageLength) full.abort();
            onText(text);
            this.events.emit({ type: "token", chatId: chat.id, messageId, text });
        }, AbortSignal.any([signal, full.signal]));
    }

    // Saves a reply and announces it; a save that fails (a full disk, a deleted chat) is told as the reply's error.
    private saveReply(chatId: string, message: ChatMessage, contextShifted: boolean): void {
        let saved: Chat;
        try {
            const chat = this.chats.get(chatId);
            saved = this.chats.save({ ...chat, messages: [...chat.messages, message] });
        } catch (error) {
            this.events.emit({ type: "generation-error", chatId, error: toRequestError(error).error });
            return;
        }
        if (contextShifted) this.events.emit({ type: "context-shift", chatId });
        this.events.emit({ type: "generation-done", chatId, message });
        this.events.emit({ type: "chat", chat: chatSummary(saved) });
    }

    stop(chatId: string): void {
        this.replies.get(chatId)?.abort();
    }

    // A one-off reply in a context of its own, waiting its turn in the queue like a chat's reply.
    complete(plan: CompletionPlan, onText: (text: string) => void, signal: AbortSignal): Promise<ReplyResult> {
        return this.queue.run(async () => {
            // the client went away while it waited
            if (signal.aborted) return stoppedBeforeStart;
            const model = await this.model(plan.modelId);
            // auto: the fastest mode that fits, as the completion has no history to grow
            const { modeRun } = await modeRunOf(plan.run, () => this.autoChoice(plan.modelId, plan.run, 0));
            const context = await this.createContext(plan.modelId, model, modeRun);
            try {
                const chat = await context.chat();
                try {
                    const question = plan.messages.at(-1)!;
                    return await chat.reply(plan.systemPrompt, plan.messages.slice(0, -1), question.text, plan.sampling, onText, AbortSignal.any([signal, this.shutdown.signal]));
                } finally {
                    await chat.dispose();
                }
            } finally {
                await context.dispose();
            }
        }, signal);
    }

    metrics(): MetricsSample[] {
        return this.samples;
    }

    private startSampler(): void {
        this.stopSampler();
        const emit = throttle<MetricsSample>(metricsIntervalMs, (sample) => this.events.emit({ type: "metrics", sample }));
        let last = "";
        this.sampler = setInterval(() => {
            // a sample the engine cannot give (it is stopping, or stopped) is skipped
            void this.sample().catch(() => null).then((sample) => {
                if (sample === null) return;
                // only changes are recorded, so the chart's history stays meaningful
                const key = `${sample.mode} ${sample.contextTokens} ${Math.round(sample.rssBytes / 2 ** 20)}`;
                if (key === last) return;
                last = key;
                this.samples.push(sample);
                if (this.samples.length > metricsHistory) this.samples.splice(0, this.samples.length - metricsHistory);
                emit(sample);
            });
        }, metricsIntervalMs);
    }

    private stopSampler(): void {
        if (this.sampler !== null) clearInterval(this.sampler);
        this.sampler = null;
    }

    // Measured now: the allocated cache's bytes per cell times the cells in use.
    private async sample(): Promise<MetricsSample | null> {
        const loaded = this.loaded;
        if (loaded?.context == null || loaded.chat === null) return null;
        const stats = await loaded.context.cacheStats();
        const engine = await this.engine();
        const vram = await engine.vram();
        // the models and caches live in the engine's process, not this one
        const { rssBytes } = await engine.processMemory();
        return {
            time: Date.now(),
            chatId: loaded.info.chatId,
            mode: stats.mode,
            contextTokens: await loaded.chat.contextTokens(),
            contextSize: stats.contextSize,
            cacheBytesUsed: Math.round((stats.bytes * stats.cellsUsed) / Math.max(1, stats.contextSize)),
            cacheBytesAllocated: stats.bytes,
            computeBytes: stats.computeBytes,
            rssBytes,
            vramUsedBytes: vram?.usedBytes ?? null,
        };
    }

    forgetModel(modelId: string): Promise<void> {
        this.contextMemory.forget(modelId);
        return this.loads.run(() => this.unloadModel(modelId));
    }

    // The engine process ended, and its models and contexts with it. The session
    // says what happened; a chat that was loaded and working is loaded again (in
    // a new engine process). One that was still loading is not, so that a model
    // that crashes the engine cannot do so in a loop.
    engineStopped(reason: string): void {
        this.models.clear();
        this.stopSampler();
        const loaded = this.loaded;
        if (loaded === null) return;
        const wasWorking = loaded.info.state === "ready" || loaded.info.state === "generating";
        this.loaded = { info: loaded.info, context: null, chat: null };
        this.setInfo({ state: "failed", error: `The engine process stopped (${reason}).${wasWorking ? " Loading the chat again…" : " Load the chat to try again."}` });
        if (wasWorking) this.startLoad(loaded.info.chatId);
    }

    // Stops every reply and completion, and waits until the queue has run out: a reply
    // in progress is saved, as far as it came, before the engine goes.
    async dispose(): Promise<void> {
        this.shutdown.abort();
        this.loading?.abort();
        for (const abort of this.replies.values()) abort.abort();
        await this.queue.settled();
        await this.loads.run(() => this.unload());
        for (const model of this.models.values()) await model.dispose();
        this.models.clear();
    }
}
