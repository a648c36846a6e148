import { useState } from "react";
import { regenerate, sendMessage, stopGeneration } from "../actions.ts";

export function Composer({ chatId, busy, canRegenerate }: { chatId: string; busy: boolean; canRegenerate: boolean }) {
    const [text, setText] = useState("");
    const send = () => {
        if (!text.trim() || busy) return;
        void sendMessage(chatId, text);
        setText("");
    };
    return (
        <form className="composer" onSubmit={(event) => { event.preventDefault(); send(); }}>
            <textarea aria-label="Message" data-testid="chat-input" placeholder="Type a message. Enter sends, Shift+Enter adds a line." rows={3} value={text}
                onChange={(event) => setText(event.target.value)}
                onKeyDown={(event) => { if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) { event.preventDefault(); send(); } }} />
            <div className="composer-actions">
                {busy
                    ? <button type="button" data-testid="stop" onClick={() => void stopGeneration(chatId)}>Stop</button>
                    : <button type="submit" className="primary" data-testid="send" disabled={!text.trim()}>Send</button>}
                <button type="button" data-testid="regenerate" disabled={busy || !canRegenerate} onClick={() => void regenerate(chatId)}>Regenerate</button>
            </div>
        </form>
    );
}
