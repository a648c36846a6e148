import { deleteChat, newChat, openChat } from "../actions.ts";
import { useChats } from "../store/chats.ts";
import { useUi, type View } from "../store/ui.ts";

const views: [View, string][] = [["chat", "Chat"], ["models", "Models"], ["compare", "Compare"], ["settings", "Settings"]];

export function Sidebar() {
    const summaries = useChats((state) => state.summaries);
    const currentId = useChats((state) => state.current?.id ?? null);
    const view = useUi((state) => state.view);
    const setView = useUi((state) => state.setView);
    return (
        <nav className="sidebar" aria-label="Main">
            <h1 className="brand">XQuant</h1>
            <ul className="nav">
                {views.map(([id, label]) => (
                    <li key={id}>
                        <button type="button" data-testid={`nav-${id}`} aria-current={view === id ? "page" : undefined} onClick={() => setView(id)}>{label}</button>
                    </li>
                ))}
            </ul>
            <button type="button" className="primary" data-testid="new-chat" onClick={() => void newChat()}>New chat</button>
            <h2 className="chats-title">Chats</h2>
            {summaries.length === 0 && <p className="muted">No chats yet.</p>}
            <ul className="chat-list" data-testid="chat-list">
                {summaries.map((chat) => (
                    <li key={chat.id} className="chat-item">
                        <button type="button" aria-current={chat.id === currentId ? "true" : undefined} onClick={() => void openChat(chat.id)}>{chat.title || "Untitled chat"}</button>
                        <button type="button" className="icon" aria-label={`Delete chat ${chat.title}`} onClick={() => void deleteChat(chat.id)}>×</button>
                    </li>
                ))}
            </ul>
        </nav>
    );
}
