import { create } from "zustand";

// The reply being streamed, kept apart from the chats so that a token only
// re-renders the one component that shows it.
export interface StreamingReply {
    chatId: string;
    // null until the backend names the reply (sendMessage's answer, or the first token if that comes sooner)
    messageId: string | null;
    text: string;
}

export const useStreaming = create<{ reply: StreamingReply | null }>()(() => ({ reply: null }));

export function appendToken(reply: StreamingReply | null, token: { chatId: string; messageId: string; text: string }): StreamingReply {
    const same = reply !== null && reply.chatId === token.chatId && (reply.messageId === null || reply.messageId === token.messageId);
    return { chatId: token.chatId, messageId: token.messageId, text: same ? reply.text + token.text : token.text };
}
