// Every pushed event lands in exactly one slice (chat replies in two: the
// streaming text, then the finished message).
import type { ApiEvent } from "../../../src-main/api/contract.ts";
import { reduceSummaries, useChats, withMessage } from "./chats.ts";
import { useCompare } from "./compare.ts";
import { pushSample } from "./metrics.ts";
import { useModels } from "./models.ts";
import { useSession } from "./session.ts";
import { appendToken, useStreaming } from "./streaming.ts";
import { useUi } from "./ui.ts";
import { upsertById } from "./upsert.ts";

export function applyEvent(event: ApiEvent): void {
    switch (event.type) {
        case "token":
            useStreaming.setState((state) => ({ reply: appendToken(state.reply, event) }));
            break;
        case "generation-done":
            useChats.setState((state) => ({ current: state.current?.id === event.chatId ? withMessage(state.current, event.message) : state.current }));
            useStreaming.setState({ reply: null });
            break;
        case "generation-error":
            useStreaming.setState({ reply: null });
            useUi.getState().showError(event.error);
            break;
        case "context-shift":
            useChats.setState({ shiftedChatId: event.chatId });
            break;
        case "chat":
            useChats.setState((state) => ({ summaries: reduceSummaries(state.summaries, event.chat) }));
            break;
        case "session":
            useSession.setState({ session: event.session });
            break;
        case "download":
            useModels.setState((state) => ({ downloads: upsertById(state.downloads, event.download) }));
            break;
        case "models":
            useModels.setState({ models: event.models });
            break;
        case "metrics":
            pushSample(event.sample);
            break;
        case "compare":
            useCompare.setState((state) => ({ runs: upsertById(state.runs, event.run).sort((a, b) => b.createdAt - a.createdAt) }));
            break;
        case "command":
            // menu commands act on the UI, not on a store (see startApp)
            break;
    }
}
