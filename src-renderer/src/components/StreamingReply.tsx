import { useStreaming } from "../store/streaming.ts";
import { Markdown } from "./Markdown.tsx";

// The only component that re-renders on every token.
export function StreamingReply({ chatId }: { chatId: string }) {
    const reply = useStreaming((state) => (state.reply?.chatId === chatId ? state.reply : null));
    if (!reply) return null;
    return (
        <li className="message assistant streaming" data-testid="message-streaming" aria-live="polite">
            <span className="role">Assistant</span>
            {reply.text ? <Markdown text={reply.text} /> : <p className="muted">Thinking…</p>}
        </li>
    );
}
