// Chats, one crash-safe JSON file each, restored after a restart.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { chatSummary } from "../api/chat-summary.ts";
import { chatSchema, type Chat, type ChatSummary } from "../api/contract.ts";
import { RequestError } from "./errors.ts";
import { readJson, removeLeftoverTempFiles, writeJsonAtomic } from "./json-file.ts";
import { fileIn } from "./paths.ts";

export const newId = (): string => crypto.randomUUID();

export class ChatStore {
    private readonly dir: string;
    private readonly chats = new Map<string, Chat>();

    constructor(appDir: string) {
        this.dir = path.join(appDir, "chats");
        fs.mkdirSync(this.dir, { recursive: true });
        removeLeftoverTempFiles(this.dir);
        for (const file of fs.readdirSync(this.dir)) {
            if (!file.endsWith(".json")) continue;
            // a chat is saved as <id>.json: one whose id names another file is damaged
            // (an id of "../settings" would overwrite settings.json at its next save)
            const chat = readJson(path.join(this.dir, file), chatSchema.refine((read) => `${read.id}.json` === file, "its id does not match its file name"));
            if (chat !== null) this.chats.set(chat.id, chat);
        }
    }

    private file(chatId: string): string {
        return fileIn(this.dir, `${chatId}.json`);
    }

    list(): ChatSummary[] {
        return [...this.chats.values()]
            // newest first; chats saved in the same millisecond keep one order across restarts
            .sort((a, b) => b.updatedAt - a.updatedAt || a.id.localeCompare(b.id))
            .map(chatSummary);
    }

    get(chatId: string): Chat {
        const chat = this.chats.get(chatId);
        if (chat === undefined) throw new RequestError("not-found", `There is no chat ${chatId}; it may have been deleted.`);
        return chat;
    }

    // Saves a changed chat; the file is replaced atomically, and memory holds what the file holds.
    save(chat: Chat): Chat {
        const saved = writeJsonAtomic(this.file(chat.id), chatSchema, { ...chat, updatedAt: Date.now() });
        this.chats.set(chat.id, saved);
        return saved;
    }

    delete(chatId: string): void {
        this.get(chatId);
        fs.rmSync(this.file(chatId), { force: true });
        this.chats.delete(chatId);
    }
}
