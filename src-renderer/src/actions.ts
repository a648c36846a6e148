// What the UI does: each action calls the API once or twice and puts the answer
// in its slice. A failure shows its message in the error banner and returns undefined.
import type { ApiEvent, ApiMethod, ApiRequest, ApiResponse, AppCommand, DownloadInfo, RunSettings, SettingsPatch, StartedReply } from "../../src-main/api/contract.ts";
import { client } from "./client.ts";
import { setCurrentChat, useChats } from "./store/chats.ts";
import { useCompare } from "./store/compare.ts";
import { applyEvent } from "./store/events.ts";
import { useMetrics } from "./store/metrics.ts";
import { useModels, withCheck } from "./store/models.ts";
import { useSession } from "./store/session.ts";
import { useSettings } from "./store/settings.ts";
import { useStreaming } from "./store/streaming.ts";
import { useUi } from "./store/ui.ts";
import { upsertById } from "./store/upsert.ts";

export async function call<M extends ApiMethod>(method: M, request: ApiRequest<M>): Promise<ApiResponse<M> | undefined> {
    const result = await client.call(method, request);
    if (result.ok) return result.value;
    useUi.getState().showError(result.error);
    return undefined;
}

// Subscribe to pushed events first so nothing between the loads and the stream is missed;
// events that arrive while the loads run are applied after them, so that a load's older
// answer (the engine can take a while to start) never overwrites them.
// Menu commands go to `onCommand`; every other event lands in the stores.
export async function startApp(onCommand: (command: AppCommand) => void): Promise<() => void> {
    let arrivedDuringLoads: ApiEvent[] | null = [];
    const unsubscribe = client.onEvent((event) => {
        if (event.type === "command") onCommand(event.command);
        else if (arrivedDuringLoads !== null) arrivedDuringLoads.push(event);
        else applyEvent(event);
    });
    const [settings, memory, models, catalog, downloads, chats, session, metrics, runs, checks] = await Promise.all([
        call("getSettings", {}), call("getSystemMemory", {}), call("listModels", {}), call("getCatalog", {}),
        call("listDownloads", {}), call("listChats", {}), call("getSession", {}), call("getMetrics", {}), call("listCompareRuns", {}), call("listChecks", {}),
    ]);
    useSettings.setState({ settings: settings ?? null, memory: memory ?? null });
    useModels.setState({ models: models ?? [], catalog: catalog ?? [], downloads: downloads ?? [], checks: Object.fromEntries((checks ?? []).map((check) => [check.modelId, check])) });
    useChats.setState({ summaries: (chats ?? []).slice().sort((a, b) => b.updatedAt - a.updatedAt) });
    useSession.setState({ session: session ?? null });
    useMetrics.setState({ samples: metrics ?? [] });
    useCompare.setState({ runs: (runs ?? []).slice().sort((a, b) => b.createdAt - a.createdAt) });
    for (const event of arrivedDuringLoads) applyEvent(event);
    arrivedDuringLoads = null;
    const latest = chats?.[0];
    if (latest) await loadChat(latest.id);
    return unsubscribe;
}

async function loadChat(chatId: string): Promise<void> {
    const chat = await call("getChat", { chatId });
    if (chat) setCurrentChat(chat);
}

// The view switches first, so that a failure's banner stays up.
export async function openChat(chatId: string): Promise<void> {
    useUi.getState().setView("chat");
    await loadChat(chatId);
}

export async function newChat(): Promise<void> {
    const modelId = useChats.getState().current?.modelId ?? useModels.getState().models[0]?.id;
    useUi.getState().setView("chat");
    const chat = await call("createChat", modelId ? { modelId } : {});
    if (chat) setCurrentChat(chat);
}

export async function deleteChat(chatId: string): Promise<void> {
    const summaries = await call("deleteChat", { chatId });
    if (!summaries) return;
    useChats.setState((state) => ({ summaries, current: state.current?.id === chatId ? null : state.current }));
}

// sendMessage, regenerate and editMessage all answer with the chat as it is when
// generation starts and the id of the reply, which then streams in as token
// events. A Stop pressed before the backend has started is sent once it has.
let starting: { chatId: string; stop: boolean } | null = null;

