import { create } from "zustand";
import type { Chat, ChatMessage, ChatSummary } from "../../../src-main/api/contract.ts";
import { upsertById } from "./upsert.ts";

interface ChatsState {
    summaries: ChatSummary[];
    // the chat open in the chat view, in full
    current: Chat | null;
    // the chat whose context was last shifted to keep generating: shows a notice
    shiftedChatId: string | null;
}

export const useChats = create<ChatsState>()(() => ({ summaries: [], current: null, shiftedChatId: null }));

// Newest first, as the sidebar lists them.
export function reduceSummaries(list: readonly ChatSummary[], summary: ChatSummary): ChatSummary[] {
    return upsertById(list, summary).sort((a, b) => b.updatedAt - a.updatedAt);
}

// A finished reply replaces its placeholder (same id) or is appended.
export function withMessage(chat: Chat, message: ChatMessage): Chat {
    return { ...chat, messages: upsertById(chat.messages, message) };
}

export function setCurrentChat(chat: Chat | null): void {
    useChats.setState((state) => ({ current: chat, summaries: chat ? reduceSummaries(state.summaries, summaryOf(chat)) : state.summaries }));
}

function summaryOf(chat: Chat): ChatSummary {
    return { id: chat.id, title: chat.title, updatedAt: chat.updatedAt, modelId: chat.modelId };
}
