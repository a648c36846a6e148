import { Fragment } from "react";
import type { ModeSwitch } from "../../../src-main/api/contract.ts";
import { newChat } from "../actions.ts";
import { ChatSettingsPanel } from "../components/ChatSettingsPanel.tsx";
import { Composer } from "../components/Composer.tsx";
import { MemoryChart } from "../components/MemoryChart.tsx";
import { MessageItem } from "../components/MessageItem.tsx";
import { SessionBar } from "../components/SessionBar.tsx";
import { StreamingReply } from "../components/StreamingReply.tsx";
import { useChats } from "../store/chats.ts";
import { useModels } from "../store/models.ts";
import { useSession } from "../store/session.ts";
import { useStreaming } from "../store/streaming.ts";
import { useUi } from "../store/ui.ts";

function NoModels() {
    const setView = useUi((state) => state.setView);
    return (
        <div className="empty" data-testid="empty-models">
            <h2>No models yet</h2>
            <p>Download one from the catalog or import a .gguf file you already have.</p>
            <button type="button" className="primary" onClick={() => setView("models")}>Go to Models</button>
        </div>
    );
}

function NoChat() {
    return (
        <div className="empty" data-testid="empty-chat">
            <h2>Start a chat</h2>
            <p>Create a chat, pick a model and cache mode, press Load, then type a message.</p>
            <button type="button" className="primary" onClick={() => void newChat()}>New chat</button>
        </div>
    );
}

// Auto moved the chat to another cache mode here: one line saying when and why.
function ModeSwitchLine({ modeSwitch }: { modeSwitch: ModeSwitch }) {
    const when = new Date(modeSwitch.at).toLocaleTimeString();
    return (
        <li className="notice mode-switch" role="note" data-testid="mode-switch">
            {when}, at {modeSwitch.contextTokens} tokens: auto moved this chat from {modeSwitch.from} to {modeSwitch.to}, re-evaluating its history in {modeSwitch.seconds.toFixed(1)} s. {modeSwitch.reason}.
        </li>
    );
}

export function ChatView() {
    const chat = useChats((state) => state.current);
    const shifted = useChats((state) => state.current !== null && state.shiftedChatId === state.current.id);
    const hasModels = useModels((state) => state.models.length > 0);
    const streaming = useStreaming((state) => chat !== null && state.reply?.chatId === chat.id);
    const generating = useSession((state) => chat !== null && state.session?.chatId === chat.id && state.session.state === "generating");
    if (!hasModels && !chat) return <NoModels />;
    if (!chat) return <NoChat />;
    const busy = streaming || generating;
    const lastAssistant = chat.messages.at(-1)?.role === "assistant";
    return (
        <div className="chat-view">
            <section className="chat-main" aria-label={`Chat: ${chat.title || "Untitled chat"}`}>
                <h2 className="chat-title">{chat.title || "Untitled chat"}</h2>
                <SessionBar chatId={chat.id} hasModel={chat.modelId !== null} />
                {!hasModels && <NoModels />}
                {shifted && <p className="notice" role="status" data-testid="context-shift-notice">Context full: oldest messages were shifted out to keep going.</p>}
                <ol className="messages" aria-label="Messages">
                    {chat.messages.length === 0 && <li className="muted empty-messages">No messages yet. Load the model, then say hello.</li>}
                    {chat.messages.map((message, index) => (
                        <Fragment key={message.id}>
                            <MessageItem chatId={chat.id} message={message} busy={busy} />
                            {chat.modeSwitches.filter((modeSwitch) => modeSwitch.afterMessages === index + 1).map((modeSwitch) => <ModeSwitchLine key={modeSwitch.at} modeSwitch={modeSwitch} />)}
                        </Fragment>
                    ))}
                    <StreamingReply chatId={chat.id} />
                </ol>
                <Composer chatId={chat.id} busy={busy} canRegenerate={lastAssistant} />
            </section>
            <aside className="chat-side">
                <MemoryChart chatId={chat.id} />
                <ChatSettingsPanel key={chat.id} chat={chat} />
            </aside>
        </div>
    );
}