async function generate(chatId: string, start: () => Promise<StartedReply | undefined>): Promise<void> {
    useStreaming.setState({ reply: { chatId, messageId: null, text: "" } });
    const pending = { chatId, stop: false };
    starting = pending;
    const started = await start();
    if (starting === pending) starting = null;
    if (!started) return useStreaming.setState({ reply: null });
    setCurrentChat(started.chat);
    useStreaming.setState((state) => ({ reply: state.reply === null ? null : { ...state.reply, messageId: started.replyId } }));
    if (pending.stop) await stopGeneration(chatId);
}

export const sendMessage = (chatId: string, text: string) => generate(chatId, () => call("sendMessage", { chatId, text }));
export const regenerate = (chatId: string) => generate(chatId, () => call("regenerate", { chatId }));
export const editMessage = (chatId: string, messageId: string, text: string) => generate(chatId, () => call("editMessage", { chatId, messageId, text }));

export async function stopGeneration(chatId: string): Promise<void> {
    if (starting?.chatId === chatId) starting.stop = true;
    else await call("stopGeneration", { chatId });
}

export async function updateChat(request: ApiRequest<"updateChat">): Promise<void> {
    const chat = await call("updateChat", request);
    if (chat) setCurrentChat(chat);
}

export async function openSession(chatId: string): Promise<void> {
    useChats.setState({ shiftedChatId: null });
    const session = await call("openSession", { chatId });
    if (session) useSession.setState({ session });
}

// A new model or run override for the chat; when its session is open, the
// backend reloads it that way and re-evaluates the history (no message is lost).
export async function changeChatRun(request: { chatId: string; modelId?: string; runOverride?: RunSettings | null }): Promise<void> {
    await updateChat(request);
    if (useSession.getState().session?.chatId === request.chatId) await openSession(request.chatId);
}

export async function updateSettings(patch: SettingsPatch): Promise<void> {
    const settings = await call("updateSettings", patch);
    if (settings) useSettings.setState({ settings });
}

// A changed model default reaches the open session when its chat has no override of its own.
export async function setModelDefault(modelId: string, run: RunSettings | null): Promise<void> {
    await updateSettings({ modelDefaults: { [modelId]: run } });
    const session = useSession.getState().session;
    const chat = useChats.getState().current;
    if (session?.modelId === modelId && chat?.id === session.chatId && chat.runOverride === null) await openSession(chat.id);
}

export async function refreshMemory(): Promise<void> {
    const memory = await call("getSystemMemory", {});
    if (memory) useSettings.setState({ memory });
}

async function trackDownload(pending: Promise<DownloadInfo | undefined>): Promise<boolean> {
    const download = await pending;
    if (download) useModels.setState((state) => ({ downloads: upsertById(state.downloads, download) }));
    return download !== undefined;
}

export const startDownload = (request: ApiRequest<"startDownload">) => trackDownload(call("startDownload", request));
export const pauseDownload = (downloadId: string) => trackDownload(call("pauseDownload", { downloadId }));
export const resumeDownload = (downloadId: string) => trackDownload(call("resumeDownload", { downloadId }));
export const cancelDownload = (downloadId: string) => trackDownload(call("cancelDownload", { downloadId }));

export async function importModel(path: string): Promise<boolean> {
    const model = await call("importModel", { path });
    if (model) useModels.setState((state) => ({ models: upsertById(state.models, model) }));
    return model !== undefined;
}

export async function deleteModel(modelId: string): Promise<void> {
    const models = await call("deleteModel", { modelId });
    if (models) useModels.setState({ models });
}

export async function startCheck(modelId: string): Promise<void> {
    const check = await call("startCheck", { modelId });
    if (check) useModels.setState((state) => ({ checks: withCheck(state.checks, check) }));
}

// The check ends as "stopped" (its check event says so); nothing is saved.
export async function stopCheck(modelId: string): Promise<void> {
    await call("stopCheck", { modelId });
}

export async function startCompare(request: ApiRequest<"startCompare">): Promise<void> {
    const run = await call("startCompare", request);
    if (run) useCompare.setState((state) => ({ runs: [run, ...state.runs.filter((entry) => entry.id !== run.id)] }));
}

// The run ends as "stopped" (its compare event says so), keeping the modes it finished.
export async function stopCompare(runId: string): Promise<void> {
    await call("stopCompare", { runId });
}
