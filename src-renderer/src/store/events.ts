// Every pushed event lands in exactly one slice (chat replies in two: the
// streaming text, then the finished message).
import type { ApiEvent } from "../../../src-main/api/contract.ts";
import { reduceSummaries, useChats, withMessage } from "./chats.ts";
import { useCompare } from "./compare.ts";
import { pushSample } from "./metrics.ts";
import { useModels, withCheck } from "./models.ts";
import { useSession } from "./session.ts";
import { appendToken, useStreaming } from "./streaming.ts";
import { useUi } from "./ui.ts";
import { upsertById } from "./upsert.ts";

type EventOf<T extends ApiEvent["type"]> = Extract<ApiEvent, { type: T }>;

// One handler per event type; the compiler checks that every type has its own.
const handlers: { [T in ApiEvent["type"]]: (event: EventOf<T>) => void } = {
    token: (event) => useStreaming.setState((state) => ({ reply: appendToken(state.reply, event) })),
    "generation-done": (event) => {
        useChats.setState((state) => ({ current: state.current?.id === event.chatId ? withMessage(state.current, event.message) : state.current }));
        useStreaming.setState({ reply: null });
    },
    "generation-error": (event) => {
        useStreaming.setState({ reply: null });
        useUi.getState().showError(event.error);
    },
    "context-shift": (event) => useChats.setState({ shiftedChatId: event.chatId }),
    "mode-switch": (event) => useChats.setState((state) => ({
        current: state.current?.id === event.chatId ? { ...state.current, modeSwitches: [...state.current.modeSwitches, event.modeSwitch] } : state.current,
    })),
    chat: (event) => useChats.setState((state) => ({ summaries: reduceSummaries(state.summaries, event.chat) })),
    session: (event) => useSession.setState({ session: event.session }),
    download: (event) => useModels.setState((state) => ({ downloads: upsertById(state.downloads, event.download) })),
    models: (event) => useModels.setState({ models: event.models }),
    metrics: (event) => pushSample(event.sample),
    check: (event) => useModels.setState((state) => ({ checks: withCheck(state.checks, event.check) })),
    compare: (event) => useCompare.setState((state) => ({ runs: upsertById(state.runs, event.run).sort((a, b) => b.createdAt - a.createdAt) })),
    // menu commands act on the UI, not on a store (see startApp)
    command: () => undefined,
};

export function applyEvent(event: ApiEvent): void {
    // the handler picked by the event's own type takes that event
    (handlers[event.type] as (event: ApiEvent) => void)(event);
}
