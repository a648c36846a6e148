import { memo, useState } from "react";
import type { ChatMessage } from "../../../src-main/api/contract.ts";
import { editMessage } from "../actions.ts";
import { Markdown } from "./Markdown.tsx";

const interruptions: Record<NonNullable<ChatMessage["stats"]>["interrupted"] & string, string> = {
    "app-quit": "interrupted: the app quit",
    "engine-stopped": "interrupted: the engine stopped",
};

function Stats({ stats }: { stats: NonNullable<ChatMessage["stats"]> }) {
    const parts = [
        // a reply the engine's stop cut short has no counts, only its text
        ...stats.interrupted === "engine-stopped" ? [] : [`${stats.tokens} tokens`, `${stats.tokensPerSecond.toFixed(1)} tokens/s`],
        ...stats.interrupted !== null ? [interruptions[stats.interrupted]] : stats.stopped ? ["stopped"] : [],
        ...stats.contextShifted ? ["context shifted"] : [],
    ];
    return <p className="stats muted small" data-testid="message-stats">{parts.join(" · ")}</p>;
}

function UserMessage({ chatId, message, busy }: { chatId: string; message: ChatMessage; busy: boolean }) {
    const [draft, setDraft] = useState<string | null>(null);
    if (draft === null) {
        return (
            <>
                <p className="user-text">{message.text}</p>
                <button type="button" className="link" data-testid="edit-message" disabled={busy} onClick={() => setDraft(message.text)}>Edit &amp; resend</button>
            </>
        );
    }
    return (
        <form onSubmit={(event) => { event.preventDefault(); void editMessage(chatId, message.id, draft); setDraft(null); }}>
            <textarea aria-label="Edit message" data-testid="edit-input" value={draft} onChange={(event) => setDraft(event.target.value)} rows={3} />
            <button type="submit" data-testid="edit-submit" disabled={!draft.trim()}>Resend</button>
            <button type="button" onClick={() => setDraft(null)}>Cancel</button>
        </form>
    );
}

// Memoized: a finished message never re-renders while another streams.
export const MessageItem = memo(function MessageItem({ chatId, message, busy }: { chatId: string; message: ChatMessage; busy: boolean }) {
    return (
        <li className={`message ${message.role}`} data-testid={`message-${message.role}`}>
            <span className="role">{message.role === "user" ? "You" : "Assistant"}</span>
            {message.role === "user" ? <UserMessage chatId={chatId} message={message} busy={busy} /> : <div data-testid="message-text"><Markdown text={message.text} /></div>}
            {message.stats && <Stats stats={message.stats} />}
        </li>
    );
});
