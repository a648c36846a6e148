import { create } from "zustand";
import { chatSummary } from "../../../src-main/api/chat-summary.ts";
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

// A finished reply is appended; the same message again (a repeated event) replaces it.
export function withMessage(chat: Chat, message: ChatMessage): Chat {
    return { ...chat, messages: upsertById(chat.messages, message) };
}

export function setCurrentChat(chat: Chat | null): void {
    useChats.setState((state) => ({ current: chat, summaries: chat ? reduceSummaries(state.summaries, chatSummary(chat)) : state.summaries }));
}
