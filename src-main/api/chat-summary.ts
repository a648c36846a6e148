import type { Chat, ChatSummary } from "./contract.ts";

// What the chat list shows of a chat.
export function chatSummary(chat: Chat): ChatSummary {
    return { id: chat.id, title: chat.title, updatedAt: chat.updatedAt, modelId: chat.modelId };
}
